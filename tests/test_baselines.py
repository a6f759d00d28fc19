"""Baseline estimators: shared interface, and the mechanism of each method."""

import pickle

import numpy as np
import pytest
import torch
from _estimators import BASELINES, imbalanced, small
from sklearn.base import clone

from sklearn_modeq import metrics
from sklearn_modeq.baselines import (
    CRMTClassifier,
    LateFusionClassifier,
    LFMClassifier,
    MLAClassifier,
    OGMGEClassifier,
)
from sklearn_modeq.nn.baselines import (
    ConcatFusion,
    OrthogonalFusion,
    SharedHeadFusion,
    SumFusion,
    ogm_coefficients,
)


@pytest.fixture(scope="module")
def data():
    return imbalanced()


@pytest.fixture(scope="module", params=BASELINES, ids=lambda c: c.__name__)
def fitted(request, data):
    X, y = data
    return small(request.param).fit(X, y)


# -- shared interface --
def test_predict_proba_is_a_distribution(fitted, data):
    X, y = data
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(y), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(fitted.predict(X), fitted.classes_[proba.argmax(1)])


def test_fitted_attributes(fitted):
    assert fitted.modalities_ == ["strong", "weak"]
    assert fitted.n_features_in_ == 11
    assert fitted.n_iter_ >= 3


def test_pickle_keeps_predictions(fitted, data):
    X, _ = data
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(restored.predict_proba(X), fitted.predict_proba(X))


def test_clone_before_and_after_fit(fitted):
    for estimator in (fitted, clone(fitted)):
        cloned = clone(estimator)
        assert cloned.get_params() == fitted.get_params()
        assert not hasattr(cloned, "net_")


def test_missing_modality_rows_and_keys(fitted, data):
    X, _ = data
    holes = {k: v.copy() for k, v in X.items()}
    holes["weak"][:10] = np.nan
    holes["strong"][10:20] = np.nan
    assert np.isfinite(fitted.predict_proba(holes)).all()
    # a row missing 'weak' is predicted as by the model without 'weak'
    alone = fitted.predict_proba({"strong": X["strong"][:10]})
    np.testing.assert_allclose(fitted.predict_proba(holes)[:10], alone, atol=1e-6)


def test_metrics_read_every_method(fitted, data):
    X, y = data
    acc = metrics.modality_accuracy(fitted, X, y)
    assert set(acc) == {"strong", "weak", "fused"}
    assert acc["fused"] == pytest.approx(fitted.score(X, y))
    result = metrics.edm(fitted, X, y)
    assert result.edm >= 0


@pytest.mark.parametrize("cls", BASELINES, ids=lambda c: c.__name__)
def test_same_seed_same_model_other_seed_differs(cls, data):
    X, y = data
    first = small(cls, max_epochs=2).fit(X, y).predict_proba(X)
    again = small(cls, max_epochs=2).fit(X, y).predict_proba(X)
    other = small(cls, max_epochs=2, random_state=1).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


# -- fusion rules --
def _module_inputs(module, seed=0, batch=7):
    gen = torch.Generator().manual_seed(seed)
    dims = [a[0].in_features for a in module.adapters]
    return {
        name: torch.randn(batch, d, generator=gen)
        for name, d in zip(module.modalities, dims)
    }


def test_concat_zero_fills_absent_modality():
    module = ConcatFusion(["a", "b"], [3, 4], n_classes=2, hidden_size=5)
    inputs = _module_inputs(module)
    inputs["b"][:3] = float("nan")
    logits = module(**inputs)
    feats, _ = module.encode(inputs)
    zero_b = torch.cat([feats[0], torch.zeros_like(feats[1])], dim=1)
    torch.testing.assert_close(logits[:3], module.head(zero_b)[:3])
    both = torch.cat(feats, dim=1)
    torch.testing.assert_close(logits[3:], module.head(both)[3:])


def test_sum_adds_the_logits_of_present_modalities():
    module = SumFusion(["a", "b"], [3, 4], n_classes=2, hidden_size=5)
    inputs = _module_inputs(module)
    inputs["a"][:2] = float("nan")
    feats, _ = module.encode(inputs)
    z = module.unimodal_logits(feats)
    logits = module(**inputs)
    torch.testing.assert_close(logits[:2], z[1, :2])
    torch.testing.assert_close(logits[2:], z[0, 2:] + z[1, 2:])


def test_late_fusion_averages_probabilities_over_present_modalities(data):
    X, y = data
    clf = small(LateFusionClassifier).fit(X, y)
    p_strong = clf.predict_proba({"strong": X["strong"]})
    p_weak = clf.predict_proba({"weak": X["weak"]})
    np.testing.assert_allclose(clf.predict_proba(X), (p_strong + p_weak) / 2, atol=1e-6)


def test_late_fusion_trains_each_modality_alone(data):
    """Changing the weak modality's data leaves the strong classifier unchanged."""
    X, y = data
    shuffled = dict(X, weak=np.random.RandomState(3).permutation(X["weak"]))
    a = small(LateFusionClassifier, validation_fraction=0).fit(X, y)
    b = small(LateFusionClassifier, validation_fraction=0).fit(shuffled, y)
    strong = {"strong": X["strong"]}
    np.testing.assert_allclose(a.predict_proba(strong), b.predict_proba(strong))


# -- OGM-GE --
def test_ogm_coefficient_lowers_only_the_dominant_modality():
    y = torch.tensor([0, 1, 2, 0])
    confident = 5.0 * torch.nn.functional.one_hot(y, 3).float()
    uniform = torch.zeros(4, 3)
    z = torch.stack([confident, uniform])
    present = torch.ones(4, 2, dtype=torch.bool)
    k = ogm_coefficients(z, y, present, alpha=0.5)
    assert k[0] < 1.0
    assert k[1] == 1.0
    assert torch.all(ogm_coefficients(z, y, present, alpha=0.0) == 1.0)
    # a stronger alpha modulates more
    assert ogm_coefficients(z, y, present, alpha=1.0)[0] < k[0]


def test_ogm_coefficient_is_one_minus_tanh_of_the_ratio():
    # Regression (issue 11, section 5): Eq. 10 and the official code use
    # 1 - tanh(alpha * rho) for rho > 1, not 1 - tanh(alpha * (rho - 1)).
    y = torch.zeros(3, dtype=torch.long)
    p = torch.tensor([0.6, 0.5])  # true-class probabilities: rho = 1.2 and 1/1.2
    z = torch.log(torch.stack([p, 1 - p], dim=1))[:, None, :].expand(2, 3, 2)
    k = ogm_coefficients(z, y, torch.ones(3, 2, dtype=torch.bool), alpha=0.5)
    torch.testing.assert_close(k, torch.tensor([1 - np.tanh(0.6), 1.0]).float())
    assert float(k[0]) == pytest.approx(0.463, abs=1e-3)


def test_ogm_modulate_scales_only_the_adapter_weight_gradients(data):
    X, y = data
    clf = small(OGMGEClassifier, gaussian_noise=False).fit(X, y)
    net, module = clf.net_, clf.net_.module_
    for p in module.parameters():
        p.grad = torch.ones_like(p)
    net.modulate(torch.tensor([0.25, 1.0]))
    for name, p in module.adapters[0].named_parameters():
        expected = 0.25 if name.endswith("weight") else 1.0
        torch.testing.assert_close(p.grad, torch.full_like(p, expected))
    for p in [*module.adapters[1].parameters(), *module.head.parameters()]:
        torch.testing.assert_close(p.grad, torch.ones_like(p))


def test_ogm_noise_has_the_std_of_the_unscaled_gradient(data):
    X, y = data
    clf = small(OGMGEClassifier, hidden_size=64).fit(X, y)
    net, module = clf.net_, clf.net_.module_
    torch.manual_seed(0)
    for p in module.parameters():
        p.grad = 3.0 * torch.randn_like(p)
    bias = module.adapters[0][0].bias.grad.clone()
    net.modulate(torch.tensor([1e-3, 1.0]))
    for adapter in module.adapters:
        # k * g + N(0, std(g)^2) has the std of g for k << 1 and sqrt(2) std(g)
        # for k = 1; a std taken after scaling would give ~0.003 for the first
        assert float(adapter[0].weight.grad.std()) > 2.5
    torch.testing.assert_close(module.adapters[0][0].bias.grad, bias)


def test_ogm_modulates_only_until_modulation_ends(data):
    X, y = data
    clf = small(OGMGEClassifier, max_epochs=6, modulation_ends=0.5).fit(X, y)
    modulated = [
        any("ogm_coefficients" in b for b in e["batches"]) for e in clf.history_
    ]
    assert modulated == [True, True, True, True, False, False]


def test_ogm_slows_the_strong_modality_during_training(data):
    X, y = data
    clf = small(OGMGEClassifier, max_epochs=4).fit(X, y)
    k = np.array(
        [
            b["ogm_coefficients"]
            for e in clf.history_
            for b in e["batches"]
            if "ogm_coefficients" in b
        ]
    )
    assert k.shape[1] == 2
    assert k[:, 0].mean() < k[:, 1].mean()
    assert k[:, 1].min() == 1.0


# -- MLA --
def test_mla_head_update_is_orthogonal_to_stored_directions(data):
    X, y = data
    clf = small(MLAClassifier, owm_alpha=1e-6).fit(X, y)
    net, module = clf.net_, clf.net_.module_
    inputs = {k: torch.as_tensor(v) for k, v in clf._validated(X).items()}
    r = torch.rand(module.hidden_size)
    r = r / r.norm()
    module.owm_corr.zero_()
    module.owm_count.zero_()
    module.remember(1, r.repeat(4, 1))

    def head_update(projection):
        net.projection = projection
        before = module.head.weight.detach().clone()
        net.optimizer_.zero_grad()
        [(logits, rows)] = module.alternating_step(inputs, [0, 1], 0).terms
        torch.nn.functional.cross_entropy(logits, torch.as_tensor(y)[rows]).backward()
        net.step_modality(0)
        return (module.head.weight - before).detach()

    delta = head_update(True)
    assert delta.norm() > 0
    assert (delta @ r).norm() < 1e-4 * delta.norm()
    free = head_update(False)
    assert (free @ r).norm() > 1e-2 * free.norm()


def test_mla_remembers_every_modality_while_training(data):
    X, y = data
    module = small(MLAClassifier).fit(X, y).net_.module_
    assert (module.owm_count > 0).all()
    assert not torch.allclose(module.projector(0), torch.eye(module.hidden_size))


def test_mla_fuses_by_negative_entropy_weights():
    module = SharedHeadFusion(["a", "b"], [3, 4], n_classes=3, hidden_size=5)
    inputs = _module_inputs(module)
    feats, present = module.encode(inputs)
    z = module.unimodal_logits(feats)
    log_p = torch.log_softmax(z, dim=2)
    entropy = -(log_p.exp() * log_p).sum(dim=2)
    weights = torch.softmax(-entropy, dim=0)
    expected = (weights[:, :, None] * z).sum(dim=0)
    torch.testing.assert_close(module(**inputs), expected)
    inputs["b"][:] = float("nan")
    torch.testing.assert_close(module(**inputs), z[0])


# -- LFM and CRMT --
def test_lfm_label_weight_follows_its_schedule(data):
    X, y = data
    clf = small(LFMClassifier, max_epochs=5, label_weight_end=0.2).fit(X, y)
    np.testing.assert_allclose(
        clf.history_[:, "label_weight"], [1.0, 0.8, 0.6, 0.4, 0.2]
    )


def test_crmt_orthogonal_heads_are_continuous_in_the_raw_weight():
    # Regression (issue 11, section 5): Householder QR picked each row's sign
    # from a pivot entry, so a class score flipped sign when that entry crossed
    # zero in training (CRMT's pixel accuracy varied by +-9.6 points over seeds).
    module = OrthogonalFusion(["a"], [4], n_classes=3, hidden_size=5)
    raw = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    heads = []
    for pivot in (1e-4, -1e-4):
        raw[0, 0] = pivot
        with torch.no_grad():
            module.raw_weight[0] = raw
        heads.append(module.orthogonal_weight(0))
    torch.testing.assert_close(heads[0], heads[1], atol=1e-3, rtol=0)
    # Gram-Schmidt of the rows: the first head is the first raw row, normalised
    torch.testing.assert_close(heads[1][0], raw[0] / raw[0].norm())


def test_crmt_heads_are_orthonormal_and_stage_two_moves_only_integration(data):
    X, y = data
    one = small(CRMTClassifier, integration_epochs=0).fit(X, y)
    two = small(CRMTClassifier, integration_epochs=3).fit(X, y)
    assert two.n_iter_ == one.n_iter_ + 3
    assert (two.lipschitz_ > 0).all()
    module = two.net_.module_
    for m in range(2):
        w = module.orthogonal_weight(m)
        torch.testing.assert_close(w @ w.T, torch.eye(3), atol=1e-5, rtol=0)
    before, after = one.net_.module_.state_dict(), module.state_dict()
    for name, value in after.items():
        if name in ("integration", "lipschitz"):
            assert not torch.equal(value, before[name])
        else:
            torch.testing.assert_close(value, before[name])
