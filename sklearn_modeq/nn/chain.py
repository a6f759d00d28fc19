"""The full model: adapters, the chain over a modality order, and the shared head."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
from torch import nn

from .adapter import ModalityAdapter
from .fusion import AdditiveFusion, MemoryCell
from .mapping import CrossModalMapping
from .orders import OrderTrie, sample_orders


class ChainCarry(NamedTuple):
    """What the chain carries from one modality to the next, per sample.

    state : (batch, h) fused state; started : (batch,) whether any modality of the
    chain was present yet; last : (batch,) index of the last present modality
    (the predecessor the next one is mapped against), -1 before the first.
    """

    state: torch.Tensor
    started: torch.Tensor
    last: torch.Tensor


class ModalityChainNet(nn.Module):
    """Adapters -> cross-modal chain over a modality order -> shared linear head.

    For an order ``(pi_1, ..., pi_k)`` the state starts at the adapter output of
    the first modality present in the sample; each next present modality ``j`` is
    mapped against its predecessor ``i`` (:class:`CrossModalMapping`) and fused
    into the state (:class:`MemoryCell`). Absent modalities (all-NaN input rows)
    are skipped per sample with masks. The head classifies the state whatever
    the chain length, so any coalition of modalities is read off the same model.

    Parameters
    ----------
    modalities : sequence of str
        Modality names, in declaration order; ``forward`` takes them as keywords.
    input_dims : sequence of int
        Embedding dimension of each modality.
    n_classes : int
        Number of classes.
    hidden_size : int, default=128
        Shared hidden size ``h``.
    adapter_layers : int, default=1
        Linear -> ReLU blocks per adapter.
    dropout : float, default=0.0
        Dropout in the adapters.
    tau : float, default=0.2
        Correlation threshold of the cross-modal mapping.
    mapping : bool, default=True
        Use the cross-modal mapping; False maps every modality by the identity.
    memory : bool, default=True
        Fuse with the memory cell; False fuses by addition.
    mapping_momentum : float, default=0.1
        Momentum of the running correlation matrices.
    max_orders : int, default=720
        Cap on the orders averaged by hybrid-order inference.
    order_seed : int, default=0
        Seed of the fixed order sample used above ``max_orders``.
    """

    def __init__(
        self,
        modalities: Sequence[str],
        input_dims: Sequence[int],
        n_classes: int,
        hidden_size: int = 128,
        adapter_layers: int = 1,
        dropout: float = 0.0,
        tau: float = 0.2,
        mapping: bool = True,
        memory: bool = True,
        mapping_momentum: float = 0.1,
        max_orders: int = 720,
        order_seed: int = 0,
    ):
        super().__init__()
        self.modalities = list(modalities)
        self.max_orders = max_orders
        self.order_seed = order_seed
        n = len(self.modalities)
        self.adapters = nn.ModuleList(
            ModalityAdapter(d, hidden_size, adapter_layers, dropout) for d in input_dims
        )
        self.mapping = (
            CrossModalMapping(n, hidden_size, tau, mapping_momentum)
            if mapping
            else None
        )
        self.fusion = MemoryCell(hidden_size) if memory else AdditiveFusion()
        self.head = nn.Linear(hidden_size, n_classes)
        #: None for hybrid-order inference; an order of modality indices to
        #: predict with that single order instead (the "last" analysis mode).
        self.fixed_order: tuple[int, ...] | None = None

    # -- orders ---------------------------------------------------------------
    def orders_of(self, subset: tuple[int, ...]) -> list[tuple[int, ...]]:
        """The orders inference averages for a coalition of modalities."""
        if self.fixed_order is not None:
            return [tuple(m for m in self.fixed_order if m in subset)]
        return sample_orders(subset, self.max_orders, self.order_seed)

    # -- pieces of the forward pass ---------------------------------------------
    def encode(self, inputs: Mapping[str, torch.Tensor], which=None, frozen=()):
        """Adapter outputs of the modalities in ``which`` (default all).

        Returns ``feats`` (list indexed by modality, None where not computed) and
        ``present`` (batch, n_modalities) bool. Adapters in ``frozen`` run without
        gradient.
        """
        xs = [inputs[name] for name in self.modalities]
        present = torch.stack([~torch.isnan(x[:, 0]) for x in xs], dim=1)
        which = range(len(xs)) if which is None else which
        feats: list[torch.Tensor | None] = [None] * len(xs)
        for m in which:
            x = torch.nan_to_num(xs[m], nan=0.0)
            if m in frozen:
                with torch.no_grad():
                    feats[m] = self.adapters[m](x)
            else:
                feats[m] = self.adapters[m](x)
        return feats, present

    def start(self, present: torch.Tensor, hidden_size: int) -> ChainCarry:
        batch = present.shape[0]
        return ChainCarry(
            present.new_zeros((batch, hidden_size), dtype=self.head.weight.dtype),
            present.new_zeros(batch, dtype=torch.bool),
            present.new_full((batch,), -1, dtype=torch.long),
        )

    def _mapped(self, feats, carry: ChainCarry, j: int, fuse, prefix, all_present):
        """Next modality's features mapped against each sample's predecessor."""
        if self.mapping is None:
            return feats[j]
        if all_present:
            # without missing data every sample has the same predecessor
            i = prefix[-1]
            return self.mapping(feats[i], feats[j], i, j)
        xhat = feats[j]
        for i in prefix:
            rows = fuse & (carry.last == i)
            mapped = self.mapping(feats[i], feats[j], i, j, rows=rows)
            xhat = torch.where(rows[:, None], mapped, xhat)
        return xhat

    def _pair(self, feats, i: int, j: int, pairs: dict):
        """Inference only: ``j`` mapped against ``i`` and its projection by the
        fusion, computed once per ordered pair.

        With the running correlation matrices (evaluation mode) both depend on
        the pair alone, not on the rest of the order, so every trie node of the
        pair reuses them and a chain step costs one state product.
        """
        if (i, j) not in pairs:
            xhat = (
                feats[j]
                if self.mapping is None
                else self.mapping(feats[i], feats[j], i, j)
            )
            pairs[i, j] = (xhat, self.fusion.project_input(xhat))
        return pairs[i, j]

    def _fuse_with_pairs(self, carry, feats, j, fuse, prefix, pairs):
        if fuse is None:  # every sample has the same predecessor
            xhat, projected = self._pair(feats, prefix[-1], j, pairs)
            return self.fusion.fuse_projected(carry.state, xhat, projected)
        xhat, projected = self._pair(feats, prefix[0], j, pairs)
        for i in prefix[1:]:
            rows = (carry.last == i)[:, None]
            mapped, proj_i = self._pair(feats, i, j, pairs)
            xhat = torch.where(rows, mapped, xhat)
            if projected is not None:
                projected = torch.where(rows, proj_i, projected)
        return self.fusion.fuse_projected(carry.state, xhat, projected)

    def step(
        self, carry: ChainCarry, feats, present, j: int, prefix, all_present, pairs=None
    ):
        """Add modality ``j`` to the chain; ``prefix`` holds the modalities before it.

        ``pairs`` (a dict, evaluation mode only) caches the per-pair work across
        the steps of many orders.
        """
        if all_present:
            # every sample has every modality: no masks to apply
            started = torch.ones_like(carry.started)
            last = torch.full_like(carry.last, j)
            if not prefix:
                return ChainCarry(feats[j], started, last)
            if pairs is not None:
                return ChainCarry(
                    self._fuse_with_pairs(carry, feats, j, None, prefix, pairs),
                    started,
                    last,
                )
            xhat = self._mapped(feats, carry, j, None, prefix, True)
            return ChainCarry(self.fusion(carry.state, xhat), started, last)
        p = present[:, j]
        state = carry.state
        if prefix:
            fuse = p & carry.started
            if pairs is not None:
                fused = self._fuse_with_pairs(carry, feats, j, fuse, prefix, pairs)
            else:
                xhat = self._mapped(feats, carry, j, fuse, prefix, all_present)
                fused = self.fusion(state, xhat)
            state = torch.where(fuse[:, None], fused, state)
        state = torch.where((p & ~carry.started)[:, None], feats[j], state)
        last = torch.where(p, torch.full_like(carry.last, j), carry.last)
        return ChainCarry(state, carry.started | p, last)

    def run_order(self, feats, present, order) -> ChainCarry:
        """The chain over one order (per-sample skipping of absent modalities)."""
        all_present = bool(present.all())
        carry = self.start(present, self.head.in_features)
        for depth, j in enumerate(order):
            carry = self.step(
                carry, feats, present, j, tuple(order[:depth]), all_present
            )
        return carry

    def averaged_states(self, feats, present, groups) -> torch.Tensor:
        """Final chain states averaged over each group of orders.

        Parameters
        ----------
        groups : list of list of tuple of int
            One group of orders per output slot.

        Returns
        -------
        states : Tensor of shape (n_groups, batch, h)
        """
        trie = OrderTrie(groups)
        all_present = bool(present.all())
        hidden = self.head.in_features
        sums = present.new_zeros(
            (trie.n_slots, present.shape[0], hidden), dtype=self.head.weight.dtype
        )

        # per-pair work is shared only with the fixed running matrices; while
        # training each mapping call updates them from its batch
        pairs = None if self.training else {}

        def step(item, j, depth):
            carry, prefix = item
            return (
                self.step(carry, feats, present, j, prefix, all_present, pairs),
                (*prefix, j),
            )

        def visit(item, ends):
            for slot, weight in ends:
                sums[slot].add_(item[0].state, alpha=weight)

        trie.walk((self.start(present, hidden), ()), step, visit)
        return sums

    # -- public passes --------------------------------------------------------------
    def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
        """Hybrid-order logits (Algorithm 1): average the final states over the
        orders of all modalities (absent ones skipped per sample), then apply the
        head."""
        feats, present = self.encode(inputs)
        orders = self.orders_of(tuple(range(len(self.modalities))))
        state = self.averaged_states(feats, present, [orders])[0]
        return self.head(state)

    def subset_logits(self, inputs, subsets: Sequence[tuple[int, ...]]):
        """Hybrid-order logits of the model restricted to each coalition.

        Adapters run once; chains of all coalitions share their prefixes.

        Returns
        -------
        logits : Tensor of shape (n_subsets, batch, n_classes)
        covered : Tensor of shape (n_subsets, batch), bool
            False where a sample has none of the coalition's modalities (its
            logits are then meaningless).
        """
        feats, present = self.encode(inputs)
        groups = [self.orders_of(tuple(s)) for s in subsets]
        states = self.averaged_states(feats, present, groups)
        covered = torch.stack([present[:, list(s)].any(dim=1) for s in subsets])
        return self.head(states), covered

    def alternating_logits(self, inputs, order: Sequence[int], k: int):
        """Logits for the alternating step that trains modality ``order[k]``.

        The chain runs over ``order[:k+1]`` with the adapters of ``order[:k]``
        frozen; only samples that have ``order[k]`` take part.

        Returns
        -------
        logits : Tensor of shape (n_rows, n_classes)
        rows : Tensor of shape (batch,), bool
            The samples the logits belong to.
        """
        prefix = tuple(order[: k + 1])
        feats, present = self.encode(inputs, which=prefix, frozen=prefix[:-1])
        carry = self.run_order(feats, present, prefix)
        rows = present[:, order[k]]
        return self.head(carry.state[rows]), rows
