"""The paper's baselines as estimators with the core estimator's interface.

Every class takes the same ``X`` (a dict of per-modality embeddings, all-NaN
rows for absent modalities), the same adapters and hidden size and the same
common parameters as :class:`~sklearn_modeq.ShapleyAlternatingClassifier`, so
one benchmark compares them all, and :mod:`sklearn_modeq.metrics` reads their
unimodal accuracy, Shapley values and EDM the same way.
"""

from ._concat import ConcatClassifier
from ._crmt import CRMTClassifier
from ._late_fusion import LateFusionClassifier
from ._lfm import LFMClassifier
from ._mla import MLAClassifier
from ._ogm_ge import OGMGEClassifier
from ._sum import SumClassifier

__all__ = [
    "CRMTClassifier",
    "ConcatClassifier",
    "LFMClassifier",
    "LateFusionClassifier",
    "MLAClassifier",
    "OGMGEClassifier",
    "SumClassifier",
]
