import errno
import os

import numpy as np
import pytest
import torch


def pytest_configure(config):
    """One torch thread per pytest-xdist worker.

    ``pytest -n 2`` on 2 cores otherwise runs 2 processes of 2 torch threads
    each; with any other load on the machine, OpenMP threads that spin while
    waiting for descheduled siblings made single tests 10 to 100 times slower.
    Each worker is one of several processes sharing the cores, as a joblib
    worker is, so it gets what the library gives a worker: one thread.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def seeds_fixed():
    """Seed numpy and torch so every test starts from the same state."""
    np.random.seed(0)  # noqa: NPY002 - code under test may use the legacy global RNG
    torch.manual_seed(0)


@pytest.fixture
def fail_shard_writes(monkeypatch):
    """``fail(n_ok, err)``: the cache's shard writes (``np.savez``) fail after
    ``n_ok`` successful ones, leaving half a shard and raising ``OSError(err)``."""

    def fail(n_ok, err=errno.ENOSPC):
        savez = np.savez
        calls = {"n": 0}

        def flaky(fh, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] > n_ok:
                fh.write(b"PK\x03\x04 half a shard")
                raise OSError(err, os.strerror(err))
            return savez(fh, *args, **kwargs)

        monkeypatch.setattr(np, "savez", flaky)

    return fail
