"""Per-modality accuracy, modality Shapley values and the EDM of a fitted model.

These work on every fitted estimator of this package and on any callable that
predicts from a subset of modalities (``predict(X_subset) -> labels`` where
``X_subset`` is a dict holding only some modalities). The numbers come from
:mod:`sklearn_modeq.shapley`, which is NumPy only.

The value of a coalition ``S`` is the accuracy of the model restricted to ``S``
(the other modalities masked as missing for every sample); samples that have
none of ``S``'s modalities, and the empty coalition, get the most frequent
training class (DESIGN sections 4 and 6).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .shapley import EDMResult, ShapleyPlan, all_masks, edm_from_accuracies, members

__all__ = [
    "calibration_curve_bins",
    "edm",
    "expected_calibration_error",
    "modality_accuracy",
    "modality_shapley",
    "subset_accuracies",
]


def _modalities_of(estimator, X, modalities):
    if modalities is not None:
        return list(modalities)
    if hasattr(estimator, "modalities_"):
        return list(estimator.modalities_)
    if isinstance(X, Mapping):
        return list(X)
    raise ValueError(
        "modalities is required when the model has no modalities_ attribute "
        "and X is not a mapping."
    )


def _empty_class(estimator, y, empty_prediction):
    if empty_prediction is not None:
        return empty_prediction
    prior = getattr(estimator, "class_prior_", None)
    if prior is not None:
        return estimator.classes_[int(np.argmax(prior))]
    labels, counts = np.unique(np.asarray(y), return_counts=True)
    return labels[int(np.argmax(counts))]


def _generic_subset_predictions(predict, X, subsets, names, empty):
    """Call ``predict`` on the rows that have at least one modality of each subset."""
    n = len(next(iter(X.values())))
    out = []
    for subset in subsets:
        keys = [names[i] for i in subset if names[i] in X]
        pred = np.full(n, empty, dtype=object)
        if keys:
            present = np.zeros(n, dtype=bool)
            for k in keys:
                present |= ~np.isnan(np.asarray(X[k], dtype=float)[:, 0])
            if present.any():
                rows = np.flatnonzero(present)
                sub = {k: np.asarray(X[k])[rows] for k in keys}
                pred[rows] = np.asarray(predict(sub), dtype=object)
        out.append(pred)
    return np.array(out, dtype=object)


def subset_accuracies(
    estimator,
    X,
    y,
    masks=None,
    *,
    modalities: Sequence[str] | None = None,
    empty_prediction=None,
) -> dict[int, float]:
    """Accuracy of the model restricted to each coalition of modalities.

    Parameters
    ----------
    estimator : fitted estimator of this package, or callable
        A callable gets ``X`` restricted to a coalition (a dict) and returns
        labels.
    X : dict of str to array-like of shape (n_samples, d_m)
        Multimodal data (all-NaN rows are absent modalities).
    y : array-like of shape (n_samples,)
        True labels.
    masks : sequence of int, default=None
        Coalitions as bit masks over ``modalities`` (bit ``i`` = modality
        ``i``); default all ``2**n``.
    modalities : sequence of str, default=None
        Modality order of the masks; default ``estimator.modalities_`` or the
        keys of ``X``.
    empty_prediction : label, default=None
        Prediction for the empty coalition; default the most frequent training
        class (``class_prior_``), or the most frequent label in ``y`` for a
        callable.

    Returns
    -------
    accuracy : dict of int to float
        Accuracy in [0, 1] per mask.
    """
    names = _modalities_of(estimator, X, modalities)
    y = np.asarray(y)
    masks = all_masks(len(names)) if masks is None else np.asarray(masks)
    empty = _empty_class(estimator, y, empty_prediction)
    nonempty = [int(m) for m in masks if m]
    subsets = [members(m) for m in nonempty]
    if hasattr(estimator, "_predict_subsets"):
        preds = estimator._predict_subsets(X, subsets)
    else:
        predict = estimator if callable(estimator) else estimator.predict
        preds = _generic_subset_predictions(predict, dict(X), subsets, names, empty)
    accuracy = {int(m): float(np.mean(y == empty)) for m in masks if not m}
    accuracy.update({m: float(np.mean(p == y)) for m, p in zip(nonempty, preds)})
    return accuracy


def modality_accuracy(estimator, X, y, **kwargs) -> dict[str, float]:
    """Accuracy with each modality alone, and with all of them (``"fused"``).

    Parameters are those of :func:`subset_accuracies`.

    Returns
    -------
    accuracy : dict of str to float
        ``{modality: accuracy, ..., "fused": accuracy}``.
    """
    names = _modalities_of(estimator, X, kwargs.get("modalities"))
    full = (1 << len(names)) - 1
    masks = [1 << i for i in range(len(names))] + [full]
    acc = subset_accuracies(estimator, X, y, masks, **kwargs)
    result = {name: acc[1 << i] for i, name in enumerate(names)}
    result["fused"] = acc[full]
    return result


def modality_shapley(
    estimator,
    X,
    y,
    *,
    max_exact: int = 6,
    n_permutations: int = 64,
    random_state=None,
    **kwargs,
) -> dict[str, float]:
    """Shapley value of each modality for validation accuracy (paper Eq. 7).

    Exact over all ``2**n`` coalitions for ``n <= max_exact`` modalities;
    Monte-Carlo permutation sampling (antithetic, seeded by ``random_state``)
    above. Other parameters are those of :func:`subset_accuracies`.

    Returns
    -------
    phi : dict of str to float
        ``{modality: Shapley value}``; the values sum to the accuracy with all
        modalities minus the empty coalition's (efficiency).
    """
    names = _modalities_of(estimator, X, kwargs.get("modalities"))
    plan = ShapleyPlan.make(
        len(names),
        max_exact=max_exact,
        n_permutations=n_permutations,
        random_state=random_state,
    )
    acc = subset_accuracies(estimator, X, y, plan.masks, **kwargs)
    return dict(zip(names, plan.shapley(acc).tolist()))


def edm(estimator, X, y, **kwargs) -> EDMResult:
    """Equilibrium deviation metric of a fitted model (paper section 5.1).

    ``EDM = sum_m |100 - 100 * phi_m|`` where ``phi`` are the Shapley values of
    the cooperation game ``v(S) = |S| * Acc(S)``, ``v(empty) = 0`` (DESIGN
    section 6; see :func:`sklearn_modeq.shapley.edm_from_accuracies` for why this
    reading). 0 is a perfectly cooperative model; lower is better. Parameters
    are those of :func:`subset_accuracies`.

    With two modalities ``a`` and ``b``, ``phi_a + phi_b = 2 Acc(ab)``; when one
    value exceeds 1 and the other does not, ``EDM = 100 |Acc(a) - Acc(b)|``,
    whatever the fused accuracy. Two models that differ only in their fused
    accuracy then have the same EDM.

    Returns
    -------
    result : EDMResult
        ``edm``, per-modality ``deviations`` (what the paper prints), ``phi``,
        balance ``shares`` and ``modalities``; ``result.as_dict()`` gives a
        table row.
    """
    names = _modalities_of(estimator, X, kwargs.get("modalities"))
    acc = subset_accuracies(estimator, X, y, **kwargs)
    return edm_from_accuracies(acc, len(names), modalities=names)


def calibration_curve_bins(y_true, proba, *, classes=None, n_bins: int = 15):
    """Confidence, accuracy and share of samples per equal-width confidence bin.

    The confidence of a prediction is its largest class probability; bins split
    ``[0, 1]`` into ``n_bins`` equal intervals (right-closed, the first also
    holds 0). These are the points of a reliability diagram.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities, columns in the order of ``classes``.
    classes : array-like of shape (n_classes,), default=None
        Labels of ``proba``'s columns; ``0 .. n_classes - 1`` when None.
    n_bins : int, default=15

    Returns
    -------
    confidence, accuracy, weight : ndarray of shape (n_bins,)
        Mean confidence and accuracy of each bin (NaN where empty) and the
        share of the samples that fall in it.
    """
    proba = np.asarray(proba, dtype=float)
    y_true = np.asarray(y_true)
    if proba.ndim != 2 or proba.shape[0] != y_true.shape[0]:
        raise ValueError(
            f"proba must have shape (n_samples, n_classes) with n_samples = "
            f"{y_true.shape[0]}; got {proba.shape}."
        )
    classes = np.arange(proba.shape[1]) if classes is None else np.asarray(classes)
    confidence = proba.max(axis=1)
    correct = classes[proba.argmax(axis=1)] == y_true
    which = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    weight = np.bincount(which, minlength=n_bins) / len(y_true)
    with np.errstate(invalid="ignore"):
        mean_conf = np.bincount(which, confidence, n_bins) / np.bincount(
            which, minlength=n_bins
        )
        mean_acc = np.bincount(which, correct, n_bins) / np.bincount(
            which, minlength=n_bins
        )
    return mean_conf, mean_acc, weight


def expected_calibration_error(y_true, proba, *, classes=None, n_bins: int = 15):
    """Expected calibration error in percent (Guo et al., 2017).

    ``ECE = 100 * sum_b w_b |acc_b - conf_b|`` over ``n_bins`` equal-width
    confidence bins (:func:`calibration_curve_bins`), ``w_b`` the share of
    samples in bin ``b``. 0 for a perfectly calibrated model.

    Parameters are those of :func:`calibration_curve_bins`.

    Returns
    -------
    ece : float
    """
    conf, acc, weight = calibration_curve_bins(
        y_true, proba, classes=classes, n_bins=n_bins
    )
    seen = weight > 0
    return float(100 * np.sum(weight[seen] * np.abs(acc[seen] - conf[seen])))
