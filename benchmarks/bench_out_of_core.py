"""Out-of-core fit: peak memory of fitting on the HDF5 cache's lazy view vs cache size.

Writes a synthetic two-modality cache (float32, all-NaN rows for a share of
samples), then, in a fresh subprocess each, fits ``ShapleyAlternatingClassifier``
for one epoch on (a) the lazy view (``open_lazy``), streamed in batches, and
(b) the same data loaded into memory. Each subprocess reports its peak resident
memory above its baseline after imports (Linux ``VmHWM`` after resetting it
through ``/proc/self/clear_refs``), and the fit time.
Prints the cache size relative to the memory the out-of-core fit used (target:
a cache at least 5 times larger than that memory) and the in-memory fit's peak
for comparison, measured in the same run.

Run: ``python -m benchmarks.bench_out_of_core [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def write(path, n_samples, dims, seed=0):
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
    write_cache(path, X, y, batch_size=8192)
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
    if mode == "lazy":
        X = open_lazy(path)
        y = X.labels
    else:
        X, y, _ = load(path)
    clf = ShapleyAlternatingClassifier(
        hidden_size=64,
        max_epochs=1,
        batch_size=256,
        lr=1e-3,
        random_state=0,
        shapley_max_samples=5000,
    ).fit(X, y)
    clf.predict(X)
    seconds = time.perf_counter() - tic
    peak = _status_kib("VmHWM")
    print(json.dumps({"used": peak - base, "seconds": seconds}))


def measure(path, mode):
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_out_of_core", "--child", mode, path],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[1], args.child[0])
        return
    n_samples, dims = (100_000, (512, 256)) if args.quick else (400_000, (768, 512))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "train.h5")
        size = write(path, n_samples, dims)
        lazy = measure(path, "lazy")
        memory = measure(path, "memory")
    mib = 1024**2
    print(f"cache: {n_samples} samples, dims {dims}, {size / mib:.0f} MiB on disk")
    print("mode       peak memory above baseline (MiB)  fit+predict (s)")
    print(f"lazy       {lazy['used'] / mib:32.0f}  {lazy['seconds']:15.1f}")
    print(f"in memory  {memory['used'] / mib:32.0f}  {memory['seconds']:15.1f}")
    ratio = size / max(lazy["used"], 1)
    print(
        f"cache size / out-of-core fit memory: {ratio:.1f}x "
        f"(target >= 5x: {'met' if ratio >= 5 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
