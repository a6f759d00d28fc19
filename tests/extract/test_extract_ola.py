"""Ola-7B image, video and audio backbones on a tiny random checkpoint written in the
real Ola-7b layout (issue 16), loaded through the backbones' own loading path.

The towers and projectors are checked against reference computations written here
from the checkpoints' original tensor names (OpenAI Whisper, timm Oryx-ViT, fairseq
BEATs, Ola's projector layout), independently of the loaders' renaming code.
"""

import json
import math
import shutil

import numpy as np
import pytest
import torch
from torch.nn import functional as F

transformers = pytest.importorskip(
    "transformers", reason="the extract extra (transformers) is not installed"
)
st = pytest.importorskip("safetensors.torch")

from sklearn_modeq.cache import load  # noqa: E402
from sklearn_modeq.extract import extract, get_backbone  # noqa: E402
from sklearn_modeq.extract.__main__ import main  # noqa: E402
from sklearn_modeq.extract._beats import beats_fbank, relative_buckets  # noqa: E402
from sklearn_modeq.extract._ola_tiny import (  # noqa: E402
    BEATS_FILE,
    WHISPER_FILE,
    write_tiny_ola,
)
from sklearn_modeq.extract.ola import (  # noqa: E402
    linspace_frames,
    ola_image_views,
    ola_video_frame,
)

from .conftest import write_digit, write_tone  # noqa: E402

HEADS = {"vision_heads": 2}  # Oryx-ViT's head count is not in its weights
OPTIONS = {"image": HEADS, "video": {**HEADS, "frames": 3}, "audio": {}, "text": {}}


@pytest.fixture(scope="module")
def tiny_ola(tmp_path_factory):
    return write_tiny_ola(tmp_path_factory.mktemp("ola") / "Ola-7b")


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    """Two items per modality: digit images, 3-frame digit videos, tones."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("ola_media")
    digits = load_digits()
    out = {
        "image": [],
        "video": [],
        "audio": [],
        "text": ["a zero", "a much longer one"],
    }
    for i in range(2):
        write_digit(root / f"{i}.png", digits.images[i], size=40 + 24 * i)
        out["image"].append(root / f"{i}.png")
        video = root / f"clip{i}"
        video.mkdir()
        for f in range(4):
            write_digit(video / f"{f}.png", digits.images[i + f])
        out["video"].append(video)
        write_tone(root / f"{i}.wav", (440.0, 880.0)[i], seconds=0.6 + 0.9 * i)
        out["audio"].append(root / f"{i}.wav")
    return out


def _backbone(modality, ckpt, **options):
    return get_backbone(f"ola-7b-{modality}")(
        str(ckpt), **{**OPTIONS[modality], **options}
    )


@pytest.fixture(scope="module")
def loaded(tiny_ola):
    return {m: _backbone(m, tiny_ola).load() for m in OPTIONS}


def _embed(bb, paths):
    return bb.embed(bb.collate([bb.preprocess(p) for p in paths]))


# ----------------------------------------------------------- shapes, options
@pytest.mark.parametrize("modality", sorted(OPTIONS))
def test_embeddings_have_the_lm_width_and_do_not_depend_on_the_batch(
    loaded, items, modality
):
    bb = loaded[modality]
    assert bb.dim_ == 32
    assert all(not p.requires_grad for p in bb.model_.parameters())
    both = _embed(bb, items[modality])
    assert both.shape == (2, 32) and torch.isfinite(both).all()
    assert not torch.allclose(both[0], both[1])
    alone = _embed(bb, items[modality][1:])
    torch.testing.assert_close(both[1:], alone, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(_embed(bb, items[modality]), both, rtol=0, atol=0)


def test_backbones_of_one_checkpoint_share_the_language_model(loaded, tiny_ola):
    lms = {id(bb.model_.lm) for bb in loaded.values()}
    assert len(lms) == 1
    # another dtype or device gets its own copy; the shared one stays where it was
    half = _backbone("text", tiny_ola, dtype="bfloat16").load()
    elsewhere = _backbone("text", tiny_ola).load("meta")
    for bb in (half, elsewhere):
        assert id(bb.model_.lm) not in lms
    assert next(loaded["text"].model_.lm.parameters()).device.type == "cpu"


def test_pooling_layer_and_prompt_options_change_the_embedding(tiny_ola, items, loaded):
    ref = _embed(loaded["image"], items["image"][:1])
    for options in (
        {"pooling": "last"},
        {"layer": 1},
        {"prompt": "What is shown?"},
        {"chat_template": False},
    ):
        bb = _backbone("image", tiny_ola, **options).load()
        out = _embed(bb, items["image"][:1])
        assert out.shape == ref.shape and not torch.allclose(out, ref), options
    with pytest.raises(ValueError, match="pooling must be 'mean' or 'last'"):
        _backbone("image", tiny_ola, pooling="max").load()


def test_text_without_template_equals_the_plain_lm_text_path(tiny_ola, items):
    """ola-7b (transformers AutoModel on the raw text) is ola-7b-text without
    Ola's chat prompt."""
    plain = get_backbone("ola-7b")(str(tiny_ola), architecture="qwen2").load()
    ours = _backbone("text", tiny_ola, chat_template=False).load()
    torch.testing.assert_close(
        _embed(ours, items["text"]),
        plain.embed(plain.collate(items["text"])),
        rtol=1e-5,
        atol=1e-5,
    )


def test_preprocessing_follows_ola_resolutions(items):
    from PIL import Image

    low, high = ola_image_views(Image.new("RGB", (50, 30)))
    assert high.shape == (3, 32, 64)  # padded up to multiples of 32
    assert low.shape[1] % 32 == 0 and low.shape[2] % 32 == 0
    assert abs(low.shape[1] * low.shape[2] - 384**2) < 0.25 * 384**2
    assert high[:, 0, 0].tolist() == pytest.approx([127 / 255 * 2 - 1] * 3)
    big_low, big_high = ola_image_views(Image.new("RGB", (2000, 1600)), maxres=512)
    assert big_high.shape == (3, 448, 544)
    assert ola_video_frame(Image.new("RGB", (32, 32))).shape == (3, 256, 256)
    assert ola_video_frame(Image.new("RGB", (640, 480))).shape == (3, 384, 512)
    assert ola_video_frame(Image.new("RGB", (400, 300))).shape == (3, 320, 448)
    assert linspace_frames(list(range(10)), 4) == [0, 3, 6, 9]
    assert linspace_frames([1, 2], 4) == [1, 2]


def test_audio_is_cut_into_whisper_chunks(loaded, items, tmp_path):
    bb = loaded["audio"]
    mels, fbank = bb.preprocess(items["audio"][1])  # 1.5 s, 1 s chunks here
    assert mels.shape == (2, 128, 100) and fbank.shape == (2, 98, 128)
    write_tone(tmp_path / "long.wav", 300.0, seconds=3.5, rate=8000)
    mels, _ = bb.preprocess(tmp_path / "long.wav")
    assert mels.shape[0] == 4
    capped = get_backbone("ola-7b-audio")(str(bb.checkpoint), max_chunks=2)
    capped._chunk, capped._features = bb._chunk, bb._features
    assert capped.preprocess(tmp_path / "long.wav")[0].shape[0] == 2


# ------------------------------------------------- towers against references
def _ln(x, sd, name, eps=1e-5):
    return F.layer_norm(
        x, x.shape[-1:], sd[f"{name}.weight"], sd[f"{name}.bias"], eps=eps
    )


def _lin(x, sd, name):
    return F.linear(x, sd[f"{name}.weight"], sd.get(f"{name}.bias"))


def _softmax_attention(q, k, v, bias=None):
    w = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if bias is not None:
        w = w + bias
    return w.softmax(-1) @ v


def whisper_reference(ckpt, mels):
    """OpenAI Whisper's encoder, written from its checkpoint names."""
    dims = ckpt["dims"]
    sd = {
        k[len("encoder.") :]: v.float()
        for k, v in ckpt["model_state_dict"].items()
        if k.startswith("encoder.")
    }
    x = F.gelu(F.conv1d(mels, sd["conv1.weight"], sd["conv1.bias"], padding=1))
    x = F.gelu(F.conv1d(x, sd["conv2.weight"], sd["conv2.bias"], stride=2, padding=1))
    x = x.transpose(1, 2) + sd["positional_embedding"]
    b, t, c = x.shape
    h = dims["n_audio_head"]
    for i in range(dims["n_audio_layer"]):
        p = f"blocks.{i}."
        y = _ln(x, sd, p + "attn_ln")
        q, k, v = (
            _lin(y, sd, p + f"attn.{n}").view(b, t, h, -1).transpose(1, 2)
            for n in ("query", "key", "value")
        )
        a = _softmax_attention(q, k, v).transpose(1, 2).reshape(b, t, c)
        x = x + _lin(a, sd, p + "attn.out")
        y = _ln(x, sd, p + "mlp_ln")
        x = x + _lin(F.gelu(_lin(y, sd, p + "mlp.0")), sd, p + "mlp.2")
    return _ln(x, sd, "ln_post")


def oryx_reference(sd, heads, pixels):
    """Oryx-ViT from its timm names: fused qkv, bilinear resize of the table."""
    sd = {k: v.float() for k, v in sd.items()}
    w = sd["patch_embed.proj.weight"]
    x = F.conv2d(pixels, w, sd["patch_embed.proj.bias"], stride=w.shape[-1])
    b, c, rows, cols = x.shape
    x = x.flatten(2).transpose(1, 2)
    grid = math.isqrt(sd["pos_embed"].shape[1])
    table = sd["pos_embed"][0].T.reshape(1, c, grid, grid)
    table = F.interpolate(table, (rows, cols), mode="bilinear", align_corners=False)
    x = x + table.reshape(c, -1).T
    depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    for i in range(depth):
        p = f"blocks.{i}."
        qkv = _lin(_ln(x, sd, p + "norm1", 1e-6), sd, p + "attn.qkv")
        q, k, v = qkv.view(b, -1, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        a = _softmax_attention(q, k, v).transpose(1, 2).reshape(b, -1, c)
        x = x + _lin(a, sd, p + "attn.proj")
        y = _ln(x, sd, p + "norm2", 1e-6)
        x = x + _lin(F.gelu(_lin(y, sd, p + "mlp.fc1")), sd, p + "mlp.fc2")
    return x.reshape(b, rows, cols, c)


def _bucket(rel, num_buckets, max_distance):
    half = num_buckets // 2
    base = half if rel > 0 else 0
    d, exact = abs(rel), half // 2
    if d < exact:
        return base + d
    scaled = math.log(d / exact) / math.log(max_distance / exact) * (half - exact)
    return base + min(half - 1, exact + int(scaled))


def beats_reference(ckpt, fbank):
    """BEATs' feature path in the official layout: time-first, the max-shifted
    float16-safe attention scores, per-layer gates on the shared bias table."""
    cfg, sd = ckpt["cfg"], {k: v.float() for k, v in ckpt["model"].items()}
    x = F.conv2d(
        fbank[:, None], sd["patch_embedding.weight"], stride=cfg["input_patch_size"]
    )
    b, e = x.shape[:2]
    x = _lin(
        _ln(x.reshape(b, e, -1).transpose(1, 2), sd, "layer_norm"),
        sd,
        "post_extract_proj",
    )
    w, kernel, h = (
        cfg["encoder_embed_dim"],
        cfg["conv_pos"],
        cfg["encoder_attention_heads"],
    )
    conv = torch.nn.Conv1d(
        w, w, kernel, padding=kernel // 2, groups=cfg["conv_pos_groups"]
    )
    conv = torch.nn.utils.parametrizations.weight_norm(conv, dim=2)
    with torch.no_grad():
        conv.parametrizations.weight.original0.copy_(sd["encoder.pos_conv.0.weight_g"])
        conv.parametrizations.weight.original1.copy_(sd["encoder.pos_conv.0.weight_v"])
        conv.bias.copy_(sd["encoder.pos_conv.0.bias"])
        pos = conv(x.transpose(1, 2))[..., :-1]
    x = _ln(x + F.gelu(pos).transpose(1, 2), sd, "encoder.layer_norm")
    x = x.transpose(0, 1)  # T x B x C
    t, hd = x.shape[0], w // h
    buckets = torch.tensor(
        [
            [_bucket(j - i, cfg["num_buckets"], cfg["max_distance"]) for j in range(t)]
            for i in range(t)
        ]
    )
    table = sd["encoder.layers.0.self_attn.relative_attention_bias.weight"]
    bias = table[buckets].permute(2, 0, 1).repeat(b, 1, 1)  # (B * H, T, T)
    alpha = (2 * cfg["encoder_layers"]) ** 0.25
    scaling = hd**-0.5
    for i in range(cfg["encoder_layers"]):
        p = f"encoder.layers.{i}."
        q = _lin(x, sd, p + "self_attn.q_proj") * scaling / 32
        k = _lin(x, sd, p + "self_attn.k_proj")
        v = _lin(x, sd, p + "self_attn.v_proj")
        q, k, v = (z.reshape(t, b * h, hd).transpose(0, 1) for z in (q, k, v))
        scores = torch.bmm(q, k.transpose(1, 2))
        scores = (scores - scores.max(dim=-1, keepdim=True)[0]) * 32
        query = q.view(b, h, t, hd) * 32 / scaling
        gates = _lin(query, sd, p + "self_attn.grep_linear").view(b, h, t, 2, 4)
        gate_a, gate_b = torch.sigmoid(gates.sum(-1)).chunk(2, dim=-1)
        gate = gate_a * (gate_b * sd[p + "self_attn.grep_a"] - 1.0) + 2.0
        scores = scores + gate.view(b * h, t, 1) * bias
        a = torch.bmm(scores.softmax(-1), v).transpose(0, 1).reshape(t, b, w)
        x = _ln(
            x * alpha + _lin(a, sd, p + "self_attn.out_proj"),
            sd,
            p + "self_attn_layer_norm",
        )
        y = _lin(F.gelu(_lin(x, sd, p + "fc1")), sd, p + "fc2")
        x = _ln(x * alpha + y, sd, p + "final_layer_norm")
    return x.transpose(0, 1)


def test_relative_buckets_match_the_t5_formula():
    for num_buckets, max_distance in ((32, 64), (320, 800)):
        rel = torch.arange(-900, 901)
        ours = relative_buckets(rel, num_buckets, max_distance).tolist()
        ref = [_bucket(r, num_buckets, max_distance) for r in rel.tolist()]
        assert ours == ref


def test_whisper_encoder_matches_openai_names(loaded, tiny_ola, items):
    ckpt = torch.load(tiny_ola / WHISPER_FILE, weights_only=True)
    mels, _ = loaded["audio"].preprocess(items["audio"][1])
    with torch.no_grad():
        ours = loaded["audio"].model_.whisper(mels).last_hidden_state
    torch.testing.assert_close(
        ours, whisper_reference(ckpt, mels), rtol=1e-4, atol=1e-4
    )


def test_beats_matches_the_official_layout(loaded, tiny_ola, items):
    ckpt = torch.load(tiny_ola / BEATS_FILE, weights_only=True)
    _, fbank = loaded["audio"].preprocess(items["audio"][1])
    with torch.no_grad():
        ours = loaded["audio"].model_.beats(fbank)
    assert ours.shape == (2, (98 // 16) * 8, 24)
    torch.testing.assert_close(ours, beats_reference(ckpt, fbank), rtol=1e-4, atol=1e-4)


def test_beats_fbank_matches_torchaudio_kaldi_if_available():
    kaldi = pytest.importorskip(
        "torchaudio.compliance.kaldi", reason="torchaudio does not import here"
    )
    wav = 0.3 * torch.sin(2 * torch.pi * 440 * torch.arange(16000) / 16000)
    ref = kaldi.fbank(wav[None] * 2**15, num_mel_bins=128, sample_frequency=16000)
    torch.testing.assert_close(
        beats_fbank(wav), (ref - 15.41663) / (2 * 6.55582), rtol=1e-3, atol=1e-3
    )


def _sd(ckpt, prefix):
    out = {}
    for file in sorted(ckpt.glob("*.safetensors")):
        for k, v in st.load_file(file).items():
            if k.startswith(prefix):
                out[k[len(prefix) :]] = v.float()
    return out


def _pool_reference(grid, sd):
    """Ola's 2x2 pooler, cell by cell."""
    b, h, w, c = grid.shape
    out = torch.empty(b, h // 2, w // 2, c)
    for i in range(h // 2):
        for j in range(w // 2):
            cells = grid[:, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].reshape(b, 4, c)
            mean = cells.mean(1, keepdim=True).expand(-1, 4, -1)
            score = _lin(
                F.gelu(_lin(torch.cat([cells, mean], -1), sd, "pooler.predictor.0")),
                sd,
                "pooler.predictor.2",
            )
            out[:, i, j] = (cells * score.softmax(1)).sum(1)
    return out


def _rows_reference(grid, sd):
    x = _lin(F.gelu(_pool_reference(_lin(grid, sd, "proj1"), sd)), sd, "proj2")
    rows = []
    for r in range(x.shape[1]):
        rows += [x[0, r], sd["image_newline"][None]]
    return torch.cat(rows)


def _lm_reference(ckpt, media, before, after):
    """Qwen2 loaded by transformers' own causal-LM class, mean of the hidden states."""
    config = get_backbone("ola-7b-image")(str(ckpt))._ckpt().lm_config()
    lm = transformers.Qwen2ForCausalLM.from_pretrained(
        ckpt, config=config, dtype=torch.float32
    ).model
    embed = lm.get_input_embeddings()
    x = torch.cat([embed(torch.tensor(before)), media, embed(torch.tensor(after))])
    with torch.no_grad():
        return lm(inputs_embeds=x[None].to(torch.float32)).last_hidden_state.mean(1)


def test_image_embedding_equals_the_reference_pipeline(loaded, tiny_ola, items):
    bb = loaded["image"]
    low, high = bb.preprocess(items["image"][1])
    vit = _sd(tiny_ola, "model.vision_tower.vision_tower.")
    proj = _sd(tiny_ola, "model.mm_projector.")
    with torch.no_grad():
        grids = [oryx_reference(vit, 2, x[None]) for x in (low, high)]
        ours = [bb.model_.tower(x[None]) for x in (low, high)]
        for a, b in zip(ours, grids):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
        media = torch.cat(
            [
                proj["image_begin"][None],
                _rows_reference(grids[0], proj),
                proj["image_sep"][None],
                _rows_reference(grids[1], proj),
                proj["image_end"][None],
            ]
        )
    expected = _lm_reference(tiny_ola, media, bb._before, bb._after)
    torch.testing.assert_close(bb.embed([(low, high)]), expected, rtol=1e-4, atol=1e-4)


def test_audio_embedding_equals_the_reference_pipeline(loaded, tiny_ola, items):
    bb = loaded["audio"]
    mels, fbank = bb.preprocess(items["audio"][1])
    whisper = torch.load(tiny_ola / WHISPER_FILE, weights_only=True)
    beats = torch.load(tiny_ola / BEATS_FILE, weights_only=True)
    sp = _sd(tiny_ola, "model.speech_projector.")
    k = json.loads((tiny_ola / "config.json").read_text())["speech_encoder_ds_rate"]
    with torch.no_grad():
        a, b = whisper_reference(whisper, mels), beats_reference(beats, fbank)
        x = torch.cat([a, F.pad(b, (0, 0, 0, a.shape[1] - b.shape[1]))], -1)
        chunks = []
        for chunk in x:
            frames = chunk[: len(chunk) // k * k].reshape(-1, k * x.shape[-1])
            y = _lin(F.relu(_lin(frames, sp, "linear1")), sp, "linear2")
            chunks += [y, sp["speech_newline"][None]]
        media = torch.cat([sp["speech_begin"][None], *chunks, sp["speech_end"][None]])
    expected = _lm_reference(tiny_ola, media, bb._before, bb._after)
    torch.testing.assert_close(
        bb.embed([(mels, fbank)]), expected, rtol=1e-4, atol=1e-4
    )


# ------------------------------------------------------- loading and layouts
def _resave(src, dst):
    """Re-serialise every file of a checkpoint (one safetensors file instead of
    shards, torch files loaded and saved again)."""
    dst.mkdir()
    state = {}
    for file in src.glob("*.safetensors"):
        state.update(st.load_file(file))
    st.save_file(state, dst / "model.safetensors", metadata={"format": "pt"})
    for file in src.iterdir():
        if file.suffix in (".pt", ".pth"):
            torch.save(torch.load(file, weights_only=True), dst / file.name)
        elif file.suffix == ".json" and file.name != "model.safetensors.index.json":
            shutil.copy(file, dst / file.name)
    return dst


def test_resaved_checkpoint_gives_identical_embeddings(
    loaded, tiny_ola, items, tmp_path
):
    copy = _resave(tiny_ola, tmp_path / "copy")
    for modality, bb in loaded.items():
        again = _backbone(modality, copy).load()
        assert again.model_.lm is not bb.model_.lm
        torch.testing.assert_close(
            _embed(again, items[modality]), _embed(bb, items[modality]), rtol=0, atol=0
        )


def test_another_seed_gives_other_embeddings(loaded, items, tmp_path):
    other = write_tiny_ola(tmp_path / "seed1", seed=1, shards=1)
    bb = _backbone("image", other).load()
    assert not torch.allclose(
        _embed(bb, items["image"]), _embed(loaded["image"], items["image"])
    )


def test_oryx_vit_file_named_by_config(loaded, items, tmp_path):
    ckpt = write_tiny_ola(tmp_path / "oryx", vision_in_safetensors=False)
    config = json.loads((ckpt / "config.json").read_text())
    assert config["mm_vision_tower"] == "/root/Oryx-ViT/oryx_vit.pth"  # absent
    bb = _backbone("image", ckpt).load()  # found by name inside the folder
    torch.testing.assert_close(
        _embed(bb, items["image"]),
        _embed(loaded["image"], items["image"]),
        rtol=0,
        atol=0,
    )
    (ckpt / "oryx_vit.pth").rename(tmp_path / "vit.pth")
    with pytest.raises(FileNotFoundError, match="Oryx-ViT weights"):
        _backbone("image", ckpt).load()
    bb = _backbone("image", ckpt, vision_tower=str(tmp_path / "vit.pth")).load()
    assert bb.dim_ == 32


def test_missing_speech_encoder_says_where_it_looked(tiny_ola, tmp_path):
    ckpt = tmp_path / "no_whisper"
    shutil.copytree(tiny_ola, ckpt)
    (ckpt / WHISPER_FILE).rename(tmp_path / WHISPER_FILE)
    with pytest.raises(FileNotFoundError, match=r"speech_encoder.*whisper=PATH"):
        _backbone("audio", ckpt).load()
    bb = _backbone("audio", ckpt, whisper=str(tmp_path / WHISPER_FILE))
    before = bb.metadata()["checkpoint_sha256"]
    torch.save({"dims": {}, "model_state_dict": {}}, tmp_path / WHISPER_FILE)
    bb = _backbone("audio", ckpt, whisper=str(tmp_path / WHISPER_FILE))
    assert bb.metadata()["checkpoint_sha256"] != before  # outside files are hashed


def test_bad_checkpoints_fail_clearly(tiny_ola, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _backbone("image", tmp_path / "nowhere").load()
    with pytest.raises(ValueError, match="needs the Ola-7b folder"):
        get_backbone("ola-7b-image")().load()
    with pytest.raises(ValueError, match="not divisible by vision_heads=3"):
        _backbone("image", tiny_ola, vision_heads=3).load()
    broken = tmp_path / "broken"
    shutil.copytree(tiny_ola, broken)
    for file in broken.glob("model*"):
        file.unlink()
    with pytest.raises(FileNotFoundError, match="neither model.safetensors"):
        _backbone("audio", broken).load()


# ----------------------------------------------------------- into the cache
def test_extract_writes_nan_rows_for_missing_media(tiny_ola, items, tmp_path):
    rows = [
        {"id": "a", "split": "train", "image": str(items["image"][0]), "audio": ""},
        {"id": "b", "split": "train", "image": "", "audio": str(items["audio"][0])},
        {
            "id": "c",
            "split": "train",
            "image": "gone.png",
            "audio": str(items["audio"][1]),
        },
    ]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in rows))
    backbones = {
        "image": _backbone("image", tiny_ola),
        "audio": _backbone("audio", tiny_ola),
    }
    files = extract(
        manifest, tmp_path / "cache", backbones, on_missing="nan", progress=False
    )
    X, _, ids = load(files["train"])
    assert ids.tolist() == ["a", "b", "c"]
    assert X["image"].shape == (3, 32) and X["audio"].shape == (3, 32)
    assert np.isnan(X["image"][1:]).all() and np.isfinite(X["image"][0]).all()
    assert np.isnan(X["audio"][0]).all() and np.isfinite(X["audio"][1:]).all()


def test_command_line_extracts_image_and_audio(media, tiny_ola, tmp_path):
    out = tmp_path / "cache"
    argv = [
        str(media),
        "--out",
        str(out),
        "--backbone",
        f"visual=ola-7b-image:{tiny_ola}",
        "--option",
        "visual.vision_heads=2",
        "--backbone",
        f"audio=ola-7b-audio:{tiny_ola}",
        "--batch-size",
        "8",
        "--no-progress",
    ]
    assert main(argv) == 0
    X, y, _ = load(out / "train.h5")
    assert X["visual"].shape == (18, 32) and X["audio"].shape == (18, 32)
    assert np.isnan(X["audio"][5]).all() and np.isfinite(X["visual"]).all()
    with __import__("h5py").File(out / "train.h5") as fh:
        attrs = dict(fh["modalities/audio"].attrs)
    assert attrs["backbone"] == "ola-7b-audio"
    assert "Ola's language-model hidden states" in attrs["pooling"]


# ---------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("modality", sorted(OPTIONS))
def test_gpu_bfloat16_matches_cpu(loaded, tiny_ola, items, modality):
    bb = _backbone(modality, tiny_ola, dtype="bfloat16").load("cuda")
    batch = bb.collate([bb.preprocess(p) for p in items[modality]])
    gpu = bb.embed(batch, autocast=False)
    cpu = _embed(loaded[modality], items[modality])
    assert gpu.shape == cpu.shape and torch.isfinite(gpu).all()
    cos = F.cosine_similarity(gpu, cpu)
    assert (cos > 0.98).all(), cos
