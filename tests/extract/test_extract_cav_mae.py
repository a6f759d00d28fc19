"""CAV-MAE backbones: official parameter names, DataParallel checkpoints, forward."""

import numpy as np
import pytest
import torch

from sklearn_modeq.extract import get_backbone
from sklearn_modeq.extract.cav_mae import CAVMAEEncoder

# names from the official CAVMAE / CAVMAEFT modules (src/models/cav_mae.py)
OFFICIAL_KEYS = {
    "patch_embed_a.proj.weight",
    "patch_embed_v.proj.bias",
    "modality_a",
    "modality_v",
    "pos_embed_a",
    "pos_embed_v",
    "blocks_a.0.norm1.weight",
    "blocks_a.0.attn.qkv.weight",
    "blocks_a.0.attn.qkv.bias",
    "blocks_a.0.attn.proj.weight",
    "blocks_v.0.mlp.fc1.weight",
    "blocks_v.0.mlp.fc2.bias",
    "blocks_u.0.norm1_a.weight",
    "blocks_u.0.norm2_v.bias",
    "norm_a.weight",
    "norm_v.bias",
    "norm.weight",
}


def _tiny():
    torch.manual_seed(0)
    model = CAVMAEEncoder(
        embed_dim=32,
        depth=2,
        modality_specific_depth=1,
        num_heads=2,
        img_size=32,
        audio_length=64,
    )
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def cav_ckpt(tmp_path_factory):
    """A tiny model saved like the official zoo: DataParallel 'module.' keys plus
    decoder weights the encoder ignores."""
    model = _tiny()
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    state["module.decoder_embed.weight"] = torch.zeros(16, 32)
    state["module.mask_token"] = torch.zeros(1, 1, 16)
    path = tmp_path_factory.mktemp("cav") / "cav_mae_tiny.pth"
    torch.save(state, path)
    return path, model


def test_parameter_names_match_official():
    assert OFFICIAL_KEYS <= set(CAVMAEEncoder(depth=12).state_dict())
    full = CAVMAEEncoder()
    assert full.pos_embed_a.shape == (1, 512, 768)
    assert full.pos_embed_v.shape == (1, 196, 768)
    assert len(full.blocks_a) == 11 and len(full.blocks_u) == 1


def test_audio_backbone(media, cav_ckpt):
    path, ref = cav_ckpt
    bb = get_backbone("cav-mae-audio")(str(path), num_heads=2).load()
    assert bb.dim_ == 32
    x = bb.preprocess(media.parent / "wav/0.wav")
    assert x.shape == (64, 128)
    emb = bb.embed(bb.collate([x, bb.preprocess(media.parent / "wav/9.wav")]))
    with torch.no_grad():
        expected = ref.forward_audio(x[None]).mean(1)
    np.testing.assert_allclose(emb[:1], expected, rtol=1e-5, atol=1e-6)


def test_visual_and_audio_visual_backbones(media, cav_ckpt):
    path, _ = cav_ckpt
    vis = get_backbone("cav-mae-visual")(str(path), num_heads=2).load()
    e = vis.embed(vis.collate([vis.preprocess(media.parent / "img/0.png")]))
    assert e.shape == (1, 32)
    av = get_backbone("cav-mae-av")(str(path), num_heads=2).load()
    item = av.preprocess(av.read("wav/0.wav|img/0.png", media.parent))
    e2 = av.embed(av.collate([item, item]))
    assert e2.shape == (2, 32)
    np.testing.assert_allclose(e2[0], e2[1], rtol=1e-6)
    assert not np.allclose(e2[0], e[0])


def test_inferred_heads_default_to_width_over_64(cav_ckpt):
    path, _ = cav_ckpt
    bb = get_backbone("cav-mae-audio")(str(path)).load()
    assert bb.model_.blocks_a[0].attn.num_heads == 1
