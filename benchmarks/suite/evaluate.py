"""Fit one model of the suite and measure it on its task's test split."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from sklearn_modeq.datasets import drop_modalities
from sklearn_modeq.metrics import subset_accuracies
from sklearn_modeq.shapley import edm_from_accuracies

from .methods import make_method
from .tasks import TASKS

#: Share of modalities dropped at random from training samples for the
#: "trained on incomplete data" robustness runs.
TRAIN_MISSING_RATE = 0.3


@dataclass(frozen=True)
class Job:
    task: str
    seed: int
    method: str
    train_missing: float = 0.0
    test_rates: tuple = ()


def _measure(model, X_test, y_test, job: Job) -> dict:
    # every coalition once: unimodal and fused accuracy are among them
    names = list(X_test)
    subsets = subset_accuracies(model, X_test, y_test, modalities=names)
    accuracy = {name: subsets[1 << i] for i, name in enumerate(names)}
    accuracy["fused"] = subsets[(1 << len(names)) - 1]
    result = edm_from_accuracies(subsets, len(names), modalities=names)
    robustness = {}
    for k, rate in enumerate(job.test_rates):
        # the same dropped cells for every method of a (task, seed)
        X_missing = drop_modalities(X_test, rate, random_state=1000 * job.seed + k)
        robustness[rate] = float(np.mean(model.predict(X_missing) == y_test))
    return {"accuracy": accuracy, "edm": result.edm, "robustness": robustness}


def run_job(job: Job, quick: bool = False) -> dict:
    """Fit ``job.method`` on ``job.task`` (seeded split) and measure it.

    ``quick`` cuts the epochs to an eighth: it checks the machinery, the
    numbers mean little."""
    torch.set_num_threads(1)  # one job per core; jobs run side by side
    task = TASKS[job.task]
    X_dev, X_test, y_dev, y_test = task.split(job.seed)
    if job.train_missing:
        X_dev = drop_modalities(X_dev, job.train_missing, random_state=job.seed)
    epochs = max(5, task.epochs // 8) if quick else task.epochs
    model = make_method(job.method, epochs, job.seed)
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # MLPClassifier clips batch_size=64 on the tiny nutrimouse split
        warnings.filterwarnings("ignore", message="Got `batch_size`")
        model.fit(X_dev, y_dev)
    record = {
        "task": job.task,
        "seed": job.seed,
        "method": job.method,
        "train_missing": job.train_missing,
        "fit_s": time.perf_counter() - tic,
        "modalities": list(X_dev),
        **_measure(model, X_test, y_test, job),
    }
    if hasattr(model, "shapley_history_"):
        record["shapley_history"] = np.asarray(model.shapley_history_).tolist()
        record["order_history"] = [list(o) for o in model.order_history_]
    if job.method == "Ours" and not job.train_missing:
        # hybrid vs last-order inference on the same fitted model (Table 2)
        model.set_params(inference_order="last")
        record["last_order"] = _measure(model, X_test, y_test, job)
    return record
