"""OGMGEClassifier: on-the-fly gradient modulation with generalisation enhancement."""

from __future__ import annotations

from numbers import Real

import torch
from sklearn.utils._param_validation import Interval

from .._training import ModalityNet, weighted_cross_entropy
from ..nn.baselines import ConcatFusion, ogm_coefficients
from ._common import BaselineClassifier, batch_tensors, document


class OGMGENet(ModalityNet):
    """Joint training whose adapter gradients are modulated per modality.

    Parameters
    ----------
    alpha : float
        Modulation strength.
    gaussian_noise : bool
        Add the generalisation-enhancement noise to the adapter gradients.
    **kwargs
        Passed to :class:`ModalityNet`.
    """

    def __init__(self, *args, alpha=0.5, gaussian_noise=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha = alpha
        self.gaussian_noise = gaussian_noise

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        inputs, y, weights = batch_tensors(self, batch)
        feats, present = self.module_.encode(inputs)
        logits = self.module_.fuse(feats, present)
        loss = weighted_cross_entropy(logits, y, weights)
        loss.backward()
        with torch.no_grad():
            z = self.module_.unimodal_logits([f.detach() for f in feats])
            coefficients = ogm_coefficients(z, y, present, self.alpha)
            self.modulate(coefficients)
        self.history.record_batch("ogm_coefficients", coefficients.tolist())
        return {"loss": loss, "y_pred": logits}

    @torch.no_grad()
    def modulate(self, coefficients: torch.Tensor) -> None:
        """Scale each adapter's gradients by its coefficient (+ GE noise)."""
        for adapter, k in zip(self.module_.adapters, coefficients):
            for param in adapter.parameters():
                if param.grad is None:
                    continue
                grad = param.grad
                noise_std = float(grad.std()) if grad.numel() > 1 else 0.0
                grad.mul_(k)
                if self.gaussian_noise and noise_std > 0:
                    grad.add_(torch.randn_like(grad) * noise_std)


@document
class OGMGEClassifier(BaselineClassifier):
    """Concat fusion trained with on-the-fly gradient modulation (OGM-GE).

    The model is :class:`ConcatClassifier`'s. At every training step each
    modality's contribution to the fused logits, ``W_m f_m + b / n``, is scored
    by its mean softmax probability of the true class; a modality that scores
    above the mean of the others has its adapter gradients scaled down by
    ``1 - tanh(alpha * (rho - 1))`` (rho = its score over the others' mean), and
    Gaussian noise with the gradient's own standard deviation is added to every
    adapter gradient (generalisation enhancement). Peng et al., CVPR 2022.

    Parameters
    ----------
    alpha : float, default=0.5
        Modulation strength (the original tunes it per dataset in about
        [0.1, 1]).
    gaussian_noise : bool, default=True
        Add the generalisation-enhancement noise; False gives plain OGM.
    {common_parameters}

    Attributes
    ----------
    {common_attributes}

    See Also
    --------
    ConcatClassifier : The same model without modulation.

    Notes
    -----
    Generalisation to ``n`` modalities: the discrepancy ratio of modality ``m``
    is its score over the *mean score of the other modalities* (for two
    modalities exactly the original ``s_a / s_v``), scores are averaged over the
    batch rows that have the modality, and a modality absent from the whole
    batch keeps coefficient 1 and is left out of the others' means.

    Modulated parameters: all parameters (weights and biases) of the dominant
    modality's adapter, which plays the role of the original's encoder. The
    shared head is not modulated, as in the original. The GE noise goes to every
    adapter (coefficient 1 for the non-dominant ones), with the standard
    deviation of that parameter's unmodulated gradient, as in the original. The
    original modulates only during a range of epochs; here it acts throughout.

    The coefficients of every batch are in ``history_`` (batch records
    ``ogm_coefficients``).

    {common_notes}

    References
    ----------
    .. [1] X. Peng, Y. Wei, A. Deng, D. Wang, D. Hu. "Balanced Multimodal
       Learning via On-the-fly Gradient Modulation", CVPR 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modeq.baselines import OGMGEClassifier
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randint(0, 2, 60)
    >>> X = {{"audio": y[:, None] + rng.normal(size=(60, 4)),
    ...      "visual": rng.normal(size=(60, 3))}}
    >>> clf = OGMGEClassifier(hidden_size=8, max_epochs=3, random_state=0).fit(X, y)
    >>> clf.predict(X).shape
    (60,)
    """

    _parameter_constraints: dict = {
        **BaselineClassifier._parameter_constraints,
        "alpha": [Interval(Real, 0, None, closed="left")],
        "gaussian_noise": ["boolean"],
    }

    _net_class = OGMGENet
    _module_class = ConcatFusion

    def __init__(
        self,
        *,
        alpha=0.5,
        gaussian_noise=True,
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
        self.alpha = alpha
        self.gaussian_noise = gaussian_noise

    def _net_params(self):
        return {"alpha": self.alpha, "gaussian_noise": self.gaussian_noise}
