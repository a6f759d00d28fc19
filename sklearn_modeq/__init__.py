"""Shapley-guided alternating training for imbalanced multimodal classification.

Estimators on precomputed embeddings (one 2-D array per modality) that follow
scikit-learn's conventions and train through skorch/PyTorch.
"""

from . import metrics
from ._data import SliceDict
from .classifier import ShapleyAlternatingClassifier

__version__ = "0.1.0"

__all__ = ["ShapleyAlternatingClassifier", "SliceDict", "metrics", "__version__"]
