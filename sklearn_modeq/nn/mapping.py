"""Thresholded cross-modal correlation mapping (paper Eq. 9-11, DESIGN section 3).

Our reading of Eq. 9-11. ``C`` is the Pearson correlation between the feature
columns of the predecessor ``X_i`` and the next modality ``X_j`` (centred over
the samples, then cosine), entries ``<= tau`` are zeroed, the diagonal is set
to 1 and each row is divided by its sum, so ``Xhat_j = X_j @ C.T`` is a
weighted average of ``X_j``'s features and stays on ``X_j``'s scale. Without
the centring, post-ReLU features of unrelated modalities have cosines around
0.3, above any ``tau`` of the paper, and without the row normalisation
``Xhat_j`` grows with the number of surviving entries (issue 11).

``C`` carries no gradient, so nothing is gained by using a noisy 64-sample
estimate of it while training: the correlation of a pair is a running average
over the training batches that use the pair (like BatchNorm's running
statistics) and the same thresholded matrix serves training and inference. A prediction therefore never depends on
the other samples of its batch, and inference reads a buffer without changing
anything (safe to share between threads).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def standardise_columns(x: torch.Tensor, eps=1e-8) -> torch.Tensor:
    """Columns centred over the first axis and scaled to unit norm (0 where a
    column is constant), so a product of two such matrices is a correlation."""
    x = x - x.mean(dim=0, keepdim=True)
    return x * (x * x).sum(dim=0, keepdim=True).clamp_min(eps * eps).rsqrt()


def correlation_matrix(xi: torch.Tensor, xj: torch.Tensor, eps=1e-8) -> torch.Tensor:
    """Pearson correlation between the feature columns of two batches (Eq. 9).

    Parameters
    ----------
    xi, xj : Tensor of shape (batch, h)
        Features of the preceding (weaker) and the next (stronger) modality.

    Returns
    -------
    C : Tensor of shape (h, h)
        ``C[r, q]`` is the correlation between column ``r`` of ``xi`` and column
        ``q`` of ``xj`` over the batch; 0 where a column is constant.
    """
    return standardise_columns(xi, eps).T @ standardise_columns(xj, eps)


def threshold_correlation(c: torch.Tensor, tau: float) -> torch.Tensor:
    """Zero the entries ``<= tau`` and set the diagonal to 1 (Eq. 10).

    Works on one ``(h, h)`` matrix or a stack ``(..., h, h)``.
    """
    c = F.threshold(c, tau, 0.0)  # keeps entries > tau
    c.diagonal(dim1=-2, dim2=-1).fill_(1.0)
    return c


def normalise_rows(c: torch.Tensor) -> torch.Tensor:
    """Rows divided by their sums, so ``x @ c.T`` averages features (sum >= 1)."""
    return c / c.sum(dim=-1, keepdim=True)


def mapping_matrix(c: torch.Tensor, tau: float) -> torch.Tensor:
    """The matrix ``Xhat_j = X_j @ M.T`` uses: thresholded, rows normalised."""
    return normalise_rows(threshold_correlation(c, tau))


def pairwise_correlations(
    feats: torch.Tensor, present: torch.Tensor, eps=1e-8
) -> tuple[torch.Tensor, torch.Tensor]:
    """Correlations between every pair of modalities over their co-present rows.

    Parameters
    ----------
    feats : Tensor of shape (batch, n, h)
        Features of every modality (any value where absent).
    present : Tensor of shape (batch, n), bool

    Returns
    -------
    corr : Tensor of shape (n, n, h, h)
        ``corr[i, j]`` as :func:`correlation_matrix` of ``feats[:, i]`` and
        ``feats[:, j]`` over the rows that have both modalities.
    counts : Tensor of shape (n, n)
        Number of rows that have both modalities.
    """
    batch, n, h = feats.shape
    if bool(present.all()):
        # every row has every modality: one standardisation, one product
        z = standardise_columns(feats, eps).reshape(batch, n * h)
        corr = (z.T @ z).view(n, h, n, h).permute(0, 2, 1, 3)
        counts = torch.full((n, n), float(batch), device=feats.device)
        return corr, counts
    p = present.to(feats.dtype)
    f = feats * p[:, :, None]  # absent rows contribute nothing to any sum
    counts = p.T @ p
    c = counts.clamp_min(1.0)
    # sums of modality i's features (and squares) over the rows that also have j
    s1 = torch.einsum("bih,bj->ijh", f, p) / c[:, :, None]
    s2 = torch.einsum("bih,bj->ijh", f * f, p) / c[:, :, None]
    var = (s2 - s1 * s1).clamp_min(0.0)
    cross = (f.reshape(batch, n * h).T @ f.reshape(batch, n * h)).view(n, h, n, h)
    cross = cross.permute(0, 2, 1, 3) / c[:, :, None, None]
    cov = cross - s1[:, :, :, None] * s1.transpose(0, 1)[:, :, None, :]
    scale = var[:, :, :, None] * var.transpose(0, 1)[:, :, None, :]
    return cov / scale.sqrt().clamp_min(eps), counts


def adjacent_pairs(*orders) -> list[tuple[int, int]]:
    """The ordered pairs ``(i, j)`` with ``i`` right before ``j`` in any of
    ``orders`` (sorted, without repeats)."""
    return sorted({pair for order in orders for pair in zip(order, order[1:])})


class CrossModalMapping(nn.Module):
    """Maps the next modality's features through the thresholded correlation.

    ``xhat_j = x_j @ M.T`` (Eq. 11) with ``M`` the thresholded, row-normalised
    running correlation of the ordered pair ``(i, j)``: column ``r`` of
    ``xhat_j`` averages the ``j``-features correlated above ``tau`` with
    ``i``-feature ``r``, itself included (unit diagonal).

    :meth:`update` folds a training batch into the running correlations of the
    pairs that batch uses (by default every pair) and remakes their matrices in
    ``maps`` at once, so every step and every evaluation only reads ``maps``.
    The first ``1 / momentum`` updates of a pair are a cumulative average, so
    the zero matrix it starts from (identity mapping) is forgotten at once.

    Parameters
    ----------
    n_modalities : int
        Number of modalities (one matrix per ordered pair).
    hidden_size : int
        Feature size ``h``.
    tau : float
        Correlation threshold in [0, 1).
    momentum : float, default=0.1
        Weight of the newest batch in the running average.
    """

    def __init__(self, n_modalities: int, hidden_size: int, tau: float, momentum=0.1):
        super().__init__()
        self.tau = tau
        self.momentum = momentum
        n, h = n_modalities, hidden_size
        self.register_buffer("running", torch.zeros(n, n, h, h))
        self.register_buffer("n_updates", torch.zeros(n, n, dtype=torch.long))
        self.register_buffer("maps", mapping_matrix(torch.zeros(n, n, h, h), tau))

    @torch.no_grad()
    def update(
        self,
        feats: Sequence[torch.Tensor],
        present: torch.Tensor,
        pairs: Sequence[tuple[int, int]] | None = None,
        complete: bool | None = None,
    ) -> None:
        """Fold one batch into the running correlations of ``pairs``.

        A pair is updated from the rows that have both of its modalities, when
        there are at least two. With every row complete, the correlations of
        the pairs alone are computed (``len(pairs) * h * h`` products per row
        rather than ``(n h)**2``).

        Parameters
        ----------
        feats : sequence of Tensor of shape (batch, h)
            Adapter outputs of every modality, in declaration order.
        present : Tensor of shape (batch, n), bool
        pairs : sequence of (int, int) or None
            Ordered pairs to update; None updates every pair.
        complete : bool or None
            Whether every row has every modality (checked when None).
        """
        n = len(feats)
        if pairs is None:
            pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
        if not pairs:
            return
        device = self.running.device
        rows, cols = (torch.tensor(c, device=device) for c in zip(*sorted(set(pairs))))
        stacked = torch.stack([f.detach() for f in feats], dim=1)
        if bool(present.all()) if complete is None else complete:
            if stacked.shape[0] < 2:
                return
            z = standardise_columns(stacked)
            # (pairs, h, batch) @ (pairs, batch, h)
            corr = torch.bmm(z[:, rows].permute(1, 2, 0), z[:, cols].transpose(0, 1))
        else:
            corr, counts = pairwise_correlations(stacked, present)
            seen = counts[rows, cols] >= 2
            rows, cols, corr = rows[seen], cols[seen], corr[rows, cols][seen]
            if not len(rows):
                return
        # the pairs as rows of flat (n * n, h, h) views: whole-slice gathers
        # and copies instead of a scatter over two index tensors
        pair = rows * n + cols
        h = self.running.shape[-1]
        counts = self.n_updates.view(-1).index_select(0, pair)
        weight = (1.0 / (counts + 1).to(corr.dtype)).clamp_min(self.momentum)
        running = self.running.view(-1, h, h).index_select(0, pair)
        running.lerp_(corr.to(running.dtype), weight[:, None, None])
        self.running.view(-1, h, h).index_copy_(0, pair, running)
        self.maps.view(-1, h, h).index_copy_(0, pair, mapping_matrix(running, self.tau))
        self.n_updates.view(-1).index_copy_(0, pair, counts + 1)

    def matrix(self, i: int, j: int) -> torch.Tensor:
        """The mapping matrix of the ordered pair ``(i, j)``.

        A view of ``maps``, not a copy: the next :meth:`update` writes into it,
        so a graph that used it must be back-propagated before that update
        (torch raises an in-place modification error otherwise), as every
        training step here does.
        """
        return self.maps[i, j]

    def forward(self, xj: torch.Tensor, i: int, j: int) -> torch.Tensor:
        """``xj`` (batch, h) mapped for the ordered pair ``(i, j)``."""
        return xj @ self.matrix(i, j).T
