"""The full model: adapters, the chain over a modality order, and the shared head.

This module produces chain states: for the alternating training steps, and for
any set of order groups at inference (hybrid orders, coalitions, candidates).
How candidates are weighed is :mod:`.combiner`'s job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
from torch import nn

from .adapter import ModalityAdapter
from .fusion import AdditiveFusion, MemoryCell
from .mapping import CrossModalMapping, adjacent_pairs
from .orders import OrderTrie, restrict, sample_orders


class ChainCarry(NamedTuple):
    """What the chain carries from one modality to the next, per sample.

    state : (batch, h) fused state; started : (batch,) whether any modality of the
    chain was present yet; last : (batch,) index of the last present modality
    (the predecessor the next one is mapped against), -1 before the first.
    """

    state: torch.Tensor
    started: torch.Tensor
    last: torch.Tensor

    def detach(self) -> ChainCarry:
        return ChainCarry(self.state.detach(), self.started, self.last)


class Batch(NamedTuple):
    """Model inputs prepared once: values with absent rows zeroed, and presence.

    values : list of (batch, d_m) tensors in declaration order; present :
    (batch, n_modalities) bool; complete : whether every row has every modality
    (the steps then need no masks).
    """

    values: list
    present: torch.Tensor
    complete: bool


class StepOutput(NamedTuple):
    """One alternating step: loss terms and the chain state it leaves.

    terms : list of (logits, rows); each term is the cross-entropy of ``logits``
    (n_rows, n_classes) against the labels of the batch rows selected by the bool
    mask ``rows``. carry : the chain state after the step, detached. stacked :
    the terms' logits as one tensor (they are views of it), or None.
    """

    terms: list
    carry: ChainCarry
    stacked: torch.Tensor | None = None


class ModalityChainNet(nn.Module):
    """Adapters -> cross-modal chain over a modality order -> shared linear head.

    For an order ``(pi_1, ..., pi_k)`` the state starts as the memory cell
    applied to a zero state and the adapter output of the first modality present
    in the sample; each next present modality ``j`` is mapped against its
    predecessor ``i`` (:class:`CrossModalMapping`) and fused into the state
    (:class:`MemoryCell`). Absent modalities (all-NaN input rows) are skipped per
    sample with masks. The head classifies the state whatever the chain length,
    so any coalition of modalities is read off the same model.

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
    max_orders : int, default=12
        Number of orders hybrid inference averages when there are more
        (:func:`~.orders.sample_orders`); every coalition uses their
        restrictions.
    order_seed : int, default=0
        Seed of that order sample.
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
        max_orders: int = 12,
        order_seed: int = 0,
    ):
        super().__init__()
        self.modalities = list(modalities)
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
        #: The orders hybrid inference averages (a fixed function of the
        #: parameters, never changed after construction).
        self.orders = sample_orders(tuple(range(n)), max_orders, order_seed)

    def orders_of(self, subset) -> list[tuple[int, ...]]:
        """The orders inference averages for a coalition of modalities."""
        return restrict(self.orders, subset)

    # -- pieces of the forward pass ---------------------------------------------
    def prepare(self, inputs: Mapping[str, torch.Tensor] | Batch) -> Batch:
        """Presence masks and NaN-free values of a dict of modality tensors."""
        if isinstance(inputs, Batch):
            return inputs
        xs = [inputs[name] for name in self.modalities]
        present = torch.stack([~torch.isnan(x[:, 0]) for x in xs], dim=1)
        if bool(present.all()):
            return Batch(xs, present, True)
        return Batch([torch.nan_to_num(x, nan=0.0) for x in xs], present, False)

    def encode(self, inputs, which=None, grad=None):
        """Adapter outputs of the modalities in ``which`` (default all).

        ``inputs`` is a dict of modality tensors or a prepared :class:`Batch`.
        Returns ``feats`` (list indexed by modality, None where not computed) and
        ``present`` (batch, n_modalities) bool. Only the modalities in ``grad``
        (default all) are computed with gradient.
        """
        batch = self.prepare(inputs)
        which = range(len(batch.values)) if which is None else which
        feats: list[torch.Tensor | None] = [None] * len(batch.values)
        for m in which:
            with torch.set_grad_enabled(
                torch.is_grad_enabled() and (grad is None or m in grad)
            ):
                feats[m] = self.adapters[m](batch.values[m])
        return feats, batch.present

    def empty_carry(self, present: torch.Tensor) -> ChainCarry:
        batch = present.shape[0]
        return ChainCarry(
            present.new_zeros(
                (batch, self.head.in_features), dtype=self.head.weight.dtype
            ),
            present.new_zeros(batch, dtype=torch.bool),
            present.new_full((batch,), -1, dtype=torch.long),
        )

    def _start(self, feats, j: int, cache: dict):
        """Start state of modality ``j``: the cell applied to a zero state.

        It reuses the full projection of the unmapped features when something
        already put it in ``cache`` (a step, or :meth:`averaged_states` for
        the modalities its chains fuse); otherwise it projects the two gates
        a start uses only.
        """
        if ("start", j) not in cache:
            if (None, j) in cache:
                xhat, projected = cache[None, j]
            else:
                xhat, projected = feats[j], self.fusion.project_start(feats[j])
            cache["start", j] = self.fusion.start_projected(xhat, projected)
        return cache["start", j]

    def _pair(self, feats, i: int, j: int, cache: dict):
        """``j`` mapped against ``i`` and its projection by the fusion cell.

        Both depend on the pair alone, not on the rest of the order, so every
        chain step (and every trie node) of the pair shares them through
        ``cache``; a step then costs one state product.
        """
        return self._projected(feats, None if self.mapping is None else i, j, cache)

    def _projected(self, feats, i, j: int, cache: dict):
        """``j`` mapped against ``i`` (unmapped for ``i=None``) and its projection."""
        if (i, j) not in cache:
            xhat = feats[j] if i is None else self.mapping(feats[j], i, j)
            cache[i, j] = (xhat, self.fusion.project_input(xhat))
        return cache[i, j]

    def _project_with_start(self, feats, i: int, j: int, cache: dict) -> None:
        """Cache ``j`` mapped against ``i`` and ``j``'s start, projected by one
        product over both (a training step with an own term needs the two)."""
        if self.mapping is None or (i, j) in cache or (None, j) in cache:
            return
        x = feats[j]
        xhat = self.mapping(x, i, j)
        projected = self.fusion.project_input(torch.cat([x, xhat]))
        if projected is None:  # additive fusion: nothing to share
            return
        start, pair = projected.split(len(x))
        cache[None, j], cache[i, j] = (x, start), (xhat, pair)

    def step(
        self, carry: ChainCarry, feats, present, j: int, prefix, cache: dict, dense
    ) -> ChainCarry:
        """Add modality ``j`` to the chain; ``prefix`` holds the modalities before it.

        ``dense`` says every sample has every modality (no masks needed).
        ``cache`` shares per-modality and per-pair work between steps.
        """
        if dense:
            started = torch.ones_like(carry.started)
            last = torch.full_like(carry.last, j)
            if not prefix:
                return ChainCarry(self._start(feats, j, cache), started, last)
            xhat, projected = self._pair(feats, prefix[-1], j, cache)
            state = self.fusion.fuse_projected(carry.state, xhat, projected)
            return ChainCarry(state, started, last)
        p = present[:, j]
        state = carry.state
        fuse = p & carry.started
        if prefix and bool(fuse.any()):
            # the predecessor is the last *present* modality, per sample
            preds = [i for i in prefix if bool((fuse & (carry.last == i)).any())]
            xhat, projected = self._pair(feats, preds[0], j, cache)
            for i in preds[1:]:
                rows = (carry.last == i)[:, None]
                mapped, proj_i = self._pair(feats, i, j, cache)
                xhat = torch.where(rows, mapped, xhat)
                if projected is not None:
                    projected = torch.where(rows, proj_i, projected)
            fused = self.fusion.fuse_projected(state, xhat, projected)
            state = torch.where(fuse[:, None], fused, state)
        begins = p & ~carry.started
        if bool(begins.any()):
            start = self._start(feats, j, cache)
            state = torch.where(begins[:, None], start, state)
        last = torch.where(p, torch.full_like(carry.last, j), carry.last)
        return ChainCarry(state, carry.started | p, last)

    def run_order(self, feats, present, order, cache=None, dense=None) -> ChainCarry:
        """The chain over one order (per-sample skipping of absent modalities);
        ``dense`` (computed when None) says every sample has the order's
        modalities."""
        cache = {} if cache is None else cache
        if dense is None:
            dense = bool(present[:, list(order)].all())
        carry = self.empty_carry(present)
        for depth, j in enumerate(order):
            carry = self.step(
                carry, feats, present, j, tuple(order[:depth]), cache, dense
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
        dense = bool(present.all())
        sums = present.new_zeros(
            (trie.n_slots, present.shape[0], self.head.in_features),
            dtype=self.head.weight.dtype,
        )
        cache: dict = {}
        if self.mapping is None:
            # a modality some chain fuses shares one projection between its
            # fusion steps and its start; one that only starts projects less
            for j in sorted({m for g in groups for o in g for m in o[1:]}):
                self._projected(feats, None, j, cache)

        def step(item, j, depth):
            carry, prefix = item
            return (
                self.step(carry, feats, present, j, prefix, cache, dense),
                (*prefix, j),
            )

        def visit(item, ends):
            for slot, weight in ends:
                sums[slot].add_(item[0].state, alpha=weight)

        trie.walk((self.empty_carry(present), ()), step, visit)
        return sums

    # -- training -------------------------------------------------------------------
    def alternating_step(
        self, inputs, order: Sequence[int], k: int, carry=None, fusion_order=None
    ) -> StepOutput:
        """The loss terms of the alternating step that trains modality ``order[k]``.

        The chain runs over ``order[:k+1]``: ``carry`` is the (detached) state
        the step for ``order[k-1]`` left, or, when None, the prefix is run here
        without gradient. Only the adapter of ``order[k]`` gets gradient (with
        the memory cell and the head), from two terms over the samples that
        have it: the chain's state and the modality's own state (the cell on a
        zero state, paper Eq. 6), the latter only where the chain had started
        before it (elsewhere both are the same state).

        While training, the step with ``k == 0`` (or any step without a carry)
        first folds the batch into the running correlations of the pairs that
        ``order`` and ``fusion_order`` use. With ``fusion_order``, a third term
        trains the memory cell and the head along that full order, on every
        sample, with all adapters frozen, so every order hybrid inference
        averages is trained, not only the Shapley order.

        Returns
        -------
        StepOutput
        """
        j = order[k]
        prefix = tuple(order[:k])
        n = len(self.modalities)
        # once per batch: the first step, or every step when each runs its own
        # prefix (one pass per modality)
        update = (
            self.training and self.mapping is not None and (k == 0 or carry is None)
        )
        need_all = update or fusion_order is not None
        which = range(n) if need_all else (prefix + (j,) if carry is None else (j,))
        batch = self.prepare(inputs)
        complete = batch.complete
        feats, present = self.encode(batch, which=which, grad=(j,))
        if update:
            # complete rows map every modality against its neighbour in an
            # order; with absent modalities any earlier one can be the
            # predecessor, so every pair is updated
            orders = (order,) if fusion_order is None else (order, fusion_order)
            pairs = adjacent_pairs(*orders) if complete else None
            self.mapping.update(feats, present, pairs, complete)
        cache: dict = {}
        if carry is None:
            with torch.no_grad():
                carry = self.run_order(feats, present, prefix, cache, complete or None)
            cache = {}  # entries computed without gradient
        p = present[:, j]
        dense = complete or bool(present[:, list(prefix) + [j]].all())
        if dense and prefix:
            self._project_with_start(feats, prefix[-1], j, cache)
        after = self.step(carry, feats, present, j, prefix, cache, dense)
        states, rows = [after.state if dense else after.state[p]], [p]
        own = p & carry.started
        if prefix and (dense or bool(own.any())):
            start = self._start(feats, j, cache)
            states.append(start if dense else start[own])
            rows.append(own)
        if fusion_order is not None:
            fused = self._fusion_state(feats, present, tuple(fusion_order), complete)
            states.append(fused.state if complete else fused.state[fused.started])
            rows.append(fused.started)
        # one head call for every term
        stacked = self.head(torch.cat(states))
        logits = stacked.split([len(s) for s in states])
        return StepOutput(list(zip(logits, rows)), after.detach(), stacked)

    def _fusion_state(self, feats, present, order, complete=False) -> ChainCarry:
        """The chain along ``order`` with gradient into its last step only.

        Adapters are frozen and the prefix runs without gradient: the same
        one-step truncation as the alternating steps, so the cell learns to fuse
        any modality into any state the chain produces, at the cost of one step.
        ``complete`` says every sample has every modality (no masks to check).
        """
        frozen = [f.detach() for f in feats]
        with torch.no_grad():
            carry = self.run_order(frozen, present, order[:-1], None, complete or None)
        dense = complete or bool(present[:, list(order)].all())
        return self.step(carry, frozen, present, order[-1], order[:-1], {}, dense)

    # -- inference --------------------------------------------------------------------
    @staticmethod
    def availability(present: torch.Tensor, groups) -> torch.Tensor:
        """Where each group of orders is available, shape (n_groups, batch): False
        where a sample has none of the group's modalities."""
        return torch.stack(
            [present[:, sorted({m for o in g for m in o})].any(dim=1) for g in groups]
        )

    def coalition_groups(self, subsets, orders=None) -> list:
        """The orders of each coalition: restrictions of ``orders`` (default:
        the inference orders), so the coalitions' chains share prefixes."""
        orders = self.orders if orders is None else orders
        return [restrict(orders, s) for s in subsets]

    def group_states(self, inputs, groups):
        """States of every group of orders, and where each group is available.

        Adapters run once; the chains of all groups share their prefixes.

        Returns
        -------
        states : Tensor of shape (n_groups, batch, h)
        available : Tensor of shape (n_groups, batch), bool
            False where a sample has none of the group's modalities.
        """
        feats, present = self.encode(inputs)
        states = self.averaged_states(feats, present, groups)
        return states, self.availability(present, groups)

    def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
        """Hybrid-order logits (Algorithm 1): average the final states over the
        orders of all modalities (absent ones skipped per sample), then apply the
        head."""
        states, _ = self.group_states(inputs, [self.orders])
        return self.head(states[0])

    def subset_logits(self, inputs, subsets: Sequence[tuple[int, ...]], orders=None):
        """Hybrid-order logits of the model restricted to each coalition.

        Each coalition averages the restrictions of ``orders`` (default: the
        inference orders), so its chains share prefixes with the others'.

        Returns
        -------
        logits : Tensor of shape (n_subsets, batch, n_classes)
        covered : Tensor of shape (n_subsets, batch), bool
            False where a sample has none of the coalition's modalities (its
            logits are then meaningless).
        """
        states, covered = self.group_states(
            inputs, self.coalition_groups(subsets, orders)
        )
        return self.head(states), covered
