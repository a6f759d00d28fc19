"""Modality orders for hybrid-order inference, and a prefix trie to share work.

Orders that share a prefix share the chain computation of that prefix, so all
the orders needed by one prediction, or by every coalition of a Shapley
evaluation, are run as one depth-first walk over a trie.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import permutations
from math import factorial

import numpy as np


def williams_design(n: int) -> list[tuple[int, ...]]:
    """A balanced set of orders of ``range(n)`` (a Williams design).

    Every element takes every position equally often, and every ordered pair
    ``(i, j)`` is adjacent (``i`` right before ``j``) equally often: ``n``
    orders for even ``n``, ``2n`` (the square and its mirror) for odd ``n``.
    """
    first = [0]
    low, high = 1, n - 1
    while len(first) < n:
        first.append(low)
        low += 1
        if len(first) < n:
            first.append(high)
            high -= 1
    rows = [tuple((m + shift) % n for m in first) for shift in range(n)]
    if n % 2:
        rows += [row[::-1] for row in rows]
    return rows


def sample_orders(
    modalities: tuple[int, ...], max_orders: int, seed: int
) -> list[tuple[int, ...]]:
    """Every order of ``modalities``, or a balanced seeded sample of ``max_orders``.

    Above the cap the sample is made of Williams designs
    (:func:`williams_design`), each under a seeded random relabelling of the
    modalities, so every modality is last (and first) about equally often and
    every ordered pair is mapped about equally often; exactly so when
    ``max_orders`` is a multiple of the design size (``k`` for an even number
    ``k`` of modalities, ``2k`` for odd). The sample is a deterministic function
    of ``(modalities, max_orders, seed)``, so repeated predictions use the same
    orders.
    """
    modalities = tuple(modalities)
    k = len(modalities)
    if factorial(k) <= max_orders:
        return list(permutations(modalities))
    rng = np.random.default_rng([seed, *modalities])
    design = williams_design(k)
    chosen: dict[tuple[int, ...], None] = {}
    while len(chosen) < max_orders:
        label = rng.permutation(k)
        for row in design:
            chosen[tuple(modalities[label[m]] for m in row)] = None
            if len(chosen) == max_orders:
                break
    return list(chosen)


def restrict(orders, subset) -> list[tuple[int, ...]]:
    """Each order with only the members of ``subset`` kept (duplicates kept).

    The orders of every coalition are restrictions of one shared sample, so
    the chains of different coalitions share prefixes in an :class:`OrderTrie`
    and inference on a coalition averages the same orders as on all modalities
    with the others missing.
    """
    keep = set(subset)
    return [tuple(m for m in order if m in keep) for order in orders]


@dataclass
class _Node:
    children: dict[int, _Node] = field(default_factory=dict)
    # (slot, weight): the state at this node adds weight * state to slot's average
    ends: list[tuple[int, float]] = field(default_factory=list)


class OrderTrie:
    """Prefix tree over groups of orders; each group is averaged into one slot.

    Parameters
    ----------
    groups : list of list of tuple of int
        ``groups[s]`` are the orders whose final chain states are averaged into
        slot ``s`` (e.g. the orders of one coalition).
    """

    def __init__(self, groups):
        self.n_slots = len(groups)
        self.root = _Node()
        self.n_nodes = 0
        for slot, orders in enumerate(groups):
            weight = 1.0 / len(orders)
            for order in orders:
                node = self.root
                for j in order:
                    if j not in node.children:
                        node.children[j] = _Node()
                        self.n_nodes += 1
                    node = node.children[j]
                node.ends.append((slot, weight))

    def walk(self, carry, step, visit):
        """Depth-first walk: ``carry = step(carry, j, depth)`` along each edge, then
        ``visit(carry, node.ends)`` at every node that ends an order."""
        stack = [(self.root, carry, 0)]
        while stack:
            node, carry, depth = stack.pop()
            for j, child in node.children.items():
                child_carry = step(carry, j, depth)
                if child.ends:
                    visit(child_carry, child.ends)
                if child.children:
                    stack.append((child, child_carry, depth + 1))
