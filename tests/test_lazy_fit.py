"""Fitting and predicting on the HDF5 cache's lazy view, streamed in batches."""

import re

import numpy as np
import pytest

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
    params = dict(hidden_size=8, max_epochs=3, lr=1e-2, random_state=0)
    return ShapleyAlternatingClassifier(**{**params, **kwargs})


def test_lazy_fit_predicts_like_in_memory_fit(cache):
    path, X, y = cache
    view = open_lazy(path, "train")
    lazy = small().fit(view, view.labels)
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
