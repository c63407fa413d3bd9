"""torchaudio_io: torchaudio.save / torchaudio.load round trips, torchaudio.info, and the backend.

Two writes of the same float32 stereo signal, each asking for its WAV encoding explicitly, as
torchaudio has accepted since 0.8: 32-bit float (encoding="PCM_F", bits_per_sample=32) and 16-bit
PCM (encoding="PCM_S", bits_per_sample=16). soundfile, independent of torchaudio, checks what each
write stored; torchaudio.load is then checked against soundfile's reading of the same file.
torchaudio 2.9 hands both calls to TorchCodec, which ignores encoding and bits_per_sample.
"""

from __future__ import annotations

import numpy as np
import pytest

from audiomatrix.suite.smokelib import CorruptOutput, assert_same_samples, tone

RATE = 44100
# One int16 step is 1/32768; writers scale by 32767 or 32768 and round or truncate.
INT16_ATOL = 2.0 / 32768
FLOAT_ATOL = 1e-6

CASES = (
    # label, save kwargs, subtype soundfile must see, info's (bits_per_sample, encoding), atol
    ("float32", {"encoding": "PCM_F", "bits_per_sample": 32}, "FLOAT", (32, "PCM_F"), FLOAT_ATOL),
    ("int16", {"encoding": "PCM_S", "bits_per_sample": 16}, "PCM_16", (16, "PCM_S"), INT16_ATOL),
)


def _backend(torchaudio) -> str:
    """Which backend serves torchaudio.load/save in this environment."""
    module = getattr(torchaudio.save, "__module__", "") or ""
    if not module.startswith("torchaudio"):
        return f"patched:{module}"  # e.g. audiomatrix.compat's soundfile functions
    if hasattr(torchaudio, "list_audio_backends"):  # torchaudio < 2.9: the dispatcher's order
        backends = torchaudio.list_audio_backends()
        return backends[0] if backends else "none"
    # torchaudio >= 2.9: load/save are load_with_torchcodec/save_with_torchcodec
    import importlib.util

    if importlib.util.find_spec("torchcodec") is None:
        return "torchcodec (not installed)"
    try:
        import torchcodec.encoders  # loads libtorchcodec, and FFmpeg with it
    except Exception as exc:  # the save below raises it again, as the failure
        return f"torchcodec (cannot load: {type(exc).__name__})"
    return f"torchcodec {getattr(torchcodec, '__version__', '')}".strip()


@pytest.mark.timeout(60)
def test_torchaudio_io(tmp_path, record_property):
    import torchaudio

    backend = _backend(torchaudio)
    print(f"backend: {backend}")
    record_property("backend", backend)

    signal = tone(0.5, RATE, channels=2)  # [channels, frames] float32
    corrupt: list[str] = []
    for case in CASES:
        try:
            _round_trip(tmp_path, signal, *case, corrupt=corrupt)
        except CorruptOutput as exc:  # the other case still runs: report both
            corrupt.append(str(exc))
    record_property("info", "present" if hasattr(torchaudio, "info") else "absent")
    if corrupt:
        raise CorruptOutput("; ".join(corrupt))


def _round_trip(tmp_path, signal, label, kwargs, subtype, info_want, atol, corrupt) -> None:
    """One save/load round trip; a wrong subtype goes to `corrupt` and the load is still checked."""
    import soundfile as sf
    import torch
    import torchaudio

    bits, encoding = info_want
    path = tmp_path / f"{label}.wav"
    what = f"torchaudio.save({label}, {kwargs})"
    torchaudio.save(str(path), torch.from_numpy(signal), RATE, **kwargs)

    stored = sf.info(str(path))
    if (stored.samplerate, stored.channels, stored.frames) != (RATE, 2, signal.shape[1]):
        raise CorruptOutput(
            f"{what}: stored {stored.samplerate} Hz, {stored.channels} ch,"
            f" {stored.frames} frames; gave {RATE} Hz, 2 ch, {signal.shape[1]} frames"
        )
    on_disk, _ = sf.read(str(path), dtype="float32", always_2d=True)
    on_disk = on_disk.T
    if stored.subtype != subtype:
        worst = float(np.max(np.abs(on_disk.astype(np.float64) - signal)))
        corrupt.append(
            f"{what}: stored {stored.subtype}, asked for {subtype}"
            f" (samples differ by up to {worst:.3g})"
        )
    else:
        assert_same_samples(signal, on_disk, atol, what)

    loaded, rate = torchaudio.load(str(path))
    assert loaded.dtype == torch.float32, f"torchaudio.load({label}) gave {loaded.dtype}"
    if rate != RATE:
        raise CorruptOutput(f"torchaudio.load({label}): sample rate {rate}, file has {RATE}")
    assert_same_samples(on_disk, loaded.numpy(), FLOAT_ATOL, f"torchaudio.load({label})")

    if hasattr(torchaudio, "info"):
        meta = torchaudio.info(str(path))
        got = (
            meta.sample_rate,
            meta.num_frames,
            meta.num_channels,
            meta.bits_per_sample,
            meta.encoding,
        )
        want = (RATE, signal.shape[1], 2, bits, encoding)
        assert got == want, f"torchaudio.info({label}) gave {got}, file is {want}"
        print(f"info({label}): {got}")
    else:
        print(f"info({label}): torchaudio.info is gone in torchaudio {torchaudio.__version__}")
