"""Does the paper's cross-modal mapping help on data outside the suite?

The default model passes each next modality to the memory cell unmapped
(``mapping=False``); ``mapping=True`` adds the paper's thresholded correlation
mapping (Eq. 9-11, ``tau=0.2``). The suite measures the two on its tasks (the
``Ours with mapping`` row of ``results.md``); this benchmark fits both, with the
suite's settings and on the same splits, on ``bench_outside``'s data sets (views
cut from scikit-learn's breast cancer, wine and digits data, each also with a
label-free view), and prints the accuracy with and without the mapping and
their difference paired over the seeds (mean ± standard error), with every view
and with half of the test views removed.

Run: ``python -m benchmarks.bench_mapping [--seeds 10] [--out PATH]
[--report-only]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .bench_outside import DATASETS, _per_seed, run, run_grid
from .suite.report import paired_margin

RESULTS = Path(__file__).parent / "results"
#: without the mapping (the default) and with it
METHODS = ("Ours", "Ours with mapping")


def report(records) -> str:
    n_seeds = len({r["seed"] for r in records})
    lines = [
        f"Accuracy (%), mean over {n_seeds} seeds, without the cross-modal mapping "
        "(the default) and with it (`mapping=True`, tau 0.2); `with - without`: "
        "mean ± standard error of the difference paired over the seeds",
        "",
        "| data | views | without | with | with - without |",
        "|---|---|---|---|---|",
    ]
    for name in DATASETS:
        for key, views in (("accuracy", "all"), ("accuracy_50", "half removed")):
            without = _per_seed(records, name, METHODS[0], key)
            with_ = _per_seed(records, name, METHODS[1], key)
            margin, se = paired_margin(with_, without)
            lines.append(
                f"| {name} | {views} | {np.mean(without):.1f} | {np.mean(with_):.1f} "
                f"| {margin:+.2f} ± {se:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    run_grid(__doc__, 10, RESULTS / "mapping.md", DATASETS, METHODS, run, report, argv)


if __name__ == "__main__":
    main()
