"""The torch model: Eq. 9-14 by hand, masks, hybrid orders, batch independence."""

import itertools
import math

import numpy as np
import pytest
import torch

from sklearn_modeq.nn import (
    CandidateCombiner,
    CrossModalMapping,
    MemoryCell,
    ModalityChainNet,
    OrderTrie,
    candidate_groups,
    correlation_matrix,
    fit_combiner,
    mapping_matrix,
    pairwise_correlations,
    restrict,
    sample_orders,
    threshold_correlation,
    williams_design,
)
from sklearn_modeq.nn.fusion import gated_tanh


def make_net(**kwargs):
    params = dict(
        modalities=["a", "b", "c"], input_dims=[3, 2, 4], n_classes=3, hidden_size=4
    )
    params.update(kwargs)
    return ModalityChainNet(**params)


def inputs(batch=5, seed=0, dims=(3, 2, 4)):
    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn(batch, d, generator=g) for n, d in zip("abc", dims)}


def train_a_little(net, order=(1, 2, 0), n_batches=3):
    """Alternating steps on random batches: running correlations leave zero."""
    net.train()
    for seed in range(n_batches):
        carry = None
        for k in range(len(order)):
            out = net.alternating_step(inputs(16, seed), order, k, carry)
            carry = out.carry
    return net.eval()


# -- mapping (issue 11, defect 1) ---------------------------------------------------
def test_correlation_matrix_is_centred_cosine():
    xi = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 2.0], [3.0, 1.0]])
    xj = torch.tensor([[2.0, 1.0], [0.0, 1.0], [2.0, 0.0], [1.0, 5.0]])
    c = correlation_matrix(xi, xj)
    expected = torch.empty(2, 2)
    for r in range(2):
        for q in range(2):
            a, b = xi[:, r] - xi[:, r].mean(), xj[:, q] - xj[:, q].mean()
            expected[r, q] = (a @ b) / (a.norm() * b.norm())
    torch.testing.assert_close(c, expected)


def test_threshold_zeroes_weak_entries_and_sets_unit_diagonal():
    c = torch.tensor([[0.5, 0.25, -0.9], [0.3, 0.1, 0.2], [0.21, 0.19, -1.0]])
    out = threshold_correlation(c, tau=0.2)
    expected = torch.tensor([[1.0, 0.25, 0.0], [0.3, 1.0, 0.0], [0.21, 0.0, 1.0]])
    torch.testing.assert_close(out, expected)


def test_mapping_matrix_rows_average():
    c = torch.tensor([[0.5, 0.5], [0.1, 0.3]])
    m = mapping_matrix(c, tau=0.2)
    torch.testing.assert_close(m, torch.tensor([[2 / 3, 1 / 3], [0.0, 1.0]]))


@pytest.mark.parametrize("dense", [True, False])
def test_pairwise_correlations_match_each_pair_over_co_present_rows(dense):
    g = torch.Generator().manual_seed(0)
    feats = torch.relu(torch.randn(40, 3, 5, generator=g))
    present = torch.rand(40, 3, generator=g) > (-1 if dense else 0.3)
    corr, counts = pairwise_correlations(feats, present)
    for i, j in itertools.permutations(range(3), 2):
        both = present[:, i] & present[:, j]
        assert counts[i, j] == both.sum()
        expected = correlation_matrix(feats[both, i], feats[both, j])
        torch.testing.assert_close(corr[i, j], expected, atol=1e-5, rtol=1e-4)


def _independent_relu_features(n=4096, h=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.relu(torch.randn(n, 2, h, generator=g))


def test_unrelated_post_relu_features_survive_no_threshold():
    # Regression (issue 11): the uncentred cosine of independent non-negative
    # features is ~0.3, so tau=0.2 kept nearly every entry.
    feats = _independent_relu_features()
    corr, _ = pairwise_correlations(feats, torch.ones(4096, 2, dtype=torch.bool))
    off = ~torch.eye(32, dtype=torch.bool)
    assert (corr[0, 1][off] > 0.2).float().mean() < 0.01
    uncentred = feats[:, 0].T @ feats[:, 1]
    uncentred = uncentred / torch.outer(
        feats[:, 0].norm(dim=0), feats[:, 1].norm(dim=0)
    )
    assert (uncentred[off] > 0.2).float().mean() > 0.9  # the old reading


def test_surviving_share_falls_as_tau_rises():
    g = torch.Generator().manual_seed(1)
    shared = torch.randn(2048, 8, generator=g)
    xi = torch.relu(torch.cat([shared, torch.randn(2048, 24, generator=g)], 1))
    xj = torch.relu(
        torch.cat(
            [
                shared + 0.5 * torch.randn(2048, 8, generator=g),
                torch.randn(2048, 24, generator=g),
            ],
            1,
        )
    )
    c = correlation_matrix(xi, xj)
    off = ~torch.eye(32, dtype=torch.bool)
    shares = [
        float((threshold_correlation(c, t)[off] > 0).float().mean())
        for t in (0.0, 0.1, 0.2, 0.3, 0.6)
    ]
    assert all(a >= b for a, b in zip(shares, shares[1:]))
    assert shares[2] < 0.1 < shares[0]


def test_mapped_features_stay_on_the_scale_of_the_input():
    torch.manual_seed(0)
    mapping = CrossModalMapping(2, 16, tau=0.0)
    for _ in range(20):  # strongly correlated features: many entries survive
        base = torch.relu(torch.randn(64, 1))
        feats = [base + 0.1 * torch.rand(64, 16), base + 0.1 * torch.rand(64, 16)]
        mapping.update(feats, torch.ones(64, 2, dtype=torch.bool))
    assert (mapping.matrix(0, 1) > 0).float().mean() > 0.9
    xj = torch.relu(torch.randn(100, 16)) * 3
    xhat = mapping(xj, 0, 1)
    assert xhat.max() <= xj.max() + 1e-5 and xhat.min() >= 0
    torch.testing.assert_close(xhat.mean(), xj.mean(), rtol=0.2, atol=0.0)


def test_running_correlation_is_a_cumulative_then_momentum_average():
    torch.manual_seed(0)
    mapping = CrossModalMapping(2, 3, tau=0.1, momentum=0.5)
    present = torch.ones(6, 2, dtype=torch.bool)
    a = [torch.randn(6, 3), torch.randn(6, 3)]
    b = [torch.randn(6, 3), torch.randn(6, 3)]
    mapping.update(a, present)
    ca = correlation_matrix(*a)
    torch.testing.assert_close(mapping.running[0, 1], ca, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(mapping.running[1, 0], ca.T, atol=1e-6, rtol=1e-5)
    mapping.update(b, present)
    expected = 0.5 * ca + 0.5 * correlation_matrix(*b)
    torch.testing.assert_close(mapping.running[0, 1], expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(mapping.matrix(0, 1), mapping_matrix(expected, 0.1))
    assert mapping.n_updates.tolist() == [[0, 2], [2, 0]]


def test_pair_seen_by_fewer_than_two_rows_is_not_updated():
    mapping = CrossModalMapping(2, 3, tau=0.1)
    present = torch.tensor([[True, True], [True, False], [False, True]])
    mapping.update([torch.randn(3, 3), torch.randn(3, 3)], present)
    assert mapping.n_updates.sum() == 0
    torch.testing.assert_close(mapping.maps[0, 1], torch.eye(3))


def test_mapping_forward_matches_eq_11():
    mapping = CrossModalMapping(2, 3, tau=0.1)
    mapping.update([torch.randn(8, 3), torch.randn(8, 3)], torch.ones(8, 2).bool())
    xj = torch.randn(4, 3)
    expected = xj @ mapping_matrix(mapping.running[0, 1], 0.1).T
    torch.testing.assert_close(mapping(xj, 0, 1), expected)


def test_update_remakes_every_matrix_it_updates():
    mapping = CrossModalMapping(3, 4, tau=0.1)
    mapping.update([torch.randn(8, 4) for _ in range(3)], torch.ones(8, 3).bool())
    expected = torch.stack(
        [torch.stack([mapping_matrix(c, 0.1) for c in row]) for row in mapping.running]
    )
    torch.testing.assert_close(mapping.maps, expected)


# -- memory cell -------------------------------------------------------------------------
def test_memory_cell_matches_eq_12_to_14():
    torch.manual_seed(0)
    cell = MemoryCell(2)
    s, xhat = torch.randn(3, 2), torch.randn(3, 2)
    W = torch.cat([cell.weight_state, cell.weight_input], dim=1)
    b = cell.bias
    z = torch.sigmoid(torch.cat([s, xhat], 1) @ W.T + b)
    f, i, o = z[:, :2], z[:, 2:4], z[:, 4:]
    expected = o * torch.tanh(f * s + i * xhat)
    torch.testing.assert_close(cell(s, xhat), expected)


def test_chain_starts_with_the_cell_on_a_zero_state():
    torch.manual_seed(0)
    cell = MemoryCell(3)
    x = torch.randn(5, 3)
    torch.testing.assert_close(cell.start(x), cell(torch.zeros(5, 3), x))


def test_a_start_needs_only_the_input_and_output_gates():
    # inference projects a chain start with the i and o rows of W_x alone;
    # training (with gradient) uses the full product: both give one state
    torch.manual_seed(0)
    cell = MemoryCell(4)
    x = torch.randn(6, 4)
    assert cell.project_start(x).shape == (6, 8)
    torch.testing.assert_close(
        cell.start_projected(x, cell.project_start(x)),
        cell.start_projected(x, cell.project_input(x)),
    )
    net = train_a_little(make_net(), (0, 1))
    x = inputs(5)
    with torch.no_grad():
        states, _ = net.group_states(x, [[(0,)], [(1, 0)]])
    states_with_grad, _ = net.group_states(x, [[(0,)], [(1, 0)]])
    torch.testing.assert_close(states, states_with_grad.detach())


def test_gated_tanh_without_gradient_matches_the_plain_form():
    # inference computes tanh as 2 sigmoid(2x) - 1 (faster on the CPU); it
    # must agree to float32 rounding, saturation included, and the gradient
    # path must keep the exact form
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(64, 8, generator=g) * 3, torch.full((1, 8), 60.0)])
    x[-1, ::2] = -60.0
    gate = torch.rand(65, 8, generator=g)
    with torch.no_grad():
        fast = gated_tanh(gate, x)
    torch.testing.assert_close(fast, gate * torch.tanh(x), rtol=0, atol=1e-6)
    assert fast[-1].abs().max() <= 1.0
    x.requires_grad_()
    (gated_tanh(gate, x) * 2).sum().backward()
    torch.testing.assert_close(x.grad, 2 * gate * (1 - torch.tanh(x.detach()) ** 2))


def test_inference_projects_each_modality_once(monkeypatch):
    # without the mapping a modality's input projection does not depend on
    # its predecessor: the candidates' walk computes it once per modality, in
    # full where some chain fuses the modality, the start's two gates where
    # it only starts a chain
    torch.manual_seed(0)
    net = make_net(mapping=False).eval()
    calls = []
    for name in ("project_input", "project_start"):
        method = getattr(net.fusion, name)
        monkeypatch.setattr(
            net.fusion,
            name,
            lambda x, name=name, method=method: calls.append(name) or method(x),
        )
    with torch.no_grad():
        net.group_states(inputs(), [[(1, 2), (2, 1)], [(0,)], [(1,)]])
    assert sorted(calls) == ["project_input", "project_input", "project_start"]


# -- the chain -----------------------------------------------------------------------------
def test_chain_of_two_by_hand():
    torch.manual_seed(0)
    net = train_a_little(
        make_net(modalities=["a", "b"], input_dims=[3, 2], tau=0.0), (0, 1)
    )
    x = inputs(4, dims=(3, 2))
    fa = torch.relu(net.adapters[0][0](x["a"]))
    fb = torch.relu(net.adapters[1][0](x["b"]))
    state = net.fusion(net.fusion.start(fa), fb @ net.mapping.maps[0, 1].T)
    feats, present = net.encode(x)
    carry = net.run_order(feats, present, (0, 1))
    torch.testing.assert_close(carry.state, state)


def test_hybrid_forward_averages_all_orders():
    torch.manual_seed(0)
    net = train_a_little(make_net())
    x = inputs()
    feats, present = net.encode(x)
    states = [
        net.run_order(feats, present, o).state for o in itertools.permutations(range(3))
    ]
    expected = net.head(torch.stack(states).mean(0))
    torch.testing.assert_close(net(**x), expected)


@pytest.mark.parametrize("mapping", [True, False])
@pytest.mark.parametrize("memory", [True, False])
def test_shared_pair_work_equals_running_every_order(mapping, memory):
    # the trie walk reuses each pair's mapping and gate projection across
    # orders; with per-sample predecessors (missing rows) it must equal running
    # every order from scratch
    torch.manual_seed(0)
    net = train_a_little(make_net(mapping=mapping, memory=memory))
    x = inputs(12, seed=7)
    x["a"][[1, 4, 5]] = float("nan")
    x["b"][[2, 5, 9]] = float("nan")
    feats, present = net.encode(x)
    states = [
        net.run_order(feats, present, o).state for o in itertools.permutations(range(3))
    ]
    expected = net.head(torch.stack(states).mean(0))
    torch.testing.assert_close(net(**x), expected)


def test_missing_modality_is_skipped_per_sample():
    torch.manual_seed(0)
    net = train_a_little(make_net())
    x = inputs()
    x["b"][1] = float("nan")
    feats, present = net.encode(x)
    assert present[:, 1].tolist() == [True, False, True, True, True]
    got = net.run_order(feats, present, (0, 1, 2)).state[1]
    alone = net.run_order(feats, present, (0, 2)).state[1]
    torch.testing.assert_close(got, alone)
    fa, fc = feats[0][1:2], feats[2][1:2]
    by_hand = net.fusion(net.fusion.start(fa), fc @ net.mapping.maps[0, 2].T)
    torch.testing.assert_close(got, by_hand[0])


def test_hybrid_over_all_orders_equals_hybrid_over_present_ones():
    torch.manual_seed(0)
    net = make_net().eval()
    x = inputs(3)
    x["c"][:] = float("nan")
    feats, present = net.encode(x)
    averaged = net.averaged_states(
        feats, present, [list(itertools.permutations(range(3)))]
    )
    two = net.averaged_states(feats, present, [[(0, 1), (1, 0)]])
    torch.testing.assert_close(averaged, two)


def test_prediction_is_batch_independent():
    torch.manual_seed(0)
    net = train_a_little(make_net())
    x = inputs(64, seed=5)
    x["a"][3] = float("nan")
    big = net(**x)
    for row in (0, 3, 63):
        alone = net(**{k: v[row : row + 1] for k, v in x.items()})
        torch.testing.assert_close(alone[0], big[row], rtol=1e-5, atol=1e-6)


def test_inference_does_not_change_the_module():
    torch.manual_seed(0)
    net = train_a_little(make_net())
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net(**inputs(8))
    net.subset_logits(inputs(8), [(0,), (1, 2)])
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_subset_logits_share_work_but_match_separate_runs():
    torch.manual_seed(0)
    net = train_a_little(make_net())
    x = inputs(6)
    subsets = [(0,), (1, 2), (0, 1, 2)]
    logits, covered = net.subset_logits(x, subsets)
    assert covered.all()
    for k, subset in enumerate(subsets):
        masked = {
            n: v if i in subset else torch.full_like(v, float("nan"))
            for i, (n, v) in enumerate(x.items())
        }
        torch.testing.assert_close(logits[k], net(**masked))


# -- the alternating step (issue 11, defects 2 and 3) --------------------------------------
def test_alternating_step_freezes_earlier_adapters():
    torch.manual_seed(0)
    net = make_net().train()
    out = net.alternating_step(inputs(8), (1, 0, 2), 1)
    sum(z.sum() for z, _ in out.terms).backward()
    assert net.adapters[1][0].weight.grad is None  # earlier: frozen
    assert net.adapters[0][0].weight.grad is not None  # trained modality
    assert net.adapters[2][0].weight.grad is None  # later: not used
    assert net.fusion.weight_state.grad is not None


def test_every_step_has_the_trained_modalitys_own_term():
    # Regression (issue 11): the modality placed last was only ever trained
    # through the chain, never alone, so its unimodal accuracy was poor.
    torch.manual_seed(0)
    net = make_net().train()
    x = inputs(8)
    out = net.alternating_step(x, (1, 0, 2), 2)
    assert len(out.terms) == 2
    own, rows = out.terms[1]
    feats = torch.relu(net.adapters[2][0](x["c"]))
    torch.testing.assert_close(own, net.head(net.fusion.start(feats))[rows])


def test_carry_continues_the_chain_of_the_previous_step():
    torch.manual_seed(0)
    net = make_net().eval()  # no running update: both paths see the same maps
    x = inputs(8)
    x["b"][[0, 3]] = float("nan")
    carry = None
    for k in range(3):
        out = net.alternating_step(x, (1, 0, 2), k, carry)
        carry = out.carry
    fresh = net.alternating_step(x, (1, 0, 2), 2)  # prefix run from scratch
    torch.testing.assert_close(out.terms[0][0], fresh.terms[0][0])
    feats, present = net.encode(x)
    full = net.run_order(feats, present, (1, 0, 2)).state
    torch.testing.assert_close(carry.state, full)


def test_fusion_term_trains_the_cell_and_head_on_a_full_order_only():
    torch.manual_seed(0)
    net = make_net().train()
    out = net.alternating_step(inputs(8), (1, 0, 2), 0, fusion_order=(2, 0, 1))
    fused, rows = out.terms[-1]
    assert rows.all() and fused.shape == (8, 3)
    fused.sum().backward()
    for adapter in net.adapters:
        grad = adapter[0].weight.grad
        assert grad is None or not grad.any()
    assert net.fusion.weight_state.grad is not None
    assert net.head.weight.grad is not None


def test_every_ordered_pair_keeps_updating():
    # Regression (issue 11): only the Shapley order's pairs were trained; the
    # reverse pair's running matrix froze after the first epoch. A batch now
    # updates the pairs its training order and its fusion order use.
    torch.manual_seed(0)
    net = make_net().train()
    order = (0, 1, 2)
    rng = np.random.default_rng(0)
    for seed in range(30):
        fusion = tuple(int(m) for m in rng.permutation(3))
        before = net.mapping.n_updates.clone()
        carry = None
        for k in range(3):
            out = net.alternating_step(
                inputs(16, seed), order, k, carry, fusion if k == 0 else None
            )
            carry = out.carry
        updated = {
            tuple(p) for p in (net.mapping.n_updates > before).nonzero().tolist()
        }
        assert updated == set(zip(order, order[1:])) | set(zip(fusion, fusion[1:]))
    off = ~torch.eye(3, dtype=torch.bool)
    assert (net.mapping.n_updates[off] > 0).all()
    assert net.mapping.n_updates[0, 1] == net.mapping.n_updates[1, 2] == 30


def test_pair_update_matches_the_correlation_of_each_pair():
    torch.manual_seed(0)
    feats = [torch.randn(16, 4) for _ in range(3)]
    complete = torch.ones(16, 3, dtype=torch.bool)
    mapping = CrossModalMapping(3, 4, tau=0.1)
    mapping.update(feats, complete, pairs=[(2, 0), (0, 1)])
    for i, j in [(2, 0), (0, 1)]:
        expected = correlation_matrix(feats[i], feats[j])
        torch.testing.assert_close(mapping.running[i, j], expected)
        torch.testing.assert_close(mapping.maps[i, j], mapping_matrix(expected, 0.1))
    assert mapping.n_updates.sum() == 2
    # with absent rows every pair seen by two rows is updated
    partial = complete.clone()
    partial[:3, 1] = False
    mapping.update(feats, partial)
    assert (mapping.n_updates[~torch.eye(3, dtype=torch.bool)] >= 1).all()


# -- orders ----------------------------------------------------------------------------------
def test_sample_orders_keeps_all_orders_under_the_cap():
    assert sorted(sample_orders((0, 1, 2), 6, 0)) == sorted(
        itertools.permutations(range(3))
    )


@pytest.mark.parametrize("n", range(2, 9))
def test_williams_design_balances_positions_and_adjacent_pairs(n):
    design = williams_design(n)
    assert len(design) == (n if n % 2 == 0 else 2 * n)
    assert all(sorted(row) == list(range(n)) for row in design)
    for position in range(n):
        counts = [sum(row[position] == m for row in design) for m in range(n)]
        assert len(set(counts)) == 1
    pairs = [(row[t], row[t + 1]) for row in design for t in range(n - 1)]
    assert len(set(pairs)) == n * (n - 1)
    assert len(pairs) == len(set(pairs)) * (1 if n % 2 == 0 else 2)


def test_sample_orders_is_balanced_seeded_and_capped():
    sampled = sample_orders(tuple(range(6)), 12, seed=1)
    assert len(sampled) == len(set(sampled)) == 12
    assert sampled == sample_orders(tuple(range(6)), 12, seed=1)
    assert sampled != sample_orders(tuple(range(6)), 12, seed=2)
    lasts = [o[-1] for o in sampled]
    assert all(lasts.count(m) == 2 for m in range(6))
    assert len(sample_orders(tuple(range(7)), 10, seed=0)) == 10


def test_coalition_orders_are_restrictions_of_the_shared_sample():
    orders = [(0, 1, 2, 3), (3, 2, 1, 0)]
    assert restrict(orders, (1, 3)) == [(1, 3), (3, 1)]
    net = make_net(modalities=list("abcdefg"), input_dims=[2] * 7, max_orders=14)
    assert len(net.orders) == 14
    assert net.orders_of((0, 4)) == restrict(net.orders, (0, 4))


def test_order_trie_shares_prefixes():
    trie = OrderTrie([list(itertools.permutations(range(3)))])
    assert trie.n_nodes == 3 + 6 + 6
    visited = []
    trie.walk((), lambda c, j, d: (*c, j), lambda c, ends: visited.append((c, ends)))
    assert sorted(v[0] for v in visited) == sorted(itertools.permutations(range(3)))
    assert all(ends == [(0, pytest.approx(1 / 6))] for _, ends in visited)


# -- the combiner ----------------------------------------------------------------------------
def test_candidate_groups_are_orders_then_each_modality():
    groups, kinds = candidate_groups([(0, 1), (1, 0)], 2)
    assert groups == [[(0, 1)], [(1, 0)], [(0,)], [(1,)]]
    assert kinds == [0, 0, 1, 2]


def test_combiner_weights_are_a_distribution_over_available_candidates():
    combiner = CandidateCombiner([0, 0, 1], [0.0, -1.0])
    logits = torch.randn(3, 5, 4)
    available = torch.ones(3, 5, dtype=torch.bool)
    available[2, :2] = False
    w = combiner.weights(logits, available)
    torch.testing.assert_close(w.sum(0), torch.ones(5))
    assert (w[2, :2] == 0).all()
    # prior: orders share weight equally, the modality alone weighs e^-1 as much
    torch.testing.assert_close(
        w[2, 2:], torch.full((3,), math.exp(-1) / (2 + math.exp(-1)))
    )


def test_combiner_learns_to_ignore_a_useless_candidate():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (300,), generator=g)
    good = torch.nn.functional.one_hot(y, 3).float() * 3 + torch.randn(
        300, 3, generator=g
    )
    noise = torch.randn(300, 3, generator=g) * 3
    logits = torch.stack([good, noise])
    available = torch.ones(2, 300, dtype=torch.bool)
    fitted = fit_combiner(logits, available, y, [0, 1], [0.0, 0.0])
    w = fitted.weights(logits, available)
    assert w[0].mean() > 0.9
    accuracy = (fitted(logits, available).argmax(1) == y).float().mean()
    assert accuracy >= (good.argmax(1) == y).float().mean() - 0.01


def test_combiner_temperature_depends_on_the_presence_pattern():
    combiner = CandidateCombiner([0, 0, 1, 2], [0.0, -1.0, -1.0])
    with torch.no_grad():
        combiner.log_temperature.fill_(0.5)
        combiner.pattern_log_temperature.copy_(torch.tensor([0.0, 0.1, 0.2, 0.3]))
    available = torch.tensor(
        [[1, 1, 1], [1, 1, 1], [1, 0, 1], [0, 1, 1]], dtype=torch.bool
    )  # samples: only modality 0, only modality 1, both
    assert combiner.patterns(available).tolist() == [1, 2, 3]
    expected = torch.tensor([0.6, 0.7, 0.8]).exp()
    torch.testing.assert_close(combiner.temperature(available), expected)
    logits = torch.randn(4, 3, 5)
    weights = combiner.weights(logits, available)
    torch.testing.assert_close(
        combiner(logits, available),
        combiner.combine(logits, weights) / expected[:, None],
    )


def test_combiner_fit_loss_matches_the_combined_prediction():
    # fit_combiner evaluates the loss from logits laid out classes first (for
    # speed); values and gradients are those of the combiner's own forward
    from sklearn_modeq.nn.combiner import _nll_classes_first, confidence

    g = torch.Generator().manual_seed(0)
    kinds = [0, 0, 0, 1, 2, 3]
    combiner = CandidateCombiner(kinds, [0.0, -1.0, -1.0, -1.0])
    with torch.no_grad():
        for p in combiner.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    logits = torch.randn(6, 50, 7, generator=g) * 3
    available = torch.rand(6, 50, generator=g) > 0.3
    available[0] = True
    y = torch.randint(0, 7, (50,), generator=g)
    conf, patterns = confidence(logits), combiner.patterns(available)
    by_class = logits.permute(2, 0, 1).contiguous()
    losses = []
    for fast in (False, True):
        combiner.zero_grad()
        if fast:
            nll = _nll_classes_first(combiner, by_class, available, conf, patterns, y)
        else:
            nll = torch.nn.functional.cross_entropy(
                combiner(logits, available), y, reduction="none"
            )
        nll.mean().backward()
        losses.append((nll.detach(), [p.grad.clone() for p in combiner.parameters()]))
    torch.testing.assert_close(losses[0][0], losses[1][0])
    for plain, fast in zip(losses[0][1], losses[1][1]):
        torch.testing.assert_close(plain, fast)


def test_above_four_modalities_the_temperature_follows_the_count():
    kinds = [0] + [1 + m for m in range(5)]
    combiner = CandidateCombiner(kinds, [0.0] * 6)
    assert combiner.pattern_log_temperature.shape == (6,)
    available = torch.ones(6, 2, dtype=torch.bool)
    available[1:4, 1] = False
    assert combiner.patterns(available).tolist() == [5, 2]
