"""The torch model: Eq. 9-14 by hand, masks, hybrid orders, batch independence."""

import itertools

import pytest
import torch

from sklearn_modeq.nn import (
    CrossModalMapping,
    MemoryCell,
    ModalityChainNet,
    OrderTrie,
    correlation_matrix,
    sample_orders,
    threshold_correlation,
)


def make_net(**kwargs):
    params = dict(
        modalities=["a", "b", "c"], input_dims=[3, 2, 4], n_classes=3, hidden_size=4
    )
    params.update(kwargs)
    return ModalityChainNet(**params)


def inputs(batch=5, seed=0, dims=(3, 2, 4)):
    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn(batch, d, generator=g) for n, d in zip("abc", dims)}


def test_correlation_matrix_by_hand():
    xi = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 2.0]])
    xj = torch.tensor([[2.0, 1.0], [0.0, 1.0], [2.0, 0.0]])
    c = correlation_matrix(xi, xj)
    # column-wise cosines over the batch, written out
    expected = torch.empty(2, 2)
    for r in range(2):
        for q in range(2):
            a, b = xi[:, r], xj[:, q]
            expected[r, q] = (a @ b) / (a.norm() * b.norm())
    torch.testing.assert_close(c, expected)


def test_threshold_zeroes_weak_entries_and_sets_unit_diagonal():
    c = torch.tensor([[0.5, 0.25, -0.9], [0.3, 0.1, 0.2], [0.21, 0.19, -1.0]])
    out = threshold_correlation(c, tau=0.2)
    expected = torch.tensor([[1.0, 0.25, 0.0], [0.3, 1.0, 0.0], [0.21, 0.0, 1.0]])
    torch.testing.assert_close(out, expected)


def test_mapping_forward_matches_eq_11_and_tracks_running_average():
    torch.manual_seed(0)
    xi, xj = torch.randn(6, 3), torch.randn(6, 3)
    mapping = CrossModalMapping(2, 3, tau=0.1, momentum=0.5)
    c = threshold_correlation(correlation_matrix(xi, xj), 0.1)
    mapping.train()
    torch.testing.assert_close(mapping(xi, xj, 0, 1), xj @ c.T)
    # first update replaces the identity outright (cumulative average)
    torch.testing.assert_close(mapping.running[0, 1], c)
    # the reverse pair is untouched
    torch.testing.assert_close(mapping.running[1, 0], torch.eye(3))
    mapping.eval()
    other = torch.randn(2, 3)
    torch.testing.assert_close(mapping(other[:, :3], other, 0, 1), other @ c.T)


def test_mapping_falls_back_to_a_copy_of_the_running_matrix_while_training():
    # A pair seen by fewer than 2 rows uses the running matrix; a later update of
    # the same pair in the same forward must not break backward (regression).
    torch.manual_seed(0)
    mapping = CrossModalMapping(2, 3, tau=0.1).train()
    xi, xj = torch.randn(6, 3), torch.randn(6, 3, requires_grad=True)
    one_row = torch.zeros(6, dtype=torch.bool)
    one_row[0] = True
    before = mapping.running[0, 1].clone()
    sparse = mapping(xi, xj, 0, 1, rows=one_row)
    torch.testing.assert_close(sparse, xj.detach() @ before.T)
    dense = mapping(xi, xj, 0, 1)
    (sparse.sum() + dense.sum()).backward()
    assert xj.grad is not None and torch.isfinite(xj.grad).all()


def test_memory_cell_matches_eq_12_to_14():
    torch.manual_seed(0)
    cell = MemoryCell(2)
    s, xhat = torch.randn(3, 2), torch.randn(3, 2)
    W, b = cell.gates.weight, cell.gates.bias
    z = torch.sigmoid(torch.cat([s, xhat], 1) @ W.T + b)
    f, i, o = z[:, :2], z[:, 2:4], z[:, 4:]
    expected = o * torch.tanh(f * s + i * xhat)
    torch.testing.assert_close(cell(s, xhat), expected)


def test_chain_of_two_by_hand():
    torch.manual_seed(0)
    net = make_net(modalities=["a", "b"], input_dims=[3, 2], tau=0.0).eval()
    x = inputs(4, dims=(3, 2))
    net.mapping.running[0, 1] = threshold_correlation(torch.rand(4, 4), 0.3)
    fa = torch.relu(net.adapters[0][0](x["a"]))
    fb = torch.relu(net.adapters[1][0](x["b"]))
    state = net.fusion(fa, fb @ net.mapping.running[0, 1].T)
    feats, present = net.encode(x)
    carry = net.run_order(feats, present, (0, 1))
    torch.testing.assert_close(carry.state, state)


def test_hybrid_forward_averages_all_orders():
    torch.manual_seed(0)
    net = make_net().eval()
    x = inputs()
    feats, present = net.encode(x)
    states = [
        net.run_order(feats, present, o).state for o in itertools.permutations(range(3))
    ]
    expected = net.head(torch.stack(states).mean(0))
    torch.testing.assert_close(net(**x), expected)


@pytest.mark.parametrize("mapping", [True, False])
@pytest.mark.parametrize("memory", [True, False])
def test_cached_pair_work_equals_running_every_order(mapping, memory):
    # Inference reuses each (predecessor, modality) pair's mapping and gate
    # projection across orders; with per-sample predecessors (missing rows) it
    # must equal running every order from scratch.
    torch.manual_seed(0)
    net = make_net(mapping=mapping, memory=memory).train()
    for seed in range(3):  # running matrices away from the identity
        net.alternating_logits(inputs(16, seed), (1, 2, 0), 2)
    net.eval()
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
    net = make_net().eval()
    x = inputs()
    x["b"][1] = float("nan")
    feats, present = net.encode(x)
    assert present[:, 1].tolist() == [True, False, True, True, True]
    got = net.run_order(feats, present, (0, 1, 2)).state[1]
    # sample 1 without b is exactly the chain a -> c
    only = {k: v[1:2] for k, v in x.items() if k != "b"}
    sub = make_net(modalities=["a", "c"], input_dims=[3, 4]).eval()
    sub.adapters[0].load_state_dict(net.adapters[0].state_dict())
    sub.adapters[1].load_state_dict(net.adapters[2].state_dict())
    sub.fusion.load_state_dict(net.fusion.state_dict())
    sub.mapping.running[0, 1] = net.mapping.running[0, 2]
    f2, p2 = sub.encode(only)
    torch.testing.assert_close(got, sub.run_order(f2, p2, (0, 1)).state[0])


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
    net = make_net()
    net.train()
    for seed in range(3):  # populate the running matrices
        net.alternating_logits(inputs(16, seed), (2, 0, 1), 2)
    net.eval()
    x = inputs(64, seed=5)
    x["a"][3] = float("nan")
    big = net(**x)
    for row in (0, 3, 63):
        alone = net(**{k: v[row : row + 1] for k, v in x.items()})
        torch.testing.assert_close(alone[0], big[row], rtol=1e-5, atol=1e-6)


def test_subset_logits_share_work_but_match_separate_runs():
    torch.manual_seed(0)
    net = make_net().eval()
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


def test_alternating_step_freezes_earlier_adapters():
    torch.manual_seed(0)
    net = make_net().train()
    logits, rows = net.alternating_logits(inputs(8), (1, 0, 2), 1)
    logits.sum().backward()
    assert net.adapters[1][0].weight.grad is None  # earlier: frozen
    assert net.adapters[0][0].weight.grad is not None  # trained modality
    assert net.adapters[2][0].weight.grad is None  # later: not used
    assert net.fusion.gates.weight.grad is not None
    assert rows.all()


def test_sample_orders_caps_and_is_seeded():
    assert len(sample_orders((0, 1, 2), 720, 0)) == 6
    sampled = sample_orders(tuple(range(7)), 50, seed=1)
    assert len(sampled) == len(set(sampled)) == 50
    assert sampled == sample_orders(tuple(range(7)), 50, seed=1)
    assert sampled != sample_orders(tuple(range(7)), 50, seed=2)


def test_order_trie_shares_prefixes():
    trie = OrderTrie([list(itertools.permutations(range(3)))])
    assert trie.n_nodes == 3 + 6 + 6
    visited = []
    trie.walk((), lambda c, j, d: (*c, j), lambda c, ends: visited.append((c, ends)))
    assert sorted(v[0] for v in visited) == sorted(itertools.permutations(range(3)))
    assert all(ends == [(0, pytest.approx(1 / 6))] for _, ends in visited)
