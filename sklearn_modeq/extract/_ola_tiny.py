"""A tiny, randomly initialised Ola checkpoint in the real Ola-7b layout.

For the tests, the timing figures in ``docs/extract.md`` and for trying the Ola
backbones offline: :func:`write_tiny_ola` writes ``config.json``, sharded
``model-*.safetensors`` with Ola's tensor names (Qwen2 LM, ``model.mm_projector.*``,
``model.speech_projector.*``, Oryx-ViT under ``model.vision_tower.vision_tower.*``, a
few ``model.speech_encoder.*`` copies that Ola also saves), a byte-level BPE
tokenizer with Qwen's chat tokens, an OpenAI-format ``large-v3.pt`` and an
official-format BEATs checkpoint. The tensors are written from their original names
and shapes, independently of the loaders' renaming code. The embeddings mean nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ._base import require

BEATS_FILE = "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt"
WHISPER_FILE = "large-v3.pt"

# Sizes of the tiny model (Ola-7b's in comments).
LM = dict(hidden=32, layers=2, heads=4, kv_heads=2, ffn=64, vocab=300)  # 3584, 28
VIT = dict(width=32, depth=2, heads=2, mlp=64, patch=16, grid=8)  # 1152, 27, 16
WHISPER = dict(n_mels=128, ctx=50, state=32, heads=2, layers=2)  # 128, 1500, 1280
BEATS = dict(
    input_patch_size=16,
    embed_dim=16,  # 512
    encoder_layers=2,  # 12
    encoder_embed_dim=24,  # 768
    encoder_ffn_embed_dim=48,
    encoder_attention_heads=2,
    activation_fn="gelu",
    layer_norm_first=False,
    deep_norm=True,
    conv_pos=8,  # 128
    conv_pos_groups=4,
    relative_position_embedding=True,
    num_buckets=32,  # 320
    max_distance=64,  # 800
    gru_rel_pos=True,
    finetuned_model=True,
    predictor_class=5,  # 527
    conv_bias=False,
)
SPEECH_K, SPEECH_HIDDEN = 2, 40  # 10, 2048


class _Random:
    def __init__(self, seed: int):
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, *shape: int, scale: float = 0.05, mean: float = 0.0):
        return mean + scale * torch.randn(*shape, generator=self.gen)

    def linear(self, state: dict, name: str, out: int, inp: int, bias: bool = True):
        state[f"{name}.weight"] = self(out, inp, scale=inp**-0.5)
        if bias:
            state[f"{name}.bias"] = self(out)

    def norm(self, state: dict, name: str, dim: int):
        state[f"{name}.weight"] = self(dim, mean=1.0)
        state[f"{name}.bias"] = self(dim)


def _oryx_vit(rnd: _Random) -> dict[str, torch.Tensor]:
    c, m, p, g = VIT["width"], VIT["mlp"], VIT["patch"], VIT["grid"]
    s = {
        "patch_embed.proj.weight": rnd(c, 3, p, p, scale=(3 * p * p) ** -0.5),
        "patch_embed.proj.bias": rnd(c),
        "pos_embed": rnd(1, g * g, c),
    }
    for i in range(VIT["depth"]):
        b = f"blocks.{i}"
        rnd.norm(s, f"{b}.norm1", c)
        rnd.linear(s, f"{b}.attn.qkv", 3 * c, c)
        rnd.linear(s, f"{b}.attn.proj", c, c)
        rnd.norm(s, f"{b}.norm2", c)
        rnd.linear(s, f"{b}.mlp.fc1", m, c)
        rnd.linear(s, f"{b}.mlp.fc2", c, m)
    return s


def _projectors(rnd: _Random) -> dict[str, torch.Tensor]:
    d, e = LM["hidden"], WHISPER["state"] + BEATS["encoder_embed_dim"]
    s: dict[str, torch.Tensor] = {}
    rnd.linear(s, "model.mm_projector.proj1", d, VIT["width"])
    rnd.linear(s, "model.mm_projector.proj2", d, d)
    rnd.linear(s, "model.mm_projector.pooler.predictor.0", d, 2 * d)
    rnd.linear(s, "model.mm_projector.pooler.predictor.2", d, d)
    for token in ("image_newline", "image_begin", "image_end", "image_sep"):
        s[f"model.mm_projector.{token}"] = rnd(d, scale=d**-0.5)
    rnd.linear(s, "model.speech_projector.linear1", SPEECH_HIDDEN, e * SPEECH_K)
    rnd.linear(s, "model.speech_projector.linear2", d, SPEECH_HIDDEN)
    for token in ("speech_newline", "speech_begin", "speech_end"):
        s[f"model.speech_projector.{token}"] = rnd(d, scale=d**-0.5)
    return s


def _whisper(rnd: _Random) -> dict:
    w = WHISPER
    c = w["state"]
    s = {
        "encoder.conv1.weight": rnd(c, w["n_mels"], 3, scale=(3 * w["n_mels"]) ** -0.5),
        "encoder.conv1.bias": rnd(c),
        "encoder.conv2.weight": rnd(c, c, 3, scale=(3 * c) ** -0.5),
        "encoder.conv2.bias": rnd(c),
        "encoder.positional_embedding": rnd(w["ctx"], c, scale=0.5),
    }
    for i in range(w["layers"]):
        b = f"encoder.blocks.{i}"
        rnd.linear(s, f"{b}.attn.query", c, c)
        rnd.linear(s, f"{b}.attn.key", c, c, bias=False)
        rnd.linear(s, f"{b}.attn.value", c, c)
        rnd.linear(s, f"{b}.attn.out", c, c)
        rnd.norm(s, f"{b}.attn_ln", c)
        rnd.linear(s, f"{b}.mlp.0", 4 * c, c)
        rnd.linear(s, f"{b}.mlp.2", c, 4 * c)
        rnd.norm(s, f"{b}.mlp_ln", c)
    rnd.norm(s, "encoder.ln_post", c)
    s["decoder.token_embedding.weight"] = rnd(10, c)  # ignored by the encoder
    dims = dict(
        n_mels=w["n_mels"],
        n_audio_ctx=w["ctx"],
        n_audio_state=c,
        n_audio_head=w["heads"],
        n_audio_layer=w["layers"],
        n_vocab=10,
        n_text_ctx=8,
        n_text_state=c,
        n_text_head=w["heads"],
        n_text_layer=1,
    )
    return {"dims": dims, "model_state_dict": {k: v.half() for k, v in s.items()}}


def _beats(rnd: _Random) -> dict:
    cfg = BEATS
    e, w, f = cfg["embed_dim"], cfg["encoder_embed_dim"], cfg["encoder_ffn_embed_dim"]
    p, k, h = cfg["input_patch_size"], cfg["conv_pos"], cfg["encoder_attention_heads"]
    s = {"patch_embedding.weight": rnd(e, 1, p, p, scale=p**-1.0)}
    rnd.norm(s, "layer_norm", e)
    rnd.linear(s, "post_extract_proj", w, e)
    s["encoder.pos_conv.0.weight_g"] = rnd(1, 1, k, mean=1.0, scale=0.1)
    s["encoder.pos_conv.0.weight_v"] = rnd(w, w // cfg["conv_pos_groups"], k)
    s["encoder.pos_conv.0.bias"] = rnd(w)
    rnd.norm(s, "encoder.layer_norm", w)
    table = rnd(cfg["num_buckets"], h, scale=0.5)
    for i in range(cfg["encoder_layers"]):
        b = f"encoder.layers.{i}"
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            rnd.linear(s, f"{b}.self_attn.{proj}", w, w)
        # one table shared by every layer, saved under each layer's name
        s[f"{b}.self_attn.relative_attention_bias.weight"] = table
        rnd.linear(s, f"{b}.self_attn.grep_linear", 8, w // h)
        s[f"{b}.self_attn.grep_a"] = rnd(1, h, 1, 1, mean=1.0, scale=0.1)
        rnd.norm(s, f"{b}.self_attn_layer_norm", w)
        rnd.linear(s, f"{b}.fc1", f, w)
        rnd.linear(s, f"{b}.fc2", w, f)
        rnd.norm(s, f"{b}.final_layer_norm", w)
    rnd.linear(s, "predictor", cfg["predictor_class"], w)
    return {"cfg": dict(cfg), "model": s}


def _tokenizer(folder: Path) -> None:
    transformers = require("transformers")
    tokenizers = require("tokenizers")
    alphabet = sorted(tokenizers.pre_tokenizers.ByteLevel.alphabet())
    bpe = tokenizers.Tokenizer(
        tokenizers.models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[])
    )
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    ).save_pretrained(folder)


def write_tiny_ola(
    folder: str | Path,
    seed: int = 0,
    shards: int = 2,
    vision_in_safetensors: bool = True,
) -> Path:
    """Write a tiny random Ola checkpoint folder (module docstring); returns it.

    Parameters
    ----------
    folder : path
    seed : int, default=0
    shards : int, default=2
        Number of ``model-*.safetensors`` files (1: a single ``model.safetensors``).
    vision_in_safetensors : bool, default=True
        Oryx-ViT inside the safetensors (as Ola saves it) or as ``oryx_vit.pth``
        (Oryx's own file, which ``mm_vision_tower`` names).

    Notes
    -----
    Load it with ``--option MODALITY.vision_heads=2`` for the image and video
    backbones (Oryx-ViT's head count is not stored in its weights).
    """
    transformers = require("transformers")
    st = require("safetensors.torch")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rnd = _Random(seed)
    config = transformers.Qwen2Config(
        vocab_size=LM["vocab"],
        hidden_size=LM["hidden"],
        intermediate_size=LM["ffn"],
        num_hidden_layers=LM["layers"],
        num_attention_heads=LM["heads"],
        num_key_value_heads=LM["kv_heads"],
        max_position_embeddings=4096,
    )
    torch.manual_seed(seed)
    lm = transformers.Qwen2ForCausalLM(config)
    state = {k: v.detach().clone().contiguous() for k, v in lm.state_dict().items()}
    state.update(_projectors(rnd))
    vit = {k: v.to(torch.bfloat16) for k, v in _oryx_vit(rnd).items()}
    if vision_in_safetensors:
        state.update(
            {f"model.vision_tower.vision_tower.{k}": v for k, v in vit.items()}
        )
    else:
        torch.save(vit, folder / "oryx_vit.pth")
    whisper, beats = _whisper(rnd), _beats(rnd)
    for key in ("encoder.conv1.weight", "encoder.ln_post.weight"):
        copy = whisper["model_state_dict"][key].float()
        state[f"model.speech_encoder.whisper_model.{key[len('encoder.') :]}"] = copy
    state["model.speech_encoder.beats_model.layer_norm.weight"] = beats["model"][
        "layer_norm.weight"
    ]
    torch.save(whisper, folder / WHISPER_FILE)
    torch.save(beats, folder / BEATS_FILE)
    state = {k: v.to(torch.bfloat16).contiguous() for k, v in state.items()}
    keys = sorted(state)
    if shards <= 1:
        st.save_file(
            state, str(folder / "model.safetensors"), metadata={"format": "pt"}
        )
    else:
        weight_map = {}
        for i in range(shards):
            name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
            part = {k: state[k] for k in keys[i::shards]}
            st.save_file(part, str(folder / name), metadata={"format": "pt"})
            weight_map.update(dict.fromkeys(part, name))
        index = {"metadata": {}, "weight_map": weight_map}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    cfg = config.to_dict()
    cfg.update(
        model_type="ola_qwen",
        architectures=["OlaQwenForCausalLM"],
        mm_vision_tower="/root/Oryx-ViT/oryx_vit.pth",
        mm_projector_type="ola_mlp",
        mm_hidden_size=VIT["width"],
        speech_encoder=f"/root/Ola-7b/{WHISPER_FILE}",
        music_encoder=f"/root/Ola-7b/{BEATS_FILE}",
        speech_encoder_type="dual",
        speech_projector_type="linear",
        speech_encoder_ds_rate=SPEECH_K,
        speech_encoder_hidden_size=WHISPER["state"] + BEATS["encoder_embed_dim"],
        tokenizer_model_max_length=4096,
        tokenizer_padding_side="right",
    )
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    _tokenizer(folder)
    return folder
