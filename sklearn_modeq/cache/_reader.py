"""Loading split files of the embedding cache into memory or as a lazy view."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ._format import CacheFormatError
from ._lazy import LazyEmbeddings


def _split_file(path: str | os.PathLike, split: str | None) -> Path:
    path = Path(path)
    if path.is_dir():
        if split is None:
            found = sorted(p.stem for p in path.glob("*.h5"))
            raise ValueError(
                f"{path} is a cache folder; pass split= (it holds {found})."
            )
        file = path / f"{split}.h5"
    else:
        file = path
    if not file.exists():
        partial = file.with_name(file.name + ".partial")
        if partial.is_dir():
            done = len(list(partial.glob("shard_*.npz")))
            raise FileNotFoundError(
                f"{file} is not finished: the extraction was interrupted "
                f"({done} batches saved in {partial}); re-run the same extraction "
                "command to resume it."
            )
        raise FileNotFoundError(f"no embedding cache file {file}.")
    return file


def open_lazy(
    path: str | os.PathLike,
    split: str | None = None,
    *,
    modalities: Sequence[str] | None = None,
    shuffle: str = "rows",
    block_rows: int | None = None,
    mix_blocks: int = 8,
) -> LazyEmbeddings:
    """Open one split of the cache as a :class:`LazyEmbeddings` view.

    Parameters
    ----------
    path : str or path-like
        A cache folder (then ``split`` picks ``<path>/<split>.h5``) or a split file.
    split : str, default=None
        Split name; when ``path`` is a file and ``split`` is given, the file's split
        attribute must match.
    modalities : sequence of str, default=None
        Modalities to expose; a name missing from the file is a CacheFormatError.
    shuffle : {"rows", "blocks"}, default="rows"
        How the estimators' training loader shuffles the view: single rows (as
        in memory), or chunk-aligned blocks of rows, which makes an out-of-core
        fit read contiguous ranges (see :class:`LazyEmbeddings`).
    block_rows : int, default=None
        Rows per block (default: about 1 MiB of the widest modality, a multiple
        of the largest HDF5 chunk of the modalities).
    mix_blocks : int, default=8
        Blocks whose rows are shuffled together.

    Returns
    -------
    view : LazyEmbeddings
    """
    file = _split_file(path, split)
    view = LazyEmbeddings(
        file,
        modalities,
        shuffle=shuffle,
        block_rows=block_rows,
        mix_blocks=mix_blocks,
    )
    if split is not None and view.split != split:
        raise CacheFormatError(f"{file} holds split {view.split!r}, not {split!r}.")
    return view


def load(
    path: str | os.PathLike,
    split: str | None = None,
    *,
    lazy: bool = False,
    modalities: Sequence[str] | None = None,
    shuffle: str = "rows",
):
    """Load one split of the embedding cache.

    Parameters
    ----------
    path : str or path-like
        A cache folder (with ``split``) or a split file.
    split : str, default=None
        Split name, e.g. ``"train"``.
    lazy : bool, default=False
        Return a :class:`LazyEmbeddings` view instead of in-memory arrays, for data
        larger than memory.
    modalities : sequence of str, default=None
        Modalities to load (default: all). Requesting one the file lacks (e.g. a
        modality of the training split missing from the test split) is an error.
    shuffle : {"rows", "blocks"}, default="rows"
        With ``lazy=True``: ``"blocks"`` makes the estimators' training loader
        shuffle chunk-aligned blocks of rows instead of single rows, so an
        out-of-core fit reads contiguous ranges (much faster; batches then mix
        rows of a few blocks only, see :class:`LazyEmbeddings`). Use
        :func:`open_lazy` to set the block size.

    Returns
    -------
    X : skorch.helper.SliceDict or LazyEmbeddings
        Modality name -> float32 array of shape (n_samples, d_m), rows aligned by
        sample id, an all-NaN row where the modality is absent for a sample.
    y : ndarray of shape (n_samples,) or None
        Labels (int64 or str), None for an unlabelled split.
    ids : ndarray of str, shape (n_samples,)
        Sample ids.
    """
    if shuffle != "rows" and not lazy:
        raise ValueError(
            f"shuffle={shuffle!r} applies to lazy views; pass lazy=True with it "
            "(in memory, rows are shuffled one by one at no cost)."
        )
    view = open_lazy(path, split, modalities=modalities, shuffle=shuffle)
    y, ids = view.labels, view.ids
    if lazy:
        return view, y, ids
    from skorch.helper import SliceDict

    with view:
        return SliceDict(**view.to_arrays()), y, ids


def load_splits(
    path: str | os.PathLike,
    splits: Sequence[str] = ("train", "test"),
    *,
    lazy: bool = False,
    modalities: Sequence[str] | None = None,
) -> dict:
    """Load several splits and check they are compatible.

    Every split must hold the modalities of the first split (or ``modalities``),
    with the same feature width and the same backbone checkpoint.

    Parameters
    ----------
    path : str or path-like
        The cache folder.
    splits : sequence of str, default=("train", "test")
    lazy : bool, default=False
    modalities : sequence of str, default=None

    Returns
    -------
    data : dict of str to (X, y, ids)
        As :func:`load`, per split.
    """
    views = {s: open_lazy(path, s) for s in splits}
    first = splits[0]
    ref = views[first]
    wanted = list(ref.modalities) if modalities is None else list(modalities)
    for split, view in views.items():
        for m in wanted:
            if m not in view.modalities:
                where = (
                    f"present in {first!r} ({ref.path})"
                    if m in ref.modalities
                    else "requested"
                )
                raise CacheFormatError(
                    f"modality {m!r} is {where} but not in {split!r} ({view.path}); "
                    f"{split!r} has {list(view.modalities)}. Extract it for every "
                    "split or pass modalities= without it."
                )
            if m not in ref.modalities:
                continue
            if view.shape[m][1] != ref.shape[m][1]:
                raise CacheFormatError(
                    f"modality {m!r} has {ref.shape[m][1]} features in {first!r} but "
                    f"{view.shape[m][1]} in {split!r}; they come from different "
                    "backbones."
                )
            a = ref.modality_attrs[m].get("checkpoint_sha256")
            b = view.modality_attrs[m].get("checkpoint_sha256")
            if a and b and a != b:
                raise CacheFormatError(
                    f"modality {m!r} was extracted with checkpoint {a[:12]} in "
                    f"{first!r} but {b[:12]} in {split!r}; re-extract one of them."
                )
    out = {}
    for split, view in views.items():
        view = view.select(modalities=wanted)
        if lazy:
            out[split] = (view, view.labels, view.ids)
        else:
            from skorch.helper import SliceDict

            with view:
                out[split] = (SliceDict(**view.to_arrays()), view.labels, view.ids)
    return out


__all__ = ["load", "load_splits", "open_lazy"]
