import re
from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.container import BarContainer

from sklearn_modeq.plotting import (
    plot_feature_distribution,
    plot_modality_accuracy,
    plot_robustness,
    plot_shapley_history,
)

# no display in CI; pyplot only resolves the backend when a figure is made
matplotlib.use("Agg")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _save_png(ax, path):
    ax.figure.savefig(path)
    assert path.read_bytes()[:8] == PNG_MAGIC


def _history(n_epochs=6):
    epochs = np.arange(n_epochs)[:, None]
    return list(np.array([0.1, 0.3, 0.6]) + 0.02 * epochs * np.array([1, 0, -1]))


def test_shapley_history_one_line_per_modality(tmp_path):
    ax = plot_shapley_history(_history(), ["audio", "visual", "text"])
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["audio", "visual", "text"]
    np.testing.assert_array_equal(lines[0].get_xdata(), np.arange(1, 7))
    np.testing.assert_allclose(lines[2].get_ydata(), 0.6 - 0.02 * np.arange(6))
    _save_png(ax, tmp_path / "shapley.png")


def test_shapley_history_reads_fitted_estimator():
    estimator = SimpleNamespace(
        shapley_history_=_history(4), modalities_=["a", "b", "c"]
    )
    ax = plot_shapley_history(estimator)
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b", "c"]
    assert len(ax.get_lines()[1].get_xdata()) == 4


def test_shapley_history_accepts_mappings_per_epoch():
    history = [{"text": 0.5, "audio": 0.1}, {"text": 0.4, "audio": 0.2}]
    ax = plot_shapley_history(history, ["audio", "text"])
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [0.1, 0.2])


def test_shapley_history_draws_on_given_ax():
    _, ax = plt.subplots()
    assert plot_shapley_history(_history(), ax=ax) is ax
    assert ax.get_lines()[0].get_label() == "modality 0"


def test_shapley_history_wrong_length_raises():
    msg = "shapley_history[1] has 2 values but there are 3 modalities"
    with pytest.raises(ValueError, match=re.escape(msg)):
        plot_shapley_history([[0.1, 0.2, 0.3], [0.1, 0.2]], ["a", "b", "c"])


def _robustness_results():
    rates = [0.0, 0.1, 0.3, 0.5]
    rows = [
        (method, rate, acc - slope * rate, 0.02)
        for method, acc, slope in [("ours", 0.8, 0.2), ("concat", 0.82, 0.6)]
        for rate in rates
    ]
    return pd.DataFrame(rows, columns=["method", "missing_rate", "accuracy", "std"])


def test_robustness_one_line_and_band_per_method(tmp_path):
    ax = plot_robustness(_robustness_results())
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["ours", "concat"]
    np.testing.assert_allclose(lines[1].get_xdata(), [0.0, 0.1, 0.3, 0.5])
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2
    _save_png(ax, tmp_path / "robustness.png")


def test_robustness_without_std_averages_repeated_rows():
    results = pd.DataFrame(
        {
            "method": ["ours"] * 4,
            "missing_rate": [0.0, 0.0, 0.5, 0.5],
            "accuracy": [0.7, 0.9, 0.5, 0.7],
        }
    )
    ax = plot_robustness(results)
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), [0.8, 0.6])
    assert len(ax.collections) == 1


def test_robustness_without_std_or_repeats_has_no_band():
    results = _robustness_results().drop(columns="std")
    ax = plot_robustness(results)
    assert len(ax.get_lines()) == 2
    assert len(ax.collections) == 0


def test_robustness_missing_column_raises():
    results = _robustness_results().drop(columns="missing_rate")
    with pytest.raises(
        ValueError, match=re.escape("lacks the column(s) ['missing_rate']")
    ):
        plot_robustness(results)


def test_robustness_rate_out_of_range_raises():
    results = _robustness_results().assign(missing_rate=50.0)
    with pytest.raises(ValueError, match=re.escape("must hold fractions in [0, 1]")):
        plot_robustness(results)


def test_robustness_repeated_rows_with_std_raises():
    results = pd.concat([_robustness_results()] * 2)
    with pytest.raises(
        ValueError, match=re.escape("several rows for {'method': 'ours'")
    ):
        plot_robustness(results)


def _modality_results():
    rows = [
        (method, modality, acc, 0.01)
        for method, accs in [("ours", (0.6, 0.55, 0.8)), ("concat", (0.7, 0.3, 0.78))]
        for modality, acc in zip(("fused", "audio", "visual"), accs)
    ]
    return pd.DataFrame(rows, columns=["method", "modality", "accuracy", "std"])


def _bar_containers(ax):
    return [c for c in ax.containers if isinstance(c, BarContainer)]


def test_modality_accuracy_one_bar_per_method_and_modality(tmp_path):
    ax = plot_modality_accuracy(_modality_results())
    assert len(ax.patches) == 6
    bars = _bar_containers(ax)
    assert [c.get_label() for c in bars] == ["audio", "visual", "fused"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ours", "concat"]
    np.testing.assert_allclose([p.get_height() for p in bars[2]], [0.6, 0.7])
    assert all(c.errorbar is not None for c in bars)
    _save_png(ax, tmp_path / "modality_accuracy.png")


@pytest.mark.parametrize("own_figure", [False, True])
def test_modality_accuracy_legend_covers_no_bar(own_figure):
    # issue 14: with every bar high, the legend sat on the last methods' bars
    methods = [f"method {i}" for i in range(10)]
    modalities = ["pixel", "fourier", "morphological", "fused"]
    results = pd.DataFrame(
        [(m, mod, 0.95) for m in methods for mod in modalities],
        columns=["method", "modality", "accuracy"],
    )
    if own_figure:
        fig, ax = plt.subplots(figsize=(12, 4.5))
        plot_modality_accuracy(results, ax=ax)
        fig.tight_layout()
    else:
        ax = plot_modality_accuracy(results)
        fig = ax.figure
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert not any(legend.overlaps(bar.get_window_extent()) for bar in ax.patches)
    assert fig.bbox.contains(legend.x0, legend.y0)
    assert fig.bbox.contains(legend.x1, legend.y1)


def test_modality_accuracy_skips_absent_combinations():
    results = _modality_results()
    results = results[~((results.method == "concat") & (results.modality == "audio"))]
    ax = plot_modality_accuracy(results.drop(columns="std"))
    assert len(ax.patches) == 5
    assert all(c.errorbar is None for c in _bar_containers(ax))


def test_modality_accuracy_not_a_dataframe_raises():
    msg = "The 'results' parameter of plot_modality_accuracy must be a pandas DataFrame"
    with pytest.raises(TypeError, match=re.escape(msg)):
        plot_modality_accuracy({"method": ["a"]})


def test_feature_distribution_one_cloud_per_modality(tmp_path):
    rng = np.random.default_rng(0)
    features = {
        "audio": rng.normal(0, 1, size=(80, 6)),
        "visual": rng.normal(3, 1, size=(60, 6)),
        "fused": rng.normal(1.5, 0.5, size=(70, 6)),
    }
    features["visual"][0] = np.nan
    ax = plot_feature_distribution(features, max_points=50)
    clouds = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert [c.get_label() for c in clouds] == ["audio", "visual", "fused"]
    assert [len(c.get_offsets()) for c in clouds] == [50, 50, 50]
    _save_png(ax, tmp_path / "features.png")


def test_feature_distribution_different_dims_raises():
    features = {"a": np.zeros((5, 3)), "b": np.zeros((5, 4))}
    with pytest.raises(ValueError, match=re.escape("got {'a': 3, 'b': 4}")):
        plot_feature_distribution(features)


def test_feature_distribution_of_transform_outputs():
    # issue 14: the states plot_feature_distribution shows come from transform
    from sklearn_modeq import ShapleyAlternatingClassifier
    from sklearn_modeq.datasets import make_imbalanced_modalities
    from sklearn_modeq.plotting import plot_feature_distribution

    X, y = make_imbalanced_modalities(n_samples=90, dims=(4, 3), random_state=0)
    clf = ShapleyAlternatingClassifier(
        hidden_size=8, max_epochs=2, lr=1e-2, random_state=0, combiner_cv=None
    ).fit(X, y)
    states = {m: clf.transform({m: X[m]}) for m in clf.modalities_}
    states["fused"] = clf.transform(X)
    ax = plot_feature_distribution(states)
    assert len(ax.collections) == 3
    plt.close(ax.figure)
