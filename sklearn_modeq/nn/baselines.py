"""Torch models of the baselines: the same adapters, different fusions and heads.

Every model takes the modalities as keyword arguments (``forward(**inputs)``),
treats an all-NaN row as an absent modality for that sample and exposes
``subset_logits(inputs, subsets)``, the model restricted to each coalition of
modalities (the others treated as absent for every sample). That is how the
unimodal accuracy, Shapley values and EDM of every method are read, the same way
as for :class:`~sklearn_modeq.nn.ModalityChainNet`.

Subclasses of :class:`FusionNet` only define ``fuse(feats, use)``: the fused
logits from the adapter outputs, using for each sample only the modalities
flagged in ``use`` (batch, n_modalities).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .adapter import ModalityAdapter
from .chain import StepOutput

__all__ = [
    "ConcatFusion",
    "FusionNet",
    "LateFusion",
    "OrthogonalFusion",
    "SharedHeadFusion",
    "SumFusion",
    "lipschitz_constants",
    "ogm_coefficients",
    "pairwise_info_nce",
]


class FusionNet(nn.Module, abc.ABC):
    """Per-modality adapters followed by a fusion; base of the baseline models.

    Parameters
    ----------
    modalities : sequence of str
        Modality names, in declaration order; ``forward`` takes them as keywords.
    input_dims : sequence of int
        Embedding dimension of each modality.
    n_classes : int
        Number of classes.
    hidden_size : int, default=128
        Output size of every adapter.
    adapter_layers : int, default=1
        Linear -> ReLU blocks per adapter.
    dropout : float, default=0.0
        Dropout in the adapters.
    """

    def __init__(
        self,
        modalities: Sequence[str],
        input_dims: Sequence[int],
        n_classes: int,
        hidden_size: int = 128,
        adapter_layers: int = 1,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.modalities = list(modalities)
        self.n_classes = n_classes
        self.hidden_size = hidden_size
        self.adapters = nn.ModuleList(
            ModalityAdapter(d, hidden_size, adapter_layers, dropout) for d in input_dims
        )

    def encode(self, inputs: Mapping[str, torch.Tensor]):
        """Adapter outputs of every modality and which ones are present.

        Returns
        -------
        feats : list of Tensor of shape (batch, hidden_size)
            Indexed by modality; rows of absent modalities are the adapter's
            output on zeros and must be ignored through ``present``.
        present : Tensor of shape (batch, n_modalities), bool
        """
        xs = [inputs[name] for name in self.modalities]
        present = torch.stack([~torch.isnan(x[:, 0]) for x in xs], dim=1)
        feats = [
            adapter(torch.nan_to_num(x, nan=0.0))
            for adapter, x in zip(self.adapters, xs)
        ]
        return feats, present

    @abc.abstractmethod
    def fuse(self, feats, use: torch.Tensor) -> torch.Tensor:
        """Fused logits (batch, n_classes) from the modalities flagged in ``use``."""

    def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
        feats, present = self.encode(inputs)
        return self.fuse(feats, present)

    def subset_logits(self, inputs, subsets: Sequence[tuple[int, ...]]):
        """Logits of the model restricted to each coalition of modalities.

        The adapters run once; only the fusion is repeated per coalition.

        Returns
        -------
        logits : Tensor of shape (n_subsets, batch, n_classes)
        covered : Tensor of shape (n_subsets, batch), bool
            False where a sample has none of the coalition's modalities.
        """
        feats, present = self.encode(inputs)
        n = len(self.modalities)
        logits, covered = [], []
        for subset in subsets:
            member = torch.zeros(n, dtype=torch.bool, device=present.device)
            member[list(subset)] = True
            use = present & member
            logits.append(self.fuse(feats, use))
            covered.append(use.any(dim=1))
        return torch.stack(logits), torch.stack(covered)


class ConcatFusion(FusionNet):
    """Concatenated adapter outputs (absent modality = zeros) -> one linear head.

    The head ``W [f_1; ...; f_n] + b`` splits into per-modality blocks, so the
    contribution of modality ``m`` alone is ``W_m f_m + b / n``
    (:meth:`unimodal_logits`, the quantity OGM-GE compares across modalities).
    """

    def __init__(self, modalities, input_dims, n_classes, hidden_size=128, **kwargs):
        super().__init__(modalities, input_dims, n_classes, hidden_size, **kwargs)
        self.head = nn.Linear(len(self.modalities) * hidden_size, n_classes)

    def fuse(self, feats, use):
        stacked = torch.cat([f * use[:, m, None] for m, f in enumerate(feats)], dim=1)
        return self.head(stacked)

    def unimodal_logits(self, feats) -> torch.Tensor:
        """``W_m f_m + b / n`` for every modality, shape (n, batch, n_classes)."""
        n, h = len(self.modalities), self.hidden_size
        blocks = self.head.weight.split(h, dim=1)
        return torch.stack(
            [f @ w.T + self.head.bias / n for f, w in zip(feats, blocks)]
        )


class SumFusion(FusionNet):
    """One linear head per modality; logits summed over the present modalities."""

    def __init__(self, modalities, input_dims, n_classes, hidden_size=128, **kwargs):
        super().__init__(modalities, input_dims, n_classes, hidden_size, **kwargs)
        self.heads = nn.ModuleList(
            nn.Linear(hidden_size, n_classes) for _ in self.modalities
        )

    def unimodal_logits(self, feats) -> torch.Tensor:
        """Each modality's own head on its features, shape (n, batch, n_classes)."""
        return torch.stack([head(f) for head, f in zip(self.heads, feats)])

    def fuse(self, feats, use):
        z = self.unimodal_logits(feats)
        return (z * use.T[:, :, None]).sum(dim=0)


class LateFusion(SumFusion):
    """Per-modality classifiers whose probabilities are averaged over present ones.

    ``fuse`` returns the log of the averaged probabilities, so a softmax of the
    output gives back exactly that average.
    """

    def fuse(self, feats, use):
        proba = torch.softmax(self.unimodal_logits(feats), dim=2)
        weights = use.T[:, :, None].to(proba.dtype)
        mean = (proba * weights).sum(dim=0) / weights.sum(dim=0).clamp_min(1.0)
        return torch.log(mean.clamp_min(torch.finfo(mean.dtype).tiny))


def _entropy(logits: torch.Tensor) -> torch.Tensor:
    log_p = torch.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(dim=-1)


class SharedHeadFusion(FusionNet):
    """Adapters and one head shared by all modalities (MLA, Zhang et al. 2024).

    Training (:meth:`alternating_step`) passes one modality at a time through
    the shared head. At test time the unimodal logits are fused per sample with
    weights ``softmax(-entropy)`` over the present modalities (the less
    uncertain a modality's prediction, the larger its weight).

    The module also keeps, per modality, the running uncentred correlation
    ``E[f f^T]`` of the head inputs seen while training it (buffers
    ``owm_corr``, ``owm_count``), from which :meth:`projector` builds the
    orthogonal-weight-modification projector.

    Parameters
    ----------
    owm_alpha : float, default=1.0
        Regulariser of the projector, relative to the mean eigenvalue of the
        stored correlation (see :meth:`projector`); smaller projects harder.
    """

    def __init__(
        self,
        modalities,
        input_dims,
        n_classes,
        hidden_size=128,
        owm_alpha: float = 1.0,
        **kwargs,
    ):
        super().__init__(modalities, input_dims, n_classes, hidden_size, **kwargs)
        self.head = nn.Linear(hidden_size, n_classes)
        self.owm_alpha = owm_alpha
        n = len(self.modalities)
        self.register_buffer("owm_corr", torch.zeros(n, hidden_size, hidden_size))
        self.register_buffer("owm_count", torch.zeros(n, dtype=torch.long))
        self.last_input: torch.Tensor | None = None

    def unimodal_logits(self, feats) -> torch.Tensor:
        return torch.stack([self.head(f) for f in feats])

    def fuse(self, feats, use):
        z = self.unimodal_logits(feats)
        score = (-_entropy(z)).masked_fill(~use.T, float("-inf"))
        # samples without any used modality get uniform weights (and no meaning)
        score = torch.where(
            use.T.any(dim=0, keepdim=True), score, torch.zeros_like(score)
        )
        weights = torch.softmax(score, dim=0)
        return (weights[:, :, None] * z).sum(dim=0)

    def alternating_step(
        self, inputs, order: Sequence[int], k: int, carry=None, fusion_order=None
    ):
        """Shared-head logits of modality ``order[k]`` alone, on the rows that have it.

        The same interface as the chain's alternating step (one loss term; MLA
        carries nothing between steps and has no fusion term). The head input is
        kept in ``last_input`` for the projection step.

        Returns
        -------
        StepOutput
        """
        m = order[k]
        x = inputs[self.modalities[m]]
        rows = ~torch.isnan(x[:, 0])
        feats = self.adapters[m](x[rows])
        self.last_input = feats.detach()
        logits = self.head(feats)
        return StepOutput([(logits, rows)], None, logits)

    @torch.no_grad()
    def remember(self, m: int, feats: torch.Tensor) -> None:
        """Fold a batch of head inputs of modality ``m`` into its correlation."""
        if feats.shape[0] == 0:
            return
        count = int(self.owm_count[m])
        total = count + feats.shape[0]
        batch = feats.T @ feats
        self.owm_corr[m].mul_(count / total).add_(batch / total)
        self.owm_count[m] = total

    @torch.no_grad()
    def projector(self, m: int) -> torch.Tensor:
        """OWM projector for updating the head while training modality ``m``.

        ``P = (I + R / (alpha * s))^{-1}`` where ``R`` is the sum of the stored
        input correlations of the *other* modalities and ``s = trace(R) / h``:
        the closed form of OWM's recursive projector, ``P = alpha' (R +
        alpha' I)^{-1}``. ``P r`` is close to 0 for any direction ``r`` with
        large energy in the other modalities' inputs and close to ``r`` for
        directions they never use. Identity before anything is stored.
        """
        h = self.hidden_size
        eye = torch.eye(h, device=self.owm_corr.device, dtype=self.owm_corr.dtype)
        others = [
            k for k in range(len(self.modalities)) if k != m and self.owm_count[k]
        ]
        if not others:
            return eye
        corr = self.owm_corr[others].sum(dim=0)
        scale = corr.trace().clamp_min(1e-12) / h
        return torch.linalg.inv(eye + corr / (self.owm_alpha * scale))


def _orthonormal(z: torch.Tensor) -> torch.Tensor:
    """Gram-Schmidt of ``z``'s rows: orthonormal rows (columns if rows > columns).

    The QR factor is taken with a positive diagonal of ``R``, the unique
    factorisation of a full-rank matrix, which is continuous in ``z``. LAPACK's
    Householder QR picks the sign of each ``R_ii`` from a pivot entry instead,
    so a column of ``Q`` (a class score) flips sign whenever that entry crosses
    zero during training.
    """
    transpose = z.shape[0] <= z.shape[1]
    q, r = torch.linalg.qr(z.T if transpose else z)
    sign = torch.where(r.diagonal() < 0, -1.0, 1.0).to(q.dtype)
    q = q * sign
    return q.T if transpose else q


class OrthogonalFusion(FusionNet):
    """Orthogonal per-modality classifiers with integration weights (CRMT).

    Modality ``m`` scores ``z_m = W_m f_m`` with ``W_m`` (n_classes, h) having
    orthonormal rows (the Gram-Schmidt of a free matrix, ``_orthonormal``), and
    the fused logits are ``sum_m a_m * z_m + b`` over the present modalities
    with per-class integration weights ``a_m``. ``lipschitz`` (a buffer,
    (n_modalities, n_classes)) holds each unimodal score's Lipschitz constant
    with respect to its input, estimated after the first training stage.
    """

    def __init__(self, modalities, input_dims, n_classes, hidden_size=128, **kwargs):
        super().__init__(modalities, input_dims, n_classes, hidden_size, **kwargs)
        n = len(self.modalities)
        self.raw_weight = nn.Parameter(torch.empty(n, n_classes, hidden_size))
        nn.init.kaiming_uniform_(self.raw_weight, a=5**0.5)
        self.integration = nn.Parameter(torch.ones(n, n_classes))
        self.bias = nn.Parameter(torch.zeros(n_classes))
        self.register_buffer("lipschitz", torch.ones(n, n_classes))

    def orthogonal_weight(self, m: int) -> torch.Tensor:
        return _orthonormal(self.raw_weight[m])

    def unimodal_logits(self, feats) -> torch.Tensor:
        """``z_m = W_m f_m`` for every modality, shape (n, batch, n_classes)."""
        return torch.stack(
            [f @ self.orthogonal_weight(m).T for m, f in enumerate(feats)]
        )

    def fuse(self, feats, use):
        z = self.unimodal_logits(feats)
        weighted = z * self.integration[:, None, :] * use.T[:, :, None]
        return weighted.sum(dim=0) + self.bias


def ogm_coefficients(
    unimodal_logits: torch.Tensor,
    y: torch.Tensor,
    present: torch.Tensor,
    alpha: float,
) -> torch.Tensor:
    """OGM modulation coefficient of every modality (Peng et al. 2022, Eq. 10).

    The score of modality ``m`` is the mean softmax probability of the true class
    under its unimodal logits, over the samples that have it. Its discrepancy
    ratio is ``rho_m = s_m / mean_{k != m} s_k`` (for two modalities this is the
    paper's ``s_a / s_v``), and the coefficient is ``k_m = 1 - tanh(alpha *
    rho_m)`` when ``rho_m > 1`` (a modality that dominates the others), 1
    otherwise. As in the paper and the official code, ``k`` jumps from 1 to
    ``1 - tanh(alpha)`` as ``rho`` crosses 1.

    Parameters
    ----------
    unimodal_logits : Tensor of shape (n_modalities, batch, n_classes)
    y : Tensor of shape (batch,)
    present : Tensor of shape (batch, n_modalities), bool
    alpha : float

    Returns
    -------
    coefficients : Tensor of shape (n_modalities,)
    """
    proba = torch.softmax(unimodal_logits, dim=2)
    index = y.view(1, -1, 1).expand(proba.shape[0], -1, 1)
    true_class = proba.gather(2, index).squeeze(2)
    mask = present.T.to(true_class.dtype)
    counts = mask.sum(dim=1)
    scores = (true_class * mask).sum(dim=1) / counts.clamp_min(1.0)
    has = counts > 0
    coefficients = torch.ones_like(scores)
    n_has = int(has.sum())
    if n_has < 2:
        return coefficients
    total = (scores * has).sum()
    others = (total - scores) / (n_has - 1)
    ratio = scores / others.clamp_min(1e-12)
    modulated = torch.where(ratio > 1.0, 1.0 - torch.tanh(alpha * ratio), 1.0)
    return torch.where(has, modulated, coefficients)


def pairwise_info_nce(feats, present: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between every pair of modalities of the same samples.

    For each pair ``(i, j)`` the rows that have both modalities are matched:
    sample ``b``'s ``i``-features should be most similar (cosine / temperature)
    to its own ``j``-features among the batch, and vice versa. Averaged over
    the pairs with at least two such rows; 0 if there is none.
    """
    losses = []
    n = len(feats)
    for i in range(n):
        for j in range(i + 1, n):
            rows = present[:, i] & present[:, j]
            if int(rows.sum()) < 2:
                continue
            a = F.normalize(feats[i][rows], dim=1)
            b = F.normalize(feats[j][rows], dim=1)
            sim = a @ b.T / temperature
            target = torch.arange(sim.shape[0], device=sim.device)
            losses.append(
                0.5 * (F.cross_entropy(sim, target) + F.cross_entropy(sim.T, target))
            )
    if not losses:
        return feats[0].new_zeros(())
    return torch.stack(losses).mean()


def lipschitz_constants(module: OrthogonalFusion, batches) -> torch.Tensor:
    """Largest input-gradient norm of every unimodal class score over ``batches``.

    ``L[m, c] = max_x ||d z_{m,c} / d x_m||`` over the rows that have modality
    ``m``, an empirical Lipschitz constant of the score with respect to that
    modality's (standardised) embedding, as used by CRMT's certified bound.

    Parameters
    ----------
    batches : iterable of dict of str to Tensor
        Inputs of the module (NaN rows = absent).

    Returns
    -------
    L : Tensor of shape (n_modalities, n_classes)
    """
    n, c = len(module.modalities), module.n_classes
    result = torch.zeros(n, c)
    was_training = module.training
    module.eval()
    for inputs in batches:
        for m, name in enumerate(module.modalities):
            x = inputs[name]
            x = x[~torch.isnan(x[:, 0])].detach().requires_grad_(True)
            if x.shape[0] == 0:
                continue
            z = module.adapters[m](x) @ module.orthogonal_weight(m).T
            for k in range(c):
                (grad,) = torch.autograd.grad(z[:, k].sum(), x, retain_graph=k < c - 1)
                norm = grad.norm(dim=1).max().detach().cpu()
                result[m, k] = torch.maximum(result[m, k], norm)
    module.train(was_training)
    return result
