"""The `xtts` checks: a tiny XTTS v2 through the library's real load and synthesis paths.

`test_xtts` is what a user script does: `XttsConfig.load_json`, `Xtts.init_from_config`,
`load_checkpoint` (the library's own `torch.load` of model.pth, with whatever `weights_only`
default the installed torch has), `synthesize` with a speaker WAV (read by the library through
`torchaudio.load`), then the waveform written and read back with soundfile.

`test_xtts_service` is what an XTTS microservice does (xtts_server: coqui's
xtts-streaming-server's shape): load once, clone the voice once with
`get_conditioning_latents`, then answer `POST /tts` over HTTP on loopback, greedy. Three texts
are served; the same request twice must get the same audio. The first answer is the check's
golden output (fingerprinted against the reference cell), beside the negative control's.

`test_xtts_concurrent` sends the texts to the same service at once, three rounds, as a thread
pool serves a FastAPI route: no request may fail, and each answer must be the one the same
request gets alone.

`test_xtts_api` is what the TTS docs show first: `TTS(model_path=DIR, config_path=DIR/config.json)`
(the API's Synthesizer loads the folder: model.pth, vocab.json and speakers_xtts.pth, the release's
voices file), then `tts_to_file` with a voice of the speakers file and with a cloned `speaker_wav`.
Each file must hold what `tts()` returns for the same seed, as `save_wav` stores it (peak-scaled
16-bit PCM).

`test_xtts_stream` is `Xtts.inference_stream` as the docs' "streaming manually" runs it: with the
default chunk size (one chunk for the tiny model's few codes) it must give `inference`'s samples
for the same seed and settings; with two codes per chunk, several chunks must arrive and add up
to `inference`'s length. Both run the library's default sampling settings from the same seed,
not greedy ones: coqui-tts 0.28's stream generator always samples (`sample_stream`), whatever
`do_sample` says, and from the same seed the two paths then draw the same codes.

Works for the original `TTS` 0.22 and for `coqui-tts` (both import as `TTS`); nothing here works
around a library failure: an ImportError, an UnpicklingError or a broken generate is the result.
"""

from __future__ import annotations

import threading
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiomatrix.suite import golden, xtts_server
from audiomatrix.suite.smokelib import CorruptOutput, assert_same_samples, tone, user_device
from audiomatrix.suite.tiny_xtts import GPT_MAX_AUDIO_TOKENS, SAMPLE_RATE, build, write_speakers

SPEAKER_RATE = 24000
INT16_ATOL = 2.0 / 32768  # float -> PCM_16 -> float: scale 32767 on write, 32768 on read
# The speakers file's voices, by the pitch of the reference WAV each is cloned from. Two, since
# TTS 0.22's API takes `speaker=` only from a model with more than one.
VOICES = {"Tiny Low": 110.0, "Tiny High": 180.0}
# inference_stream and inference differ only in how the GPT's sums are ordered (KV cache vs one
# pass) for the same sampled codes: float32 rounding (2^-24), grown through the decoder, stays
# orders below this; cuDNN's default TF32 convolutions (2^-11) on a GPU stay below it too. A
# different code or latent moves the samples by percents of the peak.
STREAM_RTOL = 1e-3
SERVICE_TEXTS = (
    "Hello, and welcome to the service.",
    "The second request uses the same loaded model.",
    "And a third one, still without loading anything again!",
)
CONCURRENT_ROUNDS = 3
STREAM_CHUNK = 2  # codes per chunk: several chunks from the tiny model's up to 12 codes


def _speaker_wav(directory: Path, freq: float = 140.0, name: str = "speaker") -> Path:
    """Three seconds of a voiced-like tone as a 16-bit mono WAV, as users pass `speaker_wav`."""
    signal = tone(3.0, SPEAKER_RATE, channels=1, freq=freq)[0]
    signal = signal + 0.5 * tone(3.0, SPEAKER_RATE, channels=1, freq=3 * freq)[0]
    path = directory / f"{name}.wav"
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
    model.to(user_device())
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


@pytest.mark.timeout(300)
def test_xtts_service(tmp_path: Path) -> None:
    checkpoint_dir, fingerprint = build(tmp_path / "xtts_v2")
    _, model = _load(checkpoint_dir, fingerprint)  # once, like a server at startup
    voice = model.get_conditioning_latents(audio_path=[str(_speaker_wav(tmp_path))])
    with xtts_server.serving(model, voice, SAMPLE_RATE) as url:
        alone = [_served(url, text, model) for text in SERVICE_TEXTS]
        golden.record("request", alone[0], golden.tolerance(model, user_device()))
        again = _served(url, SERVICE_TEXTS[0], model)

    _, control = _load(*build(tmp_path / "control", shift=golden.CONTROL_SHIFT))
    control_voice = control.get_conditioning_latents(audio_path=[str(_speaker_wav(tmp_path))])
    control_wav = xtts_server.synthesize(control, control_voice, SERVICE_TEXTS[0], "en")
    golden.record("control", control_wav, 0.0, control_of="request")
    if not np.array_equal(again, alone[0]):
        raise CorruptOutput("the same request twice got different audio")


@pytest.mark.timeout(300)
def test_xtts_concurrent(tmp_path: Path) -> None:
    checkpoint_dir, fingerprint = build(tmp_path / "xtts_v2")
    _, model = _load(checkpoint_dir, fingerprint)
    voice = model.get_conditioning_latents(audio_path=[str(_speaker_wav(tmp_path))])
    with xtts_server.serving(model, voice, SAMPLE_RATE) as url:
        alone = [_served(url, text, model) for text in SERVICE_TEXTS]
        failed, differ = _concurrent_rounds(url, model, alone)
    asked = CONCURRENT_ROUNDS * len(SERVICE_TEXTS)
    if failed:
        raise AssertionError(
            f"concurrent requests failed: {len(failed)} of {asked} answered with an error;"
            f" first {failed[0]}"
        )
    if differ:
        raise CorruptOutput(
            f"concurrent requests: {len(differ)} of {asked} got other audio than the same"
            f" request alone; first {differ[0]}"
        )


def _served(url: str, text: str, model) -> np.ndarray:
    """One answer of the service, checked: the promised rate and the length its latents make."""
    wav, rate = xtts_server.request(url, text)
    if rate != SAMPLE_RATE:
        raise CorruptOutput(f"the service answered {rate} Hz, the model makes {SAMPLE_RATE}")
    wav = _waveform(wav, f"POST /tts {text!r}")
    longest = _expected_samples(model, GPT_MAX_AUDIO_TOKENS + 2)
    assert wav.size % model.hifigan_decoder.output_hop_length == 0 and wav.size <= longest, (
        f"POST /tts {text!r}: {wav.size} samples, not a whole number of hops up to {longest}"
    )
    return wav


def _concurrent_rounds(url: str, model, alone: list[np.ndarray]) -> tuple[list[str], list[str]]:
    """Every text at once, CONCURRENT_ROUNDS times, as a thread pool serves them: the
    requests the service failed, and those answered with other audio than when alone."""
    failed: list[str] = []
    differ: list[str] = []
    for round_ in range(1, CONCURRENT_ROUNDS + 1):
        barrier = threading.Barrier(len(SERVICE_TEXTS))

        def together(text: str, barrier: threading.Barrier = barrier) -> np.ndarray | str:
            barrier.wait()
            try:
                return _served(url, text, model)
            except urllib.error.HTTPError as exc:
                return f"{exc.code} {exc.reason}"

        with ThreadPoolExecutor(len(SERVICE_TEXTS)) as pool:
            answers = list(pool.map(together, SERVICE_TEXTS))
        for text, answer, single in zip(SERVICE_TEXTS, answers, alone, strict=True):
            if isinstance(answer, str):
                failed.append(f"round {round_} {text[:12]!r}: {answer}")
            elif answer.shape != single.shape or not np.array_equal(answer, single):
                differ.append(f"round {round_} {text[:12]!r}")
    return failed, differ


@pytest.mark.timeout(300)
def test_xtts_api(tmp_path: Path) -> None:
    import torch
    from TTS.api import TTS

    checkpoint_dir, fingerprint = build(tmp_path / "xtts_v2")
    _, model = _load(checkpoint_dir, fingerprint)
    voices = {
        name: model.get_conditioning_latents(audio_path=[str(_speaker_wav(tmp_path, freq, name))])
        for name, freq in VOICES.items()
    }
    write_speakers(checkpoint_dir, voices)
    del model

    tts = TTS(
        model_path=str(checkpoint_dir),
        config_path=str(checkpoint_dir / "config.json"),
        progress_bar=False,
    ).to(user_device())

    text = "It took me quite a long time to develop a voice."
    cloned = _speaker_wav(tmp_path)
    for label, voice in (
        ("speaker", {"speaker": "Tiny Low"}),
        ("speaker_wav", {"speaker_wav": str(cloned)}),
    ):
        torch.manual_seed(0)
        wav = _waveform(tts.tts(text=text, language="en", **voice), f"TTS.tts({label}=...)")
        path = tmp_path / f"tts_to_file_{label}.wav"
        torch.manual_seed(0)
        tts.tts_to_file(text=text, language="en", file_path=str(path), **voice)
        _check_saved_wav(path, wav, f"TTS.tts_to_file({label}=...)")


def _check_saved_wav(path: Path, wav: np.ndarray, what: str) -> None:
    """`path` holds `wav` as TTS's save_wav stores it: scaled to a 32767 peak, 16-bit mono."""
    info = sf.info(str(path))
    if (info.samplerate, info.channels, info.subtype) != (SAMPLE_RATE, 1, "PCM_16"):
        raise CorruptOutput(
            f"{what}: stored {info.samplerate} Hz, {info.channels} ch, {info.subtype};"
            f" expected {SAMPLE_RATE} Hz, 1 ch, PCM_16"
        )
    read, _ = sf.read(str(path), dtype="float64")
    promised = wav.astype(np.float64) * (32767 / max(0.01, float(np.max(np.abs(wav))))) / 32768
    assert_same_samples(promised, read, INT16_ATOL, what)


@pytest.mark.timeout(300)
def test_xtts_stream(tmp_path: Path) -> None:
    import torch

    checkpoint_dir, fingerprint = build(tmp_path / "xtts_v2")
    _, model = _load(checkpoint_dir, fingerprint)
    latent, embedding = model.get_conditioning_latents(audio_path=[str(_speaker_wav(tmp_path))])
    text = "It took me quite a long time to develop a voice."

    torch.manual_seed(0)
    whole = _waveform(model.inference(text, "en", latent, embedding)["wav"], "inference")

    torch.manual_seed(0)
    chunks = list(model.inference_stream(text, "en", latent, embedding))
    streamed = _waveform(torch.cat([c.reshape(-1) for c in chunks]), "inference_stream")
    what = f"inference_stream (default chunk size, {len(chunks)} chunk(s)) vs inference"
    if streamed.shape != whole.shape:
        raise CorruptOutput(f"{what}: {streamed.size} samples, inference gave {whole.size}")
    peak = float(np.max(np.abs(whole)))
    assert_same_samples(whole, streamed, STREAM_RTOL * peak, what)

    torch.manual_seed(0)
    chunks = list(
        model.inference_stream(text, "en", latent, embedding, stream_chunk_size=STREAM_CHUNK)
    )
    sizes = [int(c.numel()) for c in chunks]
    print(f"inference_stream(stream_chunk_size={STREAM_CHUNK}): chunks of {sizes} samples")
    assert len(chunks) >= 2, f"stream_chunk_size={STREAM_CHUNK} gave {len(chunks)} chunk(s)"
    streamed = _waveform(torch.cat([c.reshape(-1) for c in chunks]), "inference_stream chunks")
    if streamed.size != whole.size:
        raise CorruptOutput(
            f"inference_stream chunks {sizes} add up to {streamed.size} samples,"
            f" inference gave {whole.size}"
        )
