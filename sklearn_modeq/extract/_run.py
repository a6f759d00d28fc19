"""Manifest reading and the extraction loop behind the extract command."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..cache import CacheWriter
from ._base import Backbone, MediaError

logger = logging.getLogger(__name__)

RESERVED = ("id", "label", "split")


@dataclass
class Manifest:
    """Rows of a manifest: ``id``, ``split``, optional ``label``, media columns.

    Attributes
    ----------
    path : Path
    rows : list of dict
        One dict per sample (all values str; ``""`` is a missing cell).
    columns : list of str
    """

    path: Path
    rows: list[dict[str, str]]
    columns: list[str] = field(default_factory=list)

    @property
    def base(self) -> Path:
        return self.path.parent

    def splits(self) -> list[str]:
        return list(dict.fromkeys(r["split"] for r in self.rows))

    def split_rows(self, split: str) -> list[dict[str, str]]:
        return [r for r in self.rows if r["split"] == split]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and np.isnan(value):
        return ""
    return str(value).strip()


def read_manifest(path: str | Path, modalities: Sequence[str] = ()) -> Manifest:
    """Read a CSV or JSONL manifest and check its columns and ids.

    Parameters
    ----------
    path : str or path-like
        ``.csv`` (header row) or ``.jsonl`` (one JSON object per line).
    modalities : sequence of str
        Media columns that must exist.
    """
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        rows = []
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{path} line {lineno}: {exc}") from exc
    else:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    rows = [{str(k): _cell(v) for k, v in r.items()} for r in rows]
    if not rows:
        raise ValueError(f"manifest {path} has no rows.")
    columns = list(dict.fromkeys(k for r in rows for k in r))
    for col in ("id", "split", *modalities):
        if col not in columns:
            raise ValueError(
                f"manifest {path} has no column {col!r}; its columns are {columns}."
            )
    seen: dict[tuple[str, str], int] = {}
    for i, r in enumerate(rows):
        r.setdefault("label", "")
        for m in modalities:
            r.setdefault(m, "")
        if not r["id"] or not r["split"]:
            raise ValueError(f"manifest {path} row {i + 1} has an empty id or split.")
        key = (r["split"], r["id"])
        if key in seen:
            raise ValueError(
                f"manifest {path}: id {r['id']!r} appears twice in split "
                f"{r['split']!r} (rows {seen[key] + 1} and {i + 1})."
            )
        seen[key] = i
    return Manifest(path, rows, columns)


def _labels(rows: list[dict[str, str]], split: str, path: Path):
    labels = [r["label"] for r in rows]
    if not any(labels):
        return None
    empty = [r["id"] for r in rows if not r["label"]]
    if empty:
        raise ValueError(
            f"manifest {path}: split {split!r} is labelled but sample {empty[0]!r} "
            "has no label; give every sample of a split a label, or none."
        )
    try:
        return [int(v) for v in labels]
    except ValueError:
        return labels


class _Rows(torch.utils.data.Dataset):
    """Preprocesses the media of one manifest row for every modality (None if the
    cell is empty)."""

    def __init__(
        self, rows, backbones: Mapping[str, Backbone], base: Path, on_missing: str
    ):
        self.rows, self.backbones, self.base = rows, backbones, base
        self.on_missing = on_missing

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = self.rows[i]
        out = {}
        for m, bb in self.backbones.items():
            cell = row[m]
            if not cell:
                out[m] = None
                continue
            try:
                out[m] = bb.preprocess(bb.read(cell, self.base))
            except MediaError as exc:
                if self.on_missing == "nan":
                    logger.warning("sample %r, modality %r: %s", row["id"], m, exc)
                    out[m] = None
                    continue
                raise MediaError(
                    f"sample {row['id']!r} (split {row['split']!r}), modality {m!r}: "
                    f"{exc}"
                ) from exc
        return out


def _identity(batch):
    return batch


def extract(
    manifest: str | Path | Manifest,
    out_dir: str | Path,
    backbones: Mapping[str, Backbone],
    *,
    splits: Sequence[str] | None = None,
    device: str = "cpu",
    batch_size: int = 32,
    num_workers: int = 0,
    dtype: str = "float32",
    autocast: bool = True,
    restart: bool = False,
    on_missing: str = "error",
    progress: bool = True,
) -> dict[str, Path]:
    """Embed the media of a manifest with one backbone per modality into the cache.

    Resumable: a split whose file exists is skipped, an interrupted split continues
    from its saved batches (see :class:`~sklearn_modeq.cache.CacheWriter`), and
    so does one that failed to write (disk full, read-only location:
    :class:`~sklearn_modeq.cache.CacheWriteError`, the batches written before are
    kept). A split another process is writing is a
    :class:`~sklearn_modeq.cache.CacheLockedError`.

    Parameters
    ----------
    manifest : path or Manifest
    out_dir : path
        Cache folder; one ``<split>.h5`` per split.
    backbones : mapping of str to Backbone
        Modality (manifest column) -> backbone (loaded on first use).
    splits : sequence of str, default=None
        Splits to extract (default: all, in manifest order).
    device : str, default="cpu"
    batch_size : int, default=32
    num_workers : int, default=0
        DataLoader workers decoding media in parallel.
    dtype : {"float32", "float16"}, default="float32"
        Storage type in the cache.
    autocast : bool, default=True
        Mixed precision (float16 autocast) on CUDA.
    restart : bool, default=False
        Discard existing and partial files.
    on_missing : {"error", "nan"}, default="error"
        A media file that does not exist or cannot be decoded: an error naming the
        sample, or a NaN row (an empty cell is always a NaN row).
    progress : bool, default=True
        Show a tqdm progress bar.

    Returns
    -------
    files : dict of str to Path
    """
    if not isinstance(manifest, Manifest):
        manifest = read_manifest(manifest, list(backbones))
    if on_missing not in ("error", "nan"):
        raise ValueError(f"on_missing must be 'error' or 'nan'; got {on_missing!r}.")
    out_dir = Path(out_dir)
    wanted = manifest.splits() if splits is None else list(splits)
    unknown = [s for s in wanted if s not in manifest.splits()]
    if unknown:
        raise ValueError(
            f"split {unknown[0]!r} is not in {manifest.path}; it has "
            f"{manifest.splits()}."
        )
    meta = {m: bb.metadata() for m, bb in backbones.items()}
    files = {}
    for split in wanted:
        rows = manifest.split_rows(split)
        cells = json.dumps([[r[m] for m in backbones] for r in rows])
        writer = CacheWriter(
            out_dir / f"{split}.h5",
            [r["id"] for r in rows],
            _labels(rows, split, manifest.path),
            modalities=meta,
            split=split,
            dtype=dtype,
            attrs={"manifest": str(manifest.path)},
            fingerprint=cells,
            restart=restart,
        )
        files[split] = writer.path
        with writer:  # releases the split's lock, also on an error
            left = writer.remaining()
            if len(left) == 0:
                writer.finalize()
                logger.info("split %r already extracted: %s", split, writer.path)
                continue
            for bb in backbones.values():
                if bb.model_ is None:
                    bb.load(device)
            _run_split(
                writer,
                [rows[i] for i in left],
                backbones,
                manifest.base,
                batch_size,
                num_workers,
                autocast,
                on_missing,
                progress,
                split,
            )
            writer.finalize()
    return files


def _run_split(
    writer,
    rows,
    backbones,
    base,
    batch_size,
    num_workers,
    autocast,
    on_missing,
    progress,
    split,
) -> None:
    loader = torch.utils.data.DataLoader(
        _Rows(rows, backbones, base, on_missing),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_identity,
    )
    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(writer.ids),
        initial=len(writer.ids) - len(rows),
        desc=f"extract {split}",
        unit="item",
        disable=not progress,
    )
    start = 0
    for batch in loader:
        ids = [r["id"] for r in rows[start : start + len(batch)]]
        start += len(batch)
        feats = {}
        for m, bb in backbones.items():
            values = np.full((len(batch), bb.dim_), np.nan, dtype=np.float32)
            present = [i for i, item in enumerate(batch) if item[m] is not None]
            if present:
                x = bb.collate([batch[i][m] for i in present])
                values[present] = bb.embed(x, autocast=autocast).numpy()
            feats[m] = values
        writer.append(ids, feats)
        bar.update(len(batch))
    bar.close()
