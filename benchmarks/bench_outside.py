"""A check on real data the suite does not use: views cut from scikit-learn's datasets.

The suite's tasks are where the method was developed; this benchmark is where
it was not. It fits the suite's methods with the suite's settings on three
datasets scikit-learn ships, split into views by feature groups, each also with
a label-free view added (one of its own views with the rows shuffled):

- ``cancer-3``: breast cancer, the mean / standard-error / worst features;
- ``wine-2``: wine, the first six and the last seven measurements;
- ``digits-4``: 8x8 digits, the four 4x4 quadrants.

It prints, per dataset and method, test accuracy (mean over seeds, 25% stratified
test split) with every view and with half of the test views removed at random,
and our own best single view; then ours minus the best other method (and minus
our best single view) with the standard error of that difference paired over
the seeds, which share their splits. Nothing here was used to choose a setting.

Run: ``python -m benchmarks.bench_outside [--seeds 3] [--out PATH] [--report-only]``
(``--report-only`` rewrites the Markdown from the JSON records beside it).
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.model_selection import train_test_split

from sklearn_modeq._data import take_rows
from sklearn_modeq.datasets import drop_modalities

from .suite.methods import make_method
from .suite.report import paired_margin

DATASETS = (
    "cancer-3",
    "wine-2",
    "digits-4",
    "cancer-3+noise",
    "wine-2+noise",
    "digits-4+noise",
)
METHODS = ("Ours", "MLA", "Concat", "LateFusion", "LogisticRegression")
RESULTS = Path(__file__).parent / "results"


def views(name: str):
    """The views and labels of dataset ``name`` (see the module docstring)."""
    if name.startswith("cancer"):
        data = load_breast_cancer()
        X = data.data
        out = {"mean": X[:, :10], "se": X[:, 10:20], "worst": X[:, 20:]}
    elif name.startswith("wine"):
        data = load_wine()
        out = {"chem_a": data.data[:, :6], "chem_b": data.data[:, 6:]}
    else:
        data = load_digits()
        img = data.images
        out = {
            f"q{i}{j}": img[:, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4].reshape(
                len(img), -1
            )
            for i in range(2)
            for j in range(2)
        }
    y = data.target
    if name.endswith("+noise"):
        first = next(iter(out.values()))
        out["noise"] = first[np.random.default_rng(123).permutation(len(y))]
    return out, y


def split(name: str, seed: int):
    """``(X_dev, X_test, y_dev, y_test, epochs)`` of dataset ``name``: a seeded,
    stratified 25% test split, and the epochs every neural method gets."""
    X, y = views(name)
    dev, test = train_test_split(
        np.arange(len(y)), test_size=0.25, stratify=y, random_state=seed
    )
    epochs = 150 if name.startswith("wine") else 40
    return take_rows(X, dev), take_rows(X, test), y[dev], y[test], epochs


def fit_on_split(split, name: str, seed: int, method: str):
    """``(model, X_test, X_missing, y_test)``: ``method`` fitted on the development
    rows of ``split(name, seed)``, and the test rows whole and with half of
    their views removed (the same cells for every method of a seed)."""
    torch.set_num_threads(1)  # jobs run side by side
    X_dev, X_test, y_dev, y_test, epochs = split(name, seed)
    model = make_method(method, epochs, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X_dev, y_dev)
    missing = drop_modalities(X_test, 0.5, random_state=1000 + seed)
    return model, X_test, missing, y_test


def run(name: str, seed: int, method: str) -> dict:
    model, X_test, missing, y_test = fit_on_split(split, name, seed, method)
    record = {
        "data": name,
        "seed": seed,
        "method": method,
        "accuracy": float(np.mean(model.predict(X_test) == y_test)),
        "accuracy_50": float(np.mean(model.predict(missing) == y_test)),
    }
    if method == "Ours":
        record["single"] = {
            k: float(np.mean(model.predict({k: X_test[k]}) == y_test)) for k in X_test
        }
    return record


def report(records) -> str:
    lines = [
        "Accuracy (%), mean over seeds: all views / half of the test views removed",
        "",
        "| data | " + " | ".join(METHODS) + " | ours, best single view |",
        "|---" * (len(METHODS) + 2) + "|",
    ]
    for name in DATASETS:
        cells = []
        for method in METHODS:
            rows = [r for r in records if r["data"] == name and r["method"] == method]
            full = 100 * np.mean([r["accuracy"] for r in rows])
            half = 100 * np.mean([r["accuracy_50"] for r in rows])
            cells.append(f"{full:.1f} / {half:.1f}")
        ours = [r for r in records if r["data"] == name and r["method"] == "Ours"]
        best = max(
            100 * np.mean([r["single"][k] for r in ours]) for k in ours[0]["single"]
        )
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {best:.1f} |")
    return "\n".join(lines) + "\n\n" + margins_table(records)


def _per_seed(records, name, method, key) -> pd.Series:
    rows = [r for r in records if r["data"] == name and r["method"] == method]
    return pd.Series({r["seed"]: 100 * r[key] for r in rows})


def margins_table(records) -> str:
    """Ours minus the best other method (by mean) and minus our best single
    view, each ``mean ± standard error`` of the per-seed paired difference."""
    lines = [
        "Ours minus the best other method (named), and minus our best single "
        "view, in points: mean ± standard error of the difference paired over "
        "the seeds",
        "",
        "| data | all views | half of the views removed | vs our best single view |",
        "|---|---|---|---|",
    ]
    others = [m for m in METHODS if m != "Ours"]
    for name in DATASETS:
        cells = []
        for key in ("accuracy", "accuracy_50"):
            ours = _per_seed(records, name, "Ours", key)
            best = max(others, key=lambda m: _per_seed(records, name, m, key).mean())
            margin, se = paired_margin(ours, _per_seed(records, name, best, key))
            cells.append(f"{margin:+.1f} ± {se:.1f} ({best})")
        ours = [r for r in records if r["data"] == name and r["method"] == "Ours"]
        single = pd.DataFrame(
            [r["single"] for r in ours], index=[r["seed"] for r in ours]
        )
        view = (100 * single).mean().idxmax()
        fused = _per_seed(records, name, "Ours", "accuracy")
        margin, se = paired_margin(fused, 100 * single[view])
        cells.append(f"{margin:+.1f} ± {se:.1f} ({view})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_and_write(run, jobs, report, out: Path, n_jobs: int) -> None:
    """``run(*job)`` for every job in parallel; print ``report(records)`` and
    write it to ``out`` (Markdown), the records beside it (JSON)."""
    records = joblib.Parallel(n_jobs=n_jobs)(joblib.delayed(run)(*job) for job in jobs)
    text = report(records)
    print(text)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps(records, indent=1))


def records_parser(doc: str, seeds: int, out: Path) -> argparse.ArgumentParser:
    """The options of a benchmark that writes Markdown and JSON records with
    :func:`run_and_write`: ``--seeds``, ``--n-jobs``, ``--out``, ``--report-only``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=seeds)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the Markdown from the JSON records beside --out",
    )
    return parser


def run_or_rewrite(run, jobs, report, args) -> None:
    """:func:`run_and_write`, or with ``--report-only`` only ``report`` of the
    records already beside ``--out``."""
    if args.report_only:
        records = json.loads(args.out.with_suffix(".json").read_text())
        args.out.write_text(report(records))
        return
    run_and_write(run, jobs, report, args.out, args.n_jobs)


def run_grid(doc, seeds, out, datasets, variants, run, report, argv=None) -> None:
    """The ``main`` of a benchmark that calls ``run(data, seed, variant)`` for
    every data set, seed (``--seeds``, default ``seeds``) and variant, with
    :func:`records_parser`'s options and :func:`run_or_rewrite`."""
    args = records_parser(doc, seeds, out).parse_args(argv)
    jobs = [(d, s, v) for d in datasets for s in range(args.seeds) for v in variants]
    run_or_rewrite(run, jobs, report, args)


def main(argv=None) -> None:
    run_grid(__doc__, 3, RESULTS / "outside.md", DATASETS, METHODS, run, report, argv)


if __name__ == "__main__":
    main()
