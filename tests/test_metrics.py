"""Metrics on fitted estimators and on plain predict callables."""

import numpy as np
import pytest

from sklearn_modeq import ShapleyAlternatingClassifier
from sklearn_modeq.metrics import (
    edm,
    modality_accuracy,
    modality_shapley,
    subset_accuracies,
)
from sklearn_modeq.shapley import exact_shapley


def oracle_data(n=200, seed=0):
    """'a' carries the label exactly, 'b' is noise."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 2, n)
    return {"a": y[:, None].astype(float), "b": rng.normal(size=(n, 2))}, y


def oracle_predict(X):
    """Predicts from 'a' when present (threshold), else always class 0."""
    if "a" in X:
        return (X["a"][:, 0] > 0.5).astype(int)
    return np.zeros(len(next(iter(X.values()))), dtype=int)


def test_subset_accuracies_of_a_callable_by_hand():
    X, y = oracle_data()
    acc = subset_accuracies(oracle_predict, X, y, empty_prediction=1)
    assert acc[0] == pytest.approx(np.mean(y == 1))
    assert acc[1] == 1.0  # {a}
    assert acc[2] == pytest.approx(np.mean(y == 0))  # {b}: constant 0
    assert acc[3] == 1.0


def test_modality_shapley_of_a_callable_matches_exact_game():
    X, y = oracle_data()
    acc = subset_accuracies(oracle_predict, X, y, empty_prediction=1)
    expected = exact_shapley([acc[m] for m in range(4)], 2)
    phi = modality_shapley(oracle_predict, X, y, empty_prediction=1)
    np.testing.assert_allclose([phi["a"], phi["b"]], expected)
    assert phi["a"] > phi["b"]


def test_rows_missing_the_whole_coalition_get_the_empty_prediction():
    X, y = oracle_data()
    X["a"][:50] = np.nan
    acc = subset_accuracies(oracle_predict, X, y, masks=[1], empty_prediction=1)
    expected = (np.sum(y[:50] == 1) + 150) / 200
    assert acc[1] == pytest.approx(expected)


def test_modality_accuracy_and_edm_of_a_callable():
    X, y = oracle_data()
    acc = modality_accuracy(oracle_predict, X, y)
    assert acc["a"] == 1.0 and acc["fused"] == 1.0
    result = edm(oracle_predict, X, y, empty_prediction=1)
    # v(a)=1, v(b)=P(y=0), v(ab)=2 -> phi_a = 1.5 - v(b)/2, phi_b = 0.5 + v(b)/2
    vb = np.mean(y == 0)
    np.testing.assert_allclose(result.phi, [1.5 - vb / 2, 0.5 + vb / 2])
    assert result.modalities == ("a", "b")
    assert result.edm == pytest.approx(np.abs(100 - 100 * result.phi).sum())


@pytest.fixture(scope="module")
def fitted():
    X, y = oracle_data(seed=1)
    X["a"] = X["a"] + np.random.RandomState(1).normal(scale=0.2, size=X["a"].shape)
    clf = ShapleyAlternatingClassifier(
        hidden_size=8, max_epochs=10, lr=1e-2, random_state=0, combiner_cv=None
    )
    return clf.fit(X, y), X, y


def test_estimator_fast_path_equals_generic_path(fitted):
    clf, X, y = fitted
    fast = subset_accuracies(clf, X, y)
    generic = subset_accuracies(
        clf.predict,
        X,
        y,
        modalities=clf.modalities_,
        empty_prediction=clf.classes_[np.argmax(clf.class_prior_)],
    )
    assert fast == pytest.approx(generic)


def test_estimator_metrics_are_consistent(fitted):
    clf, X, y = fitted
    acc = modality_accuracy(clf, X, y)
    assert acc["fused"] == pytest.approx(clf.score(X, y))
    assert acc["a"] > acc["b"]
    phi = modality_shapley(clf, X, y)
    assert phi["a"] > phi["b"]
    full = subset_accuracies(clf, X, y)
    assert sum(phi.values()) == pytest.approx(full[3] - full[0])


def test_sampled_modality_shapley_is_seeded(fitted):
    clf, X, y = fitted
    a = modality_shapley(clf, X, y, max_exact=1, n_permutations=4, random_state=0)
    b = modality_shapley(clf, X, y, max_exact=1, n_permutations=4, random_state=0)
    assert a == b
    exact = modality_shapley(clf, X, y)
    # two modalities: every permutation is sampled by the antithetic pairs
    assert a == pytest.approx(exact)


def test_modalities_required_for_a_callable_on_an_array():
    with pytest.raises(ValueError, match="modalities is required"):
        subset_accuracies(lambda X: X, np.zeros((3, 2)), [0, 1, 0])


def test_expected_calibration_error_by_hand():
    from sklearn_modeq.metrics import calibration_curve_bins, expected_calibration_error

    y = np.array([0, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.55, 0.45]])
    # bins of width 0.25: (0.5, 0.75] holds 0.55 (right) and 0.6 (wrong);
    # (0.75, 1] holds 0.8 and 0.9 (both right)
    conf, acc, weight = calibration_curve_bins(y, proba, n_bins=4)
    np.testing.assert_allclose(conf[2:], [0.575, 0.85])
    np.testing.assert_allclose(acc[2:], [0.5, 1.0])
    np.testing.assert_allclose(weight, [0, 0, 0.5, 0.5])
    assert np.isnan(conf[:2]).all()
    expected = 100 * (0.5 * 0.075 + 0.5 * 0.15)
    assert expected_calibration_error(y, proba, n_bins=4) == pytest.approx(expected)
    labels = np.array(["a", "b"])
    assert expected_calibration_error(
        labels[y], proba, classes=labels, n_bins=4
    ) == pytest.approx(expected)


def test_perfectly_confident_and_right_is_calibrated():
    from sklearn_modeq.metrics import expected_calibration_error

    y = np.array([0, 1, 2])
    assert expected_calibration_error(y, np.eye(3)) == 0.0
    assert expected_calibration_error(y, np.eye(3)[[1, 2, 0]]) == 100.0
