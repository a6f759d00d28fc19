"""ConcatClassifier: joint training on concatenated adapter outputs."""

from __future__ import annotations

from .._training import ModalityNet
from ..nn.baselines import ConcatFusion
from ._common import BaselineClassifier, document


@document
class ConcatClassifier(BaselineClassifier):
    """Joint training of adapters and one linear head on their concatenation.

    Each modality's adapter output (zeros where the modality is absent) is
    concatenated and classified by one linear layer; everything is trained
    jointly with cross-entropy on the fused logits (the "Concat" row of the
    paper's Table 1).

    Parameters
    ----------
    {common_parameters}

    Attributes
    ----------
    {common_attributes}

    See Also
    --------
    SumClassifier : Per-modality heads with summed logits.
    OGMGEClassifier : The same model with gradient modulation.

    Notes
    -----
    {common_notes} Restricted to one modality, the model is its head block
    plus the bias, with the other blocks fed zeros.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modeq.baselines import ConcatClassifier
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randint(0, 2, 60)
    >>> X = {{"audio": y[:, None] + rng.normal(size=(60, 4)),
    ...      "visual": rng.normal(size=(60, 3))}}
    >>> clf = ConcatClassifier(hidden_size=8, max_epochs=3, lr=1e-2,
    ...                        random_state=0).fit(X, y)
    >>> clf.predict_proba(X).shape
    (60, 2)
    """

    _net_class = ModalityNet
    _module_class = ConcatFusion
