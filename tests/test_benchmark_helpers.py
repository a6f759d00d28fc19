"""The arithmetic behind figures the benchmarks print (no benchmark is run)."""

import numpy as np
import pytest

from benchmarks.bench_defaults import SETTINGS, table
from benchmarks.bench_scaling import growth_exponents


def test_growth_exponent_of_a_power_law():
    rows = [
        {"n_modalities": n, "epoch_s": 0.1 * n**2, "predict_per_row_us": 3.0 * n**1.5}
        for n in range(2, 9)
    ]
    text = growth_exponents(rows)
    assert "epoch time: t ~ n**2.00" in text
    assert "predict/row: t ~ n**1.50" in text


def test_defaults_table_means_per_task_and_setting():
    names = list(SETTINGS)[:2]
    records = [
        {
            "task": t,
            "seed": s,
            "setting": name,
            "accuracy": acc,
            "epochs": 10,
            "fit_s": 1.0,
        }
        for t, base in (("a", 0.9), ("b", 0.7))
        for s in range(2)
        for name, acc in zip(names, (base + 0.01 * s, base - 0.1))
    ]
    lines = table(records).splitlines()
    assert lines[0].startswith("| setting | a | b | mean")
    first = lines[2].split(" | ")
    assert first[1] == "90.5 ± 0.7" and first[2] == "70.5 ± 0.7"
    assert float(first[3]) == pytest.approx(np.mean([90.5, 70.5]))


def test_combiner_cv_report_means_per_data_set_and_setting():
    from benchmarks.bench_combiner_cv import DATASETS, SETTINGS, report

    records = [
        {
            "data": d,
            "seed": s,
            "combiner_cv": str(c),
            "folds": 5 if c else 0,
            "fit_s": 6.0 if c else 1.0,
            "accuracy": (0.9 if c else 0.8) + 0.1 * s,
            "accuracy_50": 0.5,
            "single": {"a": 0.7 + 0.2 * s, "b": 0.75},
        }
        for d in DATASETS
        for s in range(2)
        for c in SETTINGS
    ]
    row = report(records).splitlines()[4].split(" | ")
    assert row[0] == f"| {DATASETS[0]}"
    assert row[1:] == ["5", "85.0 / 50.0", "95.0 / 50.0", "80.0", "1.0 / 6.0 |"]


def test_outside_margins_are_paired_over_seeds():
    pytest.importorskip("pandas")
    from benchmarks.bench_outside import DATASETS, METHODS, margins_table

    records = []
    for name in DATASETS:
        for seed in range(3):
            for method in METHODS:
                # MLA is best by mean and Ours trails it by exactly 1 point
                # on every seed; the seeds move every method alike
                acc = 0.9 + 0.01 * seed - 0.02 * (method not in ("Ours", "MLA"))
                acc -= 0.01 * (method == "Ours")
                record = {"data": name, "seed": seed, "method": method}
                record["accuracy"] = record["accuracy_50"] = acc
                if method == "Ours":
                    record["single"] = {"a": acc - 0.05, "b": acc - 0.10 * seed}
                records.append(record)
    rows = margins_table(records).splitlines()[4:]
    assert len(rows) == len(DATASETS)
    cells = rows[0].strip("| ").split(" | ")
    assert cells[1] == cells[2] == "-1.0 ± 0.0 (MLA)"
    # view "a" is best by mean (b loses 10 points a seed)
    assert cells[3] == "+5.0 ± 0.0 (a)"


def test_label_free_report_pairs_whole_and_informative_fits():
    pytest.importorskip("pandas")
    from benchmarks.bench_label_free import METHODS, report

    records = [
        {
            "task": "mfeat-pix+2noise",
            "seed": seed,
            "method": method,
            "informative_only": only,
            # the label-free views cost 1 point on every seed, whatever the split
            "fused": 0.95 + 0.01 * seed - 0.01 * (not only),
            "alone": {"pixel": 0.94 + 0.01 * seed},
        }
        for seed in range(3)
        for method in METHODS
        for only in (False, True)
    ]
    rows = [r for r in report(records).splitlines() if r.startswith("| Ours |")]
    assert rows == [
        "| Ours | pixel alone | 95.00 | 95.00 | +0.00 ± 0.00 |",
        "| Ours | fused | 95.00 | 96.00 | -1.00 ± 0.00 |",
    ]


def test_mapping_report_pairs_the_fits_with_and_without_the_mapping():
    pytest.importorskip("pandas")
    from benchmarks.bench_mapping import METHODS, report
    from benchmarks.bench_outside import DATASETS

    records = []
    for name in DATASETS:
        for seed in range(4):
            for method in METHODS:
                # the seeds move both fits alike; the mapping costs 2 points on
                # every seed with all views, none with half of them removed
                record = {"data": name, "seed": seed, "method": method}
                record["accuracy"] = 0.9 + 0.02 * seed - 0.02 * (method == METHODS[1])
                record["accuracy_50"] = 0.6 + 0.05 * seed
                records.append(record)
    rows = report(records).splitlines()[4:]
    assert len(rows) == 2 * len(DATASETS)
    assert rows[0].split(" | ")[1:] == ["all", "93.0", "91.0", "-2.00 ± 0.00 |"]
    assert rows[1].split(" | ")[1:] == [
        "half removed",
        "67.5",
        "67.5",
        "+0.00 ± 0.00 |",
    ]


def test_orders_report_pairs_default_and_exhaustive_inference():
    pytest.importorskip("pandas")
    from benchmarks.bench_orders import DATASETS, report

    records = []
    for name in DATASETS[:2]:
        for seed in range(4):
            # the seeds move every mode alike; weighted inference is one point
            # above the exhaustive average on odd seeds, equal on even ones
            base = 0.9 + 0.01 * seed
            record = {
                "data": name,
                "seed": seed,
                "method": "Ours",
                "n_modalities": 3 + 3 * (name != DATASETS[0]),
            }
            for key in ("accuracy", "accuracy_50"):
                record[f"{key}_exhaustive"] = base
                record[f"{key}_hybrid"] = base - 0.02
                record[f"{key}_weighted"] = base + 0.01 * (seed % 2)
            records.append(record)
    rows = report(records).splitlines()[4:]
    assert len(rows) == 4
    assert rows[0].split(" | ")[1:] == [
        "3 of 6",
        "all",
        "92.0",
        "89.5",
        "91.5",
        "+0.50 ± 0.29 |",
    ]
    assert rows[2].split(" | ")[1] == "3 of 720"


def test_exhaustive_orders_equal_hybrid_inference_when_every_order_is_sampled():
    from benchmarks.bench_orders import exhaustive_predict
    from sklearn_modeq import ShapleyAlternatingClassifier
    from sklearn_modeq.datasets import make_imbalanced_modalities

    X, y = make_imbalanced_modalities(
        n_samples=120, dims=(5, 4, 3), strengths=(3.0, 1.0, 2.0), random_state=0
    )
    # 3 modalities have 6 orders: max_orders=6 samples all of them; every
    # present modality is used, as exhaustive_predict does
    model = ShapleyAlternatingClassifier(
        max_epochs=3,
        max_orders=6,
        inference_order="hybrid",
        shapley_gate=False,
        random_state=0,
    ).fit(X, y)
    np.testing.assert_array_equal(exhaustive_predict(model, X), model.predict(X))
    model.set_params(max_orders=3)
    assert len(model.net_.module_.orders) == 6  # a fitted model keeps its orders
