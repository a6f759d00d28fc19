"""LFMClassifier: label fitting integrated with cross-modal contrastive learning."""

from __future__ import annotations

from numbers import Real

from sklearn.utils._param_validation import Interval

from .._training import ModalityNet, weighted_cross_entropy
from ..nn.baselines import ConcatFusion, pairwise_info_nce
from ._common import BaselineClassifier, batch_tensors, document


class LFMNet(ModalityNet):
    """Joint training on ``w_t * CE + (1 - w_t) * InfoNCE`` with a scheduled ``w_t``.

    Parameters
    ----------
    temperature : float
        Temperature of the contrastive loss.
    label_weight_start, label_weight_end : float
        Weight of the classification loss at the first and the last epoch
        (linear in between).
    **kwargs
        Passed to :class:`ModalityNet`.
    """

    def __init__(
        self,
        *args,
        temperature=0.1,
        label_weight_start=1.0,
        label_weight_end=0.5,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.temperature = temperature
        self.label_weight_start = label_weight_start
        self.label_weight_end = label_weight_end

    def label_weight(self) -> float:
        """Weight of the classification loss in the current epoch."""
        epoch = max(len(self.history) - 1, 0)
        progress = epoch / max(self.max_epochs - 1, 1)
        start, end = self.label_weight_start, self.label_weight_end
        return start + (end - start) * min(progress, 1.0)

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        inputs, y, weights = batch_tensors(self, batch)
        feats, present = self.module_.encode(inputs)
        logits = self.module_.fuse(feats, present)
        w = self.label_weight()
        matching = pairwise_info_nce(feats, present, self.temperature)
        loss = w * weighted_cross_entropy(logits, y, weights) + (1 - w) * matching
        loss.backward()
        return {"loss": loss, "y_pred": logits}

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(net, dataset_train, dataset_valid, **kwargs)
        self.history.record("label_weight", self.label_weight())


@document
class LFMClassifier(BaselineClassifier):
    """Concat fusion trained with a dynamically weighted contrastive term (LFM).

    The model is :class:`ConcatClassifier`'s. The loss integrates supervised
    label fitting with unsupervised cross-modal matching,
    ``w_t * CE(fused) + (1 - w_t) * InfoNCE``, where the InfoNCE term pulls the
    adapter outputs of the same sample together across every pair of modalities
    and pushes other samples apart, and the weight of label fitting ``w_t``
    moves linearly from ``label_weight_start`` to ``label_weight_end`` over the
    epochs. Yang et al., NeurIPS 2024.

    Parameters
    ----------
    temperature : float, default=0.1
        Temperature of the contrastive (InfoNCE) loss on L2-normalised adapter
        outputs.
    label_weight_start : float, default=1.0
        Weight of the classification loss at the first epoch, in [0, 1].
    label_weight_end : float, default=0.5
        Weight of the classification loss at the last epoch (``max_epochs``).
    {common_parameters}

    Attributes
    ----------
    {common_attributes}

    See Also
    --------
    ConcatClassifier : The same model trained with cross-entropy only.

    Notes
    -----
    Adaptation: the paper offers a heuristic integration (a monotone schedule of
    the label-fitting weight) and a learning-based one (bi-level optimisation
    of the weight). Only the heuristic one is implemented, with a linear
    schedule whose end points are parameters; our reading of the paper is that
    the label-fitting weight decreases, the defaults. The contrastive term is
    computed on the adapter outputs (there is no separate projection head), for
    every pair of modalities over the rows that have both; with more than two
    modalities the pairs are averaged. The per-epoch weight is recorded in
    ``history_`` (``label_weight``). {common_notes}

    References
    ----------
    .. [1] Y. Yang, F. Wan, Q.-Y. Jiang, Y. Xu. "Facilitating Multimodal
       Classification via Dynamically Learning Modality Gap", NeurIPS 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modeq.baselines import LFMClassifier
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randint(0, 2, 60)
    >>> X = {{"audio": y[:, None] + rng.normal(size=(60, 4)),
    ...      "visual": rng.normal(size=(60, 3))}}
    >>> clf = LFMClassifier(hidden_size=8, max_epochs=3, random_state=0).fit(X, y)
    >>> clf.predict(X).shape
    (60,)
    """

    _parameter_constraints: dict = {
        **BaselineClassifier._parameter_constraints,
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "label_weight_start": [Interval(Real, 0, 1, closed="both")],
        "label_weight_end": [Interval(Real, 0, 1, closed="both")],
    }

    _net_class = LFMNet
    _module_class = ConcatFusion

    def __init__(
        self,
        *,
        temperature=0.1,
        label_weight_start=1.0,
        label_weight_end=0.5,
        hidden_size=128,
        lr=1e-4,
        max_epochs=100,
        batch_size=64,
        weight_decay=0.01,
        adapter_layers=1,
        dropout=0.0,
        standardize=True,
        validation_fraction=0.2,
        early_stopping=False,
        n_iter_no_change=10,
        random_state=None,
        verbose=0,
        device="cpu",
    ):
        super().__init__(
            hidden_size=hidden_size,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            weight_decay=weight_decay,
            adapter_layers=adapter_layers,
            dropout=dropout,
            standardize=standardize,
            validation_fraction=validation_fraction,
            early_stopping=early_stopping,
            n_iter_no_change=n_iter_no_change,
            random_state=random_state,
            verbose=verbose,
            device=device,
        )
        self.temperature = temperature
        self.label_weight_start = label_weight_start
        self.label_weight_end = label_weight_end

    def _net_params(self):
        return {
            "temperature": self.temperature,
            "label_weight_start": self.label_weight_start,
            "label_weight_end": self.label_weight_end,
        }
