"""What the smoke checks share. Only the standard library, numpy and soundfile here:
the suite runs inside any cell, whatever torch or stack it has."""

from __future__ import annotations

import math
import os

import numpy as np

from audiomatrix.suite import golden


class CorruptOutput(AssertionError):
    """A write that returned normally but stored other samples than it was given."""


def compat_selection(value: str | None) -> tuple[str, ...] | None:
    """Which of audiomatrix.compat's remedies a value of AUDIOMATRIX_COMPAT applies: `1`
    all (None), `0` or nothing none, else the comma-separated remedy names."""
    if value is not None and value.strip() == "1":
        return None
    if value is None or value.strip() == "0":
        return ()
    return tuple(sorted({name.strip() for name in value.split(",") if name.strip()}))


def compat_enabled() -> bool:
    """True in a run that applies some of audiomatrix.compat's remedies."""
    return compat_selection(os.environ.get("AUDIOMATRIX_COMPAT")) != ()


def tone(seconds: float, rate: int, channels: int = 1, freq: float = 220.0) -> np.ndarray:
    """A float32 [channels, frames] test signal: a sine per channel with a little noise, the
    same samples in every cell (golden outputs start from it)."""
    frames = int(seconds * rate)
    t = np.arange(frames, dtype=np.float64) / rate
    rows = [
        0.4 * np.sin(2 * math.pi * freq * (c + 1) * t)
        + golden.stable_uniform(f"tone:{c}", frames, 0.01 * math.sqrt(3))
        for c in range(channels)
    ]
    return np.stack(rows).astype(np.float32)


def user_device() -> str:
    """The device a user's script or demucs's CLI picks by default: cuda, else mps, else cpu,
    so that each check runs its model where the cell's users would."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


def aligned_snr_db(written: np.ndarray, decoded: np.ndarray, max_lag: int) -> tuple[int, float]:
    """(lag, SNR in dB) of `decoded` against `written` ([channels, frames] each), `decoded`
    shifted by the lag in 0..max_lag that best matches, over the frames both have: the
    measure of a lossy round trip, whose decoders may or may not trim the encoder's delay."""
    written = written.astype(np.float64)
    decoded = decoded.astype(np.float64)
    if written.shape[0] != decoded.shape[0]:
        return 0, -math.inf
    size = written.shape[1] + decoded.shape[1]
    spectrum = np.fft.rfft(decoded, size) * np.conj(np.fft.rfft(written, size))
    correlation = np.fft.irfft(spectrum.sum(axis=0), size)[: max_lag + 1]
    lag = int(np.argmax(correlation))
    shifted = decoded[:, lag : lag + written.shape[1]]
    written = written[:, : shifted.shape[1]]  # the frames both have; callers check the length
    noise = float(np.sum((shifted - written) ** 2))
    signal = float(np.sum(written**2))
    if noise == 0:
        return lag, math.inf
    return lag, 10 * math.log10(signal / noise) if signal > 0 else -math.inf


def assert_same_samples(written: np.ndarray, read: np.ndarray, atol: float, what: str) -> None:
    """Raise CorruptOutput when a round trip changed shape or samples beyond `atol`."""
    if written.shape != read.shape:
        raise CorruptOutput(f"{what}: wrote shape {written.shape}, read back {read.shape}")
    worst = float(np.max(np.abs(written.astype(np.float64) - read.astype(np.float64))))
    if not worst <= atol:
        raise CorruptOutput(f"{what}: samples differ by up to {worst:.3g} (tolerance {atol:.3g})")
