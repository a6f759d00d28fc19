"""Per-batch vs per-epoch alternation, on the same data, epochs and seeds.

``alternation="batch"`` takes one optimiser step per modality on every mini-batch;
``alternation="epoch"`` makes one full pass over the training data per modality
per epoch. Both take the same number of optimiser steps per epoch. This prints,
for each, the test accuracy (fused and per modality), EDM and fit time, as mean ±
std over seeds, on UCI Multiple Features view pairs (strong + weak) and a
three-view task; the default of ``ShapleyAlternatingClassifier`` is chosen from
these numbers (``docs/alternation.md``).

Run: ``python -m benchmarks.bench_alternation [--quick]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from joblib import Parallel, delayed
from sklearn.model_selection import train_test_split

from sklearn_modeq import ShapleyAlternatingClassifier
from sklearn_modeq.datasets import load_multiple_features
from sklearn_modeq.metrics import edm, modality_accuracy

TASKS = [
    ["pixel", "morphological"],
    ["fourier", "zernike"],
    ["karhunen", "morphological", "zernike"],
]


def run_one(views, alternation, seed, epochs, lr):
    data = load_multiple_features(views=views)
    train, test = train_test_split(
        np.arange(len(data.target)),
        test_size=0.3,
        stratify=data.target,
        random_state=seed,
    )
    X_train = {k: v[train] for k, v in data.X.items()}
    X_test = {k: v[test] for k, v in data.X.items()}
    clf = ShapleyAlternatingClassifier(
        alternation=alternation,
        max_epochs=epochs,
        lr=lr,
        early_stopping=False,  # the same epochs for both granularities
        random_state=seed,
    )
    tic = time.perf_counter()
    clf.fit(X_train, data.target[train])
    seconds = time.perf_counter() - tic
    acc = modality_accuracy(clf, X_test, data.target[test])
    return {
        "task": "+".join(views),
        "alternation": alternation,
        "seed": seed,
        "seconds": seconds,
        "fused": acc["fused"],
        "min_unimodal": min(acc[m] for m in views),
        "edm": edm(clf, X_test, data.target[test]).edm,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args(argv)
    seeds, epochs = (range(2), 10) if args.quick else (range(5), 60)
    jobs = [
        (views, alt, seed)
        for views in TASKS
        for alt in ("batch", "epoch")
        for seed in seeds
    ]
    rows = Parallel(n_jobs=2)(
        delayed(run_one)(views, alt, seed, epochs, args.lr) for views, alt, seed in jobs
    )
    print(f"{epochs} epochs, lr {args.lr}, {len(seeds)} seeds, test split 30%")
    print(
        f"{'task':40s} {'alternation':11s} {'fused acc':>14s} {'weakest modality':>17s}"
        f" {'EDM':>13s} {'fit (s)':>9s}"
    )
    for task in dict.fromkeys(r["task"] for r in rows):
        for alt in ("batch", "epoch"):
            sel = [r for r in rows if r["task"] == task and r["alternation"] == alt]

            def stat(key, scale=1.0, sel=sel):
                v = np.array([r[key] for r in sel]) * scale
                return f"{v.mean():6.2f} ± {v.std():4.2f}"

            print(
                f"{task:40s} {alt:11s} {stat('fused', 100):>14s} {stat('min_unimodal', 100):>17s}"
                f" {stat('edm'):>13s} {stat('seconds'):>9s}"
            )


if __name__ == "__main__":
    main()
