"""How training and prediction cost grow with the number of modalities.

Shapley scheduling evaluates the validation accuracy of every coalition of
modalities (``2**n``; past ``shapley_max_exact``, default 6, they are sampled),
and inference runs the chain over a fixed sample of at most ``max_orders``
orders (default 3, never ``n!``) plus each modality alone. For ``n = 2 .. 8``
synthetic modalities this measures, with the default settings:

- time per epoch and the share of it due to Shapley values (against the same
  fit without the scheduler, see ``_timing.shapley_share``), with the number of
  coalitions evaluated;
- time per prediction: ``predict_proba`` latency of one row and time per row on a
  batch, with the number of orders averaged and chain steps run (orders share
  their prefixes, see ``OrderTrie``);

and prints the growth exponent ``b`` of a power law ``t ~ n**b`` fitted to each
(least squares on logs), with the exponent ``log2`` growth would show over the
same range for comparison.

Run: ``python -m benchmarks.bench_scaling [--quick] [--device cpu|cuda]
[--threads N]``. Prints a markdown table and saves the raw results (JSON, with
seed, device and versions) and a plot under ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import platform
from math import factorial
from pathlib import Path

import numpy as np
import sklearn
import torch

from sklearn_modeq import ShapleyAlternatingClassifier, __version__
from sklearn_modeq.datasets import make_imbalanced_modalities
from sklearn_modeq.nn.combiner import candidate_groups
from sklearn_modeq.nn.orders import OrderTrie
from sklearn_modeq.shapley import ShapleyPlan

from ._timing import best_time, epoch_times, shapley_share

RESULTS = Path(__file__).resolve().parent / "results"
SEED = 0


def make_data(n_modalities: int, n_samples: int, dim: int):
    """``n`` modalities of equal width, signal strengths from 2.5 down to 0.5."""
    X, y = make_imbalanced_modalities(
        n_samples=n_samples,
        n_classes=5,
        dims=(dim,) * n_modalities,
        strengths=np.linspace(2.5, 0.5, n_modalities),
        random_state=SEED,
    )
    return {k: v.astype(np.float32) for k, v in X.items()}, y


def measure(n, config, caps) -> dict:
    """Fit and prediction timings for ``n`` modalities under ``caps``."""
    X, y = make_data(n, config["n_samples"], config["dim"])
    clf = ShapleyAlternatingClassifier(
        hidden_size=config["hidden"],
        max_epochs=config["epochs"],
        batch_size=config["batch_size"],
        lr=1e-3,
        random_state=SEED,
        device=config["device"],
        **caps,
    )
    clf.fit(X, y)
    # the first epoch carries one-off costs (allocation, kernel selection)
    epoch = epoch_times(clf, skip_first=True)
    share = shapley_share(clf, X, y, skip_first=True, repeats=config["share_repeats"])

    one = {k: v[:1] for k, v in X.items()}
    rows = {k: v[: config["predict_rows"]] for k, v in X.items()}
    latency = best_time(lambda: clf.predict_proba(one), config["repeats"])
    batch = best_time(lambda: clf.predict_proba(rows), config["repeats"])

    module = clf.net_.module_
    orders = module.orders
    groups, _ = candidate_groups(orders, n)
    plan = ShapleyPlan.make(
        n,
        max_exact=clf.shapley_max_exact,
        n_permutations=clf.shapley_n_permutations,
        random_state=0,
    )
    return {
        "n_modalities": n,
        **caps,
        "shapley": "exact" if plan.exact else "sampled",
        "coalitions": int(np.count_nonzero(plan.masks)),
        "epoch_s": float(np.median(epoch)),
        "shapley_s": share * float(np.median(epoch)),
        "shapley_share": share,
        "orders": len(orders),
        "orders_exact": factorial(n),
        "chain_steps": OrderTrie(groups).n_nodes,
        "predict_one_ms": 1e3 * latency,
        "predict_per_row_us": 1e6 * batch / config["predict_rows"],
    }


def markdown_table(rows: list[dict]) -> str:
    head = (
        "| n | Shapley | coalitions | epoch (s) | Shapley share | orders averaged "
        "| chain steps | predict 1 row (ms) | predict per row, batch (µs) |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        capped = ""
        orders = f"{r['orders']}" + (
            f" of {r['orders_exact']}" if r["orders"] < r["orders_exact"] else ""
        )
        lines.append(
            f"| {r['n_modalities']}{capped} | {r['shapley']} | {r['coalitions']} "
            f"| {r['epoch_s']:.3f} | {100 * r['shapley_share']:.0f}% | {orders} "
            f"| {r['chain_steps']} | {r['predict_one_ms']:.2f} "
            f"| {r['predict_per_row_us']:.1f} |"
        )
    return "\n".join(lines)


def growth_exponents(rows: list[dict]) -> str:
    """Power-law exponents of epoch and per-row prediction time against n."""
    n = np.array([r["n_modalities"] for r in rows], dtype=float)
    lines = []
    for key, label in (
        ("epoch_s", "epoch time"),
        ("predict_per_row_us", "predict/row"),
    ):
        t = np.array([r[key] for r in rows])
        b = np.polyfit(np.log(n), np.log(t), 1)[0]
        lines.append(f"{label}: t ~ n**{b:.2f} over n = {int(n[0])}..{int(n[-1])}")
    b2 = np.polyfit(np.log(n), n * np.log(2), 1)[0]
    lines.append(f"(2**n over the same range would fit n**{b2:.2f})")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    default = rows
    n = [r["n_modalities"] for r in default]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.semilogy(n, [r["epoch_s"] for r in default], "o-", label="epoch")
    left.semilogy(n, [r["shapley_s"] for r in default], "s--", label="Shapley part")
    left.set_ylabel("seconds")
    right.semilogy(n, [r["predict_one_ms"] for r in default], "o-", label="one row")
    right.semilogy(
        n, [r["predict_per_row_us"] / 1e3 for r in default], "s--", label="per row"
    )
    right.set_ylabel("milliseconds")
    for ax, title in ((left, "training"), (right, "prediction (default)")):
        ax.axvline(6.5, color="grey", lw=0.8)
        ax.set_xlabel("modalities (Shapley values sampled right of the line)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller, n = 2..7")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = {
        "device": args.device,
        "n_samples": 400 if args.quick else 2000,
        "dim": 32,
        "hidden": 32 if args.quick else 64,
        "epochs": 3 if args.quick else 6,
        "batch_size": 64,
        "predict_rows": 256 if args.quick else 1024,
        "repeats": 2 if args.quick else 3,
        "share_repeats": 1 if args.quick else 3,
    }
    sizes = range(2, 8) if args.quick else range(2, 9)
    runs = [(n, {}) for n in sizes]

    env = {
        "sklearn_modeq": __version__,
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "device": args.device,
        "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        "seed": SEED,
    }
    print(", ".join(f"{k} {v}" for k, v in env.items() if v is not None))
    print(", ".join(f"{k}={v}" for k, v in config.items()))
    rows = []
    for n, caps in runs:
        rows.append(measure(n, config, caps))
        r = rows[-1]
        print(
            f"n={n} {caps}: epoch {r['epoch_s']:.3f} s "
            f"(Shapley {100 * r['shapley_share']:.0f}%), "
            f"predict {r['predict_one_ms']:.2f} ms/row alone, "
            f"{r['predict_per_row_us']:.1f} us/row in a batch",
            flush=True,
        )
    print()
    print(markdown_table(rows))
    growth = growth_exponents(rows)
    print("\n" + growth)

    args.out.mkdir(parents=True, exist_ok=True)
    stem = "bench_scaling" + ("_quick" if args.quick else "")
    stem += "" if args.device == "cpu" else "_" + args.device.replace(":", "")
    (args.out / f"{stem}.json").write_text(
        json.dumps({"environment": env, "config": config, "results": rows}, indent=1)
    )
    (args.out / f"{stem}.md").write_text(
        ", ".join(f"{k} {v}" for k, v in env.items() if v is not None)
        + "\n\n"
        + markdown_table(rows)
        + "\n\n"
        + growth
        + "\n"
    )
    plot(rows, args.out / f"{stem}.png")
    print(f"\nsaved {args.out / stem}.json, .md and .png")
    return rows


if __name__ == "__main__":
    main()
