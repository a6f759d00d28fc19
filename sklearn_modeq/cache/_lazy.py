"""Out-of-core view of one split file: sorted index reads, one handle per process."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ._format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    CacheFormatError,
    check_unique_ids,
    from_attr,
)


def _open_h5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise CacheFormatError(
            f"{path} is not a readable HDF5 file; it is truncated or corrupt ({exc}). "
            "Delete it and re-run the extraction."
        ) from exc


def _read_str(ds: h5py.Dataset) -> np.ndarray:
    return np.asarray(ds.asstr()[()], dtype=str)


def _bad_rows(ds: h5py.Dataset, first: int, last: int) -> list[tuple[int, int]]:
    """Chunk-aligned row ranges of ``ds[first:last + 1]`` that cannot be read."""
    step = ds.chunks[0] if ds.chunks else last - first + 1
    bad = []
    for start in range(first - first % step, last + 1, step):
        stop = min(start + step, ds.shape[0]) - 1
        try:
            ds[start : stop + 1]
        except OSError:
            if bad and bad[-1][1] == start - 1:
                bad[-1] = (bad[-1][0], stop)
            else:
                bad.append((start, stop))
    return bad


def corrupt_data_error(
    path: Path,
    what: str,
    ds: h5py.Dataset,
    first: int,
    last: int,
    exc: Exception,
    ids: np.ndarray | None = None,
) -> CacheFormatError:
    """The error for unreadable rows ``first..last`` of a dataset, naming the
    chunks that fail (the rows) and, when they are known, their sample ids."""
    ranges = _bad_rows(ds, first, last) or [(first, last)]
    rows = ", ".join(f"{a}..{b}" for a, b in ranges[:5])
    if len(ranges) > 5:
        rows += f" and {len(ranges) - 5} more ranges"
    if ids is not None:
        a, b = ranges[0]
        rows += f" (sample ids {str(ids[a])!r}..{str(ids[b])!r})"
    cause = (
        "fail their Fletcher-32 checksum: the stored bytes changed (bit rot, a "
        "bad copy or a partial write) and the file is corrupt"
        if ds.fletcher32 and "filter" in str(exc)
        else "cannot be read; the file is truncated or corrupt"
    )
    return CacheFormatError(
        f"{path} {what}: rows {rows} {cause} ({exc}). Re-run the extraction into "
        "a fresh folder, or restore the file from a good copy."
    )


#: Bytes of the widest modality in one block of ``shuffle="blocks"`` (default).
_BLOCK_BYTES = 1 << 20

#: Largest block one range read may bring into memory (bounds out-of-core peaks).
_MAX_BLOCK_BYTES = 16 * 1024**2


def _runs(
    rows: np.ndarray, max_gap: int, max_span: int
) -> list[tuple[int, int, int, int]]:
    """Split sorted unique rows into (first, last, lo, hi) runs with small gaps.

    A run never crosses a boundary of the aligned windows of ``max_span`` rows, so
    one range read stays small even when the requested rows are dense but spread
    over the whole file (e.g. a random validation subset).
    """
    window = rows // max_span
    cuts = np.flatnonzero((np.diff(rows) > max_gap) | (np.diff(window) != 0)) + 1
    lows = np.concatenate([[0], cuts])
    highs = np.concatenate([cuts, [len(rows)]])
    return [
        (int(rows[a]), int(rows[b - 1]), int(a), int(b)) for a, b in zip(lows, highs)
    ]


class _Header:
    """Validated metadata of a split file (everything but the feature values)."""

    def __init__(self, path: Path, f: h5py.File):
        self.path = path
        if from_attr(f.attrs.get("format", "")) != FORMAT_NAME:
            raise CacheFormatError(
                f"{path} is an HDF5 file but not a sklearn_modeq embedding cache "
                f"(attribute 'format' is {from_attr(f.attrs.get('format'))!r}, "
                f"expected {FORMAT_NAME!r})."
            )
        version = from_attr(f.attrs.get("format_version", -1))
        if version != FORMAT_VERSION:
            hint = (
                "upgrade sklearn_modeq"
                if isinstance(version, int) and version > FORMAT_VERSION
                else "re-run the extraction with this version"
            )
            raise CacheFormatError(
                f"{path} has cache format version {version}; this sklearn_modeq "
                f"reads version {FORMAT_VERSION}; {hint}."
            )
        self.split = from_attr(f.attrs.get("split", path.stem))
        self.attrs = {k: from_attr(v) for k, v in f.attrs.items()}
        if "ids" not in f or "modalities" not in f:
            raise CacheFormatError(
                f"{path} lacks the 'ids' or 'modalities' entry; it was not written "
                "completely. Delete it and re-run the extraction."
            )
        self.ids = _read_str(f["ids"])
        n = len(self.ids)
        check_unique_ids(self.ids, str(path))
        self.labels = None
        if "labels" in f:
            ds = f["labels"]
            try:
                labels = _read_str(ds) if ds.dtype.kind in "OS" else ds[()]
            except OSError as exc:
                raise corrupt_data_error(path, "'labels'", ds, 0, n - 1, exc) from exc
            if len(labels) != n:
                raise CacheFormatError(
                    f"{path}: 'labels' has {len(labels)} rows but 'ids' has {n}."
                )
            self.labels = labels
        stored = list(f["modalities"].keys())
        order = from_attr(f.attrs.get("modalities", ""))
        if isinstance(order, list) and sorted(order) == sorted(stored):
            stored = order
        self.modalities: list[str] = stored
        if not self.modalities:
            raise CacheFormatError(f"{path} holds no modality.")
        self.dims: dict[str, int] = {}
        self.dtypes: dict[str, np.dtype] = {}
        self.chunk_rows: dict[str, int] = {}
        self.modality_attrs: dict[str, dict[str, Any]] = {}
        # file row -> row in the modality's features (None: aligned, -1: absent)
        self.maps: dict[str, np.ndarray | None] = {}
        position = None
        for name in self.modalities:
            g = f["modalities"][name]
            where = f"{path} modality {name!r}"
            if "features" not in g or "ids" not in g:
                raise CacheFormatError(f"{where} lacks 'features' or 'ids'.")
            feats = g["features"]
            if feats.ndim != 2:
                raise CacheFormatError(
                    f"{where}: 'features' must be 2-D; got shape {feats.shape}."
                )
            mids = _read_str(g["ids"])
            if len(mids) != feats.shape[0]:
                raise CacheFormatError(
                    f"{where}: 'features' has {feats.shape[0]} rows but its 'ids' has "
                    f"{len(mids)}; the file is inconsistent."
                )
            check_unique_ids(mids, where)
            if len(mids) == n and np.array_equal(mids, self.ids):
                self.maps[name] = None
            else:
                if position is None:
                    position = {s: i for i, s in enumerate(self.ids.tolist())}
                rows = np.array([position.get(s, -1) for s in mids.tolist()])
                if (rows < 0).any():
                    bad = str(mids[rows < 0][0])
                    raise CacheFormatError(
                        f"{where}: sample id {bad!r} is not in the file's 'ids'."
                    )
                mapping = np.full(n, -1, dtype=np.int64)
                mapping[rows] = np.arange(len(mids))
                self.maps[name] = mapping
            ends = (0, feats.shape[0] - 1) if feats.shape[0] else ()
            for row in ends:
                try:
                    feats[row]
                except OSError as exc:
                    raise corrupt_data_error(
                        path,
                        f"modality {name!r} 'features'",
                        feats,
                        row,
                        row,
                        exc,
                        self.ids if self.maps[name] is None else None,
                    ) from exc
            self.dims[name] = int(feats.shape[1])
            self.dtypes[name] = feats.dtype
            self.chunk_rows[name] = int(feats.chunks[0]) if feats.chunks else 1
            self.modality_attrs[name] = {k: from_attr(v) for k, v in g.attrs.items()}


class LazyArray:
    """One modality of a :class:`LazyEmbeddings`, indexed like a 2-D float32 array."""

    def __init__(self, view: LazyEmbeddings, name: str):
        self._view = view
        self.name = name

    @property
    def shape(self) -> tuple[int, int]:
        return self._view.shape[self.name]

    ndim = 2
    dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        rows = np.arange(len(self))[index]
        if np.ndim(rows) == 0:
            return self._view.take([int(rows)], [self.name])[self.name][0]
        return self._view.take(rows, [self.name])[self.name]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"LazyArray({self.name!r}, shape={self.shape})"


class LazyEmbeddings:
    """Read-only, out-of-core view of one split file of the embedding cache.

    Obtained from :func:`~sklearn_modeq.cache.open_lazy` or
    ``load(..., lazy=True)``. Rows are read on demand with sorted HDF5 index reads
    (then put back in the requested order) and returned as float32, with an all-NaN
    row where a modality is absent for a sample.

    Like :class:`skorch.helper.SliceDict`, ``len(view)`` is the number of samples and
    indexing with rows (an int array, a boolean mask or a slice) gives a sub-view
    that reads nothing; indexing with a modality name gives a :class:`LazyArray`.
    Iteration and :meth:`keys` walk the modality names.

    The view is picklable: the HDF5 file is (re)opened lazily, once per process, so
    every DataLoader worker or joblib process reads through its own handle.

    Parameters
    ----------
    path : str or path-like
        A split file written by :class:`~sklearn_modeq.cache.CacheWriter`.
    modalities : sequence of str, default=None
        Modalities to expose (default: all, in file order). A name not in the file is
        a :class:`CacheFormatError`.
    rows : array-like of int, default=None
        File rows this view exposes, in order (default: all).
    shuffle : {"rows", "blocks"}, default="rows"
        How an estimator's training loader shuffles this view (see
        :meth:`sampling_blocks`). ``"rows"``: single rows, as in memory; each
        batch then reads scattered rows, ~0.2 ms each through HDF5.
        ``"blocks"``: blocks of ``block_rows`` consecutive file rows, so each
        batch reads a few contiguous ranges; a batch then holds rows of only
        about ``mix_blocks`` blocks (up to twice that where it straddles two
        groups), which matters when the file's row order is not random (e.g.
        sorted by class or by source).
    block_rows : int, default=None
        Rows per block with ``shuffle="blocks"``; default: the smallest multiple
        of the largest HDF5 chunk (in rows) of the view's modalities that holds
        1 MiB of the widest one, so blocks are chunk-aligned and each is one
        contiguous read.
    mix_blocks : int, default=8
        With ``shuffle="blocks"``, the rows of this many consecutive blocks of
        the shuffled block order are shuffled together. The view keeps the last
        ``2 * mix_blocks + 1`` blocks it read of each modality in memory (about
        17 MiB per modality at the defaults), so each block is read once per
        epoch, in one range read.

    Attributes
    ----------
    path : Path
    split : str
    modalities : tuple of str
    n_samples : int
    shape : dict of str to (n_samples, d_m)
    ids : ndarray of str, shape (n_samples,)
    labels : ndarray of shape (n_samples,) or None
    attrs : dict
        File attributes (format version, library versions, ...).
    modality_attrs : dict of str to dict
        Per-modality attributes (backbone, checkpoint hash, pooling, ...).
    shuffle, block_rows, mix_blocks
        As given (``block_rows`` resolved).
    """

    def __init__(
        self,
        path,
        modalities=None,
        rows=None,
        *,
        shuffle="rows",
        block_rows=None,
        mix_blocks=8,
        _header=None,
    ):
        if shuffle not in ("rows", "blocks"):
            raise ValueError(
                f"shuffle must be 'rows' or 'blocks'; got {shuffle!r} instead."
            )
        for name, value in (("block_rows", block_rows), ("mix_blocks", mix_blocks)):
            if value is not None and (
                not isinstance(value, int | np.integer) or value < 1
            ):
                raise ValueError(
                    f"{name} must be a positive int; got {value!r} instead."
                )
        self.shuffle = shuffle
        self.mix_blocks = int(mix_blocks)
        self.path = Path(path)
        self._file: h5py.File | None = None
        self._pid: int | None = None
        # shuffle="blocks": modality -> {block: float32 rows}, least recent first
        self._blocks: dict[str, OrderedDict[int, np.ndarray]] = {}
        if _header is None:
            with _open_h5(self.path) as f:
                _header = _Header(self.path, f)
        self._header = _header
        if modalities is None:
            modalities = _header.modalities
        unknown = [m for m in modalities if m not in _header.modalities]
        if unknown:
            raise CacheFormatError(
                f"modality {unknown[0]!r} is not in {self.path} (split "
                f"{_header.split!r}); it holds {_header.modalities}."
            )
        self.modalities = tuple(modalities)
        self.block_rows = (
            int(block_rows) if block_rows is not None else self._default_block_rows()
        )
        n_file = len(_header.ids)
        self._rows = (
            np.arange(n_file) if rows is None else np.asarray(rows, dtype=np.int64)
        )

    def _default_block_rows(self) -> int:
        """The smallest multiple of the largest chunk (in rows) of the modalities
        that spans :data:`_BLOCK_BYTES` of the widest modality."""
        header = self._header
        chunk = max(header.chunk_rows[m] for m in self.modalities)
        row = max(header.dims[m] * header.dtypes[m].itemsize for m in self.modalities)
        return chunk * max(1, -(-(_BLOCK_BYTES // max(row, 1)) // chunk))

    # -------------------------------------------------------------- metadata
    @property
    def split(self) -> str:
        return self._header.split

    @property
    def n_samples(self) -> int:
        return len(self._rows)

    @property
    def shape(self) -> dict[str, tuple[int, int]]:
        return {m: (self.n_samples, self._header.dims[m]) for m in self.modalities}

    @property
    def ids(self) -> np.ndarray:
        return self._header.ids[self._rows]

    @property
    def labels(self) -> np.ndarray | None:
        labels = self._header.labels
        return None if labels is None else labels[self._rows]

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self._header.attrs)

    @property
    def modality_attrs(self) -> dict[str, dict[str, Any]]:
        return {m: dict(self._header.modality_attrs[m]) for m in self.modalities}

    # --------------------------------------------------------------- mapping
    def __len__(self) -> int:
        return self.n_samples

    def __iter__(self) -> Iterator[str]:
        return iter(self.modalities)

    def __contains__(self, name: object) -> bool:
        return name in self.modalities

    def keys(self) -> tuple[str, ...]:
        return self.modalities

    def values(self) -> list[LazyArray]:
        return [LazyArray(self, m) for m in self.modalities]

    def items(self) -> list[tuple[str, LazyArray]]:
        return [(m, LazyArray(self, m)) for m in self.modalities]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            if key not in self.modalities:
                raise KeyError(
                    f"{key!r} is not a modality of {self.path}; "
                    f"it has {list(self.modalities)}."
                )
            return LazyArray(self, key)
        return self.select(key)

    def select(self, index: Any = None, modalities=None) -> LazyEmbeddings:
        """Sub-view on some rows (int array, mask or slice) and/or modalities."""
        rows = self._rows if index is None else self._rows[index]
        if np.ndim(rows) == 0:
            rows = np.atleast_1d(rows)
        return LazyEmbeddings(
            self.path,
            self.modalities if modalities is None else modalities,
            rows,
            shuffle=self.shuffle,
            block_rows=self.block_rows,
            mix_blocks=self.mix_blocks,
            _header=self._header,
        )

    def sampling_blocks(self) -> tuple[np.ndarray, int] | None:
        """Blocks a training loader shuffles instead of rows, or None.

        With ``shuffle="blocks"``: the block of every position of this view (its
        file row // :attr:`block_rows`) and :attr:`mix_blocks`. The training
        loader of the estimators (``sklearn_modeq._training.batch_loader``)
        then shuffles the order of the blocks and the rows within each group of
        ``mix_blocks`` consecutive blocks of that order, so every batch reads a
        few contiguous ranges instead of ``batch_size`` scattered rows.
        """
        if self.shuffle != "blocks":
            return None
        return self._rows // self.block_rows, self.mix_blocks

    def __repr__(self) -> str:
        dims = ", ".join(f"{m}: {self._header.dims[m]}" for m in self.modalities)
        return (
            f"LazyEmbeddings({str(self.path)!r}, split={self.split!r}, "
            f"n_samples={self.n_samples}, dims={{{dims}}})"
        )

    # ----------------------------------------------------------------- files
    def _handle(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = _open_h5(self.path)
            self._pid = os.getpid()
            self._blocks = {}
        return self._file

    def close(self) -> None:
        """Close this process's file handle (it reopens on the next read)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None
        self._blocks = {}

    def __enter__(self) -> LazyEmbeddings:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None
        state["_pid"] = None
        state["_blocks"] = {}
        return state

    # ----------------------------------------------------------------- reads
    def _read_modality(self, name: str, file_rows: np.ndarray) -> np.ndarray:
        dim = self._header.dims[name]
        out = np.full((len(file_rows), dim), np.nan, dtype=np.float32)
        if len(file_rows) == 0:
            return out
        mapping = self._header.maps[name]
        src = file_rows if mapping is None else mapping[file_rows]
        present = src >= 0
        src = src[present]
        if len(src) == 0:
            return out
        uniq, inverse = np.unique(src, return_inverse=True)
        ds = self._handle()["modalities"][name]["features"]
        if self.shuffle == "blocks" and mapping is None:
            out[present] = self._read_blocks(name, ds, uniq)[inverse.reshape(-1)]
            return out
        chunk = ds.chunks[0] if ds.chunks else 1
        buf = np.empty((len(uniq), dim), dtype=np.float32)
        max_span = max(chunk, _MAX_BLOCK_BYTES // (4 * dim))
        ids = self._header.ids if mapping is None else None
        for first, last, a, b in _runs(uniq, max(1, chunk // 2), max_span):
            block = self._feature_rows(name, ds, first, last, ids)
            buf[a:b] = block[uniq[a:b] - first]
        out[present] = buf[inverse.reshape(-1)]
        return out

    def _feature_rows(self, name, ds, first: int, last: int, ids):
        """Rows ``first..last`` of a modality's features; a chunk that fails its
        checksum (or cannot be read) is a :class:`CacheFormatError` naming the
        file, the modality, the rows and, with ``ids``, their sample ids."""
        try:
            return ds[first : last + 1]
        except OSError as exc:
            raise corrupt_data_error(
                self.path, f"modality {name!r} 'features'", ds, first, last, exc, ids
            ) from exc

    def _read_blocks(self, name: str, ds: h5py.Dataset, rows: np.ndarray):
        """Sorted unique ``rows`` of ``ds`` through a small cache of whole blocks.

        Each block is one range read, kept (least recently used out) for the
        next batches of its group; ``2 * mix_blocks + 1`` blocks per modality.
        """
        size = self.block_rows
        cache = self._blocks.setdefault(name, OrderedDict())
        block_of = rows // size
        cuts = np.flatnonzero(np.diff(block_of)) + 1
        buf = np.empty((len(rows), ds.shape[1]), dtype=np.float32)
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(rows)]):
            k = int(block_of[a])
            values = cache.get(k)
            if values is None:
                first, last = k * size, min((k + 1) * size, ds.shape[0]) - 1
                values = self._feature_rows(name, ds, first, last, self._header.ids)
                values = values.astype(np.float32, copy=False)
                cache[k] = values
                while len(cache) > 2 * self.mix_blocks + 1:
                    cache.popitem(last=False)
            else:
                cache.move_to_end(k)
            buf[a:b] = values[rows[a:b] - k * size]
        return buf

    def take(self, indices, modalities=None) -> dict[str, np.ndarray]:
        """Read rows of this view.

        Parameters
        ----------
        indices : array-like of int or slice
            Positions in this view (any order, repeats allowed).
        modalities : sequence of str, default=None
            Subset of :attr:`modalities` to read.

        Returns
        -------
        arrays : dict of str to ndarray of shape (len(indices), d_m), float32
        """
        file_rows = (
            self._rows[indices]
            if isinstance(indices, slice)
            else (self._rows[np.asarray(indices, dtype=np.int64)])
        )
        names = self.modalities if modalities is None else modalities
        return {m: self._read_modality(m, file_rows) for m in names}

    def iter_batches(
        self, batch_size: int = 1024, modalities=None
    ) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """Yield ``(positions, arrays)`` over consecutive batches of this view."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
        for start in range(0, self.n_samples, batch_size):
            stop = min(start + batch_size, self.n_samples)
            yield np.arange(start, stop), self.take(slice(start, stop), modalities)

    def to_arrays(self, batch_size: int = 4096) -> dict[str, np.ndarray]:
        """Read the whole view into memory as float32 arrays."""
        out = {
            m: np.empty((self.n_samples, self._header.dims[m]), dtype=np.float32)
            for m in self.modalities
        }
        for pos, arrays in self.iter_batches(batch_size):
            for m, values in arrays.items():
                out[m][pos] = values
        return out

    def mean_std(
        self, batch_size: int = 4096
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Streaming NaN-aware mean and standard deviation per modality.

        All-NaN rows (missing modality) are skipped. Accumulates in float64 with
        Chan's parallel update, so memory stays at one batch.

        Returns
        -------
        stats : dict of str to (mean, std), each ndarray of shape (d_m,)
            ``std`` is the population standard deviation (``ddof=0``); a modality
            with no present row gets NaN.
        """
        stats = {}
        for m in self.modalities:
            dim = self._header.dims[m]
            count, mean, m2 = 0, np.zeros(dim), np.zeros(dim)
            for _, arrays in self.iter_batches(batch_size, [m]):
                values = arrays[m]
                values = values[~np.isnan(values).all(axis=1)].astype(np.float64)
                k = len(values)
                if k == 0:
                    continue
                b_mean = values.mean(axis=0)
                b_m2 = ((values - b_mean) ** 2).sum(axis=0)
                delta = b_mean - mean
                total = count + k
                mean = mean + delta * (k / total)
                m2 = m2 + b_m2 + delta**2 * (count * k / total)
                count = total
            if count == 0:
                stats[m] = (np.full(dim, np.nan), np.full(dim, np.nan))
            else:
                stats[m] = (mean, np.sqrt(m2 / count))
        return stats
