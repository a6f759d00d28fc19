"""ResNet-18 in plain torch, with torchvision's parameter names, and its backbones.

``resnet18``: images, or videos given as a folder of frames / a ``.txt`` list of
frame paths (frames sampled uniformly and their embeddings averaged).
``resnet18-audio``: WAV audio as a 1-channel log-mel spectrogram image (the CREMA-D
and Kinetics-Sounds setup of the paper's baselines).

The width and input channels are read from the checkpoint, so torchvision's
``resnet18`` state dict loads with ``strict=True``, and so does a narrow test model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ._base import Backbone, load_strict, load_torch_state, register_backbone
from ._media import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    audio_fbank,
    frame_paths,
    load_image,
    sample_frames,
)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (torchvision naming)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18 (He et al. 2016) with torchvision's module names.

    Parameters
    ----------
    in_channels : int, default=3
        3 for RGB, 1 for spectrograms.
    width : int, default=64
        Channels of the stem; stages have width, 2w, 4w, 8w (64 is the real model).
    num_classes : int, default=1000
        Outputs of ``fc`` (unused for embeddings, kept so checkpoints load).
    """

    def __init__(self, in_channels: int = 3, width: int = 64, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        planes = [width, 2 * width, 4 * width, 8 * width]
        in_planes = width
        for i, p in enumerate(planes):
            stride = 1 if i == 0 else 2
            layer = nn.Sequential(BasicBlock(in_planes, p, stride), BasicBlock(p, p))
            setattr(self, f"layer{i + 1}", layer)
            in_planes = p
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8 * width, num_classes)
        self.embed_dim = 8 * width

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled output of ``layer4``, shape (B, 8 * width)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


def resnet18_from_state(
    state: dict[str, torch.Tensor], in_channels: int | None = None
) -> ResNet18:
    """Build a ResNet18 shaped like ``state`` and load it strictly.

    When ``in_channels`` differs from the checkpoint's (an ImageNet RGB model used on
    1-channel spectrograms), ``conv1`` is averaged over its input channels.
    """
    conv1 = state["conv1.weight"]
    width, ckpt_in = conv1.shape[0], conv1.shape[1]
    in_channels = ckpt_in if in_channels is None else in_channels
    if in_channels != ckpt_in:
        state = dict(state)
        state["conv1.weight"] = conv1.mean(dim=1, keepdim=True).repeat(
            1, in_channels, 1, 1
        )
    model = ResNet18(in_channels, width, state["fc.weight"].shape[0])
    load_strict(model, state, "resnet18", "<state dict>")
    return model


class _ResNetBackbone(Backbone):
    in_channels = 3

    def build(self) -> ResNet18:
        if not self.checkpoint:
            raise ValueError(
                f"backbone {self.name!r} needs a checkpoint (torchvision's "
                "resnet18 state dict, e.g. resnet18-f37072fd.pth); nothing is "
                "downloaded. Use --backbone MODALITY=resnet18:/path/to/weights.pth."
            )
        state = load_torch_state(self.checkpoint, self.name)
        try:
            model = resnet18_from_state(state, self.in_channels)
        except (KeyError, ValueError) as exc:
            raise ValueError(
                f"{self.name}: {self.checkpoint} is not a ResNet-18 checkpoint ({exc})."
            ) from exc
        self.dim_ = model.embed_dim
        return model


@register_backbone
class ResNet18Visual(_ResNetBackbone):
    """ResNet-18 on images or video frames; pooled 512-d ``layer4`` features.

    Options: ``image_size`` (crop, default 224), ``resize`` (shorter side before the
    crop, default 256), ``frames`` (frames sampled per video, default 3).
    """

    name = "resnet18"
    media = "image file, or video as a frame folder / .txt list of frames"
    pooling = "global average pool of layer4; mean over sampled frames"
    options = {"image_size": 224, "resize": 256, "frames": 3}

    def preprocess(self, source: Path) -> torch.Tensor:
        frames = sample_frames(frame_paths(source), self.opts["frames"])
        return torch.stack(
            [
                load_image(
                    f,
                    self.opts["image_size"],
                    IMAGENET_MEAN,
                    IMAGENET_STD,
                    self.opts["resize"],
                )
                for f in frames
            ]
        )

    def collate(self, items):
        counts = torch.tensor([len(x) for x in items])
        return torch.cat(list(items)), counts

    def forward(self, batch) -> torch.Tensor:
        frames, counts = batch
        feats = self.model_.forward_features(frames.to(self.device))
        owner = torch.repeat_interleave(torch.arange(len(counts)), counts)
        out = torch.zeros(
            len(counts), feats.shape[1], device=feats.device, dtype=feats.dtype
        )
        out.index_add_(0, owner.to(feats.device), feats)
        return out / counts.to(feats.device, feats.dtype)[:, None]


@register_backbone
class ResNet18Audio(_ResNetBackbone):
    """ResNet-18 on a WAV file's log-mel spectrogram as a 1-channel image.

    Options: ``sample_rate`` (16000), ``num_mel_bins`` (128), ``seconds`` (clip length
    after zero-padding/cropping, 3.0), ``mean``/``std`` (normalisation of the log-mel
    values, defaults -5.081/4.485 as CAV-MAE's AudioSet statistics). An RGB checkpoint
    gets its ``conv1`` averaged over channels.
    """

    name = "resnet18-audio"
    media = "WAV audio"
    pooling = "global average pool of layer4"
    options = {
        "sample_rate": 16000,
        "num_mel_bins": 128,
        "seconds": 3.0,
        "mean": -5.081,
        "std": 4.4849,
    }
    in_channels = 1

    def preprocess(self, source: Path) -> torch.Tensor:
        o = self.opts
        fb = audio_fbank(
            source,
            o["sample_rate"],
            o["num_mel_bins"],
            int(round(o["seconds"] * 100)),
            o["mean"],
            o["std"],
        )
        return fb.T.unsqueeze(0)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.model_.forward_features(batch.to(self.device))
