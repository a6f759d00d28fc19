"""Fusion of the chain state with the next (mapped) modality.

:class:`MemoryCell` is the paper's LSTM-style modality memory unit (Eq. 12-14);
:class:`AdditiveFusion` is the neutral fusion used by the "without memory"
ablation.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def gated_tanh(gate: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``gate * tanh(x)``; without gradient as ``gate * (2 sigmoid(2x) - 1)``.

    torch's CPU ``tanh`` takes about three times as long as a ``sigmoid`` and
    two in-place products (``docs/scaling.md``), and inference (validation,
    the Shapley pass, prediction) spends about a sixth of its time in it.
    The two agree to float32 rounding. With gradient the plain form is kept:
    its backward is shorter.
    """
    if torch.is_grad_enabled() and (gate.requires_grad or x.requires_grad):
        return gate * torch.tanh(x)
    return (x * 2).sigmoid_().mul_(2).sub_(1).mul_(gate)  # one buffer, in place


class MemoryCell(nn.Module):
    """LSTM-style memory cell fusing the state ``s`` with mapped features ``xhat``.

    ``[f, i, o] = sigmoid(W [s; xhat] + b)``, ``memory = f * s + i * xhat``,
    ``s' = o * tanh(memory)`` (paper Eq. 12-14, with the chain state in the role
    of the weaker modality's features). A chain starts with the cell applied to a
    zero state (:meth:`start`).

    ``W = [W_s | W_x]`` is stored as its two column blocks, ``weight_state`` and
    ``weight_input`` (each ``(3h, h)``), initialised as one ``Linear(2h, 3h)``:
    the two products need no slicing of a shared matrix, whose backward would
    allocate a full-size gradient per slice.

    Parameters
    ----------
    hidden_size : int
        Size ``h`` of the state and of the mapped features.
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        h = hidden_size
        bound = 1.0 / math.sqrt(2 * h)  # nn.Linear(2h, 3h)'s initialisation
        self.weight_state = nn.Parameter(torch.empty(3 * h, h).uniform_(-bound, bound))
        self.weight_input = nn.Parameter(torch.empty(3 * h, h).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(3 * h).uniform_(-bound, bound))

    def project_input(self, xhat: torch.Tensor) -> torch.Tensor:
        """``W_x xhat + b``: the gates' share that does not depend on the state.

        Inference computes it once per (predecessor, modality) pair and reuses
        it at every chain step of that pair (:meth:`fuse_projected`).
        """
        return torch.addmm(self.bias, xhat, self.weight_input.T)

    def fuse_projected(self, state, xhat, projected):
        """The cell given ``projected = project_input(xhat)``."""
        gates = torch.addmm(projected, state, self.weight_state.T).sigmoid()
        forget, inp, out = gates.chunk(3, dim=1)
        memory = torch.addcmul(forget * state, inp, xhat)
        return gated_tanh(out, memory)

    def project_start(self, x: torch.Tensor) -> torch.Tensor:
        """The input and output gates' share of :meth:`project_input`, shape
        (batch, 2h): all a chain start needs (the forget gate multiplies a zero
        state), at two thirds of the product."""
        h = self.hidden_size
        return torch.addmm(self.bias[h:], x, self.weight_input[h:].T)

    def start_projected(self, xhat, projected):
        """The cell applied to a zero state: ``o * tanh(i * xhat)``.

        Every chain starts here, so a one-modality state and a fused state come
        out of the same cell, on the same scale, for the shared head.
        ``projected`` is :meth:`project_start` or :meth:`project_input` (whose
        forget-gate third is then unused).
        """
        gates = projected[:, -2 * self.hidden_size :].sigmoid()
        inp, out = gates.chunk(2, dim=1)
        return gated_tanh(out, inp * xhat)

    def start(self, xhat: torch.Tensor) -> torch.Tensor:
        return self.start_projected(xhat, self.project_start(xhat))

    def forward(self, state: torch.Tensor, xhat: torch.Tensor) -> torch.Tensor:
        return self.fuse_projected(state, xhat, self.project_input(xhat))


class AdditiveFusion(nn.Module):
    """``s' = s + xhat``: no parameters, the "w/o memory module" ablation."""

    def project_input(self, xhat: torch.Tensor) -> None:
        return None

    def fuse_projected(self, state, xhat, projected):
        return state + xhat

    def project_start(self, x: torch.Tensor) -> None:
        return None

    def start_projected(self, xhat, projected):
        return xhat

    def start(self, xhat: torch.Tensor) -> torch.Tensor:
        return xhat

    def forward(self, state: torch.Tensor, xhat: torch.Tensor) -> torch.Tensor:
        return state + xhat
