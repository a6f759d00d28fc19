"""Every model the suite compares, built with the same settings per task.

The neural methods share the adapters, hidden size, optimiser, learning rate,
batch size and number of epochs; only the method differs. Two reference rows
are what a scikit-learn user would otherwise pick: logistic regression and an
MLP on the concatenated, mean-imputed features. Every row trains on the same
rows: the neural methods hold out a stratified validation split
(``VALIDATION_FRACTION`` of the development data, seeded by the run's seed) and
the reference rows leave out exactly that split.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from sklearn_modeq import ShapleyAlternatingClassifier
from sklearn_modeq._base import validation_split_rows
from sklearn_modeq.baselines import (
    ConcatClassifier,
    CRMTClassifier,
    LateFusionClassifier,
    LFMClassifier,
    MLAClassifier,
    OGMGEClassifier,
    SumClassifier,
)

HIDDEN_SIZE = 128
LEARNING_RATE = 1e-3
BATCH_SIZE = 64
#: Share of the development data every method holds out (the neural methods for
#: their validation loss and Shapley values; the reference rows do not use it).
VALIDATION_FRACTION = 0.2


class ConcatenatedFeatures(ClassifierMixin, BaseEstimator):
    """A scikit-learn classifier on the concatenated modalities, mean-imputed.

    An absent modality (all-NaN row, or a key missing at predict time) is
    replaced by its training mean, which is what a user without a multimodal
    library would do.

    Parameters
    ----------
    estimator : classifier
        Fitted on the standardised, imputed concatenation.
    validation_fraction : float, default=0.2
        Share of ``X`` left out of training: the validation split that an
        estimator of sklearn_modeq with the same ``validation_fraction`` and
        ``random_state`` holds out, so both train on the same rows.
    random_state : int, default=0
        Seed of that split (the neural methods' ``random_state``).

    Attributes
    ----------
    train_rows_ : ndarray of int
        Rows of ``X`` the estimator was fitted on.
    """

    def __init__(self, estimator, validation_fraction=0.2, random_state=0):
        self.estimator = estimator
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def fit(self, X, y):
        self.modalities_ = list(X)
        self.n_features_per_modality_ = {
            k: np.asarray(v).shape[1] for k, v in X.items()
        }
        self.train_rows_, _ = validation_split_rows(
            y, self.validation_fraction, self.random_state
        )
        self.pipeline_ = make_pipeline(
            SimpleImputer(strategy="mean", keep_empty_features=True),
            StandardScaler(),
            clone(self.estimator),
        )
        self.pipeline_.fit(
            self._concat(X)[self.train_rows_], np.asarray(y)[self.train_rows_]
        )
        self.classes_ = self.pipeline_.classes_
        _, counts = np.unique(y, return_counts=True)
        self.class_prior_ = counts / counts.sum()
        return self

    def _concat(self, X):
        n = len(next(iter(X.values())))
        return np.hstack(
            [
                np.asarray(X[m], dtype=float)
                if m in X
                else np.full((n, self.n_features_per_modality_[m]), np.nan)
                for m in self.modalities_
            ]
        )

    def predict_proba(self, X):
        check_is_fitted(self)
        return self.pipeline_.predict_proba(self._concat(X))

    def predict(self, X):
        check_is_fitted(self)
        return self.pipeline_.predict(self._concat(X))


def _neural(cls, epochs: int, seed: int, **params):
    # the same fixed epochs for every method: no early stopping, even where an
    # estimator's default would stop early
    return cls(
        hidden_size=HIDDEN_SIZE,
        lr=LEARNING_RATE,
        batch_size=BATCH_SIZE,
        max_epochs=epochs,
        validation_fraction=VALIDATION_FRACTION,
        early_stopping=False,
        random_state=seed,
        **params,
    )


#: Table-1 methods: name -> (estimator class or factory, extra parameters).
NEURAL = {
    "Concat": (ConcatClassifier, {}),
    "Sum": (SumClassifier, {}),
    "LateFusion": (LateFusionClassifier, {}),
    "OGM-GE": (OGMGEClassifier, {}),
    "MLA": (MLAClassifier, {}),
    "LFM": (LFMClassifier, {}),
    "CRMT": (CRMTClassifier, {}),
    "Ours": (ShapleyAlternatingClassifier, {}),
}

#: Table-2 variants of our estimator (the last-order row reuses the full model).
ABLATIONS = {
    # the paper's cross-modal mapping (tau 0.2), off in the default model
    "Ours with mapping": {"mapping": True},
    "Ours w/o memory": {"memory": False},
    "Ours random order": {"order": "random"},
    "Ours fixed order": {"order": "fixed"},
}

REFERENCES = ("LogisticRegression", "MLPClassifier")

MAIN_METHODS = [*REFERENCES, *NEURAL]


def make_method(name: str, epochs: int, seed: int):
    """A fresh, unfitted model for the suite's method ``name``."""
    if name == "LogisticRegression":
        return ConcatenatedFeatures(
            LogisticRegression(max_iter=2000),
            validation_fraction=VALIDATION_FRACTION,
            random_state=seed,
        )
    if name == "MLPClassifier":
        return ConcatenatedFeatures(
            MLPClassifier(
                hidden_layer_sizes=(HIDDEN_SIZE,),
                learning_rate_init=LEARNING_RATE,
                batch_size=BATCH_SIZE,
                max_iter=epochs,
                random_state=seed,
            ),
            validation_fraction=VALIDATION_FRACTION,
            random_state=seed,
        )
    if name in NEURAL:
        cls, params = NEURAL[name]
        return _neural(cls, epochs, seed, **params)
    if name in ABLATIONS:
        return _neural(ShapleyAlternatingClassifier, epochs, seed, **ABLATIONS[name])
    raise ValueError(f"unknown method {name!r}")
