"""Thresholded cross-modal correlation mapping (paper Eq. 9-11, DESIGN section 3)."""

from __future__ import annotations

import torch
from torch import nn


def correlation_matrix(xi: torch.Tensor, xj: torch.Tensor, eps=1e-8) -> torch.Tensor:
    """Cosine similarity between the feature columns of two batches (Eq. 9).

    Parameters
    ----------
    xi, xj : Tensor of shape (batch, h)
        Features of the preceding (weaker) and the next (stronger) modality.

    Returns
    -------
    C : Tensor of shape (h, h)
        ``C[r, q]`` is the cosine between column ``r`` of ``xi`` and column ``q``
        of ``xj`` over the batch.
    """
    ni = xi / xi.norm(dim=0, keepdim=True).clamp_min(eps)
    nj = xj / xj.norm(dim=0, keepdim=True).clamp_min(eps)
    return ni.T @ nj


def threshold_correlation(c: torch.Tensor, tau: float) -> torch.Tensor:
    """Zero the entries ``<= tau`` and set the diagonal to 1 (Eq. 10)."""
    c = torch.where(c > tau, c, torch.zeros_like(c))
    c.diagonal().fill_(1.0)
    return c


class CrossModalMapping(nn.Module):
    """Maps the next modality's features through the thresholded correlation.

    ``xhat_j = x_j @ C.T`` (Eq. 11): column ``r`` of ``xhat_j`` gathers the
    ``j``-features correlated above ``tau`` with ``i``-feature ``r``; with the
    diagonal at 1 every feature keeps itself. ``C`` carries no gradient.

    While training, ``C`` comes from the batch and a running average is kept per
    ordered pair ``(i, j)``, like BatchNorm's running statistics; in evaluation
    the running matrix is used, so a prediction never depends on the other
    samples in its batch. The running average is over the *thresholded* batch
    matrices, i.e. it estimates the mapping training actually applied. The first
    ``1 / momentum`` updates use a cumulative average so the identity it starts
    from is forgotten at once.

    Parameters
    ----------
    n_modalities : int
        Number of modalities (one running matrix per ordered pair).
    hidden_size : int
        Feature size ``h``.
    tau : float
        Correlation threshold in [0, 1).
    momentum : float, default=0.1
        Weight of the newest batch matrix in the running average.
    """

    def __init__(self, n_modalities: int, hidden_size: int, tau: float, momentum=0.1):
        super().__init__()
        self.tau = tau
        self.momentum = momentum
        eye = torch.eye(hidden_size)
        self.register_buffer(
            "running", eye.repeat(n_modalities, n_modalities, 1, 1).contiguous()
        )
        self.register_buffer(
            "n_updates", torch.zeros(n_modalities, n_modalities, dtype=torch.long)
        )

    def matrix(self, i: int, j: int) -> torch.Tensor:
        """The mapping used in evaluation for the ordered pair ``(i, j)``."""
        return self.running[i, j]

    @torch.no_grad()
    def _update(self, xi: torch.Tensor, xj: torch.Tensor, i: int, j: int):
        c = threshold_correlation(correlation_matrix(xi, xj), self.tau)
        count = int(self.n_updates[i, j])
        weight = max(self.momentum, 1.0 / (count + 1))
        self.running[i, j].lerp_(c, weight)
        self.n_updates[i, j] += 1
        return c

    def forward(self, xi, xj, i: int, j: int, rows=None) -> torch.Tensor:
        """Map ``xj`` (batch, h) for the pair ``(i, j)``.

        ``rows`` (bool, batch) selects the samples whose statistics feed the batch
        matrix while training (those that really have ``i`` followed by ``j``).
        """
        c = None
        if self.training:
            xi_rows = xi if rows is None else xi[rows]
            if xi_rows.shape[0] >= 2:
                xj_rows = xj if rows is None else xj[rows]
                c = self._update(xi_rows.detach(), xj_rows.detach(), i, j)
        if c is None:
            c = self.matrix(i, j)
            if self.training:
                # Later pairs of the same forward update the buffer in place,
                # which would invalidate this view for backward.
                c = c.clone()
        return xj @ c.T
