"""Backbone extractors that turn raw media into the HDF5 embedding cache.

Run ``python -m sklearn_modeq.extract --help`` (console script ``modeq-extract``).
Backbones are registered by name (:func:`available_backbones`); each is a
:class:`Backbone` with ``load`` -> ``preprocess`` -> ``embed``. Heavy optional
dependencies (transformers, sentence-transformers, Pillow) are imported only by the
backbones that need them: ``pip install 'sklearn_modeq[extract]'``.
"""

from ._base import (
    Backbone,
    MediaError,
    available_backbones,
    checkpoint_sha256,
    get_backbone,
    register_backbone,
)
from ._run import Manifest, extract, read_manifest

__all__ = [
    "Backbone",
    "Manifest",
    "MediaError",
    "available_backbones",
    "checkpoint_sha256",
    "extract",
    "get_backbone",
    "read_manifest",
    "register_backbone",
]
