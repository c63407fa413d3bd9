"""demucs: a tiny HTDemucs package through load_model, apply_model and save_audio.

The steps are those of `demucs.separate.main`: the package is loaded with
`demucs.states.load_model(path)` (its own torch.load), the mix is normalised by its mean and
std, separated with `apply_model`, scaled back, and every stem is written with
`demucs.audio.save_audio` (clip mode "rescale", the CLI default) as 16-bit PCM and as float.
demucs 4.0.1 writes WAV through `torchaudio.save`; 4.1.0 writes the RIFF file itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from audiomatrix.suite.smokelib import CorruptOutput, assert_same_samples, tone

# save_audio's 16-bit writers scale by 32767 (demucs 4.1.0, truncating) or 32768 (torchaudio's
# backends, rounding); soundfile reads back dividing by 32768. Two steps of 1/32768 cover both.
INT16_ATOL = 2.0 / 32768
FLOAT_ATOL = 1e-6


def _rescaled(wav: np.ndarray) -> np.ndarray:
    """What save_audio(clip="rescale") promises to store: wav / max(1.01 * peak, 1)."""
    return wav / max(1.01 * float(np.max(np.abs(wav))), 1.0)


@pytest.mark.timeout(120)
def test_demucs(tmp_path):
    import soundfile as sf
    import torch
    from demucs.apply import apply_model
    from demucs.audio import save_audio
    from demucs.states import load_model

    from audiomatrix.suite import tiny_demucs

    torch.manual_seed(0)
    path = tiny_demucs.save_package(tiny_demucs.build_model(), tmp_path / "models")
    model = load_model(path)
    model.eval()
    assert list(model.sources) == tiny_demucs.SOURCES, model.sources
    rate = model.samplerate

    wav = torch.from_numpy(tone(1.0, rate, channels=2))
    ref = wav.mean(0)
    wav = (wav - ref.mean()) / ref.std()
    sources = apply_model(
        model, wav[None], device="cpu", shifts=1, split=True, overlap=0.25, progress=False
    )[0]
    sources = sources * ref.std() + ref.mean()
    expected_shape = (len(tiny_demucs.SOURCES), 2, wav.shape[-1])
    assert tuple(sources.shape) == expected_shape, f"apply_model gave {tuple(sources.shape)}"
    assert torch.isfinite(sources).all(), "apply_model gave non-finite samples"
    assert float(sources.abs().max()) > 1e-3, "apply_model gave (near) silence"

    for name, source in zip(model.sources, sources, strict=True):
        promised = _rescaled(source.numpy().astype(np.float64)).T  # [frames, channels]
        for label, kwargs, subtype, atol in (
            ("int16", {"bits_per_sample": 16}, "PCM_16", INT16_ATOL),
            ("float", {"as_float": True}, "FLOAT", FLOAT_ATOL),
        ):
            stem = tmp_path / f"{name}.{label}.wav"
            save_audio(source, str(stem), samplerate=rate, clip="rescale", **kwargs)
            info = sf.info(str(stem))
            what = f"save_audio({name}, {kwargs})"
            if (info.samplerate, info.channels, info.subtype) != (rate, 2, subtype):
                raise CorruptOutput(
                    f"{what}: stored {info.samplerate} Hz, {info.channels} ch, {info.subtype};"
                    f" expected {rate} Hz, 2 ch, {subtype}"
                )
            read, _ = sf.read(str(stem), dtype="float64", always_2d=True)
            assert_same_samples(promised, read, atol, what)
