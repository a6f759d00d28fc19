"""LateFusionClassifier: modalities trained alone, probabilities averaged."""

from __future__ import annotations

from .._training import ModalityNet
from ..nn.baselines import LateFusion
from ._common import BaselineClassifier, batch_tensors, document, masked_cross_entropy


class LateFusionNet(ModalityNet):
    """Trains each modality's classifier on its own cross-entropy.

    The loss is the sum over modalities of each unimodal cross-entropy (on the
    samples that have the modality). The classifiers share no parameter, so this
    is the same as training them one by one on the same batches.
    """

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        inputs, y, weights = batch_tensors(self, batch)
        feats, present = self.module_.encode(inputs)
        z = self.module_.unimodal_logits(feats)
        loss = sum(
            masked_cross_entropy(z[m], y, weights, present[:, m]) for m in range(len(z))
        )
        loss.backward()
        return {"loss": loss, "y_pred": self.module_.fuse(feats, present).detach()}


@document
class LateFusionClassifier(BaselineClassifier):
    """Per-modality classifiers trained separately, probabilities averaged.

    Each modality has its adapter and linear head, trained only on its own
    cross-entropy. Prediction averages the class probabilities over the
    modalities present in the sample (the "Late Fusion" row of the paper's
    Table 1).

    Parameters
    ----------
    {common_parameters}

    Attributes
    ----------
    {common_attributes}

    See Also
    --------
    SumClassifier : Per-modality heads trained jointly through summed logits.

    Notes
    -----
    {common_notes} Restricted to one modality, the model is that modality's
    classifier, exactly as trained.

    The reported training loss is the sum of the unimodal losses; the validation
    loss is the cross-entropy of the averaged probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modeq.baselines import LateFusionClassifier
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randint(0, 2, 60)
    >>> X = {{"audio": y[:, None] + rng.normal(size=(60, 4)),
    ...      "visual": rng.normal(size=(60, 3))}}
    >>> clf = LateFusionClassifier(hidden_size=8, max_epochs=3, random_state=0)
    >>> bool(np.allclose(clf.fit(X, y).predict_proba(X).sum(axis=1), 1))
    True
    """

    _net_class = LateFusionNet
    _module_class = LateFusion
