"""CRMTClassifier: certifiable robust multimodal training."""

from __future__ import annotations

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval

from .._data import SAMPLE_WEIGHT_KEY
from .._training import ModalityNet, weighted_cross_entropy
from ..nn.baselines import OrthogonalFusion, lipschitz_constants
from ._common import BaselineClassifier, batch_tensors, document


def unimodal_margin_loss(z, y, present) -> torch.Tensor:
    """Per-sample ``log sum_m sum_{k != y} exp(z_mk - z_my)`` (CRMT's margin term).

    Parameters
    ----------
    z : Tensor of shape (n_modalities, batch, n_classes)
    y : Tensor of shape (batch,)
    present : Tensor of shape (batch, n_modalities), bool

    Returns
    -------
    loss : Tensor of shape (batch,)
    """
    true = z.gather(2, y.view(1, -1, 1).expand(z.shape[0], -1, 1)).squeeze(2)
    others = torch.exp(torch.logsumexp(z, dim=2) - true) - 1.0
    return torch.log((others * present.T).sum(dim=0) + 1e-5)


def certified_margin(module: OrthogonalFusion, z, y, present) -> torch.Tensor:
    """Per-sample lower bound of the perturbation radius CRMT's stage 2 maximises.

    ``(sum_m a_my z_my - a_mk z_mk + b_y - b_k) / sqrt(sum_m (a_my L_my +
    a_mk L_mk)^2)`` with ``k`` the runner-up class, over the present
    modalities; only the integration weights ``a`` carry gradient.
    """
    a = module.integration
    use = present.T[:, :, None].to(z.dtype)
    bias = module.bias.detach()
    with torch.no_grad():
        fused = (z * a[:, None, :] * use).sum(dim=0) + bias
        runner_up = fused.scatter(1, y[:, None], float("-inf")).argmax(dim=1)
    rows = torch.arange(len(y), device=z.device)
    ay, ak = a[:, y], a[:, runner_up]
    zy, zk = z[:, rows, y], z[:, rows, runner_up]
    lip = module.lipschitz
    use = present.T.to(z.dtype)
    numer = ((ay * zy - ak * zk) * use).sum(dim=0) + bias[y] - bias[runner_up]
    denom = (((ay * lip[:, y] + ak * lip[:, runner_up]) * use) ** 2).sum(dim=0)
    return numer / denom.clamp_min(1e-12).sqrt()


class CRMTNet(ModalityNet):
    """Two-stage training: margin-regularised joint training, then integration.

    ``stage_`` is ``"margin"`` (cross-entropy + ``margin_weight`` x the unimodal
    margin term, every parameter trained) or ``"integration"`` (only the
    integration weights, maximising the certified margin).
    """

    def __init__(self, *args, margin_weight=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.margin_weight = margin_weight

    def initialize(self):
        self.stage_ = "margin"
        return super().initialize()

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        inputs, y, weights = batch_tensors(self, batch)
        module = self.module_
        feats, present = module.encode(inputs)
        if self.stage_ == "margin":
            z = module.unimodal_logits(feats)
            logits = module.fuse(feats, present)
            margin = unimodal_margin_loss(z, y, present)
            loss = weighted_cross_entropy(logits, y, weights) + self.margin_weight * (
                margin.mean() if weights is None else _weighted_mean(margin, weights)
            )
        else:
            with torch.no_grad():
                z = module.unimodal_logits(feats)
            bound = certified_margin(module, z, y, present)
            loss = -(
                bound.mean() if weights is None else _weighted_mean(bound, weights)
            )
            with torch.no_grad():
                logits = module.fuse(feats, present)
        loss.backward()
        return {"loss": loss, "y_pred": logits}


def _weighted_mean(values, weights):
    return (values * weights).sum() / weights.sum().clamp_min(1e-12)


@document
class CRMTClassifier(BaselineClassifier):
    """Certifiable robust multimodal training (CRMT) on embeddings.

    Each modality is scored by an orthogonal linear classifier on its adapter
    output, ``z_m = W_m f_m`` (orthonormal rows), and the fused logits are
    ``sum_m a_m * z_m + b`` over the present modalities with per-class
    integration weights ``a_m``. Stage 1 trains everything on the fused
    cross-entropy plus ``margin_weight`` times a term that enlarges every
    modality's unimodal margin. Stage 2 estimates each unimodal score's
    Lipschitz constant on the training split and then trains only ``a`` to
    maximise the certified-robustness bound (the smallest perturbation that can
    change the prediction). Yang et al., ICLR 2024.

    Parameters
    ----------
    margin_weight : float, default=1.0
        Weight ``rho`` of the unimodal margin term in stage 1.
    integration_epochs : int or None, default=None
        Epochs of stage 2, run after the ``max_epochs`` of stage 1 (with
        early stopping, on the restored best weights); None means
        ``max_epochs // 3`` as in the original; 0 skips stage 2.
    {common_parameters}

    Attributes
    ----------
    lipschitz_ : ndarray of shape (n_modalities, n_classes)
        Estimated Lipschitz constant of each unimodal class score (zeros
        without stage 2, which an interrupted stage 1 skips).
    {common_attributes}

    See Also
    --------
    ConcatClassifier : Joint training without the orthogonal heads and margins.

    Notes
    -----
    Adaptation to embeddings, and where this differs from the official code
    (GeWu-Lab/Certifiable-Robust-Multi-modal-Training):

    - The encoders are the adapters.
    - Orthogonal classifier: the paper's mutually orthonormal class rows, as
      the Gram-Schmidt of a free matrix (QR with a positive diagonal of ``R``,
      which is continuous in the free matrix). The official code normalises
      each class row on its own (one whitening group per class: rows centred
      and scaled to unit norm, not orthogonal to each other). A plain
      Householder QR must not be used: it flips the sign of a class score
      whenever a pivot entry crosses zero, and an earlier version of this
      estimator that did so varied by about 10 points across seeds.
    - Integration weights start at 1 (official: 0.1).
    - Lipschitz constants are the largest input-gradient norms over the
      training split (not the validation split) of each unimodal class score
      ``z_mk`` with respect to the standardised embedding, the paper's
      definition; the official code differentiates the fused logits, which
      include ``a_m``.
    - Stage 2 uses the estimator's AdamW at ``lr`` (only ``a`` gets gradients)
      for ``max_epochs // 3`` epochs; the official code uses a separate SGD
      (``lr * 0.03``, momentum 0.9, weight decay 0.01) for ``n_epochs // 3 -
      1`` epochs and keeps the checkpoint with the best validation accuracy
      over both stages.
    - ``margin_weight`` defaults to 1 (the official configuration uses 2).
    - Adversarial-training and mixup variants of CRMT are not implemented.

    {common_notes} Restricted to one modality, the model is ``a_m * z_m + b``.

    References
    ----------
    .. [1] Z. Yang, Y. Wei, C. Liang, D. Hu. "Quantifying and Enhancing
       Multi-modal Robustness with Modality Preference", ICLR 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modeq.baselines import CRMTClassifier
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randint(0, 2, 60)
    >>> X = {{"audio": y[:, None] + rng.normal(size=(60, 4)),
    ...      "visual": rng.normal(size=(60, 3))}}
    >>> clf = CRMTClassifier(hidden_size=8, max_epochs=3, random_state=0).fit(X, y)
    >>> clf.lipschitz_.shape
    (2, 2)
    """

    _parameter_constraints: dict = {
        **BaselineClassifier._parameter_constraints,
        "margin_weight": [Interval(Real, 0, None, closed="left")],
        "integration_epochs": [Interval(Integral, 0, None, closed="left"), None],
    }

    _net_class = CRMTNet
    _module_class = OrthogonalFusion

    def __init__(
        self,
        *,
        margin_weight=1.0,
        integration_epochs=None,
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
        self.margin_weight = margin_weight
        self.integration_epochs = integration_epochs

    def _net_params(self):
        return {"margin_weight": self.margin_weight}

    def _continue_fit(self, data, y):
        epochs = (
            self.max_epochs // 3
            if self.integration_epochs is None
            else self.integration_epochs
        )
        net = self.net_
        module = net.module_
        if epochs == 0 or self._interrupted():
            module.lipschitz.zero_()
            return
        dataset_train, _ = net.get_split_datasets(data, y)
        loader = net.get_iterator(dataset_train, training=False)
        batches = (
            {k: v.to(net.device) for k, v in xb.items() if k != SAMPLE_WEIGHT_KEY}
            for xb, _ in loader
        )
        module.lipschitz.copy_(lipschitz_constants(module, batches))
        net.stage_ = "integration"
        net.partial_fit(data, y, epochs=epochs)

    def _after_fit(self):
        self.lipschitz_ = self.net_.module_.lipschitz.detach().cpu().numpy().copy()
