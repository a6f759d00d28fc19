"""Bad input gets a clear error naming the modality, row or parameter."""

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_modeq import ShapleyAlternatingClassifier


def data(n=30, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 2
    return {
        "audio": rng.normal(size=(n, 4)) + y[:, None],
        "visual": rng.normal(size=(n, 3)),
    }, y


def small(**kwargs):
    params = dict(hidden_size=4, max_epochs=1, random_state=0, combiner_cv=None)
    return ShapleyAlternatingClassifier(**{**params, **kwargs})


@pytest.fixture(scope="module")
def fitted():
    X, y = data()
    return small().fit(X, y)


def test_partial_nan_row_raises():
    X, y = data()
    X["audio"][17, :2] = np.nan
    msg = "X['audio'] row 17 is partly NaN (2 of 4 values); a missing modality must be an all-NaN row."
    with pytest.raises(ValueError, match=re.escape(msg)):
        small().fit(X, y)


def test_inf_raises_with_row():
    X, y = data()
    X["visual"][5, 1] = np.inf
    with pytest.raises(
        ValueError, match=re.escape("X['visual'] row 5 contains infinity")
    ):
        small().fit(X, y)


def test_modalities_with_different_n_samples_raise():
    X, y = data()
    X["visual"] = X["visual"][:-2]
    with pytest.raises(
        ValueError, match=re.escape("X['visual'] has 28 samples but X['audio'] has 30")
    ):
        small().fit(X, y)


def test_unknown_modality_at_predict_raises(fitted):
    X, _ = data()
    X["text"] = X["audio"]
    with pytest.raises(
        ValueError,
        match=re.escape(
            "X has modality 'text', which was not seen in fit; known modalities: ['audio', 'visual']"
        ),
    ):
        fitted.predict(X)


def test_wrong_feature_count_at_predict_raises(fitted):
    X, _ = data()
    X["audio"] = X["audio"][:, :3]
    with pytest.raises(
        ValueError,
        match=re.escape(
            "X['audio'] has 3 features, but ShapleyAlternatingClassifier was fitted with 4"
        ),
    ):
        fitted.predict(X)


@pytest.mark.parametrize("when", ["fit", "predict"])
def test_sample_with_every_modality_missing_raises(when, fitted):
    X, y = data()
    X["audio"][3] = np.nan
    X["visual"][3] = np.nan
    msg = (
        "sample 3 has every modality missing (all-NaN rows in X['audio'], X['visual'])"
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        small().fit(X, y) if when == "fit" else fitted.predict(X)


def test_missing_key_at_predict_means_missing_for_everyone(fitted):
    X, _ = data()
    only_visual = fitted.predict_proba({"visual": X["visual"]})
    nan_audio = fitted.predict_proba(
        {"visual": X["visual"], "audio": np.full_like(X["audio"], np.nan)}
    )
    np.testing.assert_allclose(only_visual, nan_audio)


@pytest.mark.parametrize(
    "value, error, match",
    [
        (
            np.zeros(30),
            ValueError,
            "X['visual'] must be a 2-D array (n_samples, n_features); got an array of shape (30,)",
        ),
        (
            np.zeros((30, 2, 2)),
            ValueError,
            "X['visual'] must be a 2-D array (n_samples, n_features); got an array of shape (30, 2, 2).",
        ),
        (
            sp.csr_matrix(np.ones((30, 3))),
            TypeError,
            "X['visual'] is a sparse matrix; sparse input is not supported",
        ),
    ],
    ids=["1d", "3d", "sparse"],
)
def test_bad_array_shapes_and_types(value, error, match):
    X, y = data()
    X["visual"] = value
    with pytest.raises(error, match=re.escape(match)):
        small().fit(X, y)


def test_empty_input_raises():
    with pytest.raises(ValueError, match="X is an empty mapping"):
        small().fit({}, [])
    with pytest.raises(ValueError, match=re.escape("Found array with 0 sample(s)")):
        small().fit({"a": np.zeros((0, 3))}, [])


def test_single_class_raises():
    X, _ = data()
    with pytest.raises(
        ValueError,
        match=re.escape(
            "y has only 1 class (1); a classifier needs at least 2 classes."
        ),
    ):
        small().fit(X, np.ones(30, dtype=int))


def test_label_count_mismatch_raises():
    X, y = data()
    with pytest.raises(ValueError, match="y has 29 labels but X has 30 samples"):
        small().fit(X, y[:-1])


def test_non_string_modality_name_raises():
    X, y = data()
    with pytest.raises(
        TypeError, match="modality names must be str; X has the key 0 of type int"
    ):
        small().fit({0: X["audio"]}, y)


@pytest.mark.parametrize(
    "param, value, match",
    [
        (
            "tau",
            1.0,
            "The 'tau' parameter of ShapleyAlternatingClassifier must be a float in the range [0.0, 1.0) or None. Got 1.0 instead.",
        ),
        ("tau", -0.1, "The 'tau' parameter"),
        (
            "lr",
            0.0,
            "The 'lr' parameter of ShapleyAlternatingClassifier must be a float in the range (0.0, inf). Got 0.0 instead.",
        ),
        ("lr", -1e-3, "The 'lr' parameter"),
        (
            "max_epochs",
            0,
            "The 'max_epochs' parameter of ShapleyAlternatingClassifier must be an int in the range [1, inf). Got 0 instead.",
        ),
        ("order", "best", "The 'order' parameter"),
        ("alternation", "step", "The 'alternation' parameter"),
        ("device", "gpu0", "The 'device' parameter must name a torch device"),
    ],
)
def test_bad_parameters_raise(param, value, match):
    X, y = data()
    with pytest.raises(ValueError, match=re.escape(match)):
        small(**{param: value}).fit(X, y)


def test_early_stopping_without_validation_split_raises():
    X, y = data()
    with pytest.raises(
        ValueError, match="early_stopping=True needs a validation split"
    ):
        small(early_stopping=True, validation_fraction=0.0).fit(X, y)


def test_dataframe_columns_are_kept_and_checked():
    pd = pytest.importorskip("pandas")
    X, y = data()
    X["audio"] = pd.DataFrame(X["audio"], columns=list("abcd"))
    clf = small().fit(X, y)
    assert list(clf.feature_names_per_modality_["audio"]) == list("abcd")
    assert clf.feature_names_per_modality_["visual"] is None
    X["audio"] = X["audio"].rename(columns={"a": "z"})
    with pytest.raises(
        ValueError,
        match=re.escape("X['audio'] has columns that differ from those seen in fit"),
    ):
        clf.predict(X)


def test_modality_without_present_rows_in_fit_raises():
    # issue 14: an all-NaN modality was accepted, leaking numpy RuntimeWarnings
    X, y = data()
    X["visual"][:] = np.nan
    msg = "X['visual'] has no present rows: all 30 rows are NaN (missing)"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning on the way
        with pytest.raises(ValueError, match=re.escape(msg)):
            small().fit(X, y)


@pytest.mark.parametrize("same_shape", [True, False])
def test_list_of_arrays_says_x_must_be_a_dict(same_shape):
    X, y = data()
    arrays = [X["audio"], X["audio"] if same_shape else X["visual"]]
    msg = (
        "X is a list of 2 arrays; multimodal X must be a dict (or SliceDict) of "
        "modality name -> 2-D array"
    )
    with pytest.raises(TypeError, match=re.escape(msg)):
        small().fit(arrays, y)


def test_single_1d_sample_at_predict_advises_reshape_1_minus_1(fitted):
    X, _ = data()
    one = {name: value[0] for name, value in X.items()}
    msg = "got an array of shape (4,) (a single sample: use value.reshape(1, -1))"
    with pytest.raises(ValueError, match=re.escape(msg)):
        fitted.predict(one)


def test_zero_column_modality_names_the_modality():
    X, y = data()
    X["visual"] = X["visual"][:, :0]
    msg = "X['visual'] has 0 features (shape (30, 0))"
    with pytest.raises(ValueError, match=re.escape(msg)):
        small().fit(X, y)


def test_non_numeric_values_name_the_modality():
    X, y = data()
    X["visual"] = np.full((30, 3), "a", dtype=object)
    with pytest.raises(ValueError, match=re.escape("X['visual']")):
        small().fit(X, y)


def test_fitted_on_dataframes_predicted_with_arrays_warns():
    pd = pytest.importorskip("pandas")
    X, y = data()
    frames = {
        k: pd.DataFrame(v, columns=[f"{k}{i}" for i in range(v.shape[1])])
        for k, v in X.items()
    }
    clf = small().fit(frames, y)
    msg = (
        "X['audio'] does not have valid feature names, but "
        "ShapleyAlternatingClassifier was fitted with feature names"
    )
    with pytest.warns(UserWarning, match=re.escape(msg)):
        clf.predict({"audio": X["audio"], "visual": frames["visual"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.predict(frames)


def test_fitted_on_arrays_predicted_with_dataframes_warns(fitted):
    pd = pytest.importorskip("pandas")
    X, _ = data()
    X["visual"] = pd.DataFrame(X["visual"], columns=list("abc"))
    msg = (
        "X['visual'] has feature names, but ShapleyAlternatingClassifier was "
        "fitted without feature names"
    )
    with pytest.warns(UserWarning, match=re.escape(msg)):
        fitted.predict(X)


def test_dataframe_with_integer_columns_has_no_feature_names():
    pd = pytest.importorskip("pandas")
    X, y = data()
    X["audio"] = pd.DataFrame(X["audio"])
    clf = small().fit(X, y)
    assert clf.feature_names_per_modality_["audio"] is None
    X["audio"].columns = [0, "b", "c", "d"]
    with pytest.raises(
        TypeError, match=re.escape("X['audio'] has column names of types")
    ):
        small().fit(X, y)


def test_none_as_a_modality_says_leave_the_key_out():
    X, y = data()
    X["visual"] = None
    with pytest.raises(TypeError, match=re.escape("X['visual'] must be a 2-D array")):
        small().fit(X, y)


def test_value_beyond_float32_names_the_row_without_numpy_warnings():
    X, y = data()
    X["visual"][4, 0] = 1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=re.escape("X['visual'] row 4 contains")):
            small().fit(X, y)


def test_values_overflowing_standardisation_name_the_modality():
    X, y = data()
    X["audio"] = X["audio"] * 1e-3  # a scale of about 1e-3
    clf = small().fit(X, y)
    X["audio"][0] = 1e37  # finite in float32, but not once divided by 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(
            ValueError,
            match=re.escape("X['audio'] has values too large to standardise"),
        ):
            clf.predict(X)
