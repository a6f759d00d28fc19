"""Fitting and predicting on the HDF5 cache's lazy view, streamed in batches."""

import re

import numpy as np
import pytest
import torch

from sklearn_modeq import ShapleyAlternatingClassifier
from sklearn_modeq.cache import load, open_lazy, write_cache


def imbalanced(n=150, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 3
    X = {
        "audio": 3 * rng.normal(size=(3, 6))[y] + rng.normal(size=(n, 6)),
        "visual": 0.5 * rng.normal(size=(3, 4))[y] + rng.normal(size=(n, 4)),
    }
    X["visual"][::7] = np.nan  # some samples lack the visual modality
    return X, y


@pytest.fixture
def cache(tmp_path):
    X, y = imbalanced()
    write_cache(tmp_path / "train.h5", X, y, batch_size=32)
    return tmp_path, X, y


def small(**kwargs):
    # combiner_cv=None: what out-of-core data uses anyway
    params = dict(
        hidden_size=8, max_epochs=3, lr=1e-2, random_state=0, combiner_cv=None
    )
    return ShapleyAlternatingClassifier(**{**params, **kwargs})


def test_lazy_fit_predicts_like_in_memory_fit(cache):
    path, X, y = cache
    view = open_lazy(path, "train")
    # out-of-core data fits the combiner on the validation split, never by
    # cross-fitting (which in-memory data this small would use)
    lazy = small(combiner_cv="auto").fit(view, view.labels)
    assert lazy.combiner_folds_ == 0
    memory = small().fit(X, y)
    np.testing.assert_allclose(
        lazy.predict_proba(view), memory.predict_proba(X), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_array_equal(lazy.predict(X), memory.predict(X))
    np.testing.assert_allclose(lazy.shapley_history_, memory.shapley_history_)
    assert lazy.modalities_ == ["audio", "visual"]


def test_lazy_view_reads_only_batches(tmp_path, monkeypatch):
    X, y = imbalanced(n=5000)
    write_cache(tmp_path / "train.h5", X, y)
    view = open_lazy(tmp_path, "train")
    sizes = []
    take = type(view).take

    def spy(self, indices, modalities=None):
        out = take(self, indices, modalities)
        sizes.append(len(next(iter(out.values()))))
        return out

    monkeypatch.setattr(type(view), "take", spy)
    small(batch_size=64, max_epochs=1).fit(view, view.labels).predict(view)
    # never the whole data at once: training batches, and inference chunks
    assert max(sizes) <= 4096
    assert 64 in sizes


def test_lazy_predict_with_a_modality_left_out(cache):
    path, X, y = cache
    clf = small().fit(X, y)
    audio_only = open_lazy(path, "train", modalities=["audio"])
    np.testing.assert_allclose(
        clf.predict_proba(audio_only),
        clf.predict_proba({"audio": X["audio"]}),
        rtol=1e-5,
    )


class ArrayView:
    """The smallest object the estimators stream from (the lazy-view protocol)."""

    def __init__(self, X):
        self.X = X
        self.modalities = tuple(X)
        self.n_samples = len(next(iter(X.values())))
        self.shape = {k: v.shape for k, v in X.items()}

    def take(self, indices):
        return {k: v[indices].astype(np.float32) for k, v in self.X.items()}

    def mean_std(self):
        return {k: (np.nanmean(v, 0), np.nanstd(v, 0)) for k, v in self.X.items()}


@pytest.mark.parametrize("row", [3, 5000])
def test_lazy_bad_rows_are_reported_with_their_position(row):
    # the cache writer refuses such rows; any other view is checked while streaming
    X, y = imbalanced(n=6000)
    X["audio"][row, 1] = np.inf
    with pytest.raises(
        ValueError, match=re.escape(f"X['audio'] row {row} contains infinity")
    ):
        small().fit(ArrayView(X), y)


def test_loaded_slicedict_fits_like_the_original_arrays(cache):
    path, X, y = cache
    loaded, y_loaded, ids = load(path, "train")
    np.testing.assert_array_equal(y_loaded, y)
    np.testing.assert_array_equal(
        small().fit(loaded, y_loaded).predict_proba(loaded),
        small().fit(X, y).predict_proba(X),
    )


def test_lazy_modality_without_present_rows_raises(tmp_path):
    # issue 14: the same rule as in memory, checked while streaming
    X, y = imbalanced(n=60)
    X["visual"][:] = np.nan
    write_cache(tmp_path / "train.h5", X, y, batch_size=32)
    view = open_lazy(tmp_path, "train")
    msg = "X['visual'] has no present rows: all 60 rows are NaN (missing)"
    with pytest.raises(ValueError, match=re.escape(msg)):
        small().fit(view, view.labels)


# ------------------------------------------------- block shuffling (issue 13)
def test_block_sampler_shuffles_blocks_and_rows_within_groups():
    from sklearn_modeq._training import BlockShuffleSampler

    blocks = np.repeat(np.arange(10), 7)[np.random.RandomState(0).permutation(70)]
    sampler = BlockShuffleSampler(blocks, mix_blocks=3)
    torch.manual_seed(0)
    order = np.array(list(sampler))
    assert sorted(order.tolist()) == list(range(70))
    groups = [set(blocks[order[i : i + 21]]) for i in range(0, 63, 21)]
    assert all(len(g) == 3 for g in groups)  # 3 whole blocks per group of 21
    assert len(set(blocks[order[63:]])) == 1
    torch.manual_seed(0)
    assert list(sampler) == order.tolist()  # seeded by torch
    assert list(sampler) != order.tolist()


@pytest.fixture
def big_cache(tmp_path):
    X, y = imbalanced(n=4000)
    write_cache(tmp_path / "train.h5", X, y)
    return tmp_path / "train.h5", X, y


def test_block_shuffled_fit_reads_few_blocks_per_batch(big_cache, monkeypatch):
    path, X, y = big_cache
    view = open_lazy(path, shuffle="blocks", block_rows=100, mix_blocks=2)
    reads = []
    take = type(view).take

    def spy(self, indices, modalities=None):
        reads.append(np.arange(self.n_samples)[indices])
        return take(self, indices, modalities)

    monkeypatch.setattr(type(view), "take", spy)
    clf = small(batch_size=64, max_epochs=1).fit(view, view.labels)
    train = [r for r in reads if len(r) == 64]
    assert len(train) > 40
    spans = [len(np.unique(r // 100)) for r in train]  # blocks read per batch
    assert max(spans) <= 4 and np.median(spans) <= 2  # 2 groups at most
    valid = [r for r in reads if len(r) == 800]  # the validation split, 20%
    assert valid and all(np.all(np.diff(r // 100) >= 0) for r in valid)
    reads.clear()
    proba = clf.predict_proba(view)  # prediction keeps the rows' order
    np.testing.assert_array_equal(np.concatenate(reads)[-4000:], np.arange(4000))
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_block_shuffling_is_reproducible_and_learns(big_cache):
    path, X, y = big_cache
    view, labels, _ = load(path, lazy=True, shuffle="blocks")
    a = small(max_epochs=2).fit(view, labels)
    b = small(max_epochs=2).fit(view, labels)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.score(X, y) > 0.9  # a sanity check, not an accuracy comparison


def test_block_shuffle_options_are_checked(big_cache):
    path, _, _ = big_cache
    with pytest.raises(ValueError, match="applies to lazy views"):
        load(path, shuffle="blocks")
    with pytest.raises(ValueError, match="shuffle must be 'rows' or 'blocks'"):
        open_lazy(path, shuffle="block")
    with pytest.raises(ValueError, match="mix_blocks must be a positive int"):
        open_lazy(path, shuffle="blocks", mix_blocks=0)
    view = open_lazy(path, shuffle="blocks")
    chunk = max(view._header.chunk_rows.values())
    assert view.block_rows % chunk == 0 and view.block_rows * 6 * 4 >= 2**20
    assert view[10:20].shuffle == "blocks"


def test_block_view_reads_each_block_once_per_epoch(big_cache, monkeypatch):
    import h5py

    from sklearn_modeq._training import BlockShuffleSampler

    path, X, y = big_cache
    view = open_lazy(path, shuffle="blocks", block_rows=100, mix_blocks=3)
    torch.manual_seed(0)
    order = np.array(list(BlockShuffleSampler(*view.sampling_blocks())))
    reads = []
    getitem = h5py.Dataset.__getitem__

    def spy(self, key):
        reads.append(key)
        return getitem(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    for start in range(0, 4000, 64):
        rows = order[start : start + 64]
        got = view.take(rows)
        for m in X:
            np.testing.assert_array_equal(got[m], X[m][rows].astype(np.float32))
    assert len(reads) == 40 * 2  # 40 blocks of 100 rows, 2 modalities
