"""Accuracy of block-shuffled out-of-core fits against in-memory fits.

``load(..., lazy=True, shuffle="blocks")`` trains on batches cut from groups of
consecutive rows. On the suite's tasks (seeded development/test splits) this fits
:class:`~sklearn_modeq.ShapleyAlternatingClassifier` once in memory and once from
an HDF5 cache with block shuffling, for two file orders: sorted by class (the
worst case: a block then holds one class) and shuffled once before writing.
The suite's files are small, so blocks are made small (``--block-rows``, default
16 rows, groups of 8 blocks) to give them as many blocks as a large cache has.

Run: ``python -m benchmarks.bench_block_accuracy [--tasks mfeat-2,digits-2]
[--seeds 3] [--block-rows 16]``.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import joblib
import numpy as np
import torch

from sklearn_modeq import ShapleyAlternatingClassifier
from sklearn_modeq.cache import open_lazy, write_cache

from .suite.tasks import TASKS


def run(task: str, seed: int, mode: str, order: str, block_rows: int) -> dict:
    torch.set_num_threads(1)  # jobs run side by side
    epochs = TASKS[task].epochs
    X_dev, X_test, y_dev, y_test = TASKS[task].split(seed)
    if order == "sorted":
        rows = np.argsort(y_dev, kind="stable")
    else:
        rows = np.random.default_rng(1000 + seed).permutation(len(y_dev))
    X_dev = {k: v[rows].astype(np.float32) for k, v in X_dev.items()}
    y_dev = y_dev[rows]
    model = ShapleyAlternatingClassifier(
        lr=1e-3, max_epochs=epochs, early_stopping=False, random_state=seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if mode == "memory":
            model.fit(X_dev, y_dev)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                write_cache(Path(tmp) / "train.h5", X_dev, y_dev)
                view = open_lazy(tmp, "train", shuffle="blocks", block_rows=block_rows)
                model.fit(view, y_dev)
    accuracy = float(np.mean(model.predict(X_test) == y_test))
    return {"task": task, "seed": seed, "mode": mode, "order": order, "acc": accuracy}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="mfeat-2,digits-2")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--block-rows", type=int, default=16)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args(argv)
    tasks = args.tasks.split(",")
    jobs = [
        (t, s, mode, order)
        for t in tasks
        for s in range(args.seeds)
        for order in ("sorted", "shuffled")
        for mode in ("memory", "blocks")
    ]
    records = joblib.Parallel(n_jobs=args.n_jobs)(
        joblib.delayed(run)(*job, args.block_rows) for job in jobs
    )
    print("| task | file order | in memory | blocks | difference |")
    print("|---|---|---|---|---|")
    for task in tasks:
        for order in ("sorted", "shuffled"):
            acc = {
                mode: [
                    100 * r["acc"]
                    for r in records
                    if r["task"] == task and r["order"] == order and r["mode"] == mode
                ]
                for mode in ("memory", "blocks")
            }
            print(
                f"| {task} | {order} | {np.mean(acc['memory']):.2f} "
                f"| {np.mean(acc['blocks']):.2f} "
                f"| {np.mean(acc['blocks']) - np.mean(acc['memory']):+.2f} |"
            )
    return records


if __name__ == "__main__":
    main()
