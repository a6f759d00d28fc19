"""The benchmark runner's quick mode produces sane tables and plots.

It checks the machinery (every table, every method, consistent numbers), not
which method wins.
"""

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

pytest.importorskip("matplotlib")
pd = pytest.importorskip("pandas")

from benchmarks import run  # noqa: E402
from benchmarks.suite.methods import (  # noqa: E402
    ABLATIONS,
    MAIN_METHODS,
    REFERENCES,
    make_method,
)
from benchmarks.suite.report import label_free_table, paired_margin  # noqa: E402
from benchmarks.suite.tasks import TASKS, _load, shuffled_rows  # noqa: E402


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


def test_a_later_run_adds_seeds_without_repeating_any():
    first = run.plan_jobs(["mfeat-2"], 2, ["mfeat-2"], ["mfeat-2"], ["Ours"])
    later = run.plan_jobs(
        ["mfeat-2"], 3, ["mfeat-2"], ["mfeat-2"], ["Ours"], first_seed=2
    )
    assert {j.seed for j in first} == {0, 1}
    assert {j.seed for j in later} == {2, 3, 4}
    # the same fits per seed, whichever run plans them
    assert len(later) == len(first) // 2 * 3


def test_merged_records_replace_re_run_fits_and_keep_the_rest():
    def fit(task, seed, method, value):
        return {
            "task": task,
            "seed": seed,
            "method": method,
            "train_missing": 0.0,
            "v": value,
        }

    earlier = [fit("a", 0, "Ours", 1), fit("a", 0, "MLA", 2), fit("b", 0, "Ours", 3)]
    later = [fit("b", 0, "Ours", 30), fit("a", 1, "Ours", 10)]
    merged = run.merge_records(earlier, later)
    assert [r["v"] for r in merged] == [1, 2, 30, 10]


def test_a_merged_run_replaces_its_fits_in_the_earlier_records(quick, tmp_path):
    earlier_out, _, earlier = quick
    for name in ("records.json", "settings.json"):
        (tmp_path / name).write_bytes((earlier_out / name).read_bytes())
    args = ["--quick", "--tasks", "nutrimouse", "--seeds", "1", "--methods", "Ours"]
    run.main([*args, "--merge", "--out", str(tmp_path), "--n-jobs", "1"])
    merged = json.loads((tmp_path / "records.json").read_text())
    key = ("nutrimouse", 0, "Ours", 0.0)
    assert sorted(map(run.record_key, merged)) == sorted(map(run.record_key, earlier))
    changed = [a for a, b in zip(merged, earlier) if a != b]
    # fit_s differs between two fits, whatever else reproduces
    assert [run.record_key(r) for r in changed] == [key]
    settings = json.loads((tmp_path / "settings.json").read_text())["settings"]
    assert "Then merged in" in settings and "tasks nutrimouse" in settings
    # the report covers every method of the merged records, not only the re-run one
    assert "| MLA |" in (tmp_path / "results.md").read_text()


def test_merge_needs_earlier_records(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run.main(["--quick", "--merge", "--out", str(tmp_path)])
    assert "no " in capsys.readouterr().err


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


LABEL_FREE = [name for name, task in TASKS.items() if task.label_free]


def test_shuffled_rows_gives_every_sample_another_samples_row():
    rows = np.repeat(np.arange(50)[:, None], 3, axis=1)
    shuffled = shuffled_rows(rows, np.random.RandomState(0))
    np.testing.assert_array_equal(np.sort(shuffled[:, 0]), np.arange(50))
    assert (shuffled[:, 0] != np.arange(50)).all()
    assert (shuffled == shuffled[:, :1]).all()  # whole rows move together


@pytest.mark.parametrize("name", LABEL_FREE)
def test_label_free_views_carry_no_label_information(name):
    # issue 11, section 6
    task = TASKS[name]
    assert LABEL_FREE and set(task.label_free) < set(task.load()[0])
    X_dev, X_test, y_dev, y_test = task.split(0)
    for view in X_dev:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
        score = model.fit(X_dev[view], y_dev).score(X_test[view], y_test)
        if view in task.label_free:
            assert score < 0.2, view  # 10 balanced classes: chance is 0.1
        else:
            assert score > 0.5, view


@pytest.mark.parametrize("name", LABEL_FREE)
def test_label_free_shuffle_is_deterministic(name):
    first = TASKS[name].load()[0]
    _load.cache_clear()
    again = TASKS[name].load()[0]
    for view in first:
        np.testing.assert_array_equal(first[view], again[view])


def test_label_free_table_compares_fused_with_the_best_modality():
    rows = [
        ("A", 0, "pixel", 0.90),
        ("A", 0, "noise", 0.10),
        ("A", 0, "fused", 0.85),
        ("A", 1, "pixel", 0.94),
        ("A", 1, "noise", 0.12),
        ("A", 1, "fused", 0.87),
        ("B", 0, "pixel", 0.80),
        ("B", 0, "noise", 0.10),
        ("B", 0, "fused", 0.81),
    ]
    acc = pd.DataFrame(rows, columns=["method", "seed", "modality", "accuracy"])
    acc["task"] = "t"
    table = label_free_table(acc, "t", ["A", "B", "C"])
    assert table.to_dict("records") == [
        {
            "method": "A",
            "best modality": "pixel",
            "its accuracy": "92.0",
            "fused": "86.0",
            "gap": "-6.0",
        },
        {
            "method": "B",
            "best modality": "pixel",
            "its accuracy": "80.0",
            "fused": "81.0",
            "gap": "+1.0",
        },
    ]


def test_paired_margin_is_the_mean_difference_with_its_standard_error():
    ours = pd.Series([0.90, 0.95, 0.80], index=[0, 1, 2])
    other = pd.Series([0.85, 0.95, 0.75, 0.99], index=[0, 1, 2, 3])  # seed 3 unpaired
    margin, se = paired_margin(ours, other)
    diff = np.array([0.05, 0.0, 0.05])
    assert margin == pytest.approx(diff.mean())
    assert se == pytest.approx(diff.std(ddof=1) / np.sqrt(3))
    # the same shift on every seed: the split's effect cancels, no spread
    assert paired_margin(ours, ours - 0.1) == pytest.approx((0.1, 0.0))
    assert np.isnan(paired_margin(ours.iloc[:1], other)[1])


def test_a_job_restores_the_callers_torch_threads():
    import torch

    from benchmarks.suite.evaluate import Job, run_job

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        record = run_job(Job("nutrimouse", 0, "LogisticRegression"), quick=True)
        assert torch.get_num_threads() == 2
        assert record["method"] == "LogisticRegression"
    finally:
        torch.set_num_threads(before)
