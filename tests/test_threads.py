"""No thread oversubscription in parallel workers (issue 13).

Each fit records ``torch.get_num_threads()`` at every epoch through a callback;
the assertions are on those counts, never on timings.
"""

import sys

import numpy as np
import pytest
import torch
from cloudpickle import register_pickle_by_value
from joblib import Parallel, cpu_count, delayed, parallel_config
from skorch.callbacks import Callback

from sklearn_modeq import ShapleyAlternatingClassifier, SliceDict

# loky workers cannot import this test module: send its classes by value
register_pickle_by_value(sys.modules[__name__])


class RecordThreads(Callback):
    def on_epoch_begin(self, net, **kwargs):
        net.history.record("torch_threads", torch.get_num_threads())


class Recorded(ShapleyAlternatingClassifier):
    def _extra_callbacks(self, seed, y):
        return [*super()._extra_callbacks(seed, y), ("threads", RecordThreads())]


def data(n=40):
    rng = np.random.RandomState(0)
    y = np.arange(n) % 2
    X = SliceDict(
        audio=rng.normal(size=(n, 4)).astype(np.float32) + y[:, None],
        visual=rng.normal(size=(n, 3)).astype(np.float32),
    )
    return X, y


def fit_threads(seed):
    """Torch threads during each epoch of a fit, and before/after it."""
    X, y = data()
    before = torch.get_num_threads()
    clf = Recorded(hidden_size=4, max_epochs=2, random_state=seed).fit(X, y)
    return before, clf.history_[:, "torch_threads"], torch.get_num_threads()


def run(n_jobs=2):
    return Parallel(n_jobs=n_jobs)(delayed(fit_threads)(seed) for seed in range(2))


def test_loky_workers_fit_with_joblibs_inner_thread_limit():
    # joblib gives each of n_jobs loky workers cpu_count() // n_jobs threads:
    # one thread per worker when n_jobs equals the cores (2 on the CI machine)
    expected = max(cpu_count() // 2, 1)
    for before, during, after in run():
        assert during == [expected] * 2
        assert after == before
    with parallel_config(backend="loky", inner_max_num_threads=1):
        assert all(during == [1, 1] for _, during, _ in run())


def test_threading_workers_fit_with_one_thread(monkeypatch):
    # nothing tells threads how many threads they may use: one per worker
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with parallel_config(backend="threading"):
        results = run()
    for before, during, after in results:
        assert during == [1, 1]
        assert after == before


def test_workers_get_more_threads_when_told(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # the caller allows two (pytest-xdist sets one)
        with parallel_config(backend="threading"):
            assert all(during == [2, 2] for _, during, _ in run())
    finally:
        torch.set_num_threads(before)


def test_a_fit_outside_workers_keeps_the_callers_setting():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert fit_threads(0)[1:] == ([2, 2], 2)
        torch.set_num_threads(1)
        assert fit_threads(0)[1:] == ([1, 1], 1)
    finally:
        torch.set_num_threads(before)


def test_dask_thread_workers_fit_with_one_thread(monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
        parallel_config(backend="dask"),
    ):
        results = run()
    assert all(during == [1, 1] for _, during, _ in results)
