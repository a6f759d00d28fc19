"""Synthetic media the extraction benchmarks feed their backbones."""

from __future__ import annotations

import wave

import numpy as np


def write_tone(path, freq: float, rng, seconds: float = 3.0, rate: int = 16000):
    """A sine tone of ``freq`` Hz with a little noise, as 16-bit mono PCM."""
    t = np.arange(int(seconds * rate)) / rate
    x = 0.5 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.normal(size=t.size)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((x * 32767).astype("<i2").tobytes())
