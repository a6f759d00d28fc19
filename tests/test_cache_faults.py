"""Faults of the embedding cache (issue 15): two writers, bit rot, full disks."""

import errno
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from sklearn_modeq import ShapleyAlternatingClassifier
from sklearn_modeq.cache import (
    CacheFormatError,
    CacheLockedError,
    CacheWriteError,
    CacheWriter,
    load,
    open_lazy,
    write_cache,
)
from sklearn_modeq.cache import _writer as writer_module

ROOT = Path(__file__).resolve().parents[1]
IDS = [f"s{i}" for i in range(10)]
X = np.arange(30.0).reshape(10, 3)


def _writer(path, **kwargs):
    return CacheWriter(path, IDS, np.arange(10) % 2, modalities={"m": {}}, **kwargs)


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


HOLDER = """
import sys
from sklearn_modeq.cache import CacheWriter
ids = [f"s{i}" for i in range(10)]
w = CacheWriter(sys.argv[1], ids, [i % 2 for i in range(10)], modalities={"m": {}})
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def holder(tmp_path):
    """A writer of ``tmp_path/train.h5`` in another process, until stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "train.h5")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=_env(),
    )
    assert proc.stdout.readline().strip() == b"ready"
    yield proc
    proc.stdin.close()
    proc.wait(timeout=60)


# ---------------------------------------------------------------- two writers
def test_second_writer_in_this_process_names_the_file_and_the_holder(tmp_path):
    path = tmp_path / "train.h5"
    first = _writer(path)
    me = f"pid {os.getpid()} on host {socket.gethostname()!r}"
    with pytest.raises(
        CacheLockedError,
        match=re.escape(f"{path} is being written by {me}") + ".*this process",
    ):
        _writer(path)
    first.append(IDS, {"m": X})
    first.finalize()
    assert not (tmp_path / "train.h5.lock").exists()
    assert _writer(path).complete


def test_writer_in_another_process_holds_the_split_until_it_exits(tmp_path, holder):
    path = tmp_path / "train.h5"
    with pytest.raises(CacheLockedError, match=f"pid {holder.pid} on host"):
        _writer(path)
    assert not list(tmp_path.glob("*.partial/shard_*"))  # nothing was appended
    holder.stdin.close()
    holder.wait(timeout=60)
    assert not (tmp_path / "train.h5.lock").exists()  # released on exit
    _writer(path).close()


def test_lock_of_a_killed_writer_is_taken_over(tmp_path, holder, caplog):
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    lock = tmp_path / "train.h5.lock"
    assert json.loads(lock.read_text())["pid"] == holder.pid  # left behind
    with caplog.at_level(logging.WARNING, logger=writer_module.__name__):
        w = _writer(tmp_path / "train.h5")
    assert f"taking over the stale lock of pid {holder.pid}" in caplog.text
    assert json.loads(lock.read_text())["pid"] == os.getpid()
    w.close()


def test_write_cache_releases_the_lock_when_a_batch_is_rejected(tmp_path):
    bad = X.copy()
    bad[4, 0] = np.nan
    with pytest.raises(ValueError, match="partly NaN"):
        write_cache(tmp_path / "train.h5", {"m": bad}, ids=IDS)
    write_cache(tmp_path / "train.h5", {"m": X}, ids=IDS, restart=True)


def test_lock_of_another_host_is_not_taken_over(tmp_path):
    lock = tmp_path / "train.h5.lock"
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere", "since": "t"}))
    with pytest.raises(CacheLockedError, match=f"delete {re.escape(str(lock))}"):
        _writer(tmp_path / "train.h5")


def test_without_flock_a_lock_holds_while_its_pid_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(writer_module, "fcntl", None)
    path = tmp_path / "train.h5"
    first = _writer(path)
    with pytest.raises(CacheLockedError, match=f"pid {os.getpid()}"):
        _writer(path)
    first.close()
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        check=True,
    )
    dead = int(done.stdout)
    lock = tmp_path / "train.h5.lock"
    lock.write_text(json.dumps({"pid": dead, "host": socket.gethostname()}))
    _writer(path).close()


# ----------------------------------------------------------- disk full, read-only
def test_full_disk_keeps_the_written_shards_and_resumes(
    tmp_path, monkeypatch, fail_shard_writes
):
    path = tmp_path / "train.h5"
    w = _writer(path)
    fail_shard_writes(n_ok=2)
    w.append(IDS[:3], {"m": X[:3]})
    w.append(IDS[3:6], {"m": X[3:6]})
    with pytest.raises(
        CacheWriteError,
        match=r"cannot write .*shard_00000002\.npz: "
        r"No space left on device\. The 2 batches already written",
    ):
        w.append(IDS[6:], {"m": X[6:]})
    shards = sorted(p.name for p in (tmp_path / "train.h5.partial").iterdir())
    assert shards == ["meta.json", "shard_00000000.npz", "shard_00000001.npz"]
    monkeypatch.undo()  # space is back
    np.testing.assert_array_equal(w.remaining(), np.arange(6, 10))
    w.append(IDS[6:], {"m": X[6:]})
    w.finalize()
    np.testing.assert_array_equal(load(path)[0]["m"], X)


def test_failed_finalize_removes_its_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "train.h5"
    w = _writer(path)
    w.append(IDS, {"m": X})

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(writer_module.h5py, "File", read_only)
    with pytest.raises(
        CacheWriteError,
        match=f"cannot write {re.escape(str(path))}: Read-only file system",
    ):
        w.finalize()
    assert not list(tmp_path.glob("*.tmp-*")) and not path.exists()
    monkeypatch.undo()
    w.finalize()
    np.testing.assert_array_equal(load(path)[0]["m"], X)


def test_read_only_location_is_one_error_naming_the_path(tmp_path, monkeypatch):
    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(
        CacheWriteError,
        match=re.escape(
            f"cannot write {tmp_path / 'out' / 'train.h5.lock'}: Read-only"
        ),
    ):
        _writer(tmp_path / "out" / "train.h5")


# -------------------------------------------------------------------- bit rot
def _flip_a_bit(path, dataset, chunk):
    """Flip one bit in the middle of a chunk of ``dataset``, on disk."""
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info(chunk)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        byte = fh.read(1)[0]
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte ^ 0x10]))


@pytest.fixture
def rotten(tmp_path):
    """A finished cache with one bit flipped in the 3rd chunk of 'audio'; returns
    the path and the rows of that chunk."""
    rng = np.random.default_rng(0)
    n = 3000
    X = {"audio": rng.normal(size=(n, 256)), "text": rng.normal(size=(n, 8))}
    ids = [f"s{i}" for i in range(n)]
    path = write_cache(tmp_path / "train.h5", X, np.arange(n) % 3, ids)
    with h5py.File(path, "r") as f:
        chunk = f["modalities/audio/features"].chunks[0]
    assert 5 * chunk < n
    _flip_a_bit(path, "modalities/audio/features", chunk=2)
    return path, 2 * chunk, 3 * chunk - 1


def _rotten_message(first, last):
    return (
        f"modality 'audio' 'features': rows {first}..{last} (sample ids "
        f"'s{first}'..'s{last}') fail their Fletcher-32 checksum"
    )


def test_bit_rot_in_features_is_an_error_naming_file_modality_rows(rotten):
    path, first, last = rotten
    msg = f"{path} {_rotten_message(first, last)}"
    with pytest.raises(CacheFormatError, match=re.escape(msg)):
        load(path)


def test_bit_rot_in_the_lazy_view_fails_only_the_rows_it_touches(rotten):
    path, first, last = rotten
    msg = re.escape(_rotten_message(first, last))
    view = open_lazy(path)
    assert view.take([0, last + 1, 2999])["audio"].shape == (3, 256)
    with pytest.raises(CacheFormatError, match=msg):
        view.take([0, first + 1])
    with pytest.raises(CacheFormatError, match=msg):
        ShapleyAlternatingClassifier(max_epochs=1).fit(view, view.labels)


def test_bit_rot_in_labels_is_an_error(tmp_path):
    path = write_cache(tmp_path / "train.h5", {"m": X}, np.arange(10))
    _flip_a_bit(path, "labels", chunk=0)
    with pytest.raises(CacheFormatError, match="'labels': rows 0..9 fail their"):
        load(path)
