"""Resumable, crash-safe writer of one split file of the embedding cache.

Crash safety comes from never modifying a published file in place:

1. every appended batch becomes one shard file in ``<file>.partial/``, written to a
   temporary name, fsync'ed and renamed (``os.replace`` is atomic), so a shard is
   either complete or absent, and the shards *are* the progress record;
2. :meth:`CacheWriter.finalize` streams the shards into ``<file>.tmp-<pid>``, fsyncs
   it and renames it onto ``<file>``; only then is ``<file>.partial/`` removed.

A process killed at any moment therefore loses at most the batch in flight; a new
writer with the same inputs finds the shards, reports the remaining rows, and the
finished file holds exactly the rows, in the order, of an uninterrupted run.

One writer at a time: a writer holds an exclusive lock on ``<file>.lock`` (see
:class:`SplitLock`) from its creation until :meth:`CacheWriter.finalize` or
:meth:`CacheWriter.close`. A failed write (disk full, read-only location) removes
its temporary file, keeps the published shards and raises
:class:`CacheWriteError` naming the path; the same writer, or a new one, resumes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import time
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

try:
    import fcntl
except ImportError:  # not POSIX: the lock falls back to its pid check
    fcntl = None

from ._format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    STR_DTYPE,
    CacheLockedError,
    CacheWriteError,
    check_rows,
    check_unique_ids,
    encode_labels,
    from_attr,
    library_versions,
    to_attr,
)

logger = logging.getLogger(__name__)

#: Bytes per HDF5 chunk of features. Reading one row of a checksummed dataset reads
#: and verifies its whole chunk, so chunks stay small for shuffled out-of-core
#: reads (benchmarks/bench_out_of_core.py); sequential reads are not slower.
_CHUNK_BYTES = 1 << 16


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _publish(path: Path, write) -> None:
    """Write ``path`` atomically: ``write(fh)`` into a temporary file, fsync it,
    rename it; on failure the temporary file is removed and nothing is published."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:
        return False
    return True


class SplitLock:
    """Exclusive lock of one split file while it is written: ``<file>.lock``.

    The lock file holds the holder's pid, host and start time (JSON). Exclusion
    comes from ``flock`` on that file, which the kernel releases when the holder
    dies, so a lock file left by a killed writer on this host is stale and is
    taken over (with a warning in the log). A lock left by a process on another
    host cannot be checked from here and is an error that says which file to
    delete once that process is known to be gone. Where ``flock`` is not
    available, a lock is held while its pid runs on this host.

    Parameters
    ----------
    target : Path
        The split file the lock protects.
    """

    def __init__(self, target: Path):
        self.target = Path(target)
        self.path = self.target.with_name(self.target.name + ".lock")
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    @staticmethod
    def _flock(fd: int) -> bool | None:
        """True: locked; False: another holder has it; None: no flock here."""
        if fcntl is None:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError:  # e.g. ENOLCK on a file system without locks
            return None
        return True

    @staticmethod
    def _holder(fd: int) -> dict:
        try:
            data = os.pread(fd, 4096, 0)
            holder = json.loads(data.decode()) if data.strip() else {}
        except (OSError, ValueError):
            return {}
        return holder if isinstance(holder, dict) else {}

    def _describe(self, holder: dict) -> str:
        if not holder:
            return "another process"
        mine = holder.get("pid") == os.getpid() and holder.get("host") == (
            socket.gethostname()
        )
        return (
            f"pid {holder.get('pid')} on host {holder.get('host')!r} (since "
            f"{holder.get('since')}"
            + (
                "; this process: close() or finalize() the other CacheWriter, "
                "or use `with CacheWriter(...)`)"
                if mine
                else ")"
            )
        )

    def acquire(self) -> None:
        """Take the lock, or raise :class:`CacheLockedError` naming the holder."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                taken = self._take(fd)
            except BaseException:
                os.close(fd)
                raise
            if taken:
                self._fd = fd
                return
            os.close(fd)  # the file was replaced under us: try again

    def _take(self, fd: int) -> bool:
        locked = self._flock(fd)
        holder = self._holder(fd)
        if locked is False:
            raise CacheLockedError(
                f"{self.target} is being written by {self._describe(holder)}; "
                f"lock file {self.path}. Two writers on one split would corrupt "
                "it: wait for that process to finish or stop it, then run again."
            )
        try:
            if os.fstat(fd).st_ino != os.stat(self.path).st_ino:
                return False  # released (unlinked) between our open and flock
        except FileNotFoundError:
            return False
        host = socket.gethostname()
        if holder and holder.get("host") != host:
            raise CacheLockedError(
                f"{self.target} is locked by {self._describe(holder)}, which cannot "
                f"be checked from host {host!r}. If that process no longer runs, "
                f"delete {self.path} and run again."
            )
        pid = holder.get("pid")
        if locked is None and isinstance(pid, int) and _pid_running(pid):
            raise CacheLockedError(
                f"{self.target} is being written by {self._describe(holder)}; "
                f"lock file {self.path}. Wait for that process to finish or stop "
                "it, then run again."
            )
        if holder:
            logger.warning(
                "%s: taking over the stale lock of %s, which no longer runs",
                self.target,
                self._describe(holder),
            )
        me = {
            "pid": os.getpid(),
            "host": host,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        return True

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)


def _chunk_rows(n: int, dim: int, itemsize: int) -> int:
    return int(max(1, min(n, _CHUNK_BYTES // max(1, dim * itemsize))))


class CacheWriter:
    """Write one split of the embedding cache in batches, resumably.

    Parameters
    ----------
    path : str or path-like
        The split file to produce, e.g. ``"cache/train.h5"``.
    ids : array-like of str, shape (n_samples,)
        Every sample id of the split, in the order of the finished file. Unique.
    labels : array-like of shape (n_samples,), default=None
        Class labels (ints or strings); None for an unlabelled split.
    modalities : mapping of str to mapping
        Modality name -> metadata stored as the modality group's attributes
        (``backbone``, ``checkpoint``, ``checkpoint_sha256``, ``pooling``,
        ``preprocessing``, ...). Every batch must give features for every modality.
    split : str, default=None
        Split name stored in the file; defaults to the file name's stem.
    dtype : {"float32", "float16"}, default="float32"
        Storage type of the features.
    attrs : mapping, default=None
        Extra file attributes (e.g. the manifest path).
    fingerprint : str, default=""
        Extra text identifying the inputs (e.g. media paths). A resumed run whose ids,
        labels, metadata, dtype or fingerprint differ from the interrupted one is an
        error, so a stale partial file never mixes into a new extraction.
    restart : bool, default=False
        Discard any partial or finished file at ``path`` and start afresh.
    checksums : bool, default=True
        Store a Fletcher-32 checksum with every chunk of the features (and of
        integer labels; HDF5's ``fletcher32`` filter), so that a corrupted chunk
        is an error when read instead of wrong numbers. False skips them (to
        measure their cost, or for readers without the filter).

    Attributes
    ----------
    complete : bool
        True when the finished file already exists with the same inputs.
    lock : SplitLock
        The split's lock, held from creation to :meth:`finalize` or :meth:`close`.

    Raises
    ------
    CacheLockedError
        Another writer (this or another process) holds the split's lock.
    CacheWriteError
        The folder, the lock or the progress record cannot be written (e.g. a
        read-only location).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from sklearn_modeq.cache import CacheWriter, load
    >>> d = tempfile.mkdtemp()
    >>> w = CacheWriter(os.path.join(d, "train.h5"), ids=["a", "b"], labels=[0, 1],
    ...                 modalities={"text": {"backbone": "demo"}})
    >>> for rows in np.array_split(w.remaining(), 2):
    ...     w.append(w.ids[rows], {"text": np.ones((len(rows), 3))})
    >>> w.finalize().name
    'train.h5'
    >>> X, y, ids = load(d, "train")
    >>> X["text"].shape, y.tolist(), ids.tolist()
    ((2, 3), [0, 1], ['a', 'b'])
    """

    def __init__(
        self,
        path: str | os.PathLike,
        ids: Iterable[str],
        labels: Iterable[Any] | None = None,
        *,
        modalities: Mapping[str, Mapping[str, Any]],
        split: str | None = None,
        dtype: str = "float32",
        attrs: Mapping[str, Any] | None = None,
        fingerprint: str = "",
        restart: bool = False,
        checksums: bool = True,
    ):
        self.path = Path(path)
        self.checksums = checksums
        self.ids = np.asarray([str(i) for i in ids], dtype=str)
        if self.ids.ndim != 1 or len(self.ids) == 0:
            raise ValueError(f"{self.path}: ids must be a non-empty 1-D sequence.")
        check_unique_ids(self.ids, f"{self.path}")
        self.labels = encode_labels(None if labels is None else list(labels))
        if self.labels is not None and len(self.labels) != len(self.ids):
            raise ValueError(
                f"{self.path}: got {len(self.labels)} labels for {len(self.ids)} ids."
            )
        if not modalities:
            raise ValueError(f"{self.path}: at least one modality is required.")
        self.modalities = {str(k): dict(v) for k, v in modalities.items()}
        self.split = split if split is not None else self.path.name.split(".")[0]
        if dtype not in ("float32", "float16"):
            raise ValueError(f"dtype must be 'float32' or 'float16'; got {dtype!r}.")
        self.dtype = np.dtype(dtype)
        self.attrs = dict(attrs or {})
        self.partial_dir = self.path.with_name(self.path.name + ".partial")
        self._position = {sid: i for i, sid in enumerate(self.ids)}
        self._fingerprint = self._make_fingerprint(fingerprint)
        self.complete = False
        self.lock = SplitLock(self.path)
        with self._writing(self.lock.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.lock.acquire()
        self._unlock = weakref.finalize(self, self.lock.release)
        try:
            if restart:
                self._discard()
            self._clean_stale()
            self._open_partial()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release the split's lock (:meth:`finalize` does it too); idempotent.

        Shards already written are kept, so a later writer resumes from them.
        """
        self._unlock()

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def _writing(self, path: Path):
        """Turn an OSError while writing ``path`` into a CacheWriteError."""
        try:
            yield
        except CacheWriteError:
            raise
        except OSError as exc:
            kept = len(self._shards())
            reason = exc.strerror or str(exc)
            raise CacheWriteError(
                exc.errno,
                f"cannot write {path}: {reason}. The {kept} batches already "
                f"written are kept in {self.partial_dir}; make room (or fix the "
                "location) and run the same command again to resume.",
            ) from exc

    # ------------------------------------------------------------------ setup
    def _make_fingerprint(self, extra: str) -> str:
        h = hashlib.sha256()
        h.update(("\x1f".join(self.ids.tolist())).encode())
        if self.labels is not None:
            h.update(("\x1f".join(map(str, self.labels.tolist()))).encode())
        meta = {"modalities": self.modalities, "dtype": self.dtype.name, "x": extra}
        h.update(json.dumps(meta, sort_keys=True, default=str).encode())
        return h.hexdigest()

    def _discard(self) -> None:
        shutil.rmtree(self.partial_dir, ignore_errors=True)
        if self.path.exists():
            self.path.unlink()

    def _clean_stale(self) -> None:
        for tmp in self.path.parent.glob(self.path.name + ".tmp-*"):
            tmp.unlink(missing_ok=True)
        if self.partial_dir.is_dir():
            for tmp in self.partial_dir.glob("*.tmp"):
                tmp.unlink(missing_ok=True)

    def _open_partial(self) -> None:
        if self.path.exists():
            try:
                with h5py.File(self.path, "r") as f:
                    same = from_attr(f.attrs.get("fingerprint")) == self._fingerprint
            except OSError:
                same = False
            if not same:
                raise FileExistsError(
                    f"{self.path} already exists and was written from other inputs "
                    "(ids, labels, backbones or dtype differ); pass restart=True "
                    "(--restart) to overwrite it."
                )
            self.complete = True
            shutil.rmtree(self.partial_dir, ignore_errors=True)
            return
        meta_path = self.partial_dir / "meta.json"
        if meta_path.exists():
            meta = json.loads(meta_path.read_text())
            if meta.get("fingerprint") != self._fingerprint:
                raise ValueError(
                    f"{self.partial_dir} holds an interrupted extraction of other "
                    "inputs (ids, labels, backbones or dtype differ); pass "
                    "restart=True (--restart) to discard it."
                )
            return
        with self._writing(meta_path):
            self.partial_dir.mkdir(exist_ok=True)
            self._atomic_write(
                meta_path,
                json.dumps(
                    {"fingerprint": self._fingerprint, "n": len(self.ids)}
                ).encode(),
            )

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        _publish(path, lambda fh: fh.write(data))

    # --------------------------------------------------------------- progress
    def _shards(self) -> list[Path]:
        if not self.partial_dir.is_dir():
            return []
        return sorted(self.partial_dir.glob("shard_*.npz"))

    def done_mask(self) -> np.ndarray:
        """Boolean mask over :attr:`ids` of the rows already written."""
        done = np.zeros(len(self.ids), dtype=bool)
        if self.complete:
            done[:] = True
            return done
        for shard in self._shards():
            with np.load(shard, allow_pickle=False) as z:
                done[[self._position[s] for s in z["ids"].tolist()]] = True
        return done

    def remaining(self) -> np.ndarray:
        """Indices into :attr:`ids` of the rows still to write, in file order."""
        return np.flatnonzero(~self.done_mask())

    # ----------------------------------------------------------------- append
    def append(self, ids: Iterable[str], features: Mapping[str, np.ndarray]) -> None:
        """Write one batch atomically.

        Parameters
        ----------
        ids : sequence of str, length B
            Sample ids of the batch (each must be one of :attr:`ids`).
        features : mapping of str to ndarray of shape (B, d_m)
            One array per modality; an all-NaN row marks missing media.

        Raises
        ------
        CacheWriteError
            The shard cannot be written (disk full, read-only location):
            nothing of this batch is kept, the earlier batches are, and the
            batch can be appended again.
        """
        if self.complete:
            raise RuntimeError(f"{self.path} is already complete.")
        ids = np.asarray([str(i) for i in ids], dtype=str)
        unknown = [s for s in ids.tolist() if s not in self._position]
        if unknown:
            raise ValueError(
                f"{self.path}: sample id {unknown[0]!r} is not among the split's ids."
            )
        missing = sorted(set(self.modalities) - set(features))
        extra = sorted(set(features) - set(self.modalities))
        if missing or extra:
            raise ValueError(
                f"{self.path}: a batch must give exactly the modalities "
                f"{sorted(self.modalities)}; missing {missing}, unexpected {extra}."
            )
        arrays = {}
        for name, values in features.items():
            values = np.asarray(values, dtype=np.float32)
            if values.ndim != 2 or values.shape[0] != len(ids):
                raise ValueError(
                    f"features[{name!r}] must have shape ({len(ids)}, d); "
                    f"got {values.shape}."
                )
            check_rows(name, values, ids)
            arrays[f"x/{name}"] = values.astype(self.dtype)
        seq = len(self._shards())
        shard = self.partial_dir / f"shard_{seq:08d}.npz"
        while shard.exists():
            seq += 1
            shard = self.partial_dir / f"shard_{seq:08d}.npz"
        with self._writing(shard):
            _publish(shard, lambda fh: np.savez(fh, ids=ids, **arrays))

    # --------------------------------------------------------------- finalize
    def finalize(self) -> Path:
        """Assemble the shards into the split file and publish it atomically.

        Returns
        -------
        path : Path
            The finished file.

        Raises
        ------
        CacheWriteError
            The file cannot be written: the temporary file is removed, the
            shards are kept, and ``finalize`` can be called again.
        """
        if self.complete:
            self.close()
            return self.path
        left = self.remaining()
        if len(left):
            raise ValueError(
                f"{self.path}: {len(left)} of {len(self.ids)} samples have no "
                f"features yet (first: {self.ids[left[0]]!r}); append them first."
            )
        shards = self._shards()
        dims = self._shard_dims(shards)
        tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")
        try:
            with self._writing(self.path):
                self._write_file(tmp, shards, dims)
                with open(tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.path.parent)
        shutil.rmtree(self.partial_dir, ignore_errors=True)
        self.complete = True
        self.close()
        logger.info("wrote %s (%d samples, %s)", self.path, len(self.ids), dims)
        return self.path

    def _write_file(self, tmp: Path, shards: list[Path], dims: dict[str, int]):
        """Stream the shards into a new HDF5 file ``tmp`` (unpublished)."""
        n = len(self.ids)
        checksum = {"fletcher32": True} if self.checksums else {}
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["split"] = self.split
            f.attrs["n_samples"] = n
            f.attrs["fingerprint"] = self._fingerprint
            f.attrs["library_versions"] = to_attr(library_versions())
            f.attrs["created_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            for key, value in self.attrs.items():
                f.attrs[key] = to_attr(value)
            f.create_dataset("ids", data=self.ids.astype(object), dtype=STR_DTYPE)
            if self.labels is not None:
                if self.labels.dtype.kind == "U":
                    f.create_dataset(
                        "labels", data=self.labels.astype(object), dtype=STR_DTYPE
                    )
                else:
                    f.create_dataset(
                        "labels", data=self.labels, chunks=True, **checksum
                    )
            f.attrs["modalities"] = to_attr(list(self.modalities))
            group = f.create_group("modalities", track_order=True)
            datasets = {}
            for name, meta in self.modalities.items():
                g = group.create_group(name)
                for key, value in meta.items():
                    g.attrs[key] = to_attr(value)
                g.attrs["dim"] = dims[name]
                g.create_dataset("ids", data=self.ids.astype(object), dtype=STR_DTYPE)
                datasets[name] = g.create_dataset(
                    "features",
                    shape=(n, dims[name]),
                    dtype=self.dtype,
                    chunks=(
                        _chunk_rows(n, dims[name], self.dtype.itemsize),
                        dims[name],
                    ),
                    **checksum,
                )
            for shard in shards:
                with np.load(shard, allow_pickle=False) as z:
                    pos = np.array([self._position[s] for s in z["ids"].tolist()])
                    order = np.argsort(pos)
                    pos = pos[order]
                    runs = np.flatnonzero(np.diff(pos) != 1) + 1
                    bounds = np.concatenate([[0], runs, [len(pos)]])
                    for name in self.modalities:
                        values = z[f"x/{name}"][order]
                        for a, b in zip(bounds[:-1], bounds[1:]):
                            datasets[name][pos[a] : pos[b - 1] + 1] = values[a:b]
            f.flush()

    def _shard_dims(self, shards: list[Path]) -> dict[str, int]:
        dims: dict[str, int] = {}
        for shard in shards:
            with np.load(shard, allow_pickle=False) as z:
                for name in self.modalities:
                    d = int(z[f"x/{name}"].shape[1])
                    if dims.setdefault(name, d) != d:
                        raise ValueError(
                            f"{self.path}: modality {name!r} has {dims[name]} "
                            f"features in one batch and {d} in {shard.name}; "
                            "every batch of a modality must have the same width."
                        )
        return dims


def write_cache(
    path: str | os.PathLike,
    X: Mapping[str, np.ndarray],
    y: Iterable[Any] | None = None,
    ids: Iterable[str] | None = None,
    *,
    modality_attrs: Mapping[str, Mapping[str, Any]] | None = None,
    dtype: str = "float32",
    batch_size: int = 4096,
    **kwargs: Any,
) -> Path:
    """Write in-memory arrays to one split file (a thin loop over CacheWriter).

    Parameters
    ----------
    path : str or path-like
        The split file, e.g. ``"cache/train.h5"``.
    X : mapping of str to ndarray of shape (n_samples, d_m)
        Features per modality; an all-NaN row is a missing modality.
    y : array-like of shape (n_samples,), default=None
        Labels.
    ids : array-like of str, default=None
        Sample ids; ``"0" .. "n-1"`` when None.
    modality_attrs : mapping, default=None
        Metadata per modality (see :class:`CacheWriter`).
    dtype : {"float32", "float16"}, default="float32"
        Storage type.
    batch_size : int, default=4096
        Rows per shard.
    **kwargs
        Passed to :class:`CacheWriter` (``split``, ``attrs``, ``restart``, ...).

    Returns
    -------
    path : Path
    """
    X = {name: np.asarray(values) for name, values in X.items()}
    n = len(next(iter(X.values())))
    for name, values in X.items():
        if len(values) != n:
            raise ValueError(
                f"X[{name!r}] has {len(values)} rows but the first modality has {n}."
            )
    ids = np.arange(n).astype(str) if ids is None else np.asarray(list(ids), str)
    attrs = modality_attrs or {}
    writer = CacheWriter(
        path,
        ids,
        y,
        modalities={name: dict(attrs.get(name, {})) for name in X},
        dtype=dtype,
        **kwargs,
    )
    with writer:  # released also when a batch is rejected
        left = writer.remaining()
        for start in range(0, len(left), batch_size):
            rows = left[start : start + batch_size]
            writer.append(writer.ids[rows], {name: X[name][rows] for name in X})
        return writer.finalize()
