"""Shapley values over modalities and the equilibrium deviation metric (EDM).

NumPy only: nothing here knows about torch or about estimators. A *coalition*
of modalities is an ``int`` bit mask over the modalities in declaration order
(bit ``i`` set means modality ``i`` is in the coalition), so a game on ``n``
modalities is an array of ``2**n`` values indexed by mask.

Two ways to get Shapley values (paper Eq. 7):

- exactly, from the values of all ``2**n`` coalitions (:func:`exact_shapley`);
- by Monte-Carlo permutation sampling (:func:`permutation_shapley`), which only
  needs the coalitions that are prefixes of the sampled permutations.

:class:`ShapleyPlan` picks one of the two and tells the caller which coalitions
to evaluate, so the expensive part (running a model restricted to each
coalition) happens once, in one batch, wherever the caller likes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import factorial

import numpy as np

__all__ = [
    "ShapleyPlan",
    "EDMResult",
    "all_masks",
    "edm_from_accuracies",
    "exact_shapley",
    "mask_of",
    "members",
    "permutation_shapley",
    "shapley_standard_errors",
]


def mask_of(indices) -> int:
    """Bit mask of a collection of modality indices."""
    mask = 0
    for i in indices:
        mask |= 1 << int(i)
    return mask


def members(mask: int) -> tuple[int, ...]:
    """Modality indices in a bit mask, ascending."""
    return tuple(i for i in range(mask.bit_length()) if mask >> i & 1)


def all_masks(n: int) -> np.ndarray:
    """Every coalition of ``n`` modalities, as the bit masks ``0`` to ``2**n - 1``."""
    return np.arange(1 << n, dtype=np.int64)


def _popcount(masks: np.ndarray) -> np.ndarray:
    counts = np.zeros_like(masks)
    work = masks.copy()
    while work.any():
        counts += work & 1
        work >>= 1
    return counts


def _as_game(values, n: int) -> np.ndarray:
    """Values of all ``2**n`` coalitions as a float array indexed by mask."""
    if isinstance(values, Mapping):
        missing = [m for m in range(1 << n) if m not in values]
        if missing:
            raise ValueError(
                f"the game needs the value of every coalition of {n} modalities; "
                f"{len(missing)} are missing, e.g. mask {missing[0]}"
            )
        values = [values[m] for m in range(1 << n)]
    game = np.asarray(values, dtype=np.float64)
    if game.shape != (1 << n,):
        raise ValueError(
            f"a game on {n} modalities has {1 << n} coalition values; "
            f"got an array of shape {game.shape}"
        )
    return game


def exact_shapley(values, n: int) -> np.ndarray:
    """Exact Shapley values of an ``n``-player game (paper Eq. 7).

    Parameters
    ----------
    values : array-like of shape (2**n,) or mapping of int to float
        ``values[mask]`` is the worth of the coalition ``mask``.
    n : int
        Number of players (modalities).

    Returns
    -------
    phi : ndarray of shape (n,)
        The Shapley value of each player; ``phi.sum()`` equals
        ``values[2**n - 1] - values[0]`` (efficiency).
    """
    game = _as_game(values, n)
    masks = all_masks(n)
    sizes = _popcount(masks)
    # weight of a coalition of size s not containing player i: s!(n-s-1)!/n!
    weight_by_size = np.array(
        [factorial(s) * factorial(n - s - 1) / factorial(n) for s in range(n)]
    )
    phi = np.empty(n)
    for i in range(n):
        without = masks[(masks >> i & 1) == 0]
        gains = game[without | (1 << i)] - game[without]
        phi[i] = np.dot(weight_by_size[sizes[without]], gains)
    return phi


def sample_permutations(n: int, n_permutations: int, rng) -> np.ndarray:
    """Antithetic sample of permutations: each drawn one is followed by its reverse.

    Pairing a permutation with its reverse puts every player once early and once
    late, which lowers the variance of the estimate at no extra cost.
    """
    rng = np.random.default_rng(rng)
    n_draws = (n_permutations + 1) // 2
    drawn = np.array([rng.permutation(n) for _ in range(n_draws)], dtype=np.int64)
    both = np.empty((2 * n_draws, n), dtype=np.int64)
    both[0::2] = drawn
    both[1::2] = drawn[:, ::-1]
    return both[:n_permutations]


def _prefix_masks(permutations: np.ndarray) -> np.ndarray:
    """Mask of every prefix (length 0..n) of every permutation, shape (P, n+1)."""
    bits = np.left_shift(1, permutations)
    prefixes = np.zeros((permutations.shape[0], permutations.shape[1] + 1), np.int64)
    prefixes[:, 1:] = np.cumsum(bits, axis=1)
    return prefixes


def permutation_shapley(values: Mapping[int, float], permutations) -> np.ndarray:
    """Monte-Carlo Shapley values from sampled permutations.

    Parameters
    ----------
    values : mapping of int to float
        Worth of every coalition that is a prefix of a permutation in
        ``permutations`` (see :meth:`ShapleyPlan.masks`).
    permutations : ndarray of shape (n_permutations, n)
        Orders of the players; each row a permutation of ``range(n)``.

    Returns
    -------
    phi : ndarray of shape (n,)
        The mean marginal contribution of each player over the permutations.
    """
    permutations = np.asarray(permutations, dtype=np.int64)
    prefixes = _prefix_masks(permutations)
    worth = np.vectorize(lambda m: values[int(m)], otypes=[float])(prefixes)
    gains = np.diff(worth, axis=1)
    phi = np.zeros(permutations.shape[1])
    np.add.at(phi, permutations, gains)
    return phi / permutations.shape[0]


@dataclass(frozen=True)
class ShapleyPlan:
    """Which coalitions to evaluate, and how to turn their values into Shapley values.

    Parameters
    ----------
    n : int
        Number of modalities.
    permutations : ndarray of shape (n_permutations, n) or None
        ``None`` for exact Shapley values; otherwise the sampled permutations.
    """

    n: int
    permutations: np.ndarray | None = None

    @classmethod
    def make(
        cls, n: int, *, max_exact: int, n_permutations: int, random_state=None
    ) -> ShapleyPlan:
        """Exact values for ``n <= max_exact``, permutation sampling above."""
        if n <= max_exact:
            return cls(n)
        return cls(n, sample_permutations(n, n_permutations, random_state))

    @property
    def exact(self) -> bool:
        return self.permutations is None

    @property
    def masks(self) -> np.ndarray:
        """Sorted coalitions whose value is needed, the empty one included."""
        if self.exact:
            return all_masks(self.n)
        return np.unique(_prefix_masks(self.permutations))

    def shapley(self, values: Mapping[int, float]) -> np.ndarray:
        """Shapley values from the worth of the coalitions in :attr:`masks`."""
        if self.exact:
            return exact_shapley(values, self.n)
        return permutation_shapley(values, self.permutations)


def shapley_standard_errors(
    plan: ShapleyPlan, correct: Mapping[int, np.ndarray], n_independent=None
):
    """Shapley values of accuracies and their standard errors over the samples.

    An accuracy is a mean over samples and Shapley values are linear in the
    coalitions' values, so each value is the mean over samples of a per-sample
    contribution; its standard error is their standard deviation over the
    square root of the number of samples.

    Parameters
    ----------
    plan : ShapleyPlan
    correct : mapping of int to ndarray of shape (n_samples,)
        Per coalition in ``plan.masks`` (the empty one included), whether each
        sample is predicted right (bool or 0/1).
    n_independent : int, default=None
        Number of independent samples among them, when predictions of the same
        samples are pooled (default: all of them).

    Returns
    -------
    phi : ndarray of shape (n,)
        The Shapley values of the coalitions' accuracies.
    se : ndarray of shape (n,)
        Their standard errors (0 with fewer than two samples).
    """
    masks = [int(m) for m in plan.masks]
    # the linear map from coalition values to Shapley values, one unit game
    # per coalition
    columns = []
    for mask in masks:
        unit = dict.fromkeys(masks, 0.0)
        unit[mask] = 1.0
        columns.append(plan.shapley(unit))
    per_sample = np.stack(columns, axis=1) @ np.stack(
        [np.asarray(correct[m], dtype=np.float64) for m in masks]
    )
    n_samples = per_sample.shape[1]
    n_independent = n_samples if n_independent is None else n_independent
    se = (
        per_sample.std(axis=1, ddof=1) / np.sqrt(n_independent)
        if n_samples > 1
        else np.zeros(plan.n)
    )
    return per_sample.mean(axis=1), se


@dataclass(frozen=True)
class EDMResult:
    """The equilibrium deviation metric and its parts (all in percent).

    Attributes
    ----------
    edm : float
        ``sum(deviations)``; 0 for a perfectly cooperative model, lower is better.
    deviations : ndarray of shape (n_modalities,)
        ``|100 - 100 * phi_m|`` per modality, the numbers the paper's tables print.
    phi : ndarray of shape (n_modalities,)
        Shapley values of the cooperation game ``v(S) = |S| * Acc(S)``.
    shares : ndarray of shape (n_modalities,)
        ``100 * n * phi_m / sum(phi)``: each modality's share of the total,
        100 for every modality when they contribute equally (a balance
        diagnostic, not part of the EDM).
    modalities : tuple of str
        Names of the modalities, when known.
    """

    edm: float
    deviations: np.ndarray
    phi: np.ndarray
    shares: np.ndarray
    modalities: tuple = ()

    def as_dict(self) -> dict:
        """``{"EDM": edm, modality: deviation, ...}``, as the paper's tables print."""
        names = self.modalities or tuple(range(len(self.deviations)))
        return {"EDM": self.edm, **dict(zip(names, self.deviations.tolist()))}


def edm_from_accuracies(accuracy, n: int, modalities=()) -> EDMResult:
    """EDM from the accuracy of the model restricted to every coalition.

    The paper (section 5.1) defines ``EDM = sum_m |100% - phi_m|`` without saying
    how ``phi`` is scaled. We use the per-sample cooperation game of Wei et al.
    (CVPR 2024, the paper's ref. [18]) averaged over samples,
    ``v(S) = |S| * Acc(S)`` and ``v(empty) = 0``: a modality that cooperates fully
    gets ``phi = 1``. This reading reproduces the paper's Table 1 (CRMT on
    MVSA-Single: unimodal accuracies 52.99 and 52.99, fused 54.91 give a deviation
    of 45.09 per modality, printed as 45.28).

    Parameters
    ----------
    accuracy : array-like of shape (2**n,) or mapping of int to float
        Accuracy in [0, 1] of the model using only the modalities in each mask;
        the value for the empty coalition is ignored.
    n : int
        Number of modalities.
    modalities : sequence of str, default=()
        Names to attach to the result.

    Returns
    -------
    result : EDMResult
    """
    acc = _as_game(accuracy, n)
    game = _popcount(all_masks(n)) * acc
    game[0] = 0.0
    phi = exact_shapley(game, n)
    deviations = np.abs(100.0 - 100.0 * phi)
    total = phi.sum()
    shares = 100.0 * n * phi / total if total != 0 else np.full(n, np.nan)
    return EDMResult(
        float(deviations.sum()), deviations, phi, shares, tuple(modalities)
    )
