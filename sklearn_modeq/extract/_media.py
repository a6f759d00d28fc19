"""Decoding media (images, frame folders, WAV audio, text) and audio features.

Everything here is plain numpy/torch plus Pillow for images; WAV files are read with
``soundfile`` when installed, otherwise with the standard ``wave`` module (PCM).
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import torch

from ._base import MediaError, require

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ------------------------------------------------------------------- images
def open_image(path: Path):
    """A decoded RGB ``PIL.Image`` (MediaError if the file cannot be read)."""
    Image = require("PIL.Image")
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError) as exc:
        raise MediaError(f"cannot decode image {path}: {exc}") from exc


def load_image(path: Path, size: int, mean, std, resize: int | None = None):
    """RGB image -> (3, size, size) float tensor: resize shorter side, center-crop,
    scale to [0, 1], normalise by ``mean``/``std`` (bicubic resampling)."""
    Image = require("PIL.Image")
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            w, h = img.size
            short = resize or size
            scale = short / min(w, h)
            nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
            img = img.resize((nw, nh), Image.BICUBIC)
            left, top = (nw - size) // 2, (nh - size) // 2
            img = img.crop((left, top, left + size, top + size))
            arr = np.asarray(img, dtype=np.float32) / 255.0
    except (OSError, ValueError) as exc:
        raise MediaError(f"cannot decode image {path}: {exc}") from exc
    x = torch.from_numpy(arr).permute(2, 0, 1)
    m = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    s = torch.tensor(std, dtype=torch.float32)[:, None, None]
    return (x - m) / s


def frame_paths(path: Path) -> list[Path]:
    """Frames of a video given as a folder of images or a text file listing them."""
    if path.is_dir():
        frames = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    elif path.suffix.lower() in (".txt", ".lst"):
        lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
        frames = [p if p.is_absolute() else path.parent / p for p in map(Path, lines)]
    else:
        frames = [path]
    if not frames:
        raise MediaError(f"video {path} has no frames (expected image files).")
    return frames


def sample_frames(frames: list[Path], n: int) -> list[Path]:
    """``n`` frames spread uniformly over the clip (centres of n equal segments)."""
    if n <= 0 or len(frames) <= n:
        return frames
    idx = ((np.arange(n) + 0.5) * len(frames) / n).astype(int)
    return [frames[i] for i in idx]


# -------------------------------------------------------------------- audio
def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 waveform in [-1, 1] and its sample rate."""
    try:
        sf = require("soundfile")
    except ImportError:
        sf = None
    try:
        if sf is not None:
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
            return data.mean(axis=1), int(rate)
        with wave.open(str(path), "rb") as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            raw = w.readframes(w.getnframes())
    except Exception as exc:  # soundfile raises its own error type
        raise MediaError(f"cannot decode audio {path}: {exc}") from exc
    if width == 1:
        data = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width in (2, 4):
        kind = np.int16 if width == 2 else np.int32
        data = np.frombuffer(raw, kind).astype(np.float32) / float(2 ** (8 * width - 1))
    else:
        raise MediaError(
            f"cannot decode audio {path}: {8 * width}-bit PCM needs soundfile "
            "(pip install soundfile)."
        )
    return data.reshape(-1, channels).mean(axis=1), rate


def resample(wav: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Band-limited resampling by zero-padding/truncating the spectrum."""
    if rate == target or len(wav) == 0:
        return wav.astype(np.float32)
    n_out = max(1, round(len(wav) * target / rate))
    spec = np.fft.rfft(wav.astype(np.float64))
    keep = n_out // 2 + 1
    out_spec = np.zeros(keep, dtype=complex)
    m = min(keep, len(spec))
    out_spec[:m] = spec[:m]
    return (np.fft.irfft(out_spec, n_out) * (n_out / len(wav))).astype(np.float32)


def _mel(freq):
    return 1127.0 * torch.log1p(freq / 700.0)


def mel_filterbank(num_bins: int, n_fft: int, rate: int, low: float, high: float):
    """Triangular filters, equally spaced on the mel scale 1127 ln(1 + f/700),
    as a (num_bins, n_fft // 2 + 1) matrix (the Nyquist column is zero, as Kaldi)."""
    if high <= 0:
        high = rate / 2 + high
    mel_low, mel_high = _mel(torch.tensor(low)), _mel(torch.tensor(high))
    delta = (mel_high - mel_low) / (num_bins + 1)
    left = mel_low + torch.arange(num_bins) * delta
    center, right = left + delta, left + 2 * delta
    fft_mel = _mel(torch.arange(n_fft // 2) * (rate / n_fft))[None, :]
    up = (fft_mel - left[:, None]) / (center - left)[:, None]
    down = (right[:, None] - fft_mel) / (right - center)[:, None]
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return torch.nn.functional.pad(banks, (0, 1))


def log_fbank(
    wav: np.ndarray,
    rate: int,
    num_mel_bins: int = 128,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
    preemphasis: float = 0.97,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    window: str = "hanning",
) -> torch.Tensor:
    """Kaldi-style log mel filterbank energies, shape (n_frames, num_mel_bins).

    Follows the recipe CAV-MAE (and AST) compute with Kaldi's ``fbank``: frames with
    edges snipped, DC offset removed, pre-emphasis, a symmetric Hann window, FFT size
    the next power of two, power spectrum, mel filters, natural log floored at the
    float32 epsilon. A clip shorter than one frame gives a single frame of zeros.
    ``window="povey"`` (the symmetric Hann window to the power 0.85, Kaldi's
    default, which BEATs uses) replaces the Hann window.
    """
    if window not in ("hanning", "povey"):
        raise ValueError(f"window must be 'hanning' or 'povey'; got {window!r}.")
    x = torch.as_tensor(wav, dtype=torch.float32)
    length = int(rate * frame_length_ms / 1000)
    shift = int(rate * frame_shift_ms / 1000)
    n_fft = 1 << math.ceil(math.log2(length))
    if len(x) < length:
        x = torch.nn.functional.pad(x, (0, length - len(x)))
    frames = x.unfold(0, length, shift)
    frames = frames - frames.mean(dim=1, keepdim=True)
    prev = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - preemphasis * prev
    win = torch.hann_window(length, periodic=False)
    frames = frames * (win.pow(0.85) if window == "povey" else win)
    power = torch.fft.rfft(frames, n=n_fft).abs() ** 2
    banks = mel_filterbank(num_mel_bins, n_fft, rate, low_freq, high_freq)
    mel = power @ banks.T
    return torch.log(torch.clamp(mel, min=torch.finfo(torch.float32).eps))


def fit_frames(fbank: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Zero-pad or crop a (T, F) spectrogram to exactly ``n_frames`` frames."""
    t = fbank.shape[0]
    if t < n_frames:
        return torch.nn.functional.pad(fbank, (0, 0, 0, n_frames - t))
    return fbank[:n_frames]


def audio_fbank(path: Path, rate: int, num_mel_bins: int, n_frames: int, mean, std):
    """WAV file -> normalised (n_frames, num_mel_bins) log-mel spectrogram."""
    wav, sr = read_wav(path)
    wav = resample(wav, sr, rate)
    fb = fit_frames(log_fbank(wav, rate, num_mel_bins), n_frames)
    return (fb - mean) / std


# --------------------------------------------------------------------- text
def read_text(cell: str, base: Path) -> str:
    """A manifest text cell: the contents of an existing ``.txt`` file, else itself."""
    if cell.lower().endswith(".txt"):
        path = Path(cell)
        path = path if path.is_absolute() else base / path
        if path.is_file():
            return path.read_text(encoding="utf-8").strip()
        raise MediaError(f"text file {path} does not exist.")
    return cell
