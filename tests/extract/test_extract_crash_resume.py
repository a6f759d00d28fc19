"""SIGKILL a real extraction subprocess at random moments; the resumed result must
equal an uninterrupted run exactly (issue 5)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sklearn_modeq.cache import load

from .conftest import make_media

ROOT = Path(__file__).resolve().parents[2]


def _command(manifest, out, ckpt):
    return [
        sys.executable,
        "-m",
        "sklearn_modeq.extract",
        str(manifest),
        "--out",
        str(out),
        "--backbone",
        f"visual=resnet18:{ckpt}",
        "--backbone",
        f"audio=resnet18-audio:{ckpt}",
        "--option",
        "visual.image_size=64",
        "--option",
        "audio.seconds=0.5",
        "--batch-size",
        "4",
        "--dtype",
        "float16",
        "--no-progress",
    ]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _started(out):
    return any(out.glob("*.partial")) or any(out.glob("*.h5"))


def _run_and_time(cmd, out):
    """Run to completion; return seconds from the first shard dir to exit."""
    proc = subprocess.Popen(
        cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    while not _started(out) and proc.poll() is None:
        time.sleep(0.005)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    return time.monotonic() - t0


def test_sigkill_at_random_moments_then_resume(tmp_path, resnet_ckpt):
    manifest = make_media(tmp_path / "media", n=60, n_test=12)
    ref, crash = tmp_path / "ref", tmp_path / "crash"
    duration = _run_and_time(_command(manifest, ref, resnet_ckpt), ref)

    rng = np.random.default_rng(2026)
    kills = 0
    for delay in rng.uniform(0.0, duration, size=4):
        proc = subprocess.Popen(
            _command(manifest, crash, resnet_ckpt),
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while not _started(crash) and proc.poll() is None:
            time.sleep(0.005)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=120)
        for shard in crash.glob("*.partial/shard_*.npz"):
            with np.load(shard) as z:  # every published shard is whole
                assert len(z["ids"]) > 0
    assert kills >= 2
    _run_and_time(_command(manifest, crash, resnet_ckpt), crash)

    assert not list(crash.glob("*.partial")) and not list(crash.glob("*.tmp-*"))
    for split in ("train", "test"):
        X_ref, y_ref, ids_ref = load(ref, split)
        X, y, ids = load(crash, split)
        np.testing.assert_array_equal(ids, ids_ref)
        np.testing.assert_array_equal(y, y_ref)
        for m in X_ref:
            np.testing.assert_array_equal(X[m], X_ref[m])


@pytest.mark.parametrize("stage", ["after_publish", "stale_tmp"])
def test_resume_after_kill_during_finalize(tmp_path, stage):
    """Leftovers of a kill inside finalize (a temp file, or a partial dir next to the
    published file) are cleaned up and the result is unchanged."""
    from sklearn_modeq.cache import CacheWriter

    ids = [f"s{i}" for i in range(10)]
    X = np.arange(30.0).reshape(10, 3)
    w = CacheWriter(tmp_path / "t.h5", ids, modalities={"m": {}})
    w.append(ids, {"m": X})
    if stage == "stale_tmp":
        (tmp_path / "t.h5.tmp-12345").write_bytes(b"half written")
        w.close()  # the killed writer's lock is gone
    else:
        w.finalize()
        (tmp_path / "t.h5.partial").mkdir()
    w = CacheWriter(tmp_path / "t.h5", ids, modalities={"m": {}})
    w.finalize()
    assert not (tmp_path / "t.h5.partial").exists()
    assert not list(tmp_path.glob("*.tmp-*"))
    np.testing.assert_array_equal(load(tmp_path / "t.h5")[0]["m"], X)
