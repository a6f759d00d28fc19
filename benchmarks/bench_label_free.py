"""What training beside label-free views does to the informative ones.

On the suite's tasks with label-free views (real features with their rows
shuffled across samples), every method is fitted twice on the same splits: on
the whole task, and on its informative views only. The difference, paired over
the seeds, says what co-training with views that carry no label information
costs (or gives) each informative view alone and the fused prediction.

Methods: ours, MLA, and MLA without its gradient projection
(``projection=False``), all with the suite's settings. This isolates the one
issue-12 miss that is larger than twice its standard error in the suite
(fused accuracy on ``mfeat-pix+2noise``).

Run: ``python -m benchmarks.bench_label_free [--seeds 10] [--out PATH]
[--report-only]``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .bench_outside import records_parser, run_or_rewrite
from .suite.methods import make_method
from .suite.report import paired_margin
from .suite.tasks import TASKS

RESULTS = Path(__file__).parent / "results"
LABEL_FREE_TASKS = tuple(name for name, task in TASKS.items() if task.label_free)
#: name -> (suite method, extra parameters)
METHODS = {
    "Ours": ("Ours", {}),
    "MLA": ("MLA", {}),
    "MLA, projection=False": ("MLA", {"projection": False}),
}


def run(task_name: str, seed: int, method: str, informative_only: bool) -> dict:
    torch.set_num_threads(1)  # jobs run side by side
    task = TASKS[task_name]
    X_dev, X_test, y_dev, y_test = task.split(seed)
    if informative_only:
        X_dev = {k: v for k, v in X_dev.items() if k not in task.label_free}
        X_test = {k: v for k, v in X_test.items() if k not in task.label_free}
    name, params = METHODS[method]
    model = make_method(name, task.epochs, seed).set_params(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X_dev, y_dev)
    alone = {}
    for view in X_test:
        if view in task.label_free:
            continue
        masked = {
            k: v if k == view else np.full_like(v, np.nan) for k, v in X_test.items()
        }
        alone[view] = float(np.mean(model.predict(masked) == y_test))
    return {
        "task": task_name,
        "seed": seed,
        "method": method,
        "informative_only": informative_only,
        "fused": float(np.mean(model.predict(X_test) == y_test)),
        "alone": alone,
    }


def _per_seed(records, task, method, informative_only, view=None) -> pd.Series:
    rows = [
        r
        for r in records
        if r["task"] == task
        and r["method"] == method
        and r["informative_only"] == informative_only
    ]
    return pd.Series(
        {
            r["seed"]: 100 * (r["fused"] if view is None else r["alone"][view])
            for r in rows
        }
    )


def report(records) -> str:
    seeds = len({r["seed"] for r in records})
    lines = [
        f"Test accuracy (%), mean over {seeds} seeds, fitted on the whole task / on "
        "its informative views only; `change` is whole minus informative-only, "
        "mean ± standard error of the difference paired over the seeds. `fused` "
        "predicts with every view the model was fitted on.",
        "",
    ]
    for task in LABEL_FREE_TASKS:
        if not any(r["task"] == task for r in records):
            continue
        first = next(r for r in records if r["task"] == task)
        views = [*first["alone"], None]
        lines += [
            f"### {task}",
            "",
            "| method | prediction | whole | informative only | change |",
        ]
        lines.append("|---|---|---|---|---|")
        for method in METHODS:
            for view in views:
                whole = _per_seed(records, task, method, False, view)
                alone = _per_seed(records, task, method, True, view)
                if whole.empty or alone.empty:
                    continue
                change, se = paired_margin(whole, alone)
                label = "fused" if view is None else f"{view} alone"
                lines.append(
                    f"| {method} | {label} | {whole.mean():.2f} | "
                    f"{alone.mean():.2f} | {change:+.2f} ± {se:.2f} |"
                )
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = records_parser(__doc__, 10, RESULTS / "label_free.md")
    parser.add_argument(
        "--tasks",
        default=",".join(LABEL_FREE_TASKS),
        help="comma-separated tasks with label-free views",
    )
    args = parser.parse_args(argv)
    tasks = args.tasks.split(",")
    unknown = sorted(set(tasks) - set(LABEL_FREE_TASKS))
    if unknown:
        parser.error(f"unknown tasks {unknown}; choose from {list(LABEL_FREE_TASKS)}")
    jobs = [
        (t, s, m, only)
        for t in tasks
        for s in range(args.seeds)
        for m in METHODS
        for only in (False, True)
    ]
    run_or_rewrite(run, jobs, report, args)


if __name__ == "__main__":
    main()
