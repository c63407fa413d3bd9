"""What the smoke checks share. Only the standard library, numpy and soundfile here:
the suite runs inside any cell, whatever torch or stack it has."""

from __future__ import annotations

import math
import os

import numpy as np


class CorruptOutput(AssertionError):
    """A write that returned normally but stored other samples than it was given."""


def compat_enabled() -> bool:
    """True in the run that applies audiomatrix.compat's remedies."""
    return os.environ.get("AUDIOMATRIX_COMPAT") == "1"


def tone(seconds: float, rate: int, channels: int = 1, freq: float = 220.0) -> np.ndarray:
    """A float32 [channels, frames] test signal: a sine per channel with a little noise."""
    frames = int(seconds * rate)
    t = np.arange(frames, dtype=np.float64) / rate
    rng = np.random.default_rng(0)
    rows = [
        0.4 * np.sin(2 * math.pi * freq * (c + 1) * t) + 0.01 * rng.standard_normal(frames)
        for c in range(channels)
    ]
    return np.stack(rows).astype(np.float32)


def assert_same_samples(written: np.ndarray, read: np.ndarray, atol: float, what: str) -> None:
    """Raise CorruptOutput when a round trip changed shape or samples beyond `atol`."""
    if written.shape != read.shape:
        raise CorruptOutput(f"{what}: wrote shape {written.shape}, read back {read.shape}")
    worst = float(np.max(np.abs(written.astype(np.float64) - read.astype(np.float64))))
    if not worst <= atol:
        raise CorruptOutput(f"{what}: samples differ by up to {worst:.3g} (tolerance {atol:.3g})")
