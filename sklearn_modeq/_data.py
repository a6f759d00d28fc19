"""Validation of multimodal ``X``, missing-modality masks and standardisation.

Every public ``fit``/``predict*`` call validates ``X`` here exactly once; the rest
of the package receives a plain ``dict`` of C-contiguous float32 arrays, one per
modality, where an all-NaN row means "this modality is absent for this sample"
(DESIGN section 2).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_array, validate_data
from skorch.helper import SliceDict

__all__ = ["SliceDict"]

#: Key under which sample weights travel inside the dict handed to skorch.
SAMPLE_WEIGHT_KEY = "__sample_weight__"
#: Name of the single modality when ``X`` is one 2-D array.
SINGLE_MODALITY = "x"


def _is_mapping(X) -> bool:
    return isinstance(X, Mapping)


def _label(name: str, single: bool) -> str:
    """How error messages name a modality: ``X`` for one array, ``X['audio']``."""
    return "X" if single else f"X[{name!r}]"


def _check_modality_rows(array: np.ndarray, label: str, offset: int = 0) -> None:
    """Reject inf and partly-NaN rows, naming the first bad row (``offset`` is
    the position of ``array``'s first row in the whole data)."""
    finite_or_nan = np.isfinite(array) | np.isnan(array)
    if not finite_or_nan.all():
        row = offset + int(np.flatnonzero(~finite_or_nan.all(axis=1))[0])
        raise ValueError(
            f"{label} row {row} contains infinity (or a value beyond float32's "
            "range, about 3.4e38); features must be finite (a missing modality "
            "is an all-NaN row)."
        )
    n_nan = np.isnan(array).sum(axis=1)
    partial = (n_nan > 0) & (n_nan < array.shape[1])
    if partial.any():
        first = int(np.flatnonzero(partial)[0])
        raise ValueError(
            f"{label} row {offset + first} is partly NaN ({n_nan[first]} of {array.shape[1]} "
            "values); a missing modality must be an all-NaN row."
        )


def _as_float_array(value, label: str, n_features: int | None = None) -> np.ndarray:
    """One modality as a float32 2-D array; ``n_features`` is the dimension seen
    in fit (None in fit), used to tell one sample from one feature."""
    if sp.issparse(value):
        raise TypeError(
            f"{label} is a sparse matrix; sparse input is not supported, "
            "pass a dense array (e.g. value.toarray())."
        )
    try:
        shape = np.shape(value)
    except ValueError:  # ragged nested sequences
        raise ValueError(
            f"{label} must be a 2-D array (n_samples, n_features); got a ragged "
            f"{type(value).__name__} whose rows have different lengths."
        ) from None
    if len(shape) == 0:
        raise TypeError(
            f"{label} must be a 2-D array (n_samples, n_features); got "
            f"{type(value).__name__} {value!r:.40}. Leave the key out when the "
            "modality is missing for every sample."
        )
    if len(shape) != 2:
        raise ValueError(
            f"{label} must be a 2-D array (n_samples, n_features); got an array "
            f"of shape {shape}{_reshape_hint(shape, n_features)}."
        )
    if shape[1] == 0:
        raise ValueError(
            f"{label} has 0 features (shape {shape}); every modality needs at "
            "least one feature column (leave the modality out of X instead)."
        )
    try:
        with np.errstate(over="ignore"):  # beyond float32: inf, reported below
            array = check_array(
                value,
                dtype=np.float32,
                ensure_all_finite=False,
                ensure_min_samples=1,
                input_name=label,
            )
    except (TypeError, ValueError) as exc:
        message = str(exc).splitlines()[0]  # not the array sklearn may print
        if label in message:
            raise
        raise type(exc)(f"{label}: {message}") from exc
    return np.ascontiguousarray(array)


def _reshape_hint(shape: tuple, n_features: int | None) -> str:
    """The reshape that probably fixes a 1-D modality array, as a message suffix."""
    if len(shape) != 1:
        return ""
    if n_features is not None and n_features > 1 and shape[0] == n_features:
        return " (a single sample: use value.reshape(1, -1))"
    if n_features == 1 or n_features is None:
        return " (one feature per column: use value.reshape(-1, 1))"
    return (
        f" (this modality was fitted with {n_features} features; for a single "
        "sample use value.reshape(1, -1))"
    )


def _column_names(value, label: str):
    """A DataFrame's column names as scikit-learn reads them: str names are
    feature names, non-str names are none, a mix is an error."""
    columns = getattr(value, "columns", None)
    if columns is None:
        return None
    is_str = [isinstance(c, str) for c in columns]
    if not any(is_str):
        return None
    if not all(is_str):
        kinds = sorted({type(c).__name__ for c in columns})
        raise TypeError(
            f"{label} has column names of types {kinds}; feature names must be "
            "all str (or none: e.g. value.columns = value.columns.astype(str))."
        )
    return np.asarray(list(columns), dtype=object)


def validate_X(estimator, X, *, reset: bool) -> dict[str, np.ndarray]:
    """Validate multimodal ``X`` and return ``{modality: float32 array}``.

    Parameters
    ----------
    estimator : estimator instance
        Receives (``reset=True``) or is checked against (``reset=False``) the
        fitted attributes ``modalities_``, ``n_features_per_modality_``,
        ``feature_names_per_modality_`` and ``n_features_in_``.
    X : mapping of str to array-like of shape (n_samples, d_m), or array-like
        One 2-D array per modality; a single 2-D array is one modality named
        ``"x"``. An all-NaN row marks a modality absent for that sample.
    reset : bool
        True in ``fit``; False in ``predict*``, where a modality seen in ``fit``
        but absent from ``X`` is treated as missing for every sample.

    Returns
    -------
    arrays : dict of str to ndarray of shape (n_samples, d_m)
        In the order of ``estimator.modalities_``; float32, C-contiguous.
    """
    if _is_mapping(X):
        arrays = _validate_mapping(estimator, X, reset=reset)
    else:
        _check_not_a_sequence_of_modalities(X)
        arrays = _validate_single(estimator, X, reset=reset)
    _check_some_modality_present(arrays, single=not _is_mapping(X))
    return arrays


def _check_not_a_sequence_of_modalities(X) -> None:
    """A list of 2-D arrays is a common first try; say what ``X`` must be."""
    if not isinstance(X, (list, tuple)):
        return
    if any(getattr(item, "ndim", 1) >= 2 or sp.issparse(item) for item in X):
        raise TypeError(
            f"X is a {type(X).__name__} of {len(X)} arrays; multimodal X must be a "
            "dict (or SliceDict) of modality name -> 2-D array, e.g. "
            "SliceDict(audio=A, visual=V) (SliceDict is in sklearn_modeq)."
        )


def _validate_single(estimator, X, *, reset: bool) -> dict[str, np.ndarray]:
    """One 2-D array: scikit-learn's own validation, so every check applies."""
    if sp.issparse(X):
        raise TypeError(
            "X is a sparse matrix; sparse input is not supported, "
            "pass a dense array (e.g. X.toarray())."
        )
    if not reset and getattr(estimator, "modalities_", None) != [SINGLE_MODALITY]:
        raise ValueError(
            f"{type(estimator).__name__} was fitted on modalities "
            f"{estimator.modalities_}; pass X as a dict with those keys."
        )
    array = validate_data(
        estimator, X, reset=reset, dtype=np.float32, ensure_all_finite=False
    )
    array = np.ascontiguousarray(array)
    _check_modality_rows(array, "X")
    if reset:
        estimator.modalities_ = [SINGLE_MODALITY]
        estimator.n_features_per_modality_ = {SINGLE_MODALITY: array.shape[1]}
        names = getattr(estimator, "feature_names_in_", None)
        estimator.feature_names_per_modality_ = {SINGLE_MODALITY: names}
    return {SINGLE_MODALITY: array}


def _validate_mapping(estimator, X, *, reset: bool) -> dict[str, np.ndarray]:
    if len(X) == 0:
        raise ValueError("X is an empty mapping; it needs at least one modality.")
    for name in X:
        if not isinstance(name, str):
            raise TypeError(
                f"modality names must be str; X has the key {name!r} of type "
                f"{type(name).__name__}."
            )
        if name == SAMPLE_WEIGHT_KEY:
            raise ValueError(f"{name!r} is reserved and cannot name a modality.")
    if not reset:
        unknown = [name for name in X if name not in estimator.modalities_]
        if unknown:
            raise ValueError(
                f"X has modality {unknown[0]!r}, which was not seen in fit; "
                f"known modalities: {estimator.modalities_}."
            )
    arrays = {}
    names = {}
    for name, value in X.items():
        label = _label(name, single=False)
        names[name] = _column_names(value, label)
        expected = None if reset else estimator.n_features_per_modality_[name]
        arrays[name] = _as_float_array(value, label, expected)
        _check_modality_rows(arrays[name], label)
    _check_same_n_samples(arrays)
    if reset:
        _check_every_modality_has_rows(
            {name: int((~np.isnan(a[:, 0])).sum()) for name, a in arrays.items()},
            n_samples_of(arrays),
        )
        estimator.modalities_ = list(arrays)
        estimator.n_features_per_modality_ = {k: v.shape[1] for k, v in arrays.items()}
        estimator.feature_names_per_modality_ = names
        estimator.n_features_in_ = sum(estimator.n_features_per_modality_.values())
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_  # left over from a fit on one array
        return arrays
    return _complete_modalities(estimator, arrays, names)


def _check_every_modality_has_rows(present: Mapping[str, int], n_samples: int) -> None:
    """In fit, a modality with no present row cannot be learnt: an error."""
    for name, count in present.items():
        if count == 0:
            raise ValueError(
                f"X[{name!r}] has no present rows: all {n_samples} rows are NaN "
                "(missing), so this modality cannot be learnt. Fit without the "
                f"key {name!r}, or give it at least one sample with values."
            )


def _check_same_n_samples(arrays: Mapping[str, np.ndarray]) -> None:
    counts = {name: a.shape[0] for name, a in arrays.items()}
    first = next(iter(counts))
    for name, count in counts.items():
        if count != counts[first]:
            raise ValueError(
                f"X[{name!r}] has {count} samples but X[{first!r}] has "
                f"{counts[first]}; every modality needs one row per sample."
            )


def _complete_modalities(estimator, arrays, names) -> dict[str, np.ndarray]:
    """Check dims against fit and add all-NaN arrays for absent modalities."""
    n_samples = next(iter(arrays.values())).shape[0]
    complete = {}
    for name in estimator.modalities_:
        expected = estimator.n_features_per_modality_[name]
        if name not in arrays:
            complete[name] = np.full((n_samples, expected), np.nan, np.float32)
            continue
        got = arrays[name].shape[1]
        if got != expected:
            raise ValueError(
                f"X[{name!r}] has {got} features, but {type(estimator).__name__} "
                f"was fitted with {expected} features for this modality."
            )
        fitted_names = estimator.feature_names_per_modality_.get(name)
        _warn_feature_names(estimator, name, fitted_names, names[name])
        if (
            fitted_names is not None
            and names[name] is not None
            and not np.array_equal(fitted_names, names[name])
        ):
            raise ValueError(
                f"X[{name!r}] has columns that differ from those seen in fit "
                f"(first seen: {list(fitted_names[:3])}, got: "
                f"{list(names[name][:3])})."
            )
        complete[name] = arrays[name]
    return complete


def _warn_feature_names(estimator, name, fitted_names, names) -> None:
    """scikit-learn's feature-name warnings, per modality."""
    cls = type(estimator).__name__
    if fitted_names is not None and names is None:
        warnings.warn(
            f"X[{name!r}] does not have valid feature names, but {cls} was "
            "fitted with feature names",
            UserWarning,
            stacklevel=2,
        )
    elif fitted_names is None and names is not None:
        warnings.warn(
            f"X[{name!r}] has feature names, but {cls} was fitted without "
            "feature names",
            UserWarning,
            stacklevel=2,
        )


def _check_some_modality_present(arrays, single, offset: int = 0) -> None:
    present = presence_mask(arrays)
    empty = ~present.any(axis=1)
    if empty.any():
        row = offset + int(np.flatnonzero(empty)[0])
        where = ", ".join(_label(n, single) for n in arrays)
        raise ValueError(
            f"sample {row} has every modality missing (all-NaN rows in {where}); "
            "at least one modality must be present."
        )


def presence_mask(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """Boolean array (n_samples, n_modalities): True where a modality is present."""
    return np.column_stack([~np.isnan(a[:, 0]) for a in arrays.values()])


def n_samples_of(arrays: Mapping[str, np.ndarray]) -> int:
    return next(iter(arrays.values())).shape[0]


def is_lazy(X) -> bool:
    """Whether ``X`` is an out-of-core view (e.g. the cache's ``LazyEmbeddings``).

    Duck-typed: a view exposes ``modalities``, ``n_samples``, ``shape`` (a dict
    of per-modality shapes), ``take(indices) -> {modality: float32 array}`` and
    ``mean_std() -> {modality: (mean, std)}`` over its present rows.
    """
    return all(
        hasattr(X, a) for a in ("take", "modalities", "n_samples", "shape", "mean_std")
    )


def validate_lazy(estimator, view, *, reset: bool, batch_size: int = 4096) -> None:
    """Validate an out-of-core view batch by batch, with the rules of :func:`validate_X`.

    Memory stays at one batch. Sets the same fitted attributes as
    :func:`validate_X` when ``reset``.
    """
    names = list(view.modalities)
    if not names:
        raise ValueError("X is a view with no modality; it needs at least one.")
    if view.n_samples == 0:
        raise ValueError("X is a view with 0 samples; at least 1 is required.")
    dims = {name: view.shape[name][1] for name in names}
    if reset:
        estimator.modalities_ = names
        estimator.n_features_per_modality_ = dims
        estimator.feature_names_per_modality_ = dict.fromkeys(names)
        estimator.n_features_in_ = sum(dims.values())
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    else:
        unknown = [name for name in names if name not in estimator.modalities_]
        if unknown:
            raise ValueError(
                f"X has modality {unknown[0]!r}, which was not seen in fit; "
                f"known modalities: {estimator.modalities_}."
            )
        for name in names:
            expected = estimator.n_features_per_modality_[name]
            if dims[name] != expected:
                raise ValueError(
                    f"X[{name!r}] has {dims[name]} features, but "
                    f"{type(estimator).__name__} was fitted with {expected} "
                    "features for this modality."
                )
    present = dict.fromkeys(names, 0)
    for start in range(0, view.n_samples, batch_size):
        batch = view.take(slice(start, min(start + batch_size, view.n_samples)))
        for name, array in batch.items():
            _check_modality_rows(array, _label(name, single=False), offset=start)
            present[name] += int((~np.isnan(array[:, 0])).sum())
        _check_some_modality_present(batch, single=False, offset=start)
    if reset:
        _check_every_modality_has_rows(present, view.n_samples)


class NanStandardizer:
    """Per-modality standardisation with statistics from the present rows only.

    Absent (all-NaN) rows stay NaN. Constant features get a scale of 1.
    """

    def fit(self, arrays: Mapping[str, np.ndarray]) -> NanStandardizer:
        stats = {}
        for name, array in arrays.items():
            present = array[~np.isnan(array[:, 0])]
            stats[name] = (
                present.mean(axis=0, dtype=np.float64),
                present.std(axis=0, dtype=np.float64),
            )
        return self.set_stats(stats)

    def set_stats(self, stats) -> NanStandardizer:
        """Use precomputed ``{modality: (mean, std)}``, e.g. a streaming pass."""
        self.mean_ = {}
        self.scale_ = {}
        for name, (mean, std) in stats.items():
            std = np.where(np.isfinite(std) & (std >= 1e-12), std, 1.0)
            self.mean_[name] = np.nan_to_num(np.asarray(mean), nan=0.0).astype(
                np.float32
            )
            self.scale_[name] = np.asarray(std).astype(np.float32)
        return self

    def transform(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for name, array in arrays.items():
            with np.errstate(over="ignore", invalid="ignore"):
                scaled = (array - self.mean_[name]) / self.scale_[name]
            if not (np.isfinite(scaled) | np.isnan(array)).all():
                raise ValueError(
                    f"X[{name!r}] has values too large to standardise (they "
                    "overflow float32 once scaled by the training statistics); "
                    "rescale this modality's features."
                )
            out[name] = scaled
        return out


def take_rows(arrays: Mapping[str, np.ndarray], rows) -> dict[str, np.ndarray]:
    """The rows ``rows`` (indices or a mask) of every array of a dict."""
    return {name: value[rows] for name, value in arrays.items()}
