"""Markdown tables and PNG plots from the suite's records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .evaluate import TRAIN_MISSING_RATE
from .tasks import TASKS


def _pm(values) -> str:
    values = np.asarray(values, dtype=float) * 100
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{values.mean():.1f} ± {values.std(ddof=1):.1f}"


def _markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = [
        "| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *rows])


def accuracy_frame(records, variant=None) -> pd.DataFrame:
    """Long table: task, method, seed, modality (or "fused"), accuracy, edm."""
    rows = []
    for r in records:
        measured = r if variant is None else r.get(variant)
        if measured is None:
            continue
        method = (
            r["method"]
            if variant is None
            else f"{r['method']} ({variant.replace('_', ' ')})"
        )
        for modality, acc in measured["accuracy"].items():
            rows.append(
                {
                    "task": r["task"],
                    "method": method,
                    "seed": r["seed"],
                    "modality": modality,
                    "accuracy": acc,
                    "edm": measured["edm"],
                    "fit_s": r["fit_s"],
                }
            )
    return pd.DataFrame(rows)


def accuracy_table(frame: pd.DataFrame, task: str, methods) -> pd.DataFrame:
    """One row per method: accuracy per modality and fused (mean ± std over
    seeds, in %), EDM, fit seconds."""
    part = frame[frame["task"] == task]
    modalities = [m for m in pd.unique(part["modality"]) if m != "fused"] + ["fused"]
    rows = []
    for method in methods:
        rows_m = part[part["method"] == method]
        if rows_m.empty:
            continue
        row = {"method": method}
        for modality in modalities:
            row[modality] = _pm(rows_m.loc[rows_m["modality"] == modality, "accuracy"])
        per_seed = rows_m.drop_duplicates("seed")
        edm = per_seed["edm"].to_numpy(dtype=float)
        row["EDM"] = (
            f"{edm.mean():.1f} ± {edm.std(ddof=1):.1f}"
            if len(edm) > 1
            else f"{edm[0]:.1f}"
        )
        row["fit s"] = f"{per_seed['fit_s'].mean():.1f}"
        row["seeds"] = len(per_seed)
        rows.append(row)
    return pd.DataFrame(rows)


def robustness_frame(records) -> pd.DataFrame:
    rows = []
    for r in records:
        for rate, acc in r["robustness"].items():
            rows.append(
                {
                    "task": r["task"],
                    "method": r["method"],
                    "seed": r["seed"],
                    "train_missing": r["train_missing"],
                    "missing_rate": float(rate),
                    "accuracy": acc,
                }
            )
    return pd.DataFrame(rows)


def robustness_table(frame: pd.DataFrame, task: str, train_missing: float, methods):
    part = frame[(frame["task"] == task) & (frame["train_missing"] == train_missing)]
    rows = []
    for method in methods:
        rows_m = part[part["method"] == method]
        if rows_m.empty:
            continue
        row = {"method": method}
        for rate, group in rows_m.groupby("missing_rate"):
            row[f"{rate:.0%}"] = _pm(group["accuracy"])
        rows.append(row)
    return pd.DataFrame(rows)


def _means(acc: pd.DataFrame, task: str, modality: str, column="accuracy") -> pd.Series:
    part = acc[(acc["task"] == task) & (acc["modality"] == modality)]
    return part.groupby("method", sort=False)[column].mean()


def _verdict(held: list, failed: list) -> str:
    total = len(held) + len(failed)
    return f"held on {len(held)} of {total} tasks" + (
        f" (failed on {', '.join(failed)})" if failed else ""
    )


def claims_section(acc: pd.DataFrame, rob: pd.DataFrame, tasks, main_methods):
    """The paper's claims, checked on the means of this run (no thresholds)."""
    lines = [
        "## The paper's claims on this data",
        "",
        "Computed from the tables above (means over seeds; a claim holds on a "
        "task when `Ours` is at least as good as every other method named).",
        "",
    ]
    checks = {
        "best fused accuracy": [],
        "lowest EDM (most balanced)": [],
        "best accuracy of the weakest modality": [],
        "best accuracy with 50% of modalities missing": [],
        "hybrid-order inference at least as accurate as last-order": [],
    }
    details = {key: [] for key in checks}
    for task in tasks:
        fused = _means(acc, task, "fused").reindex(main_methods).dropna()
        edm = _means(acc, task, "fused", "edm").reindex(main_methods).dropna()
        part = acc[(acc["task"] == task) & (acc["modality"] != "fused")]
        per_modality = (
            part[part["method"].isin(main_methods)]
            .groupby(["method", "modality"], sort=False)["accuracy"]
            .mean()
            .unstack()
        )
        # weakest modality over all methods; label-free views are not candidates
        informative = per_modality.drop(columns=list(TASKS[task].label_free))
        weakest = informative.mean().idxmin()
        weak = per_modality[weakest]
        rates = rob[
            (rob["task"] == task)
            & (rob["train_missing"] == 0)
            & (rob["missing_rate"] == 0.5)
        ]
        robust = (
            rates.groupby("method")["accuracy"].mean().reindex(main_methods).dropna()
        )
        last = _means(acc, task, "fused").get("Ours (last order)")
        for key, values, best in (
            ("best fused accuracy", fused, fused.idxmax()),
            ("lowest EDM (most balanced)", edm, edm.idxmin()),
            ("best accuracy of the weakest modality", weak, weak.idxmax()),
            (
                "best accuracy with 50% of modalities missing",
                robust,
                robust.idxmax() if len(robust) else None,
            ),
        ):
            if "Ours" not in values or best is None:
                continue
            lower_is_better = key.startswith("lowest")
            ours = values["Ours"]
            ok = ours <= values.min() if lower_is_better else ours >= values.max()
            checks[key].append((task, ok))
            label = (
                f"{weakest}: " if key.startswith("best accuracy of the weak") else ""
            )
            details[key].append(
                f"{task}: {label}Ours {100 * ours if not lower_is_better else ours:.1f}, "
                f"best {best} {100 * values[best] if not lower_is_better else values[best]:.1f}"
            )
        if last is not None and "Ours" in fused:
            key = "hybrid-order inference at least as accurate as last-order"
            checks[key].append((task, fused["Ours"] >= last))
            details[key].append(
                f"{task}: hybrid {100 * fused['Ours']:.1f}, last {100 * last:.1f}"
            )
    for key, results in checks.items():
        if not results:
            continue
        held = [t for t, ok in results if ok]
        failed = [t for t, ok in results if not ok]
        lines.append(
            f"- **{key}**: {_verdict(held, failed)}. " + "; ".join(details[key]) + "."
        )
    lines.append("")
    return lines


def label_free_table(acc: pd.DataFrame, task: str, methods) -> pd.DataFrame:
    """One row per method: its best single modality, fused accuracy and the gap
    (fused - best modality, in points), from the means over seeds."""
    part = acc[acc["task"] == task]
    rows = []
    for method in methods:
        means = part[part["method"] == method].groupby("modality")["accuracy"].mean()
        if "fused" not in means:
            continue
        single = means.drop("fused")
        best = single.idxmax()
        rows.append(
            {
                "method": method,
                "best modality": best,
                "its accuracy": f"{100 * single[best]:.1f}",
                "fused": f"{100 * means['fused']:.1f}",
                "gap": f"{100 * (means['fused'] - single[best]):+.1f}",
            }
        )
    return pd.DataFrame(rows)


def label_free_section(acc: pd.DataFrame, tasks, methods) -> list:
    """Fused accuracy against each method's best modality on label-free tasks."""
    tasks = [t for t in tasks if TASKS[t].label_free]
    if not tasks:
        return []
    lines = [
        "## Tasks with label-free modalities",
        "",
        "Some views carry no label information (real features with their rows "
        "shuffled across samples). A good multimodal model is never worse than "
        "its best single modality: `gap` is fused minus best modality, in "
        "points, from the means over seeds.",
        "",
    ]
    for task in tasks:
        lines += [
            f"### {task} (label-free: {', '.join(TASKS[task].label_free)})",
            "",
            _markdown(label_free_table(acc, task, methods)),
            "",
        ]
    return lines


def ablation_claims(acc: pd.DataFrame, tasks, ablation_methods):
    """Each component helps: the full model's fused accuracy against each ablation."""
    lines = []
    for ablation in ablation_methods:
        held, failed, notes = [], [], []
        for task in tasks:
            fused = _means(acc, task, "fused")
            if ablation not in fused or "Ours" not in fused:
                continue
            (held if fused["Ours"] >= fused[ablation] else failed).append(task)
            notes.append(
                f"{task} {100 * fused['Ours']:.1f} vs {100 * fused[ablation]:.1f}"
            )
        if held or failed:
            lines.append(
                f"- **full model at least as accurate as `{ablation}`**: "
                f"{_verdict(held, failed)}. " + "; ".join(notes) + "."
            )
    return lines + [""]


def write_report(
    records, out: Path, *, main_methods, ablation_methods, title: str, settings: str
) -> Path:
    """Write ``results.md`` and the plots under ``out``; returns the markdown path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sklearn_modeq.plotting import (
        plot_modality_accuracy,
        plot_robustness,
        plot_shapley_history,
    )

    out.mkdir(parents=True, exist_ok=True)
    complete = [r for r in records if not r["train_missing"]]
    acc = accuracy_frame(complete)
    acc = pd.concat([acc, accuracy_frame(complete, "last_order")], ignore_index=True)
    rob = robustness_frame(records)
    tasks = [t for t in TASKS if t in set(acc["task"])]
    lines = [f"# {title}", "", settings, ""]

    lines += [
        "## Table 1: accuracy per modality, fused accuracy and EDM",
        "",
        "Accuracy in % on the test split, mean ± std over seeds; a modality's "
        "column is the model restricted to that modality (the others absent). "
        "EDM is lower for a more balanced model. `fit s` is the mean fit time.",
        "",
    ]
    for task in tasks:
        lines += [
            f"### {task}: {TASKS[task].description}",
            "",
            _markdown(accuracy_table(acc, task, main_methods)),
            "",
        ]

    ablation_rows = ["Ours", *ablation_methods, "Ours (last order)"]
    lines += [
        "## Table 2: ablations of our estimator",
        "",
        "`Ours` is the full model with hybrid-order inference; `last order` is "
        "the same fitted model predicting with the last training order only.",
        "",
    ]
    for task in tasks:
        table = accuracy_table(acc, task, ablation_rows)
        if len(table) > 1:
            lines += [f"### {task}", "", _markdown(table), ""]

    lines += [
        "## Table 4: accuracy as test samples lose modalities",
        "",
        "Each test sample loses each of its modalities with the given "
        "probability, never all of them (`drop_modalities`). Fused accuracy "
        "in %, mean ± std over seeds.",
        "",
    ]
    for task in tasks:
        for train_missing in sorted(set(rob.loc[rob["task"] == task, "train_missing"])):
            trained = (
                "trained on complete data"
                if not train_missing
                else f"trained with {train_missing:.0%} of modalities missing"
            )
            table = robustness_table(rob, task, train_missing, main_methods)
            if not table.empty:
                lines += [f"### {task}, {trained}", "", _markdown(table), ""]

    lines += label_free_section(acc, tasks, main_methods)
    lines += claims_section(acc, rob, tasks, main_methods)
    lines += ablation_claims(acc, tasks, ablation_methods)

    lines += ["## Plots", ""]
    for task in tasks:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), squeeze=False)
        for ax, train_missing in zip(axes[0], (0.0, TRAIN_MISSING_RATE)):
            part = rob[(rob["task"] == task) & (rob["train_missing"] == train_missing)]
            if part.empty:
                ax.set_visible(False)
                continue
            plot_robustness(part, ax=ax)
            # ten methods: a compact legend below the curves' starting points
            ax.legend(title="method", fontsize=7, ncol=2, loc="lower left")
            ax.set_title(f"{task}: trained with {train_missing:.0%} missing")
        _save(fig, out / f"robustness_{task}.png", plt)

        fig, ax = plt.subplots(figsize=(max(8, 1.2 * len(main_methods)), 4.5))
        part = acc[(acc["task"] == task) & acc["method"].isin(main_methods)]
        plot_modality_accuracy(part, ax=ax)
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_title(f"{task}: unimodal and fused accuracy")
        _save(fig, out / f"modality_accuracy_{task}.png", plt)

        ours = [r for r in complete if r["task"] == task and r["method"] == "Ours"]
        if ours:
            first = min(ours, key=lambda r: r["seed"])
            fig, ax = plt.subplots(figsize=(7, 4.5))
            plot_shapley_history(first["shapley_history"], first["modalities"], ax=ax)
            ax.set_title(f"{task}: Shapley value per modality (seed {first['seed']})")
            _save(fig, out / f"shapley_{task}.png", plt)
        lines += [
            f"![robustness {task}](robustness_{task}.png)",
            f"![modality accuracy {task}](modality_accuracy_{task}.png)",
            f"![Shapley {task}](shapley_{task}.png)",
            "",
        ]
    path = out / "results.md"
    path.write_text("\n".join(lines))
    return path


def _save(fig, path, plt):
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
