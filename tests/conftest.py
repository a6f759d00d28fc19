import errno
import os

import numpy as np
import pytest
import torch


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
