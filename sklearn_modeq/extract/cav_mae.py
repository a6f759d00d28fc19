"""CAV-MAE (Gong et al., ICLR 2023) audio / visual / audio-visual encoders.

Parameter names follow the official ``CAVMAE`` / ``CAVMAEFT`` modules
(``patch_embed_a.proj``, ``pos_embed_a``, ``modality_a``, ``blocks_a.{i}``,
``blocks_v.{i}``, ``blocks_u.{i}.norm1_a``, ``norm_a``, ...), so their released
``.pth`` files (saved from ``nn.DataParallel``, keys prefixed ``module.``) load
strictly; decoder and classification-head weights are ignored.

Backbones:

- ``cav-mae-audio``: WAV -> Kaldi log-mel (128 bins, 10 ms hop, padded/cropped to the
  checkpoint's length) -> audio branch -> shared blocks with the audio norms ->
  ``norm_a`` -> mean over tokens;
- ``cav-mae-visual``: image or frames -> visual branch -> ``norm_v`` -> mean (over
  tokens, then over sampled frames);
- ``cav-mae-av``: a cell ``audio.wav|frame.jpg`` -> both branches -> joint shared
  blocks -> ``norm`` -> mean over all tokens (the fine-tuning "multimodal" path).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ._base import (
    Backbone,
    MediaError,
    load_strict,
    load_torch_state,
    register_backbone,
    resolve_path,
)
from ._media import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    audio_fbank,
    frame_paths,
    load_image,
    sample_frames,
)
from ._vit import Attention, Mlp, sincos_2d

_IGNORED_PREFIXES = (
    "decoder_",
    "mask_token",
    "mlp_head",
)


class PatchEmbed(nn.Module):
    """Non-overlapping patches by a strided convolution (``proj``)."""

    def __init__(self, in_channels: int, dim: int, patch: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, patch, patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class CAVMAEBlock(nn.Module):
    """Transformer block with extra LayerNorms for audio-only / visual-only inputs."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        for suffix in ("", "_a", "_v"):
            setattr(self, f"norm1{suffix}", nn.LayerNorm(dim))
            setattr(self, f"norm2{suffix}", nn.LayerNorm(dim))
        self.attn = Attention(dim, num_heads)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, modality: str = "") -> torch.Tensor:
        suffix = f"_{modality}" if modality else ""
        x = x + self.attn(getattr(self, f"norm1{suffix}")(x))
        return x + self.mlp(getattr(self, f"norm2{suffix}")(x))


class CAVMAEEncoder(nn.Module):
    """The encoder half of CAV-MAE.

    Parameters
    ----------
    embed_dim : int, default=768
    depth : int, default=12
        Total blocks per path: ``modality_specific_depth`` in each branch, the rest
        shared (``blocks_u``).
    modality_specific_depth : int, default=11
    num_heads : int, default=12
    mlp_ratio : float, default=4.0
    img_size : int, default=224
    audio_length : int, default=1024
        Spectrogram frames (10 ms each).
    num_mel_bins : int, default=128
    patch_size : int, default=16
    """

    def __init__(
        self,
        embed_dim: int = 768,
        depth: int = 12,
        modality_specific_depth: int = 11,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        img_size: int = 224,
        audio_length: int = 1024,
        num_mel_bins: int = 128,
        patch_size: int = 16,
    ):
        super().__init__()
        self.audio_length, self.num_mel_bins = audio_length, num_mel_bins
        self.img_size = img_size
        n_a = (num_mel_bins // patch_size) * (audio_length // patch_size)
        n_v = (img_size // patch_size) ** 2
        self.patch_embed_a = PatchEmbed(1, embed_dim, patch_size)
        self.patch_embed_v = PatchEmbed(3, embed_dim, patch_size)
        self.modality_a = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.modality_v = nn.Parameter(torch.zeros(1, 1, embed_dim))
        grid_a = (num_mel_bins // patch_size, audio_length // patch_size)
        grid_v = (img_size // patch_size,) * 2
        self.pos_embed_a = nn.Parameter(sincos_2d(embed_dim, *grid_a)[None])
        self.pos_embed_v = nn.Parameter(sincos_2d(embed_dim, *grid_v)[None])
        assert self.pos_embed_a.shape[1] == n_a and self.pos_embed_v.shape[1] == n_v

        def blocks(k):
            return nn.ModuleList(
                CAVMAEBlock(embed_dim, num_heads, mlp_ratio) for _ in range(k)
            )

        self.blocks_a = blocks(modality_specific_depth)
        self.blocks_v = blocks(modality_specific_depth)
        self.blocks_u = blocks(depth - modality_specific_depth)
        self.norm_a = nn.LayerNorm(embed_dim)
        self.norm_v = nn.LayerNorm(embed_dim)
        self.norm = nn.LayerNorm(embed_dim)
        self.embed_dim = embed_dim

    def _tokens_a(self, fbank: torch.Tensor) -> torch.Tensor:
        a = self.patch_embed_a(fbank.unsqueeze(1).transpose(2, 3))
        a = a + self.pos_embed_a + self.modality_a
        for blk in self.blocks_a:
            a = blk(a)
        return a

    def _tokens_v(self, image: torch.Tensor) -> torch.Tensor:
        v = self.patch_embed_v(image) + self.pos_embed_v + self.modality_v
        for blk in self.blocks_v:
            v = blk(v)
        return v

    def forward_audio(self, fbank: torch.Tensor) -> torch.Tensor:
        """(B, audio_length, num_mel_bins) -> audio tokens after ``norm_a``."""
        a = self._tokens_a(fbank)
        for blk in self.blocks_u:
            a = blk(a, "a")
        return self.norm_a(a)

    def forward_visual(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, img_size, img_size) -> visual tokens after ``norm_v``."""
        v = self._tokens_v(image)
        for blk in self.blocks_u:
            v = blk(v, "v")
        return self.norm_v(v)

    def forward_joint(self, fbank: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Audio and visual tokens through the shared blocks together, then ``norm``."""
        x = torch.cat([self._tokens_a(fbank), self._tokens_v(image)], dim=1)
        for blk in self.blocks_u:
            x = blk(x)
        return self.norm(x)


def cav_mae_from_state(state: dict, num_heads: int | None = None, num_mel_bins=128):
    """Build a CAVMAEEncoder shaped like an official state dict and load it."""
    state = {k: v for k, v in state.items() if not k.startswith(_IGNORED_PREFIXES)}
    proj = state["patch_embed_a.proj.weight"]
    dim, patch = proj.shape[0], proj.shape[-1]

    def count(prefix):
        return len({k.split(".")[1] for k in state if k.startswith(prefix + ".")})

    specific, shared = count("blocks_a"), count("blocks_u")
    n_a, n_v = state["pos_embed_a"].shape[1], state["pos_embed_v"].shape[1]
    model = CAVMAEEncoder(
        embed_dim=dim,
        depth=specific + shared,
        modality_specific_depth=specific,
        num_heads=num_heads or max(1, dim // 64),
        mlp_ratio=state["blocks_a.0.mlp.fc1.weight"].shape[0] / dim,
        img_size=int(round(n_v**0.5)) * patch,
        audio_length=n_a // (num_mel_bins // patch) * patch,
        num_mel_bins=num_mel_bins,
        patch_size=patch,
    )
    load_strict(model, state, "cav-mae", "<state dict>")
    return model


class _CAVMAEBackbone(Backbone):
    pooling = "mean over tokens after the final LayerNorm"
    options = {
        "num_heads": 0,
        "sample_rate": 16000,
        "mean": -5.081,
        "std": 4.4849,
        "frames": 1,
    }

    def build(self) -> CAVMAEEncoder:
        if not self.checkpoint:
            raise ValueError(
                f"backbone {self.name!r} needs a local CAV-MAE checkpoint (.pth from "
                "the official model zoo); nothing is downloaded."
            )
        state = load_torch_state(self.checkpoint, self.name)
        try:
            model = cav_mae_from_state(state, self.opts["num_heads"] or None)
        except (KeyError, ValueError) as exc:
            raise ValueError(
                f"{self.name}: {self.checkpoint} is not a CAV-MAE checkpoint ({exc})."
            ) from exc
        self.dim_ = model.embed_dim
        self._audio_length = model.audio_length
        self._img_size = model.img_size
        return model

    def _fbank(self, path: Path) -> torch.Tensor:
        o = self.opts
        return audio_fbank(
            path, o["sample_rate"], 128, self._audio_length, o["mean"], o["std"]
        )

    def _frames(self, path: Path) -> torch.Tensor:
        frames = sample_frames(frame_paths(path), self.opts["frames"])
        return torch.stack(
            [load_image(f, self._img_size, IMAGENET_MEAN, IMAGENET_STD) for f in frames]
        )


@register_backbone
class CAVMAEAudio(_CAVMAEBackbone):
    """CAV-MAE audio encoder on WAV files (see module docstring)."""

    name = "cav-mae-audio"
    media = "WAV audio"

    def preprocess(self, source: Path) -> torch.Tensor:
        return self._fbank(source)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.model_.forward_audio(batch.to(self.device)).mean(dim=1)


@register_backbone
class CAVMAEVisual(_CAVMAEBackbone):
    """CAV-MAE visual encoder on images / frame folders (see module docstring)."""

    name = "cav-mae-visual"
    media = "image file, or video as a frame folder / .txt list of frames"

    def preprocess(self, source: Path) -> torch.Tensor:
        return self._frames(source)

    def collate(self, items):
        return torch.cat(list(items)), torch.tensor([len(x) for x in items])

    def forward(self, batch) -> torch.Tensor:
        frames, counts = batch
        tokens = self.model_.forward_visual(frames.to(self.device)).mean(dim=1)
        return torch.stack([t.mean(0) for t in tokens.split(counts.tolist())])


@register_backbone
class CAVMAEAudioVisual(_CAVMAEBackbone):
    """Joint CAV-MAE embedding of ``audio.wav|frame.jpg`` pairs (one frame)."""

    name = "cav-mae-av"
    media = "'audio.wav|frame image' pair"

    def read(self, cell: str, base: Path):
        parts = cell.split("|")
        if len(parts) != 2:
            raise MediaError(
                f"{self.name}: expected 'audio.wav|frame.jpg', got {cell!r}."
            )
        return tuple(resolve_path(p.strip(), base, self.name) for p in parts)

    def preprocess(self, source):
        audio, frames = source
        return self._fbank(audio), self._frames(frames)[0]

    def collate(self, items):
        return torch.stack([a for a, _ in items]), torch.stack([v for _, v in items])

    def forward(self, batch) -> torch.Tensor:
        a, v = batch
        return self.model_.forward_joint(a.to(self.device), v.to(self.device)).mean(1)
