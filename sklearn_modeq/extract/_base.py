"""The backbone interface, the registry of backbones by name, checkpoint hashing."""

from __future__ import annotations

import abc
import hashlib
import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

_REGISTRY: dict[str, type[Backbone]] = {}

# Modules whose import registers backbones; imported on first registry lookup.
_BUILTIN_MODULES = (
    "sklearn_modeq.extract.resnet",
    "sklearn_modeq.extract.cav_mae",
    "sklearn_modeq.extract.m3ae",
    "sklearn_modeq.extract.hf",
    "sklearn_modeq.extract.ola",
)

_FULL_HASH_LIMIT = 1 << 30
_QUICK_HASH_BLOCK = 16 << 20


class MediaError(ValueError):
    """A media file of the manifest is missing or cannot be decoded."""


def require(module: str, extra: str = "extract") -> Any:
    """Import an optional dependency or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"this backbone needs the optional dependency {module!r}; install it with "
            f"pip install 'sklearn_modeq[{extra}]'."
        ) from exc


def _hash_file(path: Path, h: Any) -> None:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if size <= _FULL_HASH_LIMIT:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        else:
            h.update(f"quick:{size}".encode())
            h.update(fh.read(_QUICK_HASH_BLOCK))
            fh.seek(size - _QUICK_HASH_BLOCK)
            h.update(fh.read(_QUICK_HASH_BLOCK))


def checkpoint_sha256(checkpoint: str | Path | None) -> str:
    """Fingerprint of a checkpoint file or folder (``""`` when there is none).

    Files up to 1 GiB are hashed fully; larger ones by their size and their first and
    last 16 MiB, so fingerprinting a 7B-parameter folder takes a second. A string that
    is not a local path (a hub id) is hashed as text.
    """
    if not checkpoint:
        return ""
    path = Path(checkpoint)
    h = hashlib.sha256()
    if path.is_file():
        _hash_file(path, h)
    elif path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(file.relative_to(path)).encode())
            _hash_file(file, h)
    else:
        h.update(f"id:{checkpoint}".encode())
    return h.hexdigest()


def strip_prefix(state: dict[str, Any], prefix: str = "module.") -> dict[str, Any]:
    """Drop a DataParallel-style prefix from every key that has it."""
    if all(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items()}
    return state


def load_torch_state(path: str | Path, name: str) -> dict[str, torch.Tensor]:
    """Read a torch checkpoint (a state dict, possibly under 'state_dict'/'model')."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name}: checkpoint {path} does not exist.")
    if path.suffix == ".safetensors":
        st = require("safetensors.torch")
        return st.load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "module"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{name}: {path} does not hold a state dict.")
    return strip_prefix(state)


def load_strict(
    module: torch.nn.Module, state: dict, name: str, path: Any, assign: bool = False
) -> None:
    """load_state_dict(strict=True) with an error that lists the first differences.

    ``assign=True`` adopts the checkpoint's tensors (for a module built on the meta
    device, which then costs no memory before loading)."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        raise ValueError(
            f"{name}: checkpoint {path} does not match the architecture: "
            f"{len(missing)} missing keys {missing[:3]}, {len(unexpected)} unexpected "
            f"keys {unexpected[:3]}, {len(shapes)} shape mismatches {shapes[:2]}."
        )
    module.load_state_dict(state, strict=True, assign=assign)


class Backbone(abc.ABC):
    """A frozen feature extractor: ``load`` -> ``preprocess`` -> ``embed``.

    Subclasses set the class attributes and implement :meth:`build`,
    :meth:`preprocess` and :meth:`forward`; they are registered by name with
    :func:`register_backbone`.

    Parameters
    ----------
    checkpoint : str, default=None
        Local checkpoint file or folder (or hub id where documented).
    **options
        Backbone options, see the class's ``options`` (unknown names are an error).

    Attributes
    ----------
    model_ : torch.nn.Module
        The loaded, frozen model (after :meth:`load`).
    dim_ : int
        Width of the embeddings (after :meth:`load`).
    """

    name: ClassVar[str] = ""
    media: ClassVar[str] = ""
    pooling: ClassVar[str] = ""
    options: ClassVar[dict[str, Any]] = {}
    reads_text: ClassVar[bool] = False

    def __init__(self, checkpoint: str | None = None, **options: Any):
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(
                f"backbone {self.name!r} has no option {unknown[0]!r}; "
                f"its options are {sorted(self.options)}."
            )
        self.checkpoint = checkpoint
        self.opts = {
            key: _coerce(default, options[key]) if key in options else default
            for key, default in self.options.items()
        }
        self.model_: torch.nn.Module | None = None
        self.dim_: int | None = None
        self.device = torch.device("cpu")

    # ------------------------------------------------------------ interface
    @abc.abstractmethod
    def build(self) -> torch.nn.Module:
        """Build the model and load the checkpoint weights (CPU, float32)."""

    @abc.abstractmethod
    def preprocess(self, source: Any) -> Any:
        """Turn one media item (as returned by :meth:`read`) into model input."""

    @abc.abstractmethod
    def forward(self, batch: Any) -> torch.Tensor:
        """Embed a collated batch on :attr:`device`; returns ``(B, dim_)``."""

    def preprocessing(self) -> dict[str, Any]:
        """What :meth:`preprocess` does, recorded in the cache attributes."""
        return dict(self.opts)

    # --------------------------------------------------------------- shared
    def read(self, cell: str, base: Path) -> Any:
        """Resolve a manifest cell to what :meth:`preprocess` takes (a path)."""
        return resolve_path(cell, base, self.name)

    def collate(self, items: Sequence[Any]) -> Any:
        """Batch preprocessed items (default: stack tensors)."""
        return torch.stack(list(items))

    def load(self, device: str | torch.device = "cpu") -> Backbone:
        """Build the model, freeze it and move it to ``device``; returns self."""
        model = self.build()
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self.device = torch.device(device)
        self.model_ = model.to(self.device)
        return self

    @torch.no_grad()
    def embed(self, batch: Any, autocast: bool = False) -> torch.Tensor:
        """Run :meth:`forward` (under CUDA autocast if asked); float32 on CPU."""
        if self.model_ is None:
            raise RuntimeError(f"backbone {self.name!r}: call load() first.")
        if autocast and self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.float16):
                out = self.forward(batch)
        else:
            out = self.forward(batch)
        return out.float().cpu()

    def metadata(self) -> dict[str, Any]:
        """Attributes stored with the modality in the cache."""
        return {
            "backbone": self.name,
            "checkpoint": str(self.checkpoint or ""),
            "checkpoint_sha256": self._checkpoint_hash(),
            "pooling": self.pooling,
            "preprocessing": self.preprocessing(),
        }

    def _checkpoint_hash(self) -> str:
        cached = getattr(self, "_sha256", None)
        if cached is None or cached[0] != self.checkpoint:
            self._sha256 = (self.checkpoint, checkpoint_sha256(self.checkpoint))
        return self._sha256[1]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["model_"] = None
        return state


def _coerce(default: Any, value: Any) -> Any:
    if isinstance(value, str) and default is not None and not isinstance(default, str):
        if isinstance(default, bool):
            return value.lower() in ("1", "true", "yes", "on")
        return type(default)(value)
    return value


def resolve_path(cell: str, base: Path, name: str) -> Path:
    """A manifest path, relative to the manifest's folder; MediaError if absent."""
    path = Path(cell).expanduser()
    if not path.is_absolute():
        path = base / path
    if not path.exists():
        raise MediaError(f"{name}: media file {path} does not exist.")
    return path


def register_backbone(cls: type[Backbone]) -> type[Backbone]:
    """Class decorator adding a backbone to the registry under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name.")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def available_backbones() -> list[str]:
    """Names of the registered backbones."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_backbone(name: str) -> Callable[..., Backbone]:
    """The backbone class registered under ``name``."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown backbone {name!r}; available: {sorted(_REGISTRY)}."
        ) from None
