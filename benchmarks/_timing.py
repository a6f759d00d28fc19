"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from sklearn_modeq import ShapleyAlternatingClassifier


def run_child(module: str, *args: str) -> dict:
    """Run ``python -m module --child *args`` in a fresh process and return the
    JSON object its last output line holds (what the child measured)."""
    out = subprocess.run(
        [sys.executable, "-m", module, "--child", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def best_time(fn, repeats: int) -> float:
    """Fastest of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return min(times)


class NoShapley(ShapleyAlternatingClassifier):
    """The estimator without its Shapley scheduler: the reference epoch time."""

    def _extra_callbacks(self, seed, y):
        return []

    def _after_fit(self):
        pass


def epoch_times(clf, skip_first=False) -> np.ndarray:
    """Seconds per epoch of a fitted estimator (training, validation, Shapley)."""
    history = clf.history_[1:] if skip_first else clf.history_
    seconds = np.asarray([row["dur"] for row in history])
    return seconds + np.asarray([row.get("shapley_dur", 0.0) for row in history])


def shapley_share(clf, X, y, skip_first=False, repeats=1) -> float:
    """Share of a fitted estimator's epoch time due to Shapley scheduling.

    ``1 - t_without / t_with`` with the median epoch times of ``clf`` and of the
    same fit (same parameters, data and seed) without the scheduler. The
    coalitions' predictions come out of the validation pass, so the
    ``shapley_dur`` record alone would understate the cost. With ``repeats > 1``
    both fits are repeated alternately and the fastest median of each is kept,
    which damps interference from the rest of the machine.
    """
    with_s = [np.median(epoch_times(clf, skip_first))]
    without = []
    for k in range(repeats):
        if k:
            refit = type(clf)(**clf.get_params()).fit(X, y)
            with_s.append(np.median(epoch_times(refit, skip_first)))
        fit = NoShapley(**clf.get_params()).fit(X, y)
        without.append(np.median(epoch_times(fit, skip_first)))
    return 1.0 - float(min(without) / min(with_s))
