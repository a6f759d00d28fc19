"""Fit one model of the suite and measure it on its task's test split."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from sklearn_modeq.datasets import drop_modalities
from sklearn_modeq.metrics import (
    calibration_curve_bins,
    expected_calibration_error,
    subset_accuracies,
)
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
    robustness, ece, reliability = {}, {}, {}
    for k, rate in enumerate(job.test_rates):
        # the same dropped cells for every method of a (task, seed)
        X_missing = drop_modalities(X_test, rate, random_state=1000 * job.seed + k)
        proba = model.predict_proba(X_missing)
        predicted = model.classes_[np.argmax(proba, axis=1)]
        robustness[rate] = float(np.mean(predicted == y_test))
        ece[rate] = expected_calibration_error(y_test, proba, classes=model.classes_)
        if rate in (0.0, 0.5):
            bins = calibration_curve_bins(y_test, proba, classes=model.classes_)
            reliability[rate] = [np.nan_to_num(b, nan=-1.0).tolist() for b in bins]
    return {
        "accuracy": accuracy,
        "edm": result.edm,
        "robustness": robustness,
        "ece": ece,
        "reliability": reliability,
    }


def order_oracle(model, X_test, y_test) -> dict:
    """Per-sample oracle accuracies of a fitted ``Ours`` model (analysis only).

    The oracle picks, for each test sample, the best candidate *with the label*:
    an upper bound of per-sample weighting, never a method. ``orders`` is over
    the inference orders, ``candidates`` adds each modality alone.
    """
    from sklearn_modeq._inference import candidate_logits
    from sklearn_modeq.nn.combiner import candidate_groups

    module = model.net_.module_
    groups, _ = candidate_groups(module.orders, len(model.modalities_))
    logits, available, _, _ = candidate_logits(
        model.net_, model._validated(X_test), groups
    )
    truth = np.searchsorted(model.classes_, y_test)
    correct = (logits.argmax(-1).numpy() == truth) & available.numpy()
    k = len(module.orders)
    return {
        "orders": float(correct[:k].any(axis=0).mean()),
        "candidates": float(correct.any(axis=0).mean()),
        "n_orders": k,
    }


def run_job(job: Job, quick: bool = False) -> dict:
    """Fit ``job.method`` on ``job.task`` (seeded split) and measure it.

    ``quick`` cuts the epochs to an eighth: it checks the machinery, the
    numbers mean little. Runs with one torch thread (jobs run side by side,
    one per core) and restores the caller's setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run_job(job, quick)
    finally:
        torch.set_num_threads(threads)


def _run_job(job: Job, quick: bool) -> dict:
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
    if job.method == "Ours":
        # the same fitted model predicting other ways (Table 2, issue 12): the
        # default weighing without the Shapley gate, and the paper's two
        # inference modes (no gate either)
        record["oracle"] = order_oracle(model, X_test, y_test)
        model.set_params(shapley_gate=False)
        record["ungated"] = _measure(model, X_test, y_test, job)
        for mode in ("hybrid", "last"):
            model.set_params(inference_order=mode)
            record[f"{mode}_order" if mode == "last" else mode] = _measure(
                model, X_test, y_test, job
            )
    return record
