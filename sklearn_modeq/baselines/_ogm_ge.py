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
        Add the generalisation-enhancement noise to the modulated gradients.
    modulation_ends : float
        Modulate during the epochs whose 0-based index is at most
        ``modulation_ends * max_epochs``.
    **kwargs
        Passed to :class:`ModalityNet`.
    """

    def __init__(
        self, *args, alpha=0.5, gaussian_noise=True, modulation_ends=0.5, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.alpha = alpha
        self.gaussian_noise = gaussian_noise
        self.modulation_ends = modulation_ends

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        inputs, y, weights = batch_tensors(self, batch)
        feats, present = self.module_.encode(inputs)
        logits = self.module_.fuse(feats, present)
        loss = weighted_cross_entropy(logits, y, weights)
        loss.backward()
        epoch = len(self.history) - 1
        if epoch <= self.modulation_ends * self.max_epochs:
            with torch.no_grad():
                z = self.module_.unimodal_logits([f.detach() for f in feats])
                coefficients = ogm_coefficients(z, y, present, self.alpha)
                self.modulate(coefficients)
            self.history.record_batch("ogm_coefficients", coefficients.tolist())
        return {"loss": loss, "y_pred": logits}

    @torch.no_grad()
    def modulate(self, coefficients: torch.Tensor) -> None:
        """Scale each adapter's weight gradients by its coefficient (+ GE noise).

        Only weight matrices are touched (biases and the head are not). The
        noise has the standard deviation of the gradient before scaling.
        """
        for adapter, k in zip(self.module_.adapters, coefficients):
            for param in adapter.parameters():
                if param.grad is None or param.dim() < 2:
                    continue
                grad = param.grad
                std = (float(grad.std()) if grad.numel() > 1 else 0.0) + 1e-8
                grad.mul_(k)
                if self.gaussian_noise:
                    grad.add_(torch.randn_like(grad) * std)


@document
class OGMGEClassifier(BaselineClassifier):
    """Concat fusion trained with on-the-fly gradient modulation (OGM-GE).

    The model is :class:`ConcatClassifier`'s. At every training step each
    modality's share of the fused logits, ``W_m f_m + b / n``, is scored by its
    mean softmax probability of the true class; a modality whose score exceeds
    the mean score of the others (ratio ``rho > 1``) has the gradients of its
    adapter's weights scaled by ``1 - tanh(alpha * rho)``, and Gaussian noise
    with the standard deviation of each unscaled gradient is added to every
    adapter's weight gradients (generalisation enhancement, GE). Modulation
    runs during the first half of training by default. Peng et al., CVPR 2022.

    Parameters
    ----------
    alpha : float, default=0.5
        Modulation strength (the official code recommends 0.1 for VGGSound
        and 0.8 for CREMA-D).
    gaussian_noise : bool, default=True
        Add the generalisation-enhancement noise; False gives plain OGM.
    modulation_ends : float, default=0.5
        Modulate (and add the noise) during the epochs whose 0-based index is
        at most ``modulation_ends * max_epochs``; later epochs are plain joint
        training. 0.5 is the official default (epochs 0 to 50 of 100); 1.0
        modulates throughout.
    {common_parameters}

    Attributes
    ----------
    {common_attributes}

    See Also
    --------
    ConcatClassifier : The same model without modulation.

    Notes
    -----
    Adaptation of the official code (GeWu-Lab/OGM-GE_CVPR2022, ``main.py``):

    - Scores: the softmax probability of the true class under the modality's
      block of the concatenation head plus ``b / n`` (the official code adds
      half the bias for its two modalities), averaged over the batch rows that
      have the modality (the official code sums over the batch, which gives the
      same ratio on complete batches).
    - Ratio and coefficient (paper, Eq. 10): ``rho_m = s_m / mean_{{k != m}}
      s_k``; ``k_m = 1 - tanh(alpha * rho_m)`` if ``rho_m > 1``, else 1. For
      two modalities this is the official rule (exactly one modality slowed
      down), except at an exact tie, where the official code slows down its
      first modality and this one slows neither. With more modalities, every
      modality above the mean of the others is slowed down. A modality absent
      from the whole batch keeps coefficient 1 and is left out of the others'
      means.
    - Modulated parameters: the official code scales the 4-D gradients only,
      i.e. the convolution kernels of each modality's encoder (not biases,
      batch-norm parameters or the fusion head). Here: the weight matrices of
      each adapter's linear layers; biases and the shared head are untouched.
    - GE noise: at every modulated step, each of those weight gradients
      becomes ``k_m * g + N(0, (std(g) + 1e-8)^2)`` elementwise, for every
      modality (also those with ``k_m = 1``), with ``std(g)`` taken over the
      gradient *before* scaling, as the current official code does (an
      earlier revision of that code used the scaled gradient's std).
    - Optimiser: the official code uses SGD with momentum 0.9; here AdamW, as
      for every method of the library. Adam divides each step by a running
      gradient scale, so a coefficient that stays constant cancels out of the
      step; the modulation acts through its changes from step to step and,
      with GE, through the share of noise in the gradient.

    The coefficients of every modulated batch are in ``history_`` (batch
    records ``ogm_coefficients``).

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
        "modulation_ends": [Interval(Real, 0, 1, closed="both")],
    }

    _net_class = OGMGENet
    _module_class = ConcatFusion

    def __init__(
        self,
        *,
        alpha=0.5,
        gaussian_noise=True,
        modulation_ends=0.5,
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
        self.modulation_ends = modulation_ends

    def _net_params(self):
        return {
            "alpha": self.alpha,
            "gaussian_noise": self.gaussian_noise,
            "modulation_ends": self.modulation_ends,
        }
