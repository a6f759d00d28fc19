"""Out-of-core fit: time and peak memory on the HDF5 cache's lazy view vs in memory.

Writes a synthetic two-modality cache (float32, all-NaN rows for a share of
samples), then, in a fresh subprocess each, fits ``ShapleyAlternatingClassifier``
for one epoch and predicts the training data, on

- ``memory``: the data loaded into memory (``load``);
- ``rows``: the lazy view with the default row shuffling (``load(..., lazy=True)``),
  every training batch reading ``batch_size`` scattered rows;
- ``blocks`` (``blocks-<m>`` for ``--mix`` values other than 8): the lazy view with
  ``shuffle="blocks"`` (``open_lazy(..., shuffle="blocks", mix_blocks=m)``), which
  shuffles chunk-aligned blocks of rows and the rows within groups of ``m`` blocks,
  so every batch reads a few contiguous ranges.

Each subprocess reports its peak resident memory above its baseline after imports
(Linux ``VmHWM`` after resetting it through ``/proc/self/clear_refs``) and the
fit and predict times. Prints the cache size relative to the memory of the
row-shuffled out-of-core fit (target: a cache at least 5 times larger than that
memory) and each lazy fit's time relative to the in-memory fit (target for the
block sampler: at most 2x), all measured in the same run. Accuracy is not
measured here.

Run: ``python -m benchmarks.bench_out_of_core [--quick] [--n-samples N --dims D D]
[--mix M ...] [--no-checksums]``. The printed table is saved to
``benchmarks/results/out_of_core[_<n>].txt`` with the settings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from ._timing import run_child

RESULTS = Path(__file__).resolve().parent / "results"


def write(path, n_samples, dims, seed=0, checksums=True):
    from sklearn_modeq.cache import write_cache

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, n_samples)
    X = {}
    for m, d in enumerate(dims):
        centers = rng.normal(size=(5, d)).astype(np.float32)
        X[f"m{m}"] = centers[y] * (2.0 / (m + 1)) + rng.normal(
            size=(n_samples, d)
        ).astype(np.float32)
    X["m1"][rng.random(n_samples) < 0.2] = np.nan
    write_cache(path, X, y, batch_size=8192, checksums=checksums)
    return os.path.getsize(path)


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(path, mode):
    """Runs in a subprocess: fit once, print peak RSS above the import baseline."""
    from sklearn_modeq import ShapleyAlternatingClassifier
    from sklearn_modeq.cache import load, open_lazy

    # reset the kernel's peak-RSS mark so transient import peaks do not count
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_kib("VmRSS")
    tic = time.perf_counter()
    if mode == "memory":
        X, y, _ = load(path)
    elif mode == "rows":
        X = open_lazy(path)
        y = X.labels
    else:
        mix = int(mode.partition("-")[2] or 8)
        X = open_lazy(path, shuffle="blocks", mix_blocks=mix)
        y = X.labels
    clf = ShapleyAlternatingClassifier(
        hidden_size=64,
        max_epochs=1,
        batch_size=256,
        lr=1e-3,
        random_state=0,
        shapley_max_samples=5000,
    ).fit(X, y)
    fitted = time.perf_counter()
    clf.predict(X)
    done = time.perf_counter()
    peak = _status_kib("VmHWM")
    print(
        json.dumps({"used": peak - base, "fit": fitted - tic, "predict": done - fitted})
    )


def measure(path, mode):
    return run_child("benchmarks.bench_out_of_core", mode, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n-samples", type=int, help="override the sample count")
    parser.add_argument("--dims", type=int, nargs=2, help="override the two widths")
    parser.add_argument(
        "--mix",
        type=int,
        nargs="+",
        default=[8],
        help="mix_blocks values of the block sampler (default: 8)",
    )
    parser.add_argument(
        "--no-checksums",
        action="store_true",
        help="write the cache without Fletcher-32 checksums (to measure their cost)",
    )
    parser.add_argument(
        "--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[1], args.child[0])
        return
    n_samples, dims = (100_000, (512, 256)) if args.quick else (400_000, (768, 512))
    n_samples = args.n_samples or n_samples
    dims = tuple(args.dims or dims)
    modes = ["memory", "rows"] + [
        "blocks" if m == 8 else f"blocks-{m}" for m in args.mix
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "train.h5")
        size = write(path, n_samples, dims, checksums=not args.no_checksums)
        results = {mode: measure(path, mode) for mode in modes}
    mib = 1024**2
    memory = results["memory"]
    lines = [
        f"cache: {n_samples} samples, dims {dims}, {size / mib:.0f} MiB on disk, "
        f"{'without' if args.no_checksums else 'with'} checksums; "
        "one epoch of ShapleyAlternatingClassifier (hidden 64, batch 256), then "
        "predict",
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f} at the end (shared machine: times are noisy)",
        "mode        peak memory above baseline (MiB)  fit (s)  predict (s)  "
        "fit / in-memory fit   (fit includes load() or open_lazy())",
    ]
    for mode, r in results.items():
        lines.append(
            f"{mode:10s}  {r['used'] / mib:32.0f}  {r['fit']:7.1f}  "
            f"{r['predict']:11.1f}  {r['fit'] / memory['fit']:19.1f}x"
        )
    ratio = size / max(results["rows"]["used"], 1)
    lines.append(
        f"cache size / row-shuffled out-of-core fit memory: {ratio:.1f}x "
        f"(target >= 5x: {'met' if ratio >= 5 else 'MISSED'})"
    )
    for mode in modes[2:]:
        slow = results[mode]["fit"] / memory["fit"]
        lines.append(
            f"{mode} fit / in-memory fit: {slow:.1f}x (target <= 2x: "
            f"{'met' if slow <= 2 else 'MISSED'})"
        )
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    tag = "" if args.n_samples is None and not args.quick else f"_{n_samples}"
    tag += "_no_checksums" if args.no_checksums else ""
    (RESULTS / f"out_of_core{tag}.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
