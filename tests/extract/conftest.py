"""Media made on the machine for the extractor tests: digits as PNG, tones as WAV,
captions as text, and tiny randomly initialised checkpoints."""

import csv
import wave

import numpy as np
import pytest
import torch

pytest.importorskip("PIL", reason="the extract extra (Pillow) is not installed")

TONES = (220.0, 440.0, 880.0)


def write_tone(path, freq, seconds=0.5, rate=16000, seed=0):
    """A sine tone with a little noise as 16-bit mono PCM, via the wave module."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.5 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.normal(size=len(t))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


def write_digit(path, image, size=32):
    from PIL import Image

    arr = (image / 16.0 * 255).astype(np.uint8)
    Image.fromarray(arr).resize((size, size), Image.NEAREST).convert("RGB").save(path)


def make_media(root, n=24, n_test=6, missing_text=(3,), missing_audio=(5,)):
    """Write n samples (digits 0-2) and a manifest.csv; return its path."""
    from sklearn.datasets import load_digits

    digits = load_digits(n_class=3)
    (root / "img").mkdir(parents=True, exist_ok=True)
    (root / "wav").mkdir(exist_ok=True)
    words = ("zero", "one", "two")
    rows = []
    for i in range(n):
        label = int(digits.target[i])
        write_digit(root / "img" / f"{i}.png", digits.images[i])
        write_tone(root / "wav" / f"{i}.wav", TONES[label], seed=i)
        rows.append(
            {
                "id": f"d{i:03d}",
                "label": label,
                "split": "test" if i >= n - n_test else "train",
                "visual": f"img/{i}.png",
                "audio": "" if i in missing_audio else f"wav/{i}.wav",
                "text": "" if i in missing_text else f"a handwritten {words[label]}",
            }
        )
    path = root / "manifest.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    return make_media(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="session")
def resnet_ckpt(tmp_path_factory):
    """A width-8 ResNet-18 (RGB) with random weights and BN statistics."""
    from sklearn_modeq.extract.resnet import ResNet18

    torch.manual_seed(0)
    model = ResNet18(3, width=8, num_classes=10)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("ckpt") / "resnet18_tiny.pth"
    torch.save(model.state_dict(), path)
    return path
