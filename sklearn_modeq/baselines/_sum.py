"""SumClassifier: per-modality heads, logits summed over present modalities."""

from __future__ import annotations

from .._training import ModalityNet
from ..nn.baselines import SumFusion
from ._common import BaselineClassifier, document


@document
class SumClassifier(BaselineClassifier):
    """Joint training of per-modality linear heads whose logits are summed.

    Every modality has its adapter and its own linear head; the fused logits
    are the sum of the heads' logits over the modalities present in the
    sample, trained jointly with cross-entropy (the "Sum" row of the paper's
    Table 1).

    Parameters
    ----------
    {common_parameters}

    Attributes
    ----------
    {common_attributes}

    See Also
    --------
    ConcatClassifier : One head on concatenated features.
    LateFusionClassifier : Per-modality classifiers trained separately.

    Notes
    -----
    {common_notes} Restricted to one modality, the model is that modality's
    head.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modeq.baselines import SumClassifier
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randint(0, 2, 60)
    >>> X = {{"audio": y[:, None] + rng.normal(size=(60, 4)),
    ...      "visual": rng.normal(size=(60, 3))}}
    >>> clf = SumClassifier(hidden_size=8, max_epochs=3, random_state=0).fit(X, y)
    >>> clf.predict(X).shape
    (60,)
    """

    _net_class = ModalityNet
    _module_class = SumFusion
