"""Shapley values and EDM (NumPy only)."""

import itertools
import math

import numpy as np
import pytest

from sklearn_modeq.shapley import (
    ShapleyPlan,
    all_masks,
    edm_from_accuracies,
    exact_shapley,
    mask_of,
    members,
    permutation_shapley,
    sample_permutations,
    shapley_standard_errors,
)


def brute_force_shapley(value, n):
    """Average marginal contribution over all n! orders (the definition)."""
    phi = np.zeros(n)
    for order in itertools.permutations(range(n)):
        mask = 0
        for i in order:
            phi[i] += value(mask | 1 << i) - value(mask)
            mask |= 1 << i
    return phi / math.factorial(n)


def test_masks_roundtrip():
    assert mask_of([0, 2]) == 5
    assert members(5) == (0, 2)
    assert list(all_masks(2)) == [0, 1, 2, 3]


def test_glove_game_known_answer():
    # players 0 and 1 hold left gloves, player 2 a right glove; a pair is worth 1.
    # Known answer: phi = (1/6, 1/6, 2/3).
    def value(mask):
        left = (mask & 1) + (mask >> 1 & 1)
        right = mask >> 2 & 1
        return float(min(left, right))

    game = [value(m) for m in range(8)]
    np.testing.assert_allclose(exact_shapley(game, 3), [1 / 6, 1 / 6, 2 / 3])


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_exact_matches_brute_force_on_random_games(n):
    rng = np.random.default_rng(n)
    game = rng.random(1 << n)
    phi = exact_shapley(game, n)
    np.testing.assert_allclose(phi, brute_force_shapley(lambda m: game[m], n))
    # efficiency: the values share out v(all) - v(empty)
    assert phi.sum() == pytest.approx(game[-1] - game[0])


def test_exact_accepts_mapping_and_reports_missing_coalitions():
    game = {0: 0.0, 1: 1.0, 2: 0.5, 3: 2.0}
    np.testing.assert_allclose(exact_shapley(game, 2), [1.25, 0.75])
    with pytest.raises(ValueError, match="2 are missing, e.g. mask 2"):
        exact_shapley({0: 0.0, 1: 1.0}, 2)


def test_sampled_converges_to_exact():
    rng = np.random.default_rng(0)
    n = 6
    game = rng.random(1 << n)
    exact = exact_shapley(game, n)
    errors = []
    for n_perm in (8, 64, 2048):
        perms = sample_permutations(n, n_perm, rng=1)
        errors.append(
            np.abs(permutation_shapley(dict(enumerate(game)), perms) - exact).max()
        )
    assert errors[-1] < 0.02
    assert errors[-1] < errors[0]


def test_sampled_is_exact_for_additive_games():
    # marginal contributions do not depend on the order: any sample is exact
    weights = np.array([0.1, 0.5, 0.2, 0.7])
    game = {m: float(sum(weights[list(members(m))])) for m in range(16)}
    perms = sample_permutations(4, 3, rng=0)
    np.testing.assert_allclose(permutation_shapley(game, perms), weights)


def test_antithetic_pairs_and_seeding():
    perms = sample_permutations(5, 6, rng=3)
    np.testing.assert_array_equal(perms[1], perms[0][::-1])
    np.testing.assert_array_equal(perms, sample_permutations(5, 6, rng=3))
    assert not np.array_equal(perms, sample_permutations(5, 6, rng=4))


def test_plan_switches_to_sampling_above_max_exact():
    exact = ShapleyPlan.make(3, max_exact=3, n_permutations=10, random_state=0)
    assert exact.exact and len(exact.masks) == 8
    sampled = ShapleyPlan.make(8, max_exact=3, n_permutations=10, random_state=0)
    assert not sampled.exact
    # only prefixes of the sampled permutations are needed: far fewer than 2**8
    assert (
        0 in sampled.masks and 255 in sampled.masks and len(sampled.masks) <= 10 * 7 + 2
    )


@pytest.mark.parametrize(
    "plan",
    [
        ShapleyPlan(3),
        ShapleyPlan.make(4, max_exact=2, n_permutations=6, random_state=0),
    ],
)
def test_standard_errors_are_those_of_per_sample_shapley_values(plan):
    rng = np.random.default_rng(0)
    masks = [int(m) for m in plan.masks]
    correct = {m: rng.random(40) < 0.2 + 0.1 * bin(m).count("1") for m in masks}
    phi, se = shapley_standard_errors(plan, correct)
    accuracy = {m: float(np.mean(c)) for m, c in correct.items()}
    np.testing.assert_allclose(phi, plan.shapley(accuracy))
    # the definition: each sample's own Shapley values, then their spread
    per_sample = np.array(
        [plan.shapley({m: float(c[i]) for m, c in correct.items()}) for i in range(40)]
    )
    np.testing.assert_allclose(se, per_sample.std(axis=0, ddof=1) / np.sqrt(40))
    assert (se > 0).all()
    # pooled copies of the same samples are no more evidence
    doubled = {m: np.concatenate([c, c]) for m, c in correct.items()}
    _, se_pooled = shapley_standard_errors(plan, doubled, n_independent=40)
    np.testing.assert_allclose(se_pooled, se, rtol=0.02)


def test_standard_error_is_zero_when_every_sample_agrees():
    plan = ShapleyPlan(2)
    correct = {0: np.zeros(10), 1: np.ones(10), 2: np.zeros(10), 3: np.ones(10)}
    phi, se = shapley_standard_errors(plan, correct)
    np.testing.assert_allclose(phi, [1.0, 0.0])
    np.testing.assert_array_equal(se, [0.0, 0.0])


def test_edm_worked_example_from_paper_table1():
    # CRMT on MVSA-Single: unimodal 52.99 / 52.99, fused 54.91 (DESIGN section 6)
    result = edm_from_accuracies([0.0, 0.5299, 0.5299, 0.5491], 2, ["text", "visual"])
    np.testing.assert_allclose(result.deviations, [45.09, 45.09])
    assert result.edm == pytest.approx(90.18)
    np.testing.assert_allclose(result.shares, [100.0, 100.0])
    assert result.as_dict() == pytest.approx(
        {"EDM": 90.18, "text": 45.09, "visual": 45.09}
    )


def test_edm_hand_computation_unequal_modalities():
    # v(a)=0.8, v(b)=0.4, v(ab)=2*0.9=1.8 -> phi_a = 0.5*0.8 + 0.5*(1.8-0.4) = 1.1,
    # phi_b = 0.5*0.4 + 0.5*(1.8-0.8) = 0.7
    result = edm_from_accuracies([0.3, 0.8, 0.4, 0.9], 2)
    np.testing.assert_allclose(result.phi, [1.1, 0.7])
    np.testing.assert_allclose(result.deviations, [10.0, 30.0])
    assert result.edm == pytest.approx(40.0)
    np.testing.assert_allclose(
        result.shares, [100 * 2 * 1.1 / 1.8, 100 * 2 * 0.7 / 1.8]
    )


def test_edm_is_zero_for_a_fully_cooperative_model():
    n = 3
    result = edm_from_accuracies(np.ones(1 << n), n)
    assert result.edm == pytest.approx(0.0)


@pytest.mark.parametrize("fused", [0.9, 0.95, 0.99])
def test_two_modality_edm_is_the_unimodal_gap_when_one_phi_exceeds_one(fused):
    # phi_a + phi_b = 2 Acc(ab); with phi_a > 1 > phi_b the deviations sum to
    # phi_a - phi_b = Acc(a) - Acc(b), whatever the fused accuracy (metrics.edm)
    result = edm_from_accuracies({0: 0.1, 1: 0.9, 2: 0.6, 3: fused}, 2)
    assert result.phi[0] > 1 > result.phi[1]
    assert result.edm == pytest.approx(100 * (0.9 - 0.6))
