"""Is a small sample of orders enough? Default inference against the paper's exhaustive one.

The paper's hybrid inference averages the chain over every one of the ``n!``
modality orders. The library averages a fixed balanced sample of
``max_orders=3`` of them, and by default weighs those orders and each modality
alone per sample (``inference_order="weighted"``). Issue 13 asks that this
stays within 0.3 points of the exhaustive average. This benchmark fits the
default model once per data set and seed, and predicts the test split with that
same model three ways:

- ``weighted``: the default prediction;
- ``hybrid``: the uniform average over the 3 sampled orders
  (``inference_order="hybrid"``);
- ``exhaustive``: the uniform average over all ``n!`` orders (the paper's
  Algorithm 1), computed from the fitted chain directly.

Each is measured with every view and with half of the test views removed
(absent modalities are skipped per sample in every order), all three without
the Shapley gate (``shapley_gate=False``: every present view is used), which
has nothing to do with the orders. Data: the suite's
tasks with at least three modalities (their splits and epochs) and
``bench_outside``'s sets with three or more views, which were not used to
develop the method. It prints the accuracies, means over the seeds, and
``weighted - exhaustive`` paired over the seeds (mean ± standard error).

Run: ``python -m benchmarks.bench_orders [--seeds 10] [--out PATH]
[--report-only]``.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np

from sklearn_modeq._inference import candidate_logits

from . import bench_outside
from .bench_outside import _per_seed, fit_on_split, run_grid
from .suite.report import paired_margin
from .suite.tasks import TASKS

RESULTS = Path(__file__).parent / "results"
DATASETS = (
    "mfeat-3",
    "mfeat-6",
    "mfeat-pix+2noise",
    "digits-2+noise",
    "cancer-3",
    "cancer-3+noise",
    "digits-4",
    "digits-4+noise",
)
MODES = ("weighted", "hybrid", "exhaustive")


def split(name: str, seed: int):
    """``(X_dev, X_test, y_dev, y_test, epochs)``: the suite's split of its
    tasks, ``bench_outside``'s of the others."""
    if name in TASKS:
        task = TASKS[name]
        return (*task.split(seed), task.epochs)
    return bench_outside.split(name, seed)


def exhaustive_predict(model, X) -> np.ndarray:
    """Classes predicted by the uniform average of the fitted chain over every
    order of all modalities (absent ones skipped per sample)."""
    orders = list(itertools.permutations(range(len(model.modalities_))))
    logits, _, _, _ = candidate_logits(model.net_, model._validated(X), [orders])
    return model.classes_[logits[0].argmax(dim=1).numpy()]


def run(name: str, seed: int, method: str = "Ours") -> dict:
    model, X_test, missing, y_test = fit_on_split(split, name, seed, method)
    record = {
        "data": name,
        "seed": seed,
        "method": method,
        "n_modalities": len(X_test),
    }
    model.set_params(shapley_gate=False)  # the orders alone (module doc)
    for key, X in (("accuracy", X_test), ("accuracy_50", missing)):
        for mode in ("weighted", "hybrid"):
            model.set_params(inference_order=mode)
            record[f"{key}_{mode}"] = float(np.mean(model.predict(X) == y_test))
        exhaustive = exhaustive_predict(model, X)
        record[f"{key}_exhaustive"] = float(np.mean(exhaustive == y_test))
    return record


def report(records) -> str:
    n_seeds = len({r["seed"] for r in records})
    lines = [
        f"Test accuracy (%), mean over {n_seeds} seeds, of one fitted default model "
        "per data set and seed, predicted with weighted inference over 3 sampled "
        "orders and each modality alone (the default), the uniform average over "
        "the 3 orders, and the uniform average over all n! orders (the paper's), "
        "all three using every present view (`shapley_gate=False`); "
        "`weighted - exhaustive`: mean ± standard error paired over the seeds "
        "(issue 13's target: within 0.3 points)",
        "",
        "| data | orders | views | weighted | hybrid, 3 orders | exhaustive "
        "| weighted - exhaustive |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in DATASETS:
        rows = [r for r in records if r["data"] == name]
        if not rows:
            continue
        n_orders = math.factorial(rows[0]["n_modalities"])
        for key, views in (("accuracy", "all"), ("accuracy_50", "half removed")):
            values = {
                mode: _per_seed(records, name, "Ours", f"{key}_{mode}")
                for mode in MODES
            }
            margin, se = paired_margin(values["weighted"], values["exhaustive"])
            lines.append(
                f"| {name} | {min(3, n_orders)} of {n_orders} | {views} | "
                + " | ".join(f"{values[m].mean():.1f}" for m in MODES)
                + f" | {margin:+.2f} ± {se:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    run_grid(__doc__, 10, RESULTS / "orders.md", DATASETS, ("Ours",), run, report, argv)


if __name__ == "__main__":
    main()
