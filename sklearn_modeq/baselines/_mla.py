"""MLAClassifier: alternating unimodal adaptation through a shared head."""

from __future__ import annotations

from numbers import Real

import torch
from sklearn.utils._param_validation import Interval

from .._training import AlternatingNet
from ..nn.baselines import SharedHeadFusion
from ._common import BaselineClassifier, document


class MLANet(AlternatingNet):
    """Alternating unimodal steps whose head updates are OWM-projected.

    Parameters
    ----------
    projection : bool
        Project the head's weight update after every modality's step.
    **kwargs
        Passed to :class:`AlternatingNet`.
    """

    def __init__(self, *args, projection=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.projection = projection

    def step_modality(self, modality: int) -> None:
        """Optimiser step, then ``dW <- dW P`` on the head weight, then remember.

        Projecting the *update* (not the gradient) keeps it orthogonal to the
        stored directions whatever the optimiser does with the gradient
        (AdamW rescales it per coordinate, which would undo a projected gradient).
        """
        module = self.module_
        weight = module.head.weight
        before = weight.detach().clone()
        project = module.projector(modality) if self.projection else None
        self.optimizer_.step()
        with torch.no_grad():
            if project is not None:
                weight.copy_(before + (weight - before) @ project)
            if module.last_input is not None:
                module.remember(modality, module.last_input)


@document
class MLAClassifier(BaselineClassifier):
    """Multimodal learning with alternating unimodal adaptation (MLA).

    One shared linear head serves all modalities. Every mini-batch takes one
    optimiser step per modality, in declaration order, on that modality's
    cross-entropy through the shared head (its adapter and the head are
    updated). The head's weight update while training modality ``m`` is
    projected away from the input directions the other modalities use
    (orthogonal weight modification), so learning one modality does not
    overwrite what the head learned for the others. At test time, each present
    modality's logits are weighted per sample by ``softmax(-entropy)`` of its
    prediction and summed. Zhang et al., CVPR 2024.

    Parameters
    ----------
    projection : bool, default=True
        Apply the OWM projection to the head's updates; False gives plain
        alternating training with a shared head.
    owm_alpha : float, default=1.0
        Regulariser of the projector ``P = (I + R / (owm_alpha * s))^{{-1}}``,
        where ``R`` is the sum of the other modalities' stored head-input
        correlations ``E[f f^T]`` and ``s`` their mean eigenvalue: directions
        with energy well above ``owm_alpha * s`` are projected out, weak ones
        kept. Smaller is stricter.
    {common_parameters}

    Attributes
    ----------
    {common_attributes}

    See Also
    --------
    ShapleyAlternatingClassifier : Alternating training in a Shapley-chosen
        order with a cross-modal memory.

    Notes
    -----
    Adaptation to embeddings: the encoders are the adapters. The projector is
    the closed form of OWM's recursive one, built from the running uncentred
    correlation of all head inputs seen while training each modality (buffers
    ``owm_corr``/``owm_count`` of ``net_.module_``), not from the batch means
    alone, so it protects every direction the other modalities use in
    proportion to its energy and never collapses to zero. Only the head's
    weight matrix is projected, not its bias. The projection is applied to the
    update after the AdamW step, so it really holds:
    ``(W_new - W_old) r ~ 0`` for every strongly used input direction ``r``
    of the other modalities.

    Test-time fusion weights are ``exp(-H_m) / sum_k exp(-H_k)`` over the
    sample's present modalities (``H`` the entropy of the modality's softmax),
    equal to the paper's ``exp(max H - H_m)`` normalisation. {common_notes}
    Restricted to one modality, the model is the shared head on that
    modality's features.

    References
    ----------
    .. [1] X. Zhang, J. Yoon, M. Bansal, H. Yao. "Multimodal Representation
       Learning by Alternating Unimodal Adaptation", CVPR 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_modeq.baselines import MLAClassifier
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randint(0, 2, 60)
    >>> X = {{"audio": y[:, None] + rng.normal(size=(60, 4)),
    ...      "visual": rng.normal(size=(60, 3))}}
    >>> clf = MLAClassifier(hidden_size=8, max_epochs=3, random_state=0).fit(X, y)
    >>> clf.predict(X).shape
    (60,)
    """

    _parameter_constraints: dict = {
        **BaselineClassifier._parameter_constraints,
        "projection": ["boolean"],
        "owm_alpha": [Interval(Real, 0, None, closed="neither")],
    }

    _net_class = MLANet
    _module_class = SharedHeadFusion

    def __init__(
        self,
        *,
        projection=True,
        owm_alpha=1.0,
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
        self.projection = projection
        self.owm_alpha = owm_alpha

    def _module_params(self):
        return {"owm_alpha": self.owm_alpha}

    def _net_params(self):
        return {"projection": self.projection}
