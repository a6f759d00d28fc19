"""Media decoding: WAV reading, resampling, Kaldi-style log-mel, frames, text."""

import numpy as np
import pytest
import torch

from sklearn_modeq.extract import MediaError
from sklearn_modeq.extract._media import (
    frame_paths,
    log_fbank,
    mel_filterbank,
    read_text,
    read_wav,
    resample,
    sample_frames,
)

from .conftest import write_tone


def test_read_wav_roundtrip(tmp_path):
    write_tone(tmp_path / "t.wav", 440.0, seconds=0.25, rate=8000)
    wav, rate = read_wav(tmp_path / "t.wav")
    assert rate == 8000 and wav.shape == (2000,) and wav.dtype == np.float32
    assert 0.45 < np.abs(wav).max() < 0.56


def test_resample_keeps_the_tone():
    rate, target = 8000, 16000
    t = np.arange(rate) / rate
    x = np.sin(2 * np.pi * 300 * t)
    y = resample(x, rate, target)
    assert len(y) == target
    freqs = np.fft.rfftfreq(len(y), 1 / target)
    assert abs(freqs[np.abs(np.fft.rfft(y)).argmax()] - 300) < 2


def test_filterbank_is_triangular_and_covers_the_band():
    banks = mel_filterbank(40, 512, 16000, 20.0, 0.0)
    assert banks.shape == (40, 257)
    assert torch.all(banks >= 0) and torch.all(banks <= 1)
    assert torch.all(banks[:, -1] == 0)
    assert torch.all(banks.sum(1) > 0)


@pytest.mark.parametrize("freq", [300.0, 1000.0, 3000.0])
def test_log_fbank_peaks_at_the_tone(freq):
    rate = 16000
    t = np.arange(rate // 2) / rate
    fb = log_fbank(np.sin(2 * np.pi * freq * t), rate, num_mel_bins=64)
    assert fb.shape == (48, 64)  # 1 + (8000 - 400) // 160 frames
    peak = int(fb.mean(0).argmax())
    banks = mel_filterbank(64, 512, rate, 20.0, 0.0)
    centre = float(banks[peak].argmax()) * rate / 512
    assert abs(centre - freq) / freq < 0.1


def test_short_clip_gives_one_frame():
    assert log_fbank(np.zeros(10), 16000).shape == (1, 128)


def test_frames_from_folder_and_list(tmp_path):
    for i in range(5):
        (tmp_path / f"f{i}.png").write_bytes(b"")
    (tmp_path / "notes.md").write_text("x")
    frames = frame_paths(tmp_path)
    assert [f.name for f in frames] == [f"f{i}.png" for i in range(5)]
    assert [f.name for f in sample_frames(frames, 2)] == ["f1.png", "f3.png"]
    with pytest.raises(MediaError, match="has no frames"):
        frame_paths(
            tmp_path / "empty_dir"
            if (tmp_path / "empty_dir").mkdir() is None
            else tmp_path
        )


def test_text_cell_is_file_or_literal(tmp_path):
    (tmp_path / "c.txt").write_text("a caption\n")
    assert read_text("c.txt", tmp_path) == "a caption"
    assert read_text("just words", tmp_path) == "just words"
    with pytest.raises(MediaError, match="does not exist"):
        read_text("missing.txt", tmp_path)


def test_log_fbank_matches_torchaudio_kaldi_if_available():
    kaldi = pytest.importorskip(
        "torchaudio.compliance.kaldi", reason="torchaudio does not import here"
    )
    rng = np.random.default_rng(0)
    rate = 16000
    t = np.arange(rate) / rate
    wav = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.normal(size=t.size)
    ours = log_fbank(wav, rate, num_mel_bins=128)
    ref = kaldi.fbank(
        torch.as_tensor(wav, dtype=torch.float32)[None],
        htk_compat=True,
        sample_frequency=rate,
        use_energy=False,
        window_type="hanning",
        num_mel_bins=128,
        dither=0.0,
        frame_shift=10,
    )
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-3, rtol=1e-3)
