"""Plots of modality contributions, robustness and feature distributions.

Every function draws on the matplotlib Axes given as ``ax`` (a new figure is made
when it is ``None``) and returns that Axes. Nothing here selects a backend or calls
``plt.show()``: set the backend as usual (``MPLBACKEND=Agg`` for scripts without a
display) and save with ``ax.figure.savefig(path)``. On Axes of your own figure,
call ``fig.tight_layout()`` (or create it with ``layout="constrained"``) so that
legends placed beside the Axes stay inside the saved image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator, PercentFormatter
from sklearn.decomposition import PCA
from sklearn.utils import check_random_state

__all__ = [
    "plot_feature_distribution",
    "plot_modality_accuracy",
    "plot_robustness",
    "plot_shapley_history",
]


def _get_ax(ax):
    """Return ``ax``, or the Axes of a new figure when ``ax`` is None.

    A new figure uses the constrained layout, which keeps a legend placed beside
    the Axes inside the saved image.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(layout="constrained")
    return ax


def _check_results(results, required: Sequence[str], function: str) -> pd.DataFrame:
    """Check that ``results`` is a DataFrame with the ``required`` columns."""
    if not isinstance(results, pd.DataFrame):
        raise TypeError(
            f"The 'results' parameter of {function} must be a pandas DataFrame. Got "
            f"{type(results).__name__} instead."
        )
    missing = [c for c in required if c not in results.columns]
    if missing:
        raise ValueError(
            f"The 'results' DataFrame of {function} lacks the column(s) {missing}; "
            f"it needs {list(required)} and optionally 'std'. Got columns "
            f"{list(results.columns)}."
        )
    if results.empty:
        raise ValueError(f"The 'results' DataFrame of {function} has no rows.")
    return results


def _mean_std(results: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per ``keys`` combination with its ``accuracy`` and ``std``.

    Groups keep the order of their first appearance. Repeated rows (several seeds)
    are averaged and their standard deviation becomes ``std`` unless a ``std``
    column is given, in which case rows must not repeat.
    """
    grouped = results.groupby(keys, sort=False)["accuracy"]
    sizes = grouped.size()
    if "std" in results.columns:
        if (sizes > 1).any():
            repeated = dict(zip(keys, sizes[sizes > 1].index[0]))
            raise ValueError(
                f"results has several rows for {repeated} and a 'std' column; give "
                "one row per combination with its std, or drop 'std' to average "
                "the repeated rows."
            )
        return results[[*keys, "accuracy", "std"]].reset_index(drop=True)
    summary = grouped.agg(["mean", "std"]).reset_index()
    return summary.rename(columns={"mean": "accuracy"})


def plot_shapley_history(shapley_history, modalities=None, ax=None):
    """Plot the Shapley value of each modality over training epochs.

    One line per modality (the paper's Figure 3, modality contribution
    evolution).

    Parameters
    ----------
    shapley_history : list of array-like of shape (n_modalities,) or estimator
        One entry per epoch holding one Shapley value per modality, in the order
        of ``modalities``. An entry may also be a mapping ``modality -> value``.
        A fitted estimator with ``shapley_history_`` and ``modalities_``
        attributes is accepted instead; both are then read from it.
    modalities : sequence of str, default=None
        Modality names, used as legend labels. Taken from the estimator when one
        is given; otherwise ``None`` labels them ``"modality 0"``, ...
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is created when ``None``.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on, with one line per modality.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_modeq.plotting import plot_shapley_history
    >>> ax = plot_shapley_history([[0.2, 0.5], [0.3, 0.4]], ["audio", "visual"])
    >>> len(ax.get_lines())
    2
    """
    if hasattr(shapley_history, "shapley_history_"):
        estimator = shapley_history
        shapley_history = estimator.shapley_history_
        if modalities is None:
            modalities = getattr(estimator, "modalities_", None)
    history = list(shapley_history)
    if not history:
        raise ValueError("The 'shapley_history' parameter is empty; nothing to plot.")
    if modalities is None:
        if isinstance(history[0], Mapping):
            modalities = list(history[0])
        else:
            n = np.size(history[0])
            modalities = [f"modality {i}" for i in range(n)]
    modalities = list(modalities)
    rows = []
    for epoch, entry in enumerate(history):
        if isinstance(entry, Mapping):
            entry = [entry.get(m, np.nan) for m in modalities]
        entry = np.asarray(entry, dtype=float).ravel()
        if entry.shape != (len(modalities),):
            raise ValueError(
                f"shapley_history[{epoch}] has {entry.size} values but there are "
                f"{len(modalities)} modalities {modalities}; give one Shapley value "
                "per modality at every epoch."
            )
        rows.append(entry)
    values = np.vstack(rows)
    epochs = np.arange(1, len(values) + 1)
    ax = _get_ax(ax)
    marker = "o" if len(epochs) <= 30 else None
    for name, column in zip(modalities, values.T):
        ax.plot(epochs, column, marker=marker, markersize=4, label=str(name))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("Shapley value")
    ax.set_title("Modality contribution over training")
    ax.grid(True, alpha=0.3)
    ax.legend(title="modality")
    return ax


def plot_robustness(results: pd.DataFrame, ax=None):
    """Plot accuracy against the missing-modality rate, one line per method.

    Parameters
    ----------
    results : DataFrame
        Columns ``method``, ``missing_rate`` (fraction of missing modalities, in
        [0, 1]; typically 0 to 0.5), ``accuracy`` and optionally ``std``, drawn as
        a band of plus or minus one std around the line. Without ``std``, rows
        repeated for the same method and rate (several seeds) are averaged and
        their standard deviation gives the band.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is created when ``None``.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on, with one line per method in order of first appearance.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from sklearn_modeq.plotting import plot_robustness
    >>> results = pd.DataFrame({
    ...     "method": ["ours", "ours", "concat", "concat"],
    ...     "missing_rate": [0.0, 0.5, 0.0, 0.5],
    ...     "accuracy": [0.80, 0.70, 0.82, 0.55],
    ... })
    >>> len(plot_robustness(results).get_lines())
    2
    """
    results = _check_results(
        results, ["method", "missing_rate", "accuracy"], "plot_robustness"
    )
    rates = results["missing_rate"].to_numpy(dtype=float)
    if not np.all((rates >= 0) & (rates <= 1)):
        raise ValueError(
            "The 'missing_rate' column of results must hold fractions in [0, 1]. "
            f"Got values from {np.nanmin(rates)} to {np.nanmax(rates)}."
        )
    summary = _mean_std(results, ["method", "missing_rate"])
    ax = _get_ax(ax)
    for method, part in summary.groupby("method", sort=False):
        part = part.sort_values("missing_rate")
        x = part["missing_rate"].to_numpy(dtype=float)
        mean = part["accuracy"].to_numpy(dtype=float)
        (line,) = ax.plot(x, mean, marker="o", markersize=4, label=str(method))
        std = part["std"].to_numpy(dtype=float)
        if np.any(np.isfinite(std)):
            ax.fill_between(
                x, mean - std, mean + std, color=line.get_color(), alpha=0.2, lw=0
            )
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.set_xlabel("missing-modality rate")
    ax.set_ylabel("accuracy")
    ax.set_title("Robustness to missing modalities")
    ax.grid(True, alpha=0.3)
    ax.legend(title="method")
    return ax


def plot_modality_accuracy(results: pd.DataFrame, ax=None):
    """Plot unimodal and fused accuracy of each method as grouped bars.

    One group of bars per method, one bar (colour) per modality within a group,
    with the ``"fused"`` accuracy last. The legend is placed to the right of the
    Axes, so it never covers a bar.

    Parameters
    ----------
    results : DataFrame
        Columns ``method``, ``modality`` (a modality name, or ``"fused"`` for the
        accuracy with every modality), ``accuracy`` and optionally ``std``, drawn
        as error bars. Without ``std``, rows repeated for the same method and
        modality are averaged and their standard deviation gives the error bar.
        A method without a row for some modality gets no bar there.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is created when ``None``.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on, with one bar per (method, modality) row.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from sklearn_modeq.plotting import plot_modality_accuracy
    >>> results = pd.DataFrame({
    ...     "method": ["ours"] * 3,
    ...     "modality": ["audio", "visual", "fused"],
    ...     "accuracy": [0.6, 0.5, 0.8],
    ... })
    >>> len(plot_modality_accuracy(results).patches)
    3
    """
    results = _check_results(
        results, ["method", "modality", "accuracy"], "plot_modality_accuracy"
    )
    summary = _mean_std(results, ["method", "modality"])
    methods = list(pd.unique(summary["method"]))
    modalities = list(pd.unique(summary["modality"]))
    if "fused" in modalities:
        modalities = [m for m in modalities if m != "fused"] + ["fused"]
    width = 0.8 / len(modalities)
    position = {method: i for i, method in enumerate(methods)}
    ax = _get_ax(ax)
    for j, modality in enumerate(modalities):
        part = summary[summary["modality"] == modality]
        x = part["method"].map(position).to_numpy(dtype=float)
        std = part["std"].to_numpy(dtype=float)
        ax.bar(
            x + (j - (len(modalities) - 1) / 2) * width,
            part["accuracy"].to_numpy(dtype=float),
            width,
            yerr=std if np.any(np.isfinite(std)) else None,
            capsize=3,
            label=str(modality),
        )
    ax.set_xticks(np.arange(len(methods)), [str(m) for m in methods])
    ax.set_xlabel("method")
    ax.set_ylabel("accuracy")
    ax.set_title("Unimodal and fused accuracy")
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    # beside the axes: inside, it covers the bars of the last methods
    ax.legend(title="modality", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def plot_feature_distribution(
    features_by_modality: Mapping[str, np.ndarray],
    ax=None,
    *,
    max_points: int = 1000,
    random_state=0,
):
    """Scatter the features of each modality in a shared 2-D PCA plane.

    One PCA is fitted on the features of all modalities together, so their clouds
    can be compared in one plane (the paper's Figure 4, modality and fusion
    feature distributions). The features must share one dimension. With a
    fitted :class:`~sklearn_modeq.ShapleyAlternatingClassifier` ``clf``, its
    ``transform`` gives them all in the space its head classifies: each
    modality's state is ``clf.transform({m: X[m]})`` (the other modalities
    absent) and the fused state is ``clf.transform(X)``::

        states = {m: clf.transform({m: X[m]}) for m in clf.modalities_}
        states["fused"] = clf.transform(X)
        plot_feature_distribution(states)

    Parameters
    ----------
    features_by_modality : mapping of str to array-like of shape (n_samples, h)
        Features of each modality. Rows with a NaN (missing samples) are left out.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure is created when ``None``.
    max_points : int, default=1000
        At most this many rows of each modality are drawn (a seeded random
        subset); the PCA is fitted on the drawn rows.
    random_state : int, RandomState instance or None, default=0
        Seeds the subsampling.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on, with one scatter collection per modality.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from sklearn_modeq.plotting import plot_feature_distribution
    >>> rng = np.random.default_rng(0)
    >>> feats = {"audio": rng.normal(size=(50, 8)), "text": rng.normal(1, size=(50, 8))}
    >>> len(plot_feature_distribution(feats).collections)
    2
    """
    if not isinstance(features_by_modality, Mapping) or not features_by_modality:
        raise TypeError(
            "The 'features_by_modality' parameter must be a non-empty mapping of "
            f"modality name to 2-D array. Got {type(features_by_modality).__name__}."
        )
    rng = check_random_state(random_state)
    clouds = {}
    for name, features in features_by_modality.items():
        features = np.asarray(features, dtype=float)
        if features.ndim != 2:
            raise ValueError(
                f"features_by_modality[{name!r}] must be 2-D (n_samples, h). Got "
                f"shape {features.shape}."
            )
        features = features[~np.isnan(features).any(axis=1)]
        if not len(features):
            raise ValueError(
                f"features_by_modality[{name!r}] has no row without NaN; nothing to "
                "plot for it."
            )
        if len(features) > max_points:
            features = features[rng.choice(len(features), max_points, replace=False)]
        clouds[name] = features
    dims = {name: f.shape[1] for name, f in clouds.items()}
    if len(set(dims.values())) != 1:
        raise ValueError(
            "All modalities need the same feature dimension to share one PCA plane; "
            f"got {dims}. Pass features of a common size, such as adapter outputs."
        )
    stacked = np.vstack(list(clouds.values()))
    if len(stacked) < 2 or stacked.shape[1] < 2:
        raise ValueError(
            "A 2-D PCA needs at least 2 finite rows and 2 features in total. Got "
            f"{stacked.shape[0]} rows of {stacked.shape[1]} features."
        )
    pca = PCA(n_components=2).fit(stacked)
    ax = _get_ax(ax)
    for name, features in clouds.items():
        points = pca.transform(features)
        ax.scatter(points[:, 0], points[:, 1], s=8, alpha=0.5, label=str(name))
    ratio = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC 1 ({ratio[0]:.0%} of variance)")
    ax.set_ylabel(f"PC 2 ({ratio[1]:.0%} of variance)")
    ax.set_title("Feature distribution per modality")
    ax.legend(title="modality", markerscale=2)
    return ax
