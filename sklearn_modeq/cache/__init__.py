"""HDF5 embedding cache: resumable crash-safe writing, loading, lazy views.

See ``docs/extract.md`` for the file layout. Public API:

- :class:`CacheWriter` / :func:`write_cache`: write one split file;
- :func:`load` / :func:`load_splits`: read splits into ``(X, y, ids)``;
- :func:`open_lazy` / :class:`LazyEmbeddings`: out-of-core views.
"""

from ._format import (
    FORMAT_VERSION,
    CacheFormatError,
    CacheLockedError,
    CacheWriteError,
)
from ._lazy import LazyArray, LazyEmbeddings
from ._reader import load, load_splits, open_lazy
from ._writer import CacheWriter, write_cache

__all__ = [
    "FORMAT_VERSION",
    "CacheFormatError",
    "CacheLockedError",
    "CacheWriteError",
    "CacheWriter",
    "LazyArray",
    "LazyEmbeddings",
    "load",
    "load_splits",
    "open_lazy",
    "write_cache",
]
