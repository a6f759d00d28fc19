"""ResNet-18 backbones: torchvision-compatible names, loading, image/video/audio."""

import re

import numpy as np
import pytest
import torch

from sklearn_modeq.extract import get_backbone
from sklearn_modeq.extract.resnet import ResNet18

# torchvision.models.resnet18().state_dict() key names (first/last and a downsample)
TORCHVISION_KEYS = {
    "conv1.weight",
    "bn1.weight",
    "bn1.bias",
    "bn1.running_mean",
    "bn1.running_var",
    "bn1.num_batches_tracked",
    "layer1.0.conv1.weight",
    "layer1.1.bn2.running_var",
    "layer2.0.downsample.0.weight",
    "layer2.0.downsample.1.running_mean",
    "layer4.1.conv2.weight",
    "layer4.1.bn2.bias",
    "fc.weight",
    "fc.bias",
}


def test_state_dict_names_match_torchvision():
    keys = set(ResNet18().state_dict())
    assert TORCHVISION_KEYS <= keys
    assert len(keys) == 122  # torchvision resnet18 has 122 state-dict entries
    assert sum(p.numel() for p in ResNet18().parameters()) == 11_689_512


def test_torchvision_checkpoint_loads_strictly_if_available(tmp_path):
    tv = pytest.importorskip("torchvision", reason="torchvision does not import here")
    torch.manual_seed(0)
    reference = tv.models.resnet18().eval()
    path = tmp_path / "tv_resnet18.pth"
    torch.save(reference.state_dict(), path)
    bb = get_backbone("resnet18")(str(path)).load()
    x = torch.randn(2, 3, 224, 224)
    reference.fc = torch.nn.Identity()
    with torch.no_grad():
        np.testing.assert_allclose(
            bb.embed((x, torch.tensor([1, 1]))), reference(x), rtol=1e-4, atol=1e-5
        )


def test_image_backbone_loads_checkpoint_and_embeds(media, resnet_ckpt):
    bb = get_backbone("resnet18")(str(resnet_ckpt), image_size=32, resize=32).load()
    assert bb.dim_ == 64
    ref = ResNet18(3, 8, 10)
    ref.load_state_dict(torch.load(resnet_ckpt))
    ref.eval()
    x = bb.collate(
        [bb.preprocess(bb.read(f"img/{i}.png", media.parent)) for i in range(3)]
    )
    emb = bb.embed(x)
    assert emb.shape == (3, 64)
    with torch.no_grad():
        np.testing.assert_allclose(
            emb, ref.forward_features(x[0]), rtol=1e-5, atol=1e-6
        )


def test_video_frames_are_sampled_and_averaged(media, resnet_ckpt, tmp_path):
    bb = get_backbone("resnet18")(str(resnet_ckpt), image_size=32, frames=2).load()
    clip = tmp_path / "clip"
    clip.mkdir()
    for k, i in enumerate([0, 1, 2, 4]):
        (clip / f"f{k}.png").write_bytes((media.parent / f"img/{i}.png").read_bytes())
    video = bb.embed(bb.collate([bb.preprocess(clip)]))
    # 2 of 4 frames: the centres of two halves are frames 1 and 3 (images 1 and 4)
    singles = bb.embed(
        bb.collate([bb.preprocess(media.parent / f"img/{i}.png") for i in (1, 4)])
    )
    np.testing.assert_allclose(video[0], singles.mean(0), rtol=1e-5, atol=1e-6)
    listing = tmp_path / "clip.txt"
    listing.write_text("clip/f1.png\nclip/f3.png\n")
    np.testing.assert_allclose(
        bb.embed(bb.collate([bb.preprocess(listing)])), video, rtol=1e-5, atol=1e-6
    )


def test_audio_backbone_averages_rgb_conv1(media, resnet_ckpt):
    bb = get_backbone("resnet18-audio")(str(resnet_ckpt), seconds=0.5).load()
    assert bb.model_.conv1.weight.shape[1] == 1
    x = bb.preprocess(media.parent / "wav/0.wav")
    assert x.shape == (1, 128, 50)
    emb = bb.embed(bb.collate([x, bb.preprocess(media.parent / "wav/1.wav")]))
    assert emb.shape == (2, 64) and torch.isfinite(emb).all()


def test_wrong_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.pth"
    torch.save(
        {
            "conv1.weight": torch.zeros(8, 3, 7, 7),
            "fc.weight": torch.zeros(2, 64),
            "extra.weight": torch.zeros(1),
        },
        path,
    )
    with pytest.raises(ValueError, match=re.escape("is not a ResNet-18 checkpoint")):
        get_backbone("resnet18")(str(path)).load()
    with pytest.raises(ValueError, match="needs a checkpoint"):
        get_backbone("resnet18")().load()


def test_unknown_option_lists_the_known_ones():
    with pytest.raises(ValueError, match=re.escape("has no option 'size'")):
        get_backbone("resnet18")("x.pth", size=3)
