"""Where the combiner learns its weights on small data: validation split or cross-fitting.

``ShapleyAlternatingClassifier(combiner_cv="auto")`` fits the combiner of
weighted inference on out-of-fold predictions of 5 more models when the
validation split has fewer than 100 rows, and on the validation split otherwise
(``combiner_cv=None`` always does the latter). This benchmark fits both on every
data set where ``"auto"`` cross-fits: the suite's nutrimouse (6 validation mice)
and the outside-the-suite sets of ``bench_outside`` small enough (wine: 28
validation rows; breast cancer: 91), with the same seeded splits and settings as
those benchmarks. It prints fused test accuracy with every view and with half of
the test views removed, our best single view (mean over seeds of the view best
on average), and the fit time of each.

Run: ``python -m benchmarks.bench_combiner_cv [--seeds 5] [--report-only]``.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import torch

from sklearn_modeq.datasets import drop_modalities

from .bench_outside import run_grid
from .bench_outside import split as outside_split
from .suite.methods import make_method
from .suite.tasks import TASKS

DATASETS = ("nutrimouse", "wine-2", "cancer-3", "wine-2+noise", "cancer-3+noise")
SETTINGS = (None, "auto")
RESULTS = Path(__file__).parent / "results"


def split(name: str, seed: int):
    """(X_dev, X_test, y_dev, y_test, epochs) as the suite or bench_outside has it."""
    if name in TASKS:
        task = TASKS[name]
        return (*task.split(seed), task.epochs)
    return outside_split(name, seed)


def run(name: str, seed: int, combiner_cv) -> dict:
    torch.set_num_threads(1)  # jobs run side by side
    X_dev, X_test, y_dev, y_test, epochs = split(name, seed)
    model = make_method("Ours", epochs, seed).set_params(combiner_cv=combiner_cv)
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X_dev, y_dev)
    fit_s = time.perf_counter() - tic
    missing = drop_modalities(X_test, 0.5, random_state=1000 + seed)
    return {
        "data": name,
        "seed": seed,
        "combiner_cv": str(combiner_cv),
        "folds": model.combiner_folds_,
        "fit_s": fit_s,
        "accuracy": float(np.mean(model.predict(X_test) == y_test)),
        "accuracy_50": float(np.mean(model.predict(missing) == y_test)),
        "single": {
            k: float(np.mean(model.predict({k: X_test[k]}) == y_test)) for k in X_test
        },
    }


def report(records) -> str:
    lines = [
        "Fused accuracy (%), mean over seeds: all views / half of the test views "
        "removed; fit seconds",
        "",
        "| data | folds | validation split | cross-fitted | best single view "
        "| fit s, validation / cross-fitted |",
        "|---|---|---|---|---|---|",
    ]
    for name in DATASETS:
        cells, fit = [], []
        for setting in map(str, SETTINGS):
            rows = [
                r for r in records if r["data"] == name and r["combiner_cv"] == setting
            ]
            full = 100 * np.mean([r["accuracy"] for r in rows])
            half = 100 * np.mean([r["accuracy_50"] for r in rows])
            cells.append(f"{full:.1f} / {half:.1f}")
            fit.append(np.mean([r["fit_s"] for r in rows]))
            if setting == "auto":
                folds = sorted({r["folds"] for r in rows})
                best = max(
                    100 * np.mean([r["single"][k] for r in rows])
                    for k in rows[0]["single"]
                )
        lines.append(
            f"| {name} | {'/'.join(map(str, folds))} | {cells[0]} | {cells[1]} "
            f"| {best:.1f} | {fit[0]:.1f} / {fit[1]:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    out = RESULTS / "combiner_cv.md"
    run_grid(__doc__, 5, out, DATASETS, SETTINGS, run, report, argv)


if __name__ == "__main__":
    main()
