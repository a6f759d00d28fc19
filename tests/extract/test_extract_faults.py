"""The extraction command on a full disk, a read-only location or a split that
another process writes: one line naming the path, shards kept, resume (issue 15)."""

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sklearn_modeq.cache import CacheWriteError, load
from sklearn_modeq.extract.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
PROG = "python -m sklearn_modeq.extract"


def _argv(media, out, ckpt):
    return [
        str(media),
        "--out",
        str(out),
        "--backbone",
        f"visual=resnet18:{ckpt}",
        "--option",
        "visual.image_size=32",
        "--option",
        "visual.resize=32",
        "--splits",
        "train",
        "--batch-size",
        "4",
        "--no-progress",
    ]


def _one_error_line(capsys):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"{PROG}: error: ")
    return err


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS], ids=["full", "ro"])
def test_failed_shard_write_is_one_line_and_resumes(
    media, resnet_ckpt, tmp_path, monkeypatch, fail_shard_writes, capsys, err
):
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert main(_argv(media, ref, resnet_ckpt)) == 0
    capsys.readouterr()
    fail_shard_writes(2, err)
    assert main(_argv(media, out, resnet_ckpt)) == 1
    line = _one_error_line(capsys)
    shard = out / "train.h5.partial" / "shard_00000002.npz"
    assert f"cannot write {shard}: {os.strerror(err)}. The 2 batches" in line
    kept = sorted(p.name for p in (out / "train.h5.partial").iterdir())
    assert kept == ["meta.json", "shard_00000000.npz", "shard_00000001.npz"]
    assert not (out / "train.h5.lock").exists()

    with pytest.raises(CacheWriteError):
        main([*_argv(media, out, resnet_ckpt), "--debug"])
    monkeypatch.undo()  # space is back
    assert main(_argv(media, out, resnet_ckpt)) == 0
    X, y, ids = load(out, "train")
    X_ref, y_ref, ids_ref = load(ref, "train")
    np.testing.assert_array_equal(ids, ids_ref)
    np.testing.assert_array_equal(X["visual"], X_ref["visual"])


def test_read_only_output_folder_is_one_line_naming_it(
    media, resnet_ckpt, tmp_path, monkeypatch, capsys
):
    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(Path, "mkdir", read_only)
    assert main(_argv(media, tmp_path / "out", resnet_ckpt)) == 1
    line = _one_error_line(capsys)
    assert f"cannot write {tmp_path / 'out' / 'train.h5.lock'}: Read-only" in line


HOLDER = """
import sys
from sklearn_modeq.cache import CacheWriter
w = CacheWriter(sys.argv[1], ["x"], modalities={"m": {}})
print("ready", flush=True)
sys.stdin.read()
"""


def test_second_extraction_on_the_same_output_names_the_holder(
    media, resnet_ckpt, tmp_path, capsys
):
    out = tmp_path / "out"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out / "train.h5")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert holder.stdout.readline().strip() == b"ready"
        assert main(_argv(media, out, resnet_ckpt)) == 1
        line = _one_error_line(capsys)
        assert f"{out / 'train.h5'} is being written by pid {holder.pid}" in line
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    # the holder's partial split was of other inputs: start afresh
    assert main([*_argv(media, out, resnet_ckpt), "--restart"]) == 0
