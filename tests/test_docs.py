"""The documentation site builds with warnings as errors (issue 14).

Sphinx + numpydoc + MyST: the API reference comes from the docstrings, the user
guide includes the README's sections and docs/*.md, the tutorial notebook is
rendered as committed. A copy of the sources is built in a temporary folder, so
the build writes nothing into the repository.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

for module in ("sphinx", "numpydoc", "myst_nb", "pydata_sphinx_theme"):
    pytest.importorskip(module, reason="pip install 'sklearn_modeq[docs]'")

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_without_warnings(tmp_path):
    shutil.copytree(
        ROOT / "docs",
        tmp_path / "docs",
        ignore=shutil.ignore_patterns("_build", "generated"),
    )
    shutil.copy(ROOT / "README.md", tmp_path)
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    # the pages include the benchmarks' result tables
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    for table in (ROOT / "benchmarks" / "results").glob("*.md"):
        shutil.copy(table, results)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), *sys.path]))
    env["OMP_NUM_THREADS"] = "1"
    out = tmp_path / "html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(tmp_path / "docs"),
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    api = (
        out / "generated" / "sklearn_modeq.ShapleyAlternatingClassifier.html"
    ).read_text()
    assert "predict_proba" in api and "shapley_history_" in api
    contract = re.sub(r"<[^>]+>", "", (out / "data_contract.html").read_text())
    contract = " ".join(contract.split())
    assert "inconsistent numbers of samples: [2, 300]" in contract
    tutorial = (out / "tutorial.html").read_text()
    assert "Tutorial" in tutorial and "ShapleyAlternatingClassifier" in tutorial
    assert (out / "_images" / "plotting.png").exists()
