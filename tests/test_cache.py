"""Tests of the HDF5 embedding cache (sklearn_modeq.cache), issue 5."""

import multiprocessing
import pickle
import re

import h5py
import numpy as np
import pytest
from skorch.helper import SliceDict

from sklearn_modeq.cache import (
    FORMAT_VERSION,
    CacheFormatError,
    CacheWriter,
    LazyEmbeddings,
    load,
    load_splits,
    open_lazy,
    write_cache,
)


def _data(n=23, seed=0):
    rng = np.random.default_rng(seed)
    X = {"audio": rng.normal(size=(n, 5)), "text": rng.normal(size=(n, 3)) * 10}
    X["audio"][[2, 7]] = np.nan
    X["text"][[7, n // 2]] = np.nan
    y = rng.integers(0, 3, n)
    ids = np.array([f"s{i:03d}" for i in range(n)])
    return X, y, ids


@pytest.fixture
def cache_dir(tmp_path):
    X, y, ids = _data()
    write_cache(
        tmp_path / "train.h5",
        X,
        y,
        ids,
        batch_size=5,
        modality_attrs={"audio": {"backbone": "a"}, "text": {"backbone": "t"}},
    )
    return tmp_path


def test_roundtrip_returns_slicedict_labels_ids(cache_dir):
    X0, y0, ids0 = _data()
    X, y, ids = load(cache_dir, "train")
    assert isinstance(X, SliceDict)
    assert list(X.keys()) == ["audio", "text"]
    for m in X0:
        assert X[m].dtype == np.float32
        np.testing.assert_allclose(X[m], X0[m].astype(np.float32))
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(ids, ids0)
    assert np.isnan(X["audio"][2]).all() and np.isnan(X["text"][11]).all()


def test_attributes_record_format_and_backbone(cache_dir):
    view = open_lazy(cache_dir, "train")
    assert view.attrs["format_version"] == FORMAT_VERSION
    assert "numpy" in view.attrs["library_versions"]
    assert view.modality_attrs["audio"]["backbone"] == "a"
    assert view.modality_attrs["text"]["dim"] == 3


def test_float16_storage_and_string_labels(tmp_path):
    X, _, ids = _data()
    y = np.where(np.arange(len(ids)) % 2, "cat", "dog")
    write_cache(tmp_path / "t.h5", X, y, ids, dtype="float16")
    with h5py.File(tmp_path / "t.h5") as f:
        assert f["modalities/audio/features"].dtype == np.float16
        assert f["modalities/audio/features"].chunks is not None
    X2, y2, _ = load(tmp_path / "t.h5")
    assert X2["audio"].dtype == np.float32
    np.testing.assert_allclose(X2["audio"], X["audio"], atol=1e-2, rtol=1e-2)
    assert y2.tolist() == y.tolist()


def test_unlabelled_split_gives_none(tmp_path):
    X, _, ids = _data()
    write_cache(tmp_path / "test.h5", X, None, ids)
    assert load(tmp_path, "test")[1] is None


def test_lazy_take_unsorted_with_repeats(cache_dir):
    X, _, _ = load(cache_dir, "train")
    view, y, ids = load(cache_dir, "train", lazy=True)
    assert isinstance(view, LazyEmbeddings)
    assert view.modalities == ("audio", "text")
    assert view.n_samples == len(view) == 23
    assert view.shape == {"audio": (23, 5), "text": (23, 3)}
    idx = np.array([20, 3, 3, 0, 22, 7, 15])
    got = view.take(idx)
    for m in X:
        np.testing.assert_array_equal(got[m], X[m][idx])


def test_lazy_subview_and_lazy_array(cache_dir):
    X, y, ids = load(cache_dir, "train")
    view = open_lazy(cache_dir, "train")
    sub = view[np.array([5, 1, 9])]
    assert len(sub) == 3
    np.testing.assert_array_equal(sub.ids, ids[[5, 1, 9]])
    np.testing.assert_array_equal(sub.labels, y[[5, 1, 9]])
    np.testing.assert_array_equal(sub["audio"][:], X["audio"][[5, 1, 9]])
    np.testing.assert_array_equal(view["text"][4], X["text"][4])
    np.testing.assert_array_equal(np.asarray(view["text"]), X["text"])
    assert sorted(view) == ["audio", "text"]


def test_iter_batches_covers_view_in_order(cache_dir):
    X, _, _ = load(cache_dir, "train")
    view = open_lazy(cache_dir, "train")
    pos, parts = [], []
    for p, arrays in view.iter_batches(batch_size=4):
        assert len(p) <= 4
        pos.append(p)
        parts.append(arrays["audio"])
    np.testing.assert_array_equal(np.concatenate(pos), np.arange(23))
    np.testing.assert_array_equal(np.concatenate(parts), X["audio"])


def test_mean_std_matches_nan_aware_numpy(cache_dir):
    X, _, _ = load(cache_dir, "train")
    stats = open_lazy(cache_dir, "train").mean_std(batch_size=4)
    for m, values in X.items():
        mean, std = stats[m]
        np.testing.assert_allclose(mean, np.nanmean(values, axis=0), rtol=1e-5)
        np.testing.assert_allclose(std, np.nanstd(values, axis=0), rtol=1e-5)


def test_lazy_view_pickles_and_reopens(cache_dir):
    view = open_lazy(cache_dir, "train")
    view.take([0])
    clone = pickle.loads(pickle.dumps(view))
    assert clone._file is None
    np.testing.assert_array_equal(
        clone.take([3, 1])["audio"], view.take([3, 1])["audio"]
    )


def _worker_take(view):
    return view._pid, view.take([4, 2])["text"]


def test_lazy_view_uses_one_handle_per_process(cache_dir):
    view = open_lazy(cache_dir, "train")
    view.take([0])
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        pid, values = pool.apply(_worker_take, (view,))
    assert pid != view._pid
    np.testing.assert_array_equal(values, view.take([4, 2])["text"])


def test_lazy_view_with_torch_dataloader_workers(cache_dir):
    torch = pytest.importorskip("torch")
    view = open_lazy(cache_dir, "train")

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return len(view)

        def __getitem__(self, i):
            return view.take([i])["audio"][0]

    loader = torch.utils.data.DataLoader(
        Rows(), batch_size=6, num_workers=2, multiprocessing_context="fork"
    )
    got = torch.cat(list(loader)).numpy()
    np.testing.assert_array_equal(got, load(cache_dir, "train")[0]["audio"])


def test_unaligned_modality_rows_are_aligned_by_id(tmp_path):
    X, y, ids = _data()
    path = write_cache(tmp_path / "train.h5", X, y, ids)
    keep = np.array([10, 3, 0])
    with h5py.File(path, "a") as f:
        g = f["modalities"].create_group("extra")
        g.create_dataset("features", data=np.arange(6.0).reshape(3, 2))
        g.create_dataset(
            "ids", data=ids[keep].astype(object), dtype=h5py.string_dtype()
        )
    Xl, _, _ = load(path)
    expected = np.full((23, 2), np.nan, np.float32)
    expected[keep] = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(Xl["extra"], expected)
    np.testing.assert_array_equal(
        open_lazy(path).take([3, 4])["extra"], expected[[3, 4]]
    )


# --------------------------------------------------------------- writer and resume
def test_writer_resumes_from_shards(tmp_path):
    X, y, ids = _data()
    mods = {"audio": {}, "text": {}}
    w = CacheWriter(tmp_path / "train.h5", ids, y, modalities=mods)
    rows = w.remaining()[:10]
    w.append(ids[rows], {m: X[m][rows] for m in X})
    del w  # "crash": never finalized
    w = CacheWriter(tmp_path / "train.h5", ids, y, modalities=mods)
    np.testing.assert_array_equal(w.remaining(), np.arange(10, 23))
    rest = w.remaining()
    w.append(ids[rest], {m: X[m][rest] for m in X})
    w.finalize()
    assert not (tmp_path / "train.h5.partial").exists()
    X2, _, ids2 = load(tmp_path, "train")
    np.testing.assert_array_equal(ids2, ids)
    np.testing.assert_array_equal(X2["audio"], X["audio"].astype(np.float32))
    again = CacheWriter(tmp_path / "train.h5", ids, y, modalities=mods)
    assert again.complete and len(again.remaining()) == 0


def test_writer_rejects_resume_with_other_inputs(tmp_path):
    X, y, ids = _data()
    w = CacheWriter(tmp_path / "a.h5", ids, y, modalities={"audio": {}})
    w.append(ids[:2], {"audio": X["audio"][:2]})
    w.close()  # as a crash would: the lock goes, the shards stay
    with pytest.raises(ValueError, match="interrupted extraction of other inputs"):
        CacheWriter(
            tmp_path / "a.h5", ids, y, modalities={"audio": {}}, dtype="float16"
        )
    w = CacheWriter(
        tmp_path / "a.h5",
        ids,
        y,
        modalities={"audio": {}},
        dtype="float16",
        restart=True,
    )
    assert len(w.remaining()) == len(ids)


def test_finalize_before_all_rows_raises(tmp_path):
    X, y, ids = _data()
    w = CacheWriter(tmp_path / "a.h5", ids, y, modalities={"audio": {}})
    w.append(ids[:2], {"audio": X["audio"][:2]})
    with pytest.raises(
        ValueError, match=re.escape("21 of 23 samples have no features")
    ):
        w.finalize()


def test_writer_rejects_partial_nan_rows(tmp_path):
    X, y, ids = _data()
    w = CacheWriter(tmp_path / "a.h5", ids, y, modalities={"audio": {}})
    bad = X["audio"][:3].copy()
    bad[1, 0] = np.nan
    msg = "features['audio'] for sample 's001' are partly NaN (1 of 5 values)"
    with pytest.raises(ValueError, match=re.escape(msg)):
        w.append(ids[:3], {"audio": bad})


def test_writer_rejects_duplicate_ids(tmp_path):
    with pytest.raises(CacheFormatError, match="'b' appears 2 times"):
        CacheWriter(tmp_path / "a.h5", ["a", "b", "b"], modalities={"m": {}})


def test_load_of_unfinished_split_says_resume(tmp_path):
    X, y, ids = _data()
    w = CacheWriter(tmp_path / "train.h5", ids, y, modalities={"audio": {}})
    w.append(ids[:2], {"audio": X["audio"][:2]})
    with pytest.raises(FileNotFoundError, match="re-run the same extraction"):
        load(tmp_path, "train")


# ------------------------------------------------------------------- bad files
def test_wrong_format_version(cache_dir):
    with h5py.File(cache_dir / "train.h5", "a") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(CacheFormatError, match="upgrade sklearn_modeq"):
        load(cache_dir, "train")


def test_not_a_cache(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["a"] = 1
    with pytest.raises(CacheFormatError, match="not a sklearn_modeq embedding cache"):
        load(tmp_path / "x.h5")


def test_duplicate_ids_in_file(cache_dir):
    with h5py.File(cache_dir / "train.h5", "a") as f:
        ids = f["ids"].asstr()[()]
        ids[3] = ids[0]
        del f["ids"]
        f.create_dataset("ids", data=ids.astype(object), dtype=h5py.string_dtype())
    with pytest.raises(CacheFormatError, match="'s000' appears 2 times"):
        load(cache_dir, "train")


def test_mismatched_row_counts(cache_dir):
    with h5py.File(cache_dir / "train.h5", "a") as f:
        g = f["modalities/text"]
        values = g["features"][:-1]
        del g["features"]
        g["features"] = values
    msg = "modality 'text': 'features' has 22 rows but its 'ids' has 23"
    with pytest.raises(CacheFormatError, match=re.escape(msg)):
        load(cache_dir, "train")


def test_mismatched_label_count(cache_dir):
    with h5py.File(cache_dir / "train.h5", "a") as f:
        labels = f["labels"][:-2]
        del f["labels"]
        f["labels"] = labels
    with pytest.raises(CacheFormatError, match="'labels' has 21 rows but 'ids' has 23"):
        load(cache_dir, "train")


@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated_file(cache_dir, keep):
    path = cache_dir / "train.h5"
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CacheFormatError, match="truncated or corrupt"):
        load(cache_dir, "train")


def test_garbage_file(tmp_path):
    (tmp_path / "train.h5").write_bytes(b"not hdf5 at all" * 10)
    with pytest.raises(CacheFormatError, match="not a readable HDF5 file"):
        load(tmp_path, "train")


def test_modality_in_train_missing_from_test(cache_dir):
    X, y, ids = _data(9, seed=1)
    write_cache(cache_dir / "test.h5", {"audio": X["audio"]}, y, ids)
    msg = "modality 'text' is present in 'train'"
    with pytest.raises(CacheFormatError, match=re.escape(msg)):
        load_splits(cache_dir, ("train", "test"))
    with pytest.raises(CacheFormatError, match="modality 'text' is not in"):
        load(cache_dir, "test", modalities=["audio", "text"])
    data = load_splits(cache_dir, ("train", "test"), modalities=["audio"])
    assert list(data["test"][0]) == ["audio"]


def test_split_width_mismatch(cache_dir):
    X, y, ids = _data(9, seed=1)
    X["text"] = np.ones((9, 4))
    write_cache(cache_dir / "test.h5", X, y, ids)
    with pytest.raises(CacheFormatError, match="3 features in 'train' but 4 in 'test'"):
        load_splits(cache_dir, ("train", "test"))
