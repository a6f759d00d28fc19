"""How many torch threads a fit or a prediction uses (no oversubscription).

Outside parallel workers torch's own setting is used (``torch.set_num_threads``,
``OMP_NUM_THREADS`` read when torch was imported, or
``threadpoolctl.threadpool_limits``, which torch's OpenMP runtime obeys).

Inside a joblib worker (any backend: loky, threading, multiprocessing, dask, ray)
or a dask worker, several fits share the machine, so each uses at most the
*inner* thread limit: ``OMP_NUM_THREADS`` as the worker sees it when the call
starts. joblib's loky backend sets it to ``cpu_count() // n_jobs`` (or to
``inner_max_num_threads`` of :func:`joblib.parallel_config`), dask's nanny sets it
to 1 for its worker processes; where nothing sets it (the threading backend,
dask workers that are threads) the limit is one thread per worker. Set
``OMP_NUM_THREADS`` (or ``inner_max_num_threads``) to give workers more.

The caller's torch setting is restored when the call returns.
"""

from __future__ import annotations

import contextlib
import os
import sys

import torch
from joblib.parallel import get_active_backend


def in_parallel_worker() -> bool:
    """Whether this code runs as a task of a joblib or dask worker."""
    backend, _ = get_active_backend()
    if getattr(backend, "nesting_level", 0) > 0:
        return True
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


def worker_thread_limit() -> int:
    """The inner thread limit of a worker: ``OMP_NUM_THREADS``, else 1."""
    try:
        return max(int(os.environ.get("OMP_NUM_THREADS", "")), 1)
    except ValueError:
        return 1


def effective_n_threads() -> int:
    """Torch threads for a fit or prediction starting now (see the module doc)."""
    n_threads = torch.get_num_threads()
    if in_parallel_worker():
        n_threads = min(n_threads, worker_thread_limit())
    return n_threads


@contextlib.contextmanager
def limit_torch_threads():
    """Run the block with :func:`effective_n_threads` torch threads, then restore."""
    before = torch.get_num_threads()
    n_threads = effective_n_threads()
    if n_threads == before:
        yield
        return
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
