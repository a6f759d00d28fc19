"""Estimators and a small data set shared by the tests of every estimator."""

import numpy as np

from sklearn_modeq.baselines import (
    ConcatClassifier,
    CRMTClassifier,
    LateFusionClassifier,
    LFMClassifier,
    MLAClassifier,
    OGMGEClassifier,
    SumClassifier,
)

#: Every baseline estimator class, in the paper's order.
BASELINES = [
    ConcatClassifier,
    SumClassifier,
    LateFusionClassifier,
    OGMGEClassifier,
    MLAClassifier,
    LFMClassifier,
    CRMTClassifier,
]


def imbalanced(n=120, seed=0, strong=2.5, weak=0.4):
    """Two modalities: 'strong' separates the classes well, 'weak' barely."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 3
    X = {
        "strong": strong * rng.normal(size=(3, 6))[y] + rng.normal(size=(n, 6)),
        "weak": weak * rng.normal(size=(3, 5))[y] + rng.normal(size=(n, 5)),
    }
    return X, y


def small(cls, **kwargs):
    """``cls`` with a small, fast configuration (overridden by ``kwargs``)."""
    params = dict(hidden_size=8, max_epochs=3, lr=1e-2, random_state=0)
    if "combiner_cv" in cls().get_params():
        params["combiner_cv"] = None  # no cross-fitted combiner on toy data
    return cls(**{**params, **kwargs})
