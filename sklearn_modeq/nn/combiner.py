"""Per-sample weights over candidate predictions (beyond the paper, DESIGN section 5).

Hybrid-order inference (Algorithm 1) averages the chain over every order with
equal weight, yet the best order differs from sample to sample (the paper's
Fig. 5) and a modality that carries nothing can drag every order down. The
*candidates* here are the chain's states for each order of the inference
sample and for each modality alone; :class:`CandidateCombiner` weighs their
logits per sample by

``w_c(x) = softmax_c(bias[kind_c] + slope[kind_c] * confidence_c(x))``

over the candidates available to the sample (a modality's own candidate is
unavailable where it is absent), with ``confidence`` the negative normalised
entropy of the candidate's prediction (MLA weighs modalities by the same
quantity), and divides the weighted logits by a temperature that depends on
which modalities the sample has (issue 12: a sample with one weak modality is
calibrated differently from a complete one). Candidates of one kind (all
orders, or one modality alone) share their two parameters, so a few numbers are
fitted (:func:`fit_combiner`) on held-out data: stacking, never on the test
data. Because the head is linear, the weighted logits are the head of
the weighted state, which is what ``transform`` returns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def candidate_groups(orders, n_modalities: int):
    """The candidates: each inference order, then each modality alone.

    Parameters
    ----------
    orders : list of tuple of int
        The inference orders over all modalities.
    n_modalities : int

    Returns
    -------
    groups : list of list of tuple of int
        One group of orders per candidate, for the chain's ``group_states``.
    kinds : list of int
        Kind of each candidate: 0 for an order, ``1 + m`` for modality ``m`` alone.
    """
    groups = [[tuple(order)] for order in orders]
    groups += [[(m,)] for m in range(n_modalities)]
    kinds = [0] * len(orders) + [1 + m for m in range(n_modalities)]
    return groups, kinds


def confidence(logits: torch.Tensor) -> torch.Tensor:
    """Negative entropy of the softmax over the last axis, scaled to [-1, 0]."""
    logp = torch.log_softmax(logits, dim=-1)
    entropy = -(logp.exp() * logp).sum(dim=-1)
    return -entropy / math.log(logits.shape[-1])


#: Up to this many modalities the temperature is fitted per pattern of present
#: modalities (``2**n - 1`` of them); above, per number of present modalities.
MAX_PATTERN_MODALITIES = 4


def n_patterns(n_modalities: int) -> int:
    """Number of temperatures: one per presence pattern, or per count above."""
    if n_modalities <= MAX_PATTERN_MODALITIES:
        return 1 << n_modalities
    return n_modalities + 1


class CandidateCombiner(nn.Module):
    """Weighted sum of candidate logits, with a temperature per presence pattern.

    Parameters
    ----------
    kinds : sequence of int
        Kind of each candidate (candidates of a kind share bias and slope);
        kind ``1 + m`` is modality ``m`` alone, whose availability tells which
        modalities a sample has.
    prior_bias : sequence of float
        Starting bias of each kind; fitting is regularised towards it.
    """

    def __init__(self, kinds: Sequence[int], prior_bias: Sequence[float]):
        super().__init__()
        self.register_buffer("kinds", torch.as_tensor(list(kinds), dtype=torch.long))
        prior = torch.as_tensor(list(prior_bias), dtype=torch.float32)
        self.register_buffer("prior_bias", prior)
        self.bias = nn.Parameter(prior.clone())
        self.slope = nn.Parameter(torch.zeros_like(prior))
        # one temperature for every pattern, plus a correction per pattern
        self.log_temperature = nn.Parameter(torch.zeros(()))
        self.pattern_log_temperature = nn.Parameter(
            torch.zeros(n_patterns(len(prior) - 1))
        )

    def patterns(self, available: torch.Tensor) -> torch.Tensor:
        """Presence pattern of each sample (a bit mask, or the count above
        :data:`MAX_PATTERN_MODALITIES` modalities), shape (batch,)."""
        single = available[self.kinds > 0].long()  # (n_modalities, batch)
        n = single.shape[0]
        if n <= MAX_PATTERN_MODALITIES:
            bits = torch.arange(n, device=single.device)[:, None]
            return (single << bits).sum(dim=0)
        return single.sum(dim=0)

    def temperature(self, available: torch.Tensor, patterns=None) -> torch.Tensor:
        """Temperature of each sample's combined logits, shape (batch,).

        ``patterns`` (``self.patterns(available)``) may be passed when known.
        """
        patterns = self.patterns(available) if patterns is None else patterns
        log_t = self.log_temperature + self.pattern_log_temperature[patterns]
        return log_t.exp()

    def weights(
        self, logits: torch.Tensor, available: torch.Tensor, conf=None
    ) -> torch.Tensor:
        """Per-sample candidate weights, shape (n_candidates, batch), columns sum to 1.

        Parameters
        ----------
        logits : Tensor of shape (n_candidates, batch, n_classes)
        available : Tensor of shape (n_candidates, batch), bool
        conf : Tensor of shape (n_candidates, batch), default=None
            ``confidence(logits)``, when known.
        """
        conf = confidence(logits) if conf is None else conf
        return self.weights_from_confidence(conf.to(logits.dtype), available)

    def weights_from_confidence(
        self, conf: torch.Tensor, available: torch.Tensor
    ) -> torch.Tensor:
        """:meth:`weights` given ``conf``, in its dtype."""
        bias = self.bias[self.kinds].to(conf.dtype)[:, None]
        slope = self.slope[self.kinds].to(conf.dtype)[:, None]
        score = (bias + slope * conf).masked_fill(~available, float("-inf"))
        return torch.softmax(score, dim=0)

    def combine(self, values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``sum_c weights[c] * values[c]`` over the candidate axis."""
        return torch.einsum("cb,cb...->b...", weights.to(values.dtype), values)

    def forward(
        self, logits: torch.Tensor, available: torch.Tensor, conf=None, patterns=None
    ) -> torch.Tensor:
        """Combined logits, shape (batch, n_classes), temperature applied.

        ``conf`` and ``patterns`` (see :meth:`weights` and :meth:`temperature`)
        do not depend on the parameters: fitting computes them once.
        """
        combined = self.combine(logits, self.weights(logits, available, conf))
        temperature = self.temperature(available, patterns).to(logits.dtype)
        return combined / temperature[:, None]


def fit_combiner(
    logits: torch.Tensor,
    available: torch.Tensor,
    y: torch.Tensor,
    kinds: Sequence[int],
    prior_bias: Sequence[float],
    *,
    sample_weight: torch.Tensor | None = None,
    alpha: float = 1.0,
    max_iter: int = 100,
) -> CandidateCombiner:
    """Fit a :class:`CandidateCombiner` by penalised log-loss on held-out data.

    Minimises the (sample-weighted) mean negative log-likelihood of the combined
    prediction plus ``alpha / n_samples`` times the squared distance of the
    parameters from the prior (biases at ``prior_bias``, slopes 0, temperature
    1), with L-BFGS. With few samples the prior dominates.

    Parameters
    ----------
    logits : Tensor of shape (n_candidates, n_samples, n_classes)
    available : Tensor of shape (n_candidates, n_samples), bool
    y : Tensor of shape (n_samples,)
        Encoded labels.
    kinds, prior_bias : sequence
        As in :class:`CandidateCombiner`.
    sample_weight : Tensor of shape (n_samples,), default=None
    alpha : float, default=1.0
        Strength of the pull towards the prior.
    max_iter : int, default=100
        L-BFGS iterations.

    Returns
    -------
    combiner : CandidateCombiner
    """
    logits = logits.detach().float()
    combiner = CandidateCombiner(kinds, prior_bias).to(logits.device)
    n = logits.shape[1]
    weight = (
        torch.ones(n, device=logits.device)
        if sample_weight is None
        else sample_weight.to(logits.device).float()
    )
    weight = weight / weight.sum().clamp_min(1e-12)
    params = list(combiner.parameters())
    # what does not depend on the parameters, once instead of per evaluation
    conf, patterns = confidence(logits), combiner.patterns(available)
    by_class = logits.permute(2, 0, 1).contiguous()
    # a handful of parameters: gradients of 1e-5 are far below what the
    # held-out data can resolve
    optimizer = torch.optim.LBFGS(
        params,
        max_iter=max_iter,
        tolerance_grad=1e-5,
        tolerance_change=1e-7,
        line_search_fn="strong_wolfe",
    )

    def closure():
        optimizer.zero_grad()
        nll = _nll_classes_first(combiner, by_class, available, conf, patterns, y)
        penalty = (
            (combiner.bias - combiner.prior_bias).square().sum()
            + combiner.slope.square().sum()
            + combiner.log_temperature.square()
            + combiner.pattern_log_temperature.square().sum()
        )
        loss = (weight * nll).sum() + alpha / n * penalty
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    combiner.requires_grad_(False)
    return combiner


def _nll_classes_first(combiner, by_class, available, conf, patterns, y):
    """Per-sample negative log-likelihood of the combined prediction,
    ``F.cross_entropy(combiner(logits, available), y, reduction="none")``, from
    the logits laid out classes first: ``by_class`` of shape (n_classes,
    n_candidates, n_samples); ``conf`` and ``patterns`` as in ``forward``.

    The same values to float rounding, about three times faster (L-BFGS
    evaluates it some 30 times per fit): torch's CPU softmax over a last axis
    of a few classes is about ten times slower than over a leading one, and
    the weighted sum broadcasts over contiguous rows.
    """
    weights = combiner.weights_from_confidence(conf.to(by_class.dtype), available)
    combined = (by_class * weights).sum(dim=1)
    combined = combined / combiner.temperature(available, patterns).to(combined.dtype)
    return F.cross_entropy(combined[None], y[None], reduction="none")[0]
