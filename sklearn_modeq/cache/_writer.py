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
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ._format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    STR_DTYPE,
    check_rows,
    check_unique_ids,
    encode_labels,
    from_attr,
    library_versions,
    to_attr,
)

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 20


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

    Attributes
    ----------
    complete : bool
        True when the finished file already exists with the same inputs.

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
    ):
        self.path = Path(path)
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
        if restart:
            self._discard()
        self._clean_stale()
        self._open_partial()

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial_dir.mkdir(exist_ok=True)
        self._atomic_write(
            meta_path,
            json.dumps({"fingerprint": self._fingerprint, "n": len(self.ids)}).encode(),
        )

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)

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
        tmp = shard.with_name(shard.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, ids=ids, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, shard)
        _fsync_dir(self.partial_dir)

    # --------------------------------------------------------------- finalize
    def finalize(self) -> Path:
        """Assemble the shards into the split file and publish it atomically.

        Returns
        -------
        path : Path
            The finished file.
        """
        if self.complete:
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
        n = len(self.ids)
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
                    f.create_dataset("labels", data=self.labels)
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
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        shutil.rmtree(self.partial_dir, ignore_errors=True)
        self.complete = True
        logger.info("wrote %s (%d samples, %s)", self.path, n, dims)
        return self.path

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
    left = writer.remaining()
    for start in range(0, len(left), batch_size):
        rows = left[start : start + batch_size]
        writer.append(writer.ids[rows], {name: X[name][rows] for name in X})
    return writer.finalize()
