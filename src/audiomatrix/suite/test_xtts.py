"""The `xtts` checks: a tiny XTTS v2 through the library's real load and synthesis paths.

`test_xtts` is what a user script does: `XttsConfig.load_json`, `Xtts.init_from_config`,
`load_checkpoint` (the library's own `torch.load` of model.pth, with whatever `weights_only`
default the installed torch has), `synthesize` with a speaker WAV (read by the library through
`torchaudio.load`), then the waveform written and read back with soundfile.

`test_xtts_service` is what a long-lived XTTS server does (the `/tts` route of coqui's
xtts-streaming-server): load once, clone the speaker once with `get_conditioning_latents`, then
answer three requests with `inference` on the same loaded model.

Works for the original `TTS` 0.22 and for `coqui-tts` (both import as `TTS`); nothing here works
around a library failure: an ImportError, an UnpicklingError or a broken generate is the result.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiomatrix.suite.smokelib import assert_same_samples, tone
from audiomatrix.suite.tiny_xtts import SAMPLE_RATE, build

SPEAKER_RATE = 24000
INT16_ATOL = 2.0 / 32768  # float -> PCM_16 -> float: scale 32767 on write, 32768 on read


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _speaker_wav(directory: Path) -> Path:
    """Three seconds of a voiced-like tone as a 16-bit mono WAV, as users pass `speaker_wav`."""
    signal = tone(3.0, SPEAKER_RATE, channels=1, freq=140.0)[0]
    signal = signal + 0.5 * tone(3.0, SPEAKER_RATE, channels=1, freq=420.0)[0]
    path = directory / "speaker.wav"
    sf.write(path, 0.8 * signal / np.max(np.abs(signal)), SPEAKER_RATE, subtype="PCM_16")
    return path


def _load(checkpoint_dir: Path, fingerprint: dict[str, float]):
    """The documented way to load an XTTS checkpoint folder; checks the weights came from it."""
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    config = XttsConfig()
    config.load_json(str(checkpoint_dir / "config.json"))
    model = Xtts.init_from_config(config)
    model.load_checkpoint(
        config,
        checkpoint_dir=str(checkpoint_dir),
        vocab_path=str(checkpoint_dir / "vocab.json"),
        use_deepspeed=False,
    )
    state = model.state_dict()
    for key, saved in fingerprint.items():
        loaded = float(state[key].double().sum())
        assert abs(loaded - saved) <= 1e-6 * max(1.0, abs(saved)), (
            f"load_checkpoint left {key} at other values than model.pth holds"
        )
    model.to(_device())
    return config, model


def _waveform(wav, what: str) -> np.ndarray:
    import torch

    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().numpy()
    wav = np.asarray(wav)
    assert wav.dtype in (np.float32, np.float64), f"{what}: waveform dtype {wav.dtype}"
    wav = np.squeeze(wav)
    assert wav.ndim == 1 and wav.size > 0, f"{what}: waveform shape {wav.shape}"
    assert np.all(np.isfinite(wav)), (
        f"{what}: waveform has {np.sum(~np.isfinite(wav))} non-finite samples"
    )
    return wav.astype(np.float32)


def _expected_samples(model, latent_frames: int) -> int:
    """Samples HifiDecoder makes from `latent_frames` GPT latents at the config's rates."""
    decoder = model.hifigan_decoder
    frames = int(latent_frames * decoder.ar_mel_length_compression / decoder.output_hop_length)
    frames = int(frames * decoder.output_sample_rate / decoder.input_sample_rate)
    return frames * decoder.output_hop_length


@pytest.mark.timeout(180)
def test_xtts(tmp_path: Path) -> None:
    import torch

    checkpoint_dir, fingerprint = build(tmp_path / "xtts_v2")
    speaker_wav = _speaker_wav(tmp_path)

    config, model = _load(checkpoint_dir, fingerprint)
    assert config.audio.output_sample_rate == SAMPLE_RATE
    assert model.hifigan_decoder.output_sample_rate == SAMPLE_RATE

    torch.manual_seed(0)
    out = model.synthesize(
        "It took me quite a long time to develop a voice.",
        config,
        speaker_wav=str(speaker_wav),
        language="en",
    )
    wav = _waveform(out["wav"], "synthesize")
    latent_frames = np.asarray(out["gpt_latents"]).shape[1]
    expected = _expected_samples(model, latent_frames)
    assert abs(wav.size - expected) <= model.hifigan_decoder.output_hop_length, (
        f"{wav.size} samples from {latent_frames} GPT latents, "
        f"expected {expected} at {SAMPLE_RATE} Hz"
    )

    path = tmp_path / "xtts.wav"
    sf.write(path, wav, config.audio.output_sample_rate, subtype="PCM_16")
    read, rate = sf.read(path, dtype="float32")
    assert rate == SAMPLE_RATE
    assert_same_samples(np.clip(wav, -1.0, 1.0), read, INT16_ATOL, "XTTS waveform as 16-bit WAV")


@pytest.mark.timeout(180)
def test_xtts_service(tmp_path: Path) -> None:
    import torch

    checkpoint_dir, fingerprint = build(tmp_path / "xtts_v2")
    speaker_wav = _speaker_wav(tmp_path)
    _, model = _load(checkpoint_dir, fingerprint)  # once, like a server at startup

    gpt_cond_latent, speaker_embedding = model.get_conditioning_latents(
        audio_path=[str(speaker_wav)]
    )

    requests = [
        "Hello, and welcome to the service.",
        "The second request uses the same loaded model.",
        "And a third one, still without loading anything again!",
    ]
    for number, text in enumerate(requests, start=1):
        torch.manual_seed(number)
        out = model.inference(text, "en", gpt_cond_latent, speaker_embedding)
        wav = _waveform(out["wav"], f"request {number}")
        expected = _expected_samples(model, np.asarray(out["gpt_latents"]).shape[1])
        assert abs(wav.size - expected) <= model.hifigan_decoder.output_hop_length, (
            f"request {number}: {wav.size} samples, expected {expected} at {SAMPLE_RATE} Hz"
        )
