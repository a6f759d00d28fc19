"""What verbose=1 prints (issue 14): modality names, no colour codes off a terminal."""

import sys

import numpy as np

from sklearn_modeq import ShapleyAlternatingClassifier
from sklearn_modeq.baselines import MLAClassifier


def data(n=60):
    rng = np.random.RandomState(0)
    y = np.arange(n) % 2
    return {
        "audio": rng.normal(size=(n, 4)) + 2 * y[:, None],
        "visual": rng.normal(size=(n, 3)),
    }, y


def fit_verbose(cls=ShapleyAlternatingClassifier):
    X, y = data()
    params = dict(hidden_size=4, max_epochs=3, verbose=1, random_state=0)
    if issubclass(cls, ShapleyAlternatingClassifier):
        params["combiner_cv"] = None
    return cls(**params).fit(X, y)


def test_verbose_shows_the_training_order_by_modality_name(capsys):
    clf = fit_verbose()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["epoch", "order"]
    assert "train_order" not in lines[0]
    orders = [line.split()[1] for line in lines[2:]]
    assert orders == [">".join(order) for order in clf.order_history_]


def test_verbose_writes_no_colour_codes_off_a_terminal(capsys):
    fit_verbose()
    out = capsys.readouterr().out
    assert "valid_loss" in out
    assert "\x1b[" not in out


def test_verbose_colours_the_best_loss_on_a_terminal(capsys, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    fit_verbose()
    assert "\x1b[" in capsys.readouterr().out
    monkeypatch.setenv("NO_COLOR", "1")
    fit_verbose()
    assert "\x1b[" not in capsys.readouterr().out


def test_estimators_without_a_training_order_log_as_before(capsys):
    fit_verbose(MLAClassifier)
    out = capsys.readouterr().out
    assert "order" not in out.splitlines()[0]
    assert "\x1b[" not in out
