"""Shapley-guided alternating training for imbalanced multimodal classification.

Estimators on precomputed embeddings (one 2-D array per modality) that follow
scikit-learn's conventions and train through skorch/PyTorch.
"""

from . import baselines, metrics
from ._data import SliceDict
from .baselines import (
    ConcatClassifier,
    CRMTClassifier,
    LateFusionClassifier,
    LFMClassifier,
    MLAClassifier,
    OGMGEClassifier,
    SumClassifier,
)
from .classifier import ShapleyAlternatingClassifier

__version__ = "0.1.0"

__all__ = [
    "CRMTClassifier",
    "ConcatClassifier",
    "LFMClassifier",
    "LateFusionClassifier",
    "MLAClassifier",
    "OGMGEClassifier",
    "ShapleyAlternatingClassifier",
    "SliceDict",
    "SumClassifier",
    "baselines",
    "metrics",
    "__version__",
]
