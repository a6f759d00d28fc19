"""The benchmark runner's quick mode produces sane tables and plots.

It checks the machinery (every table, every method, consistent numbers), not
which method wins.
"""

import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("pandas")

from benchmarks import run  # noqa: E402
from benchmarks.suite.methods import (  # noqa: E402
    ABLATIONS,
    MAIN_METHODS,
    REFERENCES,
    make_method,
)
from benchmarks.suite.tasks import TASKS  # noqa: E402


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite")
    path = run.main(["--quick", "--out", str(out), "--n-jobs", "1"])
    return out, path.read_text(), json.loads((out / "records.json").read_text())


def test_every_table_and_plot_is_written(quick):
    out, text, _ = quick
    for heading in ("## Table 1", "## Table 2", "## Table 4", "## The paper's claims"):
        assert heading in text
    for task in ("mfeat-2", "nutrimouse"):
        for plot in ("robustness", "modality_accuracy", "shapley"):
            png = out / f"{plot}_{task}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    for method in [*MAIN_METHODS, *ABLATIONS, "Ours (last order)"]:
        assert f"| {method} |" in text, method
    assert "trained with 30% of modalities missing" in text


def test_records_are_consistent(quick):
    _, _, records = quick
    seeds = {r["seed"] for r in records}
    assert seeds == {0, 1}
    for r in records:
        values = [*r["accuracy"].values(), *r["robustness"].values()]
        assert all(0 <= v <= 1 for v in values), r["method"]
        assert np.isfinite(r["edm"]) and r["edm"] >= 0
        if r["robustness"]:
            # nothing dropped at rate 0: the same prediction as the fused accuracy
            assert r["robustness"]["0.0"] == pytest.approx(r["accuracy"]["fused"])
        if r["task"] == "mfeat-2" and not r["train_missing"]:
            assert r["accuracy"]["fused"] > 0.5, r["method"]  # chance is 0.1
    ours = [r for r in records if r["method"] == "Ours" and not r["train_missing"]]
    assert all("last_order" in r and len(r["shapley_history"]) >= 5 for r in ours)


def test_unknown_task_is_rejected(capsys):
    with pytest.raises(SystemExit):
        run.main(["--tasks", "mnist"])
    assert "unknown tasks ['mnist']" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore:Got `batch_size`:UserWarning")
@pytest.mark.parametrize("task", ["nutrimouse", "mfeat-2"])
@pytest.mark.parametrize("neural", ["Concat", "Ours"])
@pytest.mark.parametrize("reference", REFERENCES)
def test_reference_rows_train_on_the_neural_methods_rows(task, neural, reference):
    # issue 11, section 5: the reference rows used 100% of the development data
    seed = 3
    X, _, y, _ = TASKS[task].split(seed)
    ref = make_method(reference, 1, seed).fit(X, y)
    clf = make_method(neural, 1, seed).fit(X, y)
    y_enc = clf._label_encoder.transform(y)
    train, valid = clf.net_.train_split(np.arange(len(y)), y_enc)
    assert 0 < len(valid.indices) < len(y)
    np.testing.assert_array_equal(ref.train_rows_, train.indices)
    assert ref.pipeline_[-2].n_samples_seen_ == len(train.indices)
