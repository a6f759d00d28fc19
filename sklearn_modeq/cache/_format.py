"""On-disk layout of the HDF5 embedding cache, shared by the writer and the reader.

One HDF5 file per dataset split (``<cache_dir>/<split>.h5``)::

    /                       attrs: format, format_version, split, n_samples,
                                   library_versions (JSON), fingerprint, created_utc
    /ids                    (n,) variable-length UTF-8, unique sample ids
    /labels                 (n,) int64 or UTF-8 (absent for an unlabelled split)
    /modalities/<name>/     attrs: backbone, checkpoint, checkpoint_sha256,
                                   pooling, preprocessing (JSON), ...
        features            (n_m, d) float16 or float32, chunked by rows
        ids                 (n_m,) UTF-8, the sample id of every feature row

A missing modality for a sample is an all-NaN row in ``features`` (or the id is absent
from the modality's ``ids``). The writer always stores rows aligned with ``/ids``.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

import h5py
import numpy as np

FORMAT_NAME = "sklearn_modeq.embedding_cache"
FORMAT_VERSION = 1
STR_DTYPE = h5py.string_dtype(encoding="utf-8")

_VERSIONED_PACKAGES = (
    "sklearn_modeq",
    "numpy",
    "h5py",
    "torch",
    "transformers",
    "sentence-transformers",
)


class CacheFormatError(ValueError):
    """An embedding cache file is malformed, truncated or incompatible."""


class CacheLockedError(RuntimeError):
    """Another writer holds the lock of the split file this one would write."""


class CacheWriteError(OSError):
    """Writing the cache failed (disk full, read-only location, ...).

    The message names the path and says what was kept; ``errno`` is the
    underlying error's.
    """

    def __str__(self) -> str:
        return str(self.strerror)


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape the cached features."""
    versions = {}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    if "sklearn_modeq" not in versions:
        from sklearn_modeq import __version__

        versions["sklearn_modeq"] = __version__
    return versions


def to_attr(value: Any) -> Any:
    """Encode a Python value as an HDF5 attribute (dicts and lists become JSON)."""
    if value is None:
        return ""
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, Path):
        return str(value)
    return value


def from_attr(value: Any) -> Any:
    """Decode an attribute written by :func:`to_attr`."""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def encode_labels(labels: Any) -> np.ndarray | None:
    """Labels as int64 when every label is an integer, else as str; None stays None."""
    if labels is None:
        return None
    arr = np.asarray(labels)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        if np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            return arr.astype(np.int64)
        raise TypeError(
            "labels must be integers or strings to be cached; got non-integer "
            f"floats such as {arr[~(arr == np.round(arr))][:1]}."
        )
    return arr.astype(str)


def check_unique_ids(ids: np.ndarray, where: str) -> None:
    """Raise CacheFormatError naming the first duplicated id and its rows."""
    uniq, first, counts = np.unique(ids, return_index=True, return_counts=True)
    if len(uniq) == len(ids):
        return
    dup = str(uniq[counts > 1][0])
    rows = np.flatnonzero(ids == dup)[:5].tolist()
    raise CacheFormatError(
        f"{where}: sample ids must be unique, but {dup!r} appears "
        f"{int(counts[counts > 1][0])} times (rows {rows})."
    )


def check_rows(name: str, values: np.ndarray, ids: np.ndarray) -> None:
    """Reject partly-NaN rows and infinities (DESIGN section 2), naming the sample."""
    values = np.asarray(values)
    nan = np.isnan(values)
    partial = nan.any(axis=1) & ~nan.all(axis=1)
    if partial.any():
        row = int(np.flatnonzero(partial)[0])
        raise ValueError(
            f"features[{name!r}] for sample {str(ids[row])!r} are partly NaN "
            f"({int(nan[row].sum())} of {values.shape[1]} values); a missing modality "
            "must be an all-NaN row."
        )
    inf = np.isinf(values).any(axis=1)
    if inf.any():
        row = int(np.flatnonzero(inf)[0])
        raise ValueError(
            f"features[{name!r}] for sample {str(ids[row])!r} contain inf; the "
            "backbone overflowed (try --dtype float32 or a float32 forward pass)."
        )
