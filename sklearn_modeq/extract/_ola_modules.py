"""Ola's modality towers and projectors, built from its checkpoint tensors.

- :class:`OryxViT`: Oryx-ViT, the SigLIP-so400m-style ViT Ola sees images with
  (patch 16, no class token, no final norm or pooling head), at native resolution.
  Its blocks are transformers' ``SiglipEncoder``; the patch embedding and the
  bilinear resizing of the position table (Oryx's, not SigLIP's bicubic one) are here.
- Whisper's encoder is transformers' ``WhisperEncoder``; :func:`whisper_encoder`
  renames an OpenAI ``large-v3.pt`` (``dims`` + ``model_state_dict``) to it.
- :class:`OlaVisionProjector` (Ola's ``ola_mlp``) and :class:`OlaSpeechProjector`
  (Ola's ``linear`` speech projector, ``EncoderProjectorConcat``) exist in no library:
  written here with the checkpoint's parameter names.

Checkpoint names -> modules here (``i`` a block index):

================================================  ====================================
Oryx-ViT (timm names)                             :class:`OryxViT`
================================================  ====================================
``patch_embed.proj.{weight,bias}``                ``patch_embed.{weight,bias}``
``pos_embed`` (1, G*G, C)                         ``pos_embed``
``blocks.i.norm1`` / ``norm2``                    ``encoder.layers.i.layer_norm1`` / ``2``
``blocks.i.attn.qkv`` (rows: q, k, v)             ``encoder.layers.i.self_attn.{q,k,v}_proj``
``blocks.i.attn.proj``                            ``encoder.layers.i.self_attn.out_proj``
``blocks.i.mlp.fc1`` / ``fc2``                    ``encoder.layers.i.mlp.fc1`` / ``fc2``
``norm.*``, ``fc_norm.*``, ``attn_pool.*``,       dropped (Ola's tower has no head; it
``head.*``, ``downsample.*``                      runs with ``FORCE_NO_DOWNSAMPLE``)
================================================  ====================================

================================================  ====================================
Whisper (OpenAI names, ``encoder.`` prefix)        ``WhisperEncoder``
================================================  ====================================
``conv1``, ``conv2``                              same
``positional_embedding``                          ``embed_positions.weight``
``blocks.i.attn.{query,key,value,out}``           ``layers.i.self_attn.{q,k,v,out}_proj``
``blocks.i.attn_ln``                              ``layers.i.self_attn_layer_norm``
``blocks.i.mlp.0`` / ``mlp.2``                    ``layers.i.fc1`` / ``fc2``
``blocks.i.mlp_ln``                               ``layers.i.final_layer_norm``
``ln_post``                                       ``layer_norm``
``decoder.*``                                     dropped
================================================  ====================================

Projectors keep Ola's names under ``model.mm_projector.`` (``proj1``, ``proj2``,
``pooler.predictor.{0,2}``, ``image_newline``, ``image_begin``, ``image_end``,
``image_sep``) and ``model.speech_projector.`` (``linear1``, ``linear2``,
``speech_newline``, ``speech_begin``, ``speech_end``).
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ._base import load_strict, require

_VIT_DROPPED = ("norm.", "fc_norm.", "attn_pool.", "head.", "downsample.")
_VIT_RENAMES = (
    (r"^patch_embed\.proj\.", "patch_embed."),
    (r"^blocks\.(\d+)\.norm1\.", r"encoder.layers.\1.layer_norm1."),
    (r"^blocks\.(\d+)\.norm2\.", r"encoder.layers.\1.layer_norm2."),
    (r"^blocks\.(\d+)\.attn\.proj\.", r"encoder.layers.\1.self_attn.out_proj."),
    (r"^blocks\.(\d+)\.mlp\.", r"encoder.layers.\1.mlp."),
)
_QKV = re.compile(r"^blocks\.(\d+)\.attn\.qkv\.(weight|bias)$")

_WHISPER_RENAMES = (
    (r"^positional_embedding$", "embed_positions.weight"),
    (r"^blocks\.", "layers."),
    (r"\.attn\.query\.", ".self_attn.q_proj."),
    (r"\.attn\.key\.", ".self_attn.k_proj."),
    (r"\.attn\.value\.", ".self_attn.v_proj."),
    (r"\.attn\.out\.", ".self_attn.out_proj."),
    (r"\.attn_ln\.", ".self_attn_layer_norm."),
    (r"\.mlp\.0\.", ".fc1."),
    (r"\.mlp\.2\.", ".fc2."),
    (r"\.mlp_ln\.", ".final_layer_norm."),
    (r"^ln_post\.", "layer_norm."),
)


def _rename(key: str, rules) -> str:
    for pattern, repl in rules:
        key = re.sub(pattern, repl, key)
    return key


# ------------------------------------------------------------------ Oryx-ViT
class OryxViT(nn.Module):
    """Oryx-ViT: images of any size (multiples of the patch) -> (B, h, w, width).

    Parameters
    ----------
    width, depth, heads, mlp_dim, patch : int
    grid : int
        Side of the square position table (128 for Oryx: 2048 px / 16).
    """

    def __init__(
        self, width: int, depth: int, heads: int, mlp_dim: int, patch: int, grid: int
    ):
        super().__init__()
        transformers = require("transformers")
        from transformers.models.siglip.modeling_siglip import SiglipEncoder

        if width % heads:
            raise ValueError(
                f"Oryx-ViT width {width} is not divisible by vision_heads={heads}."
            )
        config = transformers.SiglipVisionConfig(
            hidden_size=width,
            intermediate_size=mlp_dim,
            num_hidden_layers=depth,
            num_attention_heads=heads,
            hidden_act="gelu",
            layer_norm_eps=1e-6,
            patch_size=patch,
        )
        config._attn_implementation = "sdpa"
        self.patch = patch
        self.grid = grid
        self.patch_embed = nn.Conv2d(3, width, kernel_size=patch, stride=patch)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid, width))
        self.encoder = SiglipEncoder(config)

    def positions(self, rows: int, cols: int) -> torch.Tensor:
        """(rows * cols, width): the position table resized bilinearly to the grid."""
        table = self.pos_embed[0]
        if (rows, cols) == (self.grid, self.grid):
            return table
        grid = table.T.reshape(1, -1, self.grid, self.grid)
        grid = F.interpolate(
            grid.float(), size=(rows, cols), mode="bilinear", align_corners=False
        )
        return grid.reshape(-1, rows * cols).T.to(table.dtype)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, H / patch, W / patch, width) (H, W padded up to it)."""
        h, w = pixels.shape[-2:]
        pixels = F.pad(pixels, (0, -w % self.patch, 0, -h % self.patch))
        x = self.patch_embed(pixels.to(self.patch_embed.weight.dtype))
        b, c, rows, cols = x.shape
        x = x.flatten(2).transpose(1, 2) + self.positions(rows, cols)
        x = self.encoder(inputs_embeds=x).last_hidden_state
        return x.reshape(b, rows, cols, c)


def oryx_vit_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an Oryx-ViT state dict (timm names) to :class:`OryxViT`'s."""
    out = {}
    for key, value in state.items():
        if key.startswith(_VIT_DROPPED):
            continue
        qkv = _QKV.match(key)
        if qkv:
            prefix = f"encoder.layers.{qkv.group(1)}.self_attn"
            for part, chunk in zip("qkv", value.chunk(3, dim=0)):
                out[f"{prefix}.{part}_proj.{qkv.group(2)}"] = chunk
            continue
        out[_rename(key, _VIT_RENAMES)] = value
    return out


def build_oryx_vit(
    state: dict[str, torch.Tensor], heads: int, name: str, path: Any
) -> OryxViT:
    """Oryx-ViT with the sizes read from its (timm-named) state dict."""
    for key in ("pos_embed", "patch_embed.proj.weight", "blocks.0.mlp.fc1.weight"):
        if key not in state:
            raise ValueError(
                f"{name}: the vision tower weights in {path} have no {key!r}; expected "
                "Oryx-ViT's timm names (patch_embed.proj, pos_embed, blocks.N...)."
            )
    n_pos, width = state["pos_embed"].shape[-2:]
    grid = math.isqrt(n_pos)
    if grid * grid != n_pos:
        raise ValueError(
            f"{name}: pos_embed of {path} has {n_pos} positions, not a square grid."
        )
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    with torch.device("meta"):
        model = OryxViT(
            width=width,
            depth=depth,
            heads=heads,
            mlp_dim=state["blocks.0.mlp.fc1.weight"].shape[0],
            patch=state["patch_embed.proj.weight"].shape[-1],
            grid=grid,
        )
    load_strict(model, oryx_vit_state(state), name, path, assign=True)
    return model


# ------------------------------------------------------------------- Whisper
def whisper_sinusoids(length: int, channels: int) -> torch.Tensor:
    """Whisper's fixed encoder positions: sines then cosines of geometric timescales."""
    step = math.log(10000) / (channels // 2 - 1)
    inv = torch.exp(-step * torch.arange(channels // 2, dtype=torch.float32))
    scaled = torch.arange(length, dtype=torch.float32)[:, None] * inv[None, :]
    return torch.cat([scaled.sin(), scaled.cos()], dim=1)


def whisper_encoder(ckpt: dict, name: str, path: Any):
    """transformers' ``WhisperEncoder`` from an OpenAI Whisper checkpoint dict."""
    transformers = require("transformers")
    if not (isinstance(ckpt, dict) and "dims" in ckpt and "model_state_dict" in ckpt):
        raise ValueError(
            f"{name}: {path} is not an OpenAI Whisper checkpoint (expected a dict with "
            "'dims' and 'model_state_dict', as large-v3.pt)."
        )
    dims = ckpt["dims"]
    state = {
        _rename(k[len("encoder.") :], _WHISPER_RENAMES): v
        for k, v in ckpt["model_state_dict"].items()
        if k.startswith("encoder.")
    }
    state.setdefault(
        "embed_positions.weight",
        whisper_sinusoids(dims["n_audio_ctx"], dims["n_audio_state"]),
    )
    config = transformers.WhisperConfig(
        num_mel_bins=dims["n_mels"],
        d_model=dims["n_audio_state"],
        encoder_layers=dims["n_audio_layer"],
        encoder_attention_heads=dims["n_audio_head"],
        encoder_ffn_dim=4 * dims["n_audio_state"],
        max_source_positions=dims["n_audio_ctx"],
        decoder_layers=1,
        decoder_attention_heads=1,
        activation_function="gelu",
    )
    config._attn_implementation = "sdpa"
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    with torch.device("meta"):
        encoder = WhisperEncoder(config)
    load_strict(encoder, state, name, path, assign=True)
    return encoder


# ---------------------------------------------------------------- projectors
class _DwPooler(nn.Module):
    """2x2 pooling with learnt per-channel softmax weights over the four cells (Ola's
    ``NormalizedDwPooler``): scores from each cell and the cell mean."""

    def __init__(self, dim: int):
        super().__init__()
        self.predictor = nn.Sequential(
            nn.Linear(2 * dim, dim), nn.GELU(), nn.Linear(dim, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        cells = x.reshape(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 2, 4, 5)
        cells = cells.reshape(b, h // 2, w // 2, 4, c)
        mean = cells.mean(dim=-2, keepdim=True).expand_as(cells)
        weights = self.predictor(torch.cat([cells, mean], dim=-1)).softmax(dim=-2)
        return (cells * weights).sum(dim=-2)


class OlaVisionProjector(nn.Module):
    """Ola's ``ola_mlp`` projector: ViT grid -> language-model tokens.

    A grid (h, w) becomes ``proj2(gelu(pool2x2(proj1(x))))``, (h/2, w/2) tokens, read
    row by row with ``image_newline`` after each row. An image is
    ``[image_begin, low-res rows, image_sep, high-res rows, image_end]``; a video is
    ``[image_begin, frame 1 rows, image_sep, ..., frame T rows, image_sep, image_end]``.
    """

    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.proj1 = nn.Linear(in_dim, dim)
        self.proj2 = nn.Linear(dim, dim)
        self.pooler = _DwPooler(dim)
        for token in ("image_newline", "image_begin", "image_end", "image_sep"):
            setattr(self, token, nn.Parameter(torch.zeros(dim)))

    def rows(self, grid: torch.Tensor) -> torch.Tensor:
        """(N, h, w, C) grids -> (N, h/2 * (w/2 + 1), dim) tokens."""
        if grid.shape[1] % 2 or grid.shape[2] % 2:
            raise ValueError(
                f"the vision grid {tuple(grid.shape[1:3])} must have even sides for "
                "Ola's 2x2 pooling."
            )
        x = self.proj2(F.gelu(self.pooler(self.proj1(grid))))
        n, h, w, d = x.shape
        newline = self.image_newline.to(x.dtype).expand(n, h, 1, d)
        return torch.cat([x, newline], dim=2).reshape(n, -1, d)

    def _wrap(self, *parts: torch.Tensor) -> torch.Tensor:
        dtype = parts[0].dtype
        return torch.cat(
            [self.image_begin[None].to(dtype), *parts, self.image_end[None].to(dtype)]
        )

    def image(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """Low- and high-resolution (1, h, w, C) grids -> (n_tokens, dim)."""
        low, high = self.rows(low)[0], self.rows(high)[0]
        return self._wrap(low, self.image_sep[None].to(low.dtype), high)

    def video(self, frames: torch.Tensor) -> torch.Tensor:
        """(T, h, w, C) frame grids -> (n_tokens, dim)."""
        x = self.rows(frames)
        sep = self.image_sep.to(x.dtype).expand(x.shape[0], 1, -1)
        return self._wrap(torch.cat([x, sep], dim=1).flatten(0, 1))


class OlaSpeechProjector(nn.Module):
    """Ola's speech projector: ``k`` consecutive encoder frames concatenated ->
    ``linear2(relu(linear1(.)))``, ``speech_newline`` after each 30 s chunk, and
    ``[speech_begin, ..., speech_end]`` around the whole clip."""

    def __init__(self, in_dim: int, k: int, hidden: int, dim: int):
        super().__init__()
        self.k = k
        self.linear1 = nn.Linear(in_dim * k, hidden)
        self.linear2 = nn.Linear(hidden, dim)
        for token in ("speech_newline", "speech_begin", "speech_end"):
            setattr(self, token, nn.Parameter(torch.zeros(dim)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(chunks, frames, in_dim) -> (n_tokens, dim)."""
        c, t, e = x.shape
        t -= t % self.k
        x = x[:, :t].reshape(c, t // self.k, e * self.k)
        x = self.linear2(F.relu(self.linear1(x)))
        newline = self.speech_newline.to(x.dtype).expand(c, 1, -1)
        x = torch.cat([x, newline], dim=1).flatten(0, 1)
        begin, end = self.speech_begin[None], self.speech_end[None]
        return torch.cat([begin.to(x.dtype), x, end.to(x.dtype)])
