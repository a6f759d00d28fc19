"""Property-based tests of the data contract (issue 14), with Hypothesis.

Random dicts of modalities (shapes, dtypes, containers, missing-row patterns,
absent keys) either give valid probabilities (finite, rows sum to 1, the same
for reordered keys) or a ValueError/TypeError that names the modality, the row
or the parameter, raised by our validation, never by torch or numpy.

One tiny model is fitted per module for the predict-side properties; the
fit-side property fits tiny models (one epoch) on few examples.
"""

import traceback
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("hypothesis", reason="pip install 'sklearn_modeq[test]'")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sklearn_modeq import ShapleyAlternatingClassifier  # noqa: E402

DIMS = {"a": 3, "b": 2, "c": 4}
CLASSES = np.array(["no", "yes", "maybe"])
FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# words that show a message names the modality (X['a'], X), y, a row or a sample
NAMING = ("X[", "X ", "X:", "y ", "row ", "sample ", "modality", "parameter")


def tiny(**params):
    return ShapleyAlternatingClassifier(
        hidden_size=4,
        max_epochs=1,
        batch_size=16,
        random_state=0,
        combiner_cv=None,
        **params,
    )


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    n = 30
    y = CLASSES[np.arange(n) % 3]
    X = {name: rng.normal(size=(n, d)) for name, d in DIMS.items()}
    X["b"][::5] = np.nan  # some samples lack b
    return tiny().fit(X, y)


# -- strategies ------------------------------------------------------------------
finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)


@st.composite
def values(draw, n, d, missing):
    """One modality: n x d values in a random container and dtype, with the
    rows in ``missing`` all-NaN."""
    kind = draw(st.sampled_from(["float64", "float32", "int", "bool"]))
    if kind in ("int", "bool") and missing.any():
        kind = "float64"  # only floats hold NaN
    if kind == "int":
        array = np.asarray(
            draw(st.lists(st.integers(-50, 50), min_size=n * d, max_size=n * d))
        ).reshape(n, d)
    elif kind == "bool":
        array = np.asarray(
            draw(st.lists(st.booleans(), min_size=n * d, max_size=n * d))
        ).reshape(n, d)
    else:
        flat = draw(st.lists(finite, min_size=n * d, max_size=n * d))
        array = np.asarray(flat, dtype=kind).reshape(n, d)
        array[missing] = np.nan
    container = draw(st.sampled_from(["array", "frame", "frame_int_columns", "list"]))
    if container == "frame":
        return pd.DataFrame(array, columns=[f"f{j}" for j in range(d)])
    if container == "frame_int_columns":
        return pd.DataFrame(array)
    if container == "list":
        return array.tolist()
    return array


@st.composite
def valid_X(draw, dims=DIMS):
    """A valid predict-time X: some modalities (in random key order), some rows
    missing, every row with at least one present modality."""
    n = draw(st.integers(1, 6))
    names = draw(st.permutations(list(dims)))
    keys = names[: draw(st.integers(1, len(names)))]
    missing = {
        k: np.asarray(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        for k in keys
    }
    nobody = np.logical_and.reduce([missing[k] for k in keys])
    missing[keys[0]] = missing[keys[0]] & ~nobody
    return {k: draw(values(n, dims[k], missing[k])) for k in keys}


def _as_array(value):
    return np.array(value, dtype=float)


CORRUPTIONS = [
    "partial_nan",
    "inf",
    "wrong_dim",
    "unknown_key",
    "one_d",
    "three_d",
    "strings",
    "rows_mismatch",
    "all_missing_row",
    "non_str_key",
    "none_value",
    "empty",
    "zero_rows",
    "zero_columns",
    "complex",
    "list_of_arrays",
    "mixed_column_names",
    "ragged",
]


@st.composite
def invalid_X(draw):
    """A valid X with one thing broken; returns (X, corruption, n_samples)."""
    X = {k: _as_array(v) for k, v in draw(valid_X()).items()}
    kind = draw(st.sampled_from(CORRUPTIONS))
    key = draw(st.sampled_from(list(X)))
    n, d = X[key].shape
    row = draw(st.integers(0, n - 1))
    if kind == "partial_nan":
        if d < 2:
            key, d = "c", DIMS["c"]
            X["c"] = np.zeros((n, d))
        X[key][row] = 1.0
        X[key][row, draw(st.integers(0, d - 1))] = np.nan
    elif kind == "inf":
        X[key][row, draw(st.integers(0, d - 1))] = draw(
            st.sampled_from([np.inf, -np.inf, 1e300])
        )
    elif kind == "wrong_dim":
        X[key] = np.zeros((n, d + draw(st.integers(1, 3))))
    elif kind == "unknown_key":
        X["zzz"] = np.zeros((n, 2))
    elif kind == "one_d":
        X[key] = X[key][row]
    elif kind == "three_d":
        X[key] = np.zeros((n, d, 2))
    elif kind == "strings":
        X[key] = np.full((n, d), draw(st.sampled_from(["a", "1,5", ""])), dtype=object)
    elif kind == "rows_mismatch":
        if len(X) == 1:
            other = next(o for o in DIMS if o != key)
            X[other] = np.zeros((n, DIMS[other]))
        X[key] = np.zeros((n + draw(st.integers(1, 3)), d))
    elif kind == "all_missing_row":
        for k in X:
            X[k][row] = np.nan
    elif kind == "non_str_key":
        X[draw(st.sampled_from([0, 1.5, ("a",), None]))] = X.pop(key)
    elif kind == "none_value":
        X[key] = None
    elif kind == "empty":
        X = {}
    elif kind == "zero_rows":
        X = {k: v[:0] for k, v in X.items()}
    elif kind == "zero_columns":
        X[key] = X[key][:, :0]
    elif kind == "complex":
        X[key] = X[key] + 1j
    elif kind == "list_of_arrays":
        return list(X.values()), kind, n
    elif kind == "mixed_column_names":
        X[key] = pd.DataFrame(X[key], columns=[0, *[f"f{j}" for j in range(1, d)]])
        if d == 1:
            X[key].columns = pd.Index([("a", 1)], dtype=object)
    elif kind == "ragged":
        X[key] = [list(r) for r in X[key]]
        X[key][row] = X[key][row] + [0.0]
    return X, kind, n


# -- checks ----------------------------------------------------------------------
def check_proba(proba, n):
    assert proba.shape == (n, len(CLASSES))
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert (proba >= 0).all()


def check_clear_error(exc):
    assert isinstance(exc, (ValueError, TypeError)), repr(exc)
    message = str(exc)
    assert any(word in message for word in NAMING), message
    origin = traceback.extract_tb(exc.__traceback__)[-1].filename
    assert "/torch/" not in origin and "/numpy/" not in origin, (origin, message)


def n_rows(X):
    return len(next(iter(X.values())))


# -- properties ------------------------------------------------------------------
@FAST
@given(X=valid_X())
def test_valid_X_gives_probabilities_independent_of_key_order(fitted, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter(
            "error", RuntimeWarning
        )  # no numpy warning leaks  # feature-name warnings
        proba = fitted.predict_proba(X)
        reordered = fitted.predict_proba(dict(reversed(list(X.items()))))
    check_proba(proba, n_rows(X))
    np.testing.assert_array_equal(proba, reordered)


@FAST
@given(case=invalid_X())
def test_invalid_X_gives_a_clear_error(fitted, case):
    X, kind, _ = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", RuntimeWarning)  # no numpy warning leaks
        with pytest.raises((ValueError, TypeError)) as info:
            fitted.predict_proba(X)
    check_clear_error(info.value)


@FAST
@given(
    value=st.floats(allow_nan=False, allow_infinity=False, width=32),
    key=st.sampled_from(list(DIMS)),
)
def test_extreme_finite_values_give_probabilities_or_a_clear_error(fitted, value, key):
    X = {k: np.zeros((2, d)) for k, d in DIMS.items()}
    X[key][0] = value
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            proba = fitted.predict_proba(X)
        except (ValueError, TypeError) as exc:
            check_clear_error(exc)
            assert key in str(exc)
        else:
            check_proba(proba, 2)


@settings(max_examples=25, deadline=None)
@given(
    X=valid_X(dims={"a": 2, "b": 1, "c": 3}),
    n_extra=st.integers(4, 20),
    n_classes=st.integers(2, 3),
    data=st.data(),
)
def test_fit_on_random_valid_data_predicts_probabilities(X, n_extra, n_classes, data):
    # grow the drawn rows into a training set: the drawn rows first, then
    # n_extra rows with every modality present
    rng = np.random.default_rng(0)
    X = {k: _as_array(v) for k, v in X.items()}
    X = {
        k: np.vstack([v, rng.normal(size=(n_extra, v.shape[1]))]) for k, v in X.items()
    }
    n = n_rows(X)
    y = data.draw(
        st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n).filter(
            lambda labels: len(set(labels)) >= 2
        )
    )
    clf = tiny()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", RuntimeWarning)  # no numpy warning leaks
        clf.fit(X, y)
        proba = clf.predict_proba(X)
    assert proba.shape == (n, len(clf.classes_))
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


# extra keys and other dimensions than the fixture's are fine in fit
FIT_VALID = ("unknown_key", "wrong_dim")


@settings(max_examples=30, deadline=None)
@given(case=invalid_X().filter(lambda case: case[1] not in FIT_VALID))
def test_fit_on_invalid_X_gives_a_clear_error(case):
    X, kind, n = case
    y = np.arange(n) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", RuntimeWarning)  # no numpy warning leaks
        with pytest.raises((ValueError, TypeError)) as info:
            tiny().fit(X, y)
    check_clear_error(info.value)
