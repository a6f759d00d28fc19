"""The paper's comparison on real data: ``python -m benchmarks.run [--quick]``.

Fits every method of the suite (our estimator, the paper's baselines, and
scikit-learn's ``LogisticRegression`` / ``MLPClassifier`` on the concatenated
features as reference rows) on each task for several seeds, and writes
``results.md`` (Table 1: per-modality accuracy, fused accuracy and EDM; Table 2:
ablations; Table 4: accuracy as test samples lose modalities, for models trained
on complete and on incomplete data; on the tasks with label-free modalities,
fused accuracy against each method's best modality) with PNG plots (robustness curves,
per-modality accuracy bars, Shapley values over epochs) under ``--out``
(default ``benchmarks/results/suite``, or ``.../suite-quick`` with ``--quick``).
It also writes every raw measurement to ``records.json``.

The full run takes 10 seeds (about half an hour on 2 cores): with 5, most
margins of a few tenths of a point were within twice their standard error.
``--first-seed`` and ``--seeds`` run a range of seeds, and ``--tasks`` /
``--methods`` a subset of the fits; with ``--merge`` such a run's records go
into the earlier run's ``records.json`` (a fit it re-ran replaces the earlier
one, new fits are added) and its settings are appended to the earlier ones
(the committed records were made as seeds 0-4 and 5-9, then merged re-runs).

Each task is split once per seed into a development part and a test part
(stratified); the neural models hold out their own validation split (20%,
stratified, seeded) from the development part, and the scikit-learn reference
rows leave out exactly the same rows, so every method trains on the same data.
The test split is never used to choose anything: every method runs with
the same fixed settings (hidden size 128, AdamW lr 1e-3, batch 64, the task's
epoch count).
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import subprocess
import time
from pathlib import Path

import joblib
import sklearn
import torch

from sklearn_modeq import __version__

from .suite.evaluate import TRAIN_MISSING_RATE, Job, run_job
from .suite.methods import ABLATIONS, MAIN_METHODS
from .suite.report import write_report
from .suite.tasks import TASKS

RATES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
RESULTS = Path(__file__).parent / "results"

#: (tasks, seeds, ablation tasks, tasks also trained on incomplete data)
FULL = (
    list(TASKS),
    10,
    [
        "mfeat-2",
        "mfeat-3",
        "nutrimouse",
        "digits-2",
        "mfeat-pix+2noise",
        "digits-2+noise",
    ],
    ["mfeat-2", "mfeat-3", "digits-2"],
)
QUICK = (["mfeat-2", "nutrimouse"], 2, ["mfeat-2"], ["mfeat-2"])


def plan_jobs(
    tasks, n_seeds, ablation_tasks, missing_tasks, methods=None, first_seed=0
):
    """Every fit of the run; costly tasks first so parallel workers finish together.

    Seeds ``first_seed`` to ``first_seed + n_seeds - 1``: a later run can add
    seeds to an earlier one's records (``--first-seed``, then merge).
    """
    methods = list(MAIN_METHODS if methods is None else methods)
    jobs = []
    for task in tasks:
        for seed in range(first_seed, first_seed + n_seeds):
            jobs += [Job(task, seed, m, 0.0, RATES) for m in methods]
            if task in ablation_tasks:
                jobs += [Job(task, seed, m, 0.0) for m in ABLATIONS]
            if task in missing_tasks:
                jobs += [Job(task, seed, m, TRAIN_MISSING_RATE, RATES) for m in methods]
    cost = {"mfeat-6": 0, "mfeat-3": 1, "mfeat-pix+2noise": 1, "digits-2+noise": 1}
    return sorted(jobs, key=lambda j: cost.get(j.task, 2))


def record_key(record: dict) -> tuple:
    """What identifies a fit of the suite: task, seed, method, training missing rate."""
    return record["task"], record["seed"], record["method"], record["train_missing"]


def merge_records(earlier: list, later: list) -> list:
    """``earlier`` with every fit that ``later`` re-ran replaced in place, and the
    fits only ``later`` has (e.g. new seeds) appended."""
    replacement = {record_key(r): r for r in later}
    merged = [replacement.pop(record_key(r), r) for r in earlier]
    return merged + [r for r in later if record_key(r) in replacement]


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="two tasks, two seeds, fewer epochs: a few minutes",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument(
        "--seeds", type=int, default=None, help="override the seed count"
    )
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="first seed of the run (seeds first..first+count-1)",
    )
    parser.add_argument(
        "--tasks", default=None, help=f"comma-separated subset of {', '.join(TASKS)}"
    )
    parser.add_argument(
        "--methods", default=None, help="comma-separated subset of methods"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite results.md and the plots from the output folder's records.json",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="merge this run's fits into the output folder's records.json (re-run "
        "fits replace theirs, new ones are added) instead of replacing the file",
    )
    args = parser.parse_args(argv)

    tasks, n_seeds, ablation_tasks, missing_tasks = QUICK if args.quick else FULL
    if args.tasks:
        tasks = args.tasks.split(",")
        unknown = sorted(set(tasks) - set(TASKS))
        if unknown:
            parser.error(f"unknown tasks {unknown}; choose from {list(TASKS)}")
    n_seeds = args.seeds or n_seeds
    methods = args.methods.split(",") if args.methods else None
    if methods and set(methods) - set(MAIN_METHODS):
        parser.error(
            f"unknown methods {sorted(set(methods) - set(MAIN_METHODS))}; "
            f"choose from {MAIN_METHODS}"
        )
    out = args.out or RESULTS / ("suite-quick" if args.quick else "suite")
    if args.merge and not (out / "records.json").exists():
        parser.error(f"--merge: there is no {out / 'records.json'} to merge into")
    report = functools.partial(
        write_report,
        out=out,
        main_methods=[
            m for m in MAIN_METHODS if not methods or args.merge or m in methods
        ],
        ablation_methods=list(ABLATIONS),
        title="Benchmark suite" + (" (quick)" if args.quick else ""),
    )
    if args.report_only:
        settings = json.loads((out / "settings.json").read_text())["settings"]
        return report(json.loads((out / "records.json").read_text()), settings=settings)
    jobs = plan_jobs(
        tasks, n_seeds, ablation_tasks, missing_tasks, methods, args.first_seed
    )
    print(
        f"{len(jobs)} fits on {len(tasks)} tasks x {n_seeds} seeds, n_jobs={args.n_jobs}",
        flush=True,
    )

    tic = time.perf_counter()
    records = joblib.Parallel(n_jobs=args.n_jobs, verbose=5 if not args.quick else 0)(
        joblib.delayed(run_job)(job, quick=args.quick) for job in jobs
    )
    elapsed = time.perf_counter() - tic
    settings = (
        f"{len(jobs)} fits, {n_seeds} seeds, {elapsed / 60:.1f} min on "
        f"{joblib.cpu_count()} CPU cores with n_jobs={args.n_jobs} "
        f"({platform.processor() or platform.machine()}); sklearn_modeq {__version__} "
        f"(commit {_commit()}), "
        f"torch {torch.__version__}, scikit-learn {sklearn.__version__}."
        + (" Quick mode: few epochs, numbers are not meaningful." if args.quick else "")
    )
    if args.merge:
        earlier = json.loads((out / "settings.json").read_text())["settings"]
        settings = (
            f"{earlier} Then merged in, replacing the fits it re-ran ({len(jobs)}: "
            f"tasks {','.join(tasks)}; methods {','.join(methods or MAIN_METHODS)}): "
            f"{settings}"
        )
        records = merge_records(json.loads((out / "records.json").read_text()), records)
    out.mkdir(parents=True, exist_ok=True)
    (out / "records.json").write_text(json.dumps(records, indent=1))
    (out / "settings.json").write_text(json.dumps({"settings": settings}))
    path = report(records, settings=settings)
    print(path.read_text().split("## Table 2")[0])
    print(f"wrote {path} in {elapsed:.0f} s")
    return path


if __name__ == "__main__":
    main()
