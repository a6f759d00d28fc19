"""BEATs audio encoder (Chen et al., 2022) in plain PyTorch, for Ola's speech path.

No maintained library ships BEATs, so this is a re-implementation of its feature path
(what Ola calls: features only, no padding mask, no label predictor) that loads the
official checkpoints, e.g. ``BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt``: a
``torch.save`` of ``{"cfg": {...}, "model": state_dict}``. Module and parameter names
follow the checkpoint, so its state dict loads strictly after three renames:

=========================================================  ============================
checkpoint                                                 here
=========================================================  ============================
``predictor.*`` (AudioSet classifier of fine-tuned models)  dropped
``encoder.layers.{i>0}.self_attn.relative_attention_bias``  dropped (a copy of layer 0's:
                                                           the table is shared)
``encoder.pos_conv.0.parametrizations.weight.original0/1``  ``weight_g``/``weight_v``
(a checkpoint re-saved with torch's new weight norm)
=========================================================  ============================

Architecture (post-LN, or pre-LN if ``layer_norm_first``): 16x16 patches of the
128-bin Kaldi fbank (``(fbank - 15.41663) / (2 * 6.55582)``, input scaled by 2**15)
-> LayerNorm -> optional Linear to the encoder width -> a weight-normalised grouped
convolutional position embedding -> LayerNorm -> blocks of self-attention with a
shared T5-style bucketed relative position bias, gated per query (``gru_rel_pos``),
residuals scaled by ``(2 * layers) ** 0.25`` under ``deep_norm``. Tokens come out in
time-major order (time patch, then frequency patch). The official code computes
attention as ``softmax((q k^T / sqrt(d) - max) * 32 / 32 + bias)`` for float16 range;
here it is the same softmax through ``scaled_dot_product_attention``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ._base import load_strict
from ._media import log_fbank

FBANK_MEAN = 15.41663
FBANK_STD = 6.55582
SAMPLE_RATE = 16000

# BEATsConfig defaults of the official code; a checkpoint's "cfg" overrides them.
BEATS_DEFAULTS: dict[str, Any] = {
    "input_patch_size": 16,
    "embed_dim": 512,
    "conv_bias": False,
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "layer_norm_first": False,
    "deep_norm": False,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "relative_position_embedding": False,
    "num_buckets": 320,
    "max_distance": 1280,
    "gru_rel_pos": False,
}


def beats_fbank(wav: torch.Tensor | Any) -> torch.Tensor:
    """16 kHz mono waveform in [-1, 1] -> normalised (n_frames, 128) BEATs input."""
    x = torch.as_tensor(wav, dtype=torch.float32) * 2**15
    fb = log_fbank(x, SAMPLE_RATE, num_mel_bins=128, window="povey")
    return (fb - FBANK_MEAN) / (2 * FBANK_STD)


def relative_buckets(
    relative: torch.Tensor, num_buckets: int, max_distance: int
) -> torch.Tensor:
    """Bidirectional T5-style buckets: half the buckets per direction, exact up to a
    quarter of them, logarithmic up to ``max_distance``, the last bucket beyond."""
    half = num_buckets // 2
    out = (relative > 0).long() * half
    dist = relative.abs()
    exact = half // 2
    log_part = torch.log(dist.clamp(min=1).float() / exact) / math.log(
        max_distance / exact
    )
    large = (exact + (log_part * (half - exact)).long()).clamp(max=half - 1)
    return out + torch.where(dist < exact, dist, large)


class _WeightNormConv1d(nn.Module):
    """Grouped Conv1d whose kernel is ``weight_g * weight_v / ||weight_v||``, the norm
    taken over all axes but the kernel axis (torch's ``weight_norm(dim=2)``)."""

    def __init__(self, channels: int, kernel: int, groups: int):
        super().__init__()
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(
            torch.randn(channels, channels // groups, kernel) * 0.02
        )
        self.bias = nn.Parameter(torch.zeros(channels))
        self.groups = groups
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = self.weight_v.norm(dim=(0, 1), keepdim=True)
        weight = self.weight_g * self.weight_v / norm
        return F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)


class _TrimLast(nn.Module):
    """Drop the last time step (an even kernel with padding k // 2 adds one)."""

    def __init__(self, kernel: int):
        super().__init__()
        self.trim = 1 if kernel % 2 == 0 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., : x.shape[-1] - self.trim]


class BEATsAttention(nn.Module):
    """Self-attention with an optional bucketed relative position bias, gated per
    query when ``gru_rel_pos`` (parameters ``grep_linear``, ``grep_a``)."""

    def __init__(self, dim: int, heads: int, cfg: dict[str, Any], has_table: bool):
        super().__init__()
        if dim % heads:
            raise ValueError(f"BEATs width {dim} is not divisible by {heads} heads.")
        self.heads, self.head_dim = heads, dim // heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.num_buckets = cfg["num_buckets"]
        self.max_distance = cfg["max_distance"]
        if has_table:
            self.relative_attention_bias = nn.Embedding(self.num_buckets, heads)
        self.gated = bool(cfg["gru_rel_pos"]) and cfg["relative_position_embedding"]
        if self.gated:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))

    def position_bias(self, length: int) -> torch.Tensor:
        """(heads, length, length) bias from the bucket table."""
        pos = torch.arange(length, device=self.relative_attention_bias.weight.device)
        buckets = relative_buckets(
            pos[None, :] - pos[:, None], self.num_buckets, self.max_distance
        )
        return self.relative_attention_bias(buckets).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        b, n, c = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        mask = None
        if bias is not None:
            mask = bias[None].to(q.dtype)
            if self.gated:
                gate = self.grep_linear(q).view(b, self.heads, n, 2, 4).sum(-1)
                gate_a, gate_b = torch.sigmoid(gate).chunk(2, dim=-1)
                mask = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * mask
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, c))


class BEATsLayer(nn.Module):
    """Attention + feed-forward block, post-LN (deep-norm residual scaling) or pre-LN."""

    def __init__(self, cfg: dict[str, Any], has_table: bool):
        super().__init__()
        dim = cfg["encoder_embed_dim"]
        self.self_attn = BEATsAttention(
            dim, cfg["encoder_attention_heads"], cfg, has_table
        )
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, cfg["encoder_ffn_embed_dim"])
        self.fc2 = nn.Linear(cfg["encoder_ffn_embed_dim"], dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.pre_norm = bool(cfg["layer_norm_first"])
        self.alpha = (2 * cfg["encoder_layers"]) ** 0.25 if cfg["deep_norm"] else 1.0
        self.relu = cfg["activation_fn"] == "relu"

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        h = F.relu(h) if self.relu else F.gelu(h.float()).type_as(h)
        return self.fc2(h)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.self_attn(self.self_attn_layer_norm(x), bias)
            return x + self._ffn(self.final_layer_norm(x))
        x = self.self_attn_layer_norm(x * self.alpha + self.self_attn(x, bias))
        return self.final_layer_norm(x * self.alpha + self._ffn(x))


class BEATsEncoder(nn.Module):
    """Convolutional position embedding, LayerNorm and the attention blocks."""

    def __init__(self, cfg: dict[str, Any]):
        super().__init__()
        dim, kernel = cfg["encoder_embed_dim"], cfg["conv_pos"]
        self.pos_conv = nn.Sequential(
            _WeightNormConv1d(dim, kernel, cfg["conv_pos_groups"]),
            _TrimLast(kernel),
            nn.GELU(),
        )
        self.layer_norm = nn.LayerNorm(dim)
        rel = bool(cfg["relative_position_embedding"])
        self.layers = nn.ModuleList(
            BEATsLayer(cfg, has_table=rel and i == 0)
            for i in range(cfg["encoder_layers"])
        )
        self.relative = rel
        self.pre_norm = bool(cfg["layer_norm_first"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.pre_norm:
            x = self.layer_norm(x)
        bias = (
            self.layers[0].self_attn.position_bias(x.shape[1])
            if self.relative
            else None
        )
        for layer in self.layers:
            x = layer(x, bias)
        return self.layer_norm(x) if self.pre_norm else x


class BEATs(nn.Module):
    """BEATs feature extractor: (B, n_frames, 128) fbank -> (B, tokens, width).

    Parameters
    ----------
    cfg : dict
        The checkpoint's ``cfg`` (missing keys take :data:`BEATS_DEFAULTS`).
    """

    def __init__(self, cfg: dict[str, Any]):
        super().__init__()
        cfg = {**BEATS_DEFAULTS, **cfg}
        if cfg["activation_fn"] not in ("gelu", "relu"):
            raise ValueError(
                f"BEATs activation_fn {cfg['activation_fn']!r} is not supported "
                "(only 'gelu' and 'relu')."
            )
        self.cfg = cfg
        patch, embed = cfg["input_patch_size"], cfg["embed_dim"]
        self.patch_embedding = nn.Conv2d(
            1, embed, kernel_size=patch, stride=patch, bias=bool(cfg["conv_bias"])
        )
        self.layer_norm = nn.LayerNorm(embed)
        self.post_extract_proj = (
            nn.Linear(embed, cfg["encoder_embed_dim"])
            if embed != cfg["encoder_embed_dim"]
            else None
        )
        self.encoder = BEATsEncoder(cfg)

    @property
    def width(self) -> int:
        return int(self.cfg["encoder_embed_dim"])

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        x = self.patch_embedding(fbank[:, None])
        x = self.layer_norm(x.flatten(2).transpose(1, 2))
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        return self.encoder(x)


def _beats_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        if key.startswith("predictor."):
            continue
        if ".self_attn.relative_attention_bias." in key and not key.startswith(
            "encoder.layers.0."
        ):
            continue
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        key = key.replace(".parametrizations.weight.original1", ".weight_v")
        out[key] = value
    return out


def load_beats(path: str | Path, name: str = "BEATs") -> BEATs:
    """Build BEATs from an official checkpoint (``{"cfg": ..., "model": ...}``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name}: checkpoint {path} does not exist.")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not (isinstance(ckpt, dict) and "cfg" in ckpt and "model" in ckpt):
        raise ValueError(
            f"{name}: {path} is not a BEATs checkpoint (expected a dict with 'cfg' "
            "and 'model', as the official BEATs_*.pt files)."
        )
    with torch.device("meta"):
        model = BEATs(dict(ckpt["cfg"]))
    state = {k: v.float() for k, v in _beats_state(ckpt["model"]).items()}
    load_strict(model, state, name, path, assign=True)
    return model
