"""The demucs checks: a tiny HTDemucs package through Demucs's own load, decode, separate, save.

`test_demucs` starts from a tensor:
the steps are those of `demucs.separate.main`: the package is loaded with
`demucs.states.load_model(path)` (its own torch.load), the mix is normalised by its mean and
std, separated with `apply_model`, scaled back, and every stem is written with
`demucs.audio.save_audio` (clip mode "rescale", the CLI default) as 16-bit PCM and as float.
demucs 4.0.1 writes WAV through `torchaudio.save`; 4.1.0 writes the RIFF file itself.

`test_demucs_file` and `test_demucs_mp3` start from a file, as `python -m demucs.separate --repo
DIR -n NAME TRACK` does: the model comes from a local repo through `demucs.pretrained.get_model`,
and the track is decoded by the CLI's own loader. demucs 4.0.1's `separate.load_track` tries the
`ffmpeg` program (`AudioFile.read`), then `torchaudio.load`, which torchaudio 2.9+ hands to
TorchCodec; demucs 4.1.0's `api.Separator` tries `sphn`, then the `ffmpeg` program, never
torchaudio. The decoded track is compared with what soundfile wrote, then separated and saved.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from audiomatrix.suite import golden
from audiomatrix.suite.smokelib import (
    CorruptOutput,
    aligned_snr_db,
    assert_same_samples,
    tone,
    user_device,
)

# save_audio's 16-bit writers scale by 32767 (demucs 4.1.0, truncating) or 32768 (torchaudio's
# backends, rounding); soundfile reads back dividing by 32768. Two steps of 1/32768 cover both.
INT16_ATOL = 2.0 / 32768
FLOAT_ATOL = 1e-6
# Encoded inputs: (label, soundfile format, subtype, tolerance of the decoded samples). The
# PCM_16 ones are written by libsndfile (x 32767, rounded) and decoded as int16 / 32768.
LOSSLESS = (
    ("wav16", "WAV", "PCM_16", INT16_ATOL),
    ("wavfloat", "WAV", "FLOAT", FLOAT_ATOL),
    ("flac", "FLAC", "PCM_16", INT16_ATOL),
)
SAMPLERATE = 44100  # tiny_demucs.SAMPLERATE: the tracks need no resampling
MP3_FRAME = 1152
# LAME at libsndfile's default quality keeps this tone at about 30 dB SNR; a decoder that swaps
# channels, resamples, saturates or returns noise is near or below 0 dB.
MP3_MIN_SNR_DB = 20.0
# Encoder delay plus padding (576 + 529 frames with LAME), left in by decoders without gapless
# support (sphn), trimmed by others (ffmpeg, mpg123): two frames cover either.
MP3_MAX_LAG = 2 * MP3_FRAME


def _separate(model, mix):
    """`demucs.separate.main`'s steps on a [channels, frames] mix: normalise, apply_model with
    the CLI's defaults (its one random shift drawn from a seeded `random`), scale back."""
    import torch
    from demucs.apply import apply_model

    ref = mix.mean(0)
    wav = (mix - ref.mean()) / ref.std()
    random.seed(0)
    with torch.no_grad():
        sources = apply_model(
            model, wav[None], device=user_device(), shifts=1, split=True, overlap=0.25,
            progress=False,
        )[0]  # fmt: skip
    return sources * ref.std() + ref.mean()


def _rescaled(wav: np.ndarray) -> np.ndarray:
    """What save_audio(clip="rescale") promises to store: wav / max(1.01 * peak, 1)."""
    return wav / max(1.01 * float(np.max(np.abs(wav))), 1.0)


@pytest.mark.timeout(120)
def test_demucs(tmp_path):
    import soundfile as sf
    import torch
    from demucs.audio import save_audio
    from demucs.states import load_model

    from audiomatrix.suite import tiny_demucs

    path = tiny_demucs.save_package(tiny_demucs.build_model(), tmp_path / "models")
    model = load_model(path)
    model.eval()
    assert list(model.sources) == tiny_demucs.SOURCES, model.sources
    rate = model.samplerate

    mix = torch.from_numpy(tone(1.0, rate, channels=2))
    sources = _separate(model, mix)
    golden.record("stems", sources, golden.tolerance(model, user_device()))
    control = tiny_demucs.build_model(shift=golden.CONTROL_SHIFT)
    golden.record("control", _separate(control, mix), 0.0, control_of="stems")
    expected_shape = (len(tiny_demucs.SOURCES), 2, mix.shape[-1])
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


@pytest.mark.timeout(180)
def test_demucs_file(tmp_path):
    import soundfile as sf

    written = tone(1.0, SAMPLERATE, channels=2)
    repo, name = _model_repo(tmp_path)
    for label, container, subtype, atol in LOSSLESS:
        track = tmp_path / f"track_{label}.{container.lower()}"
        sf.write(str(track), written.T, SAMPLERATE, format=container, subtype=subtype)
        what = f"demucs decoding a {container} {subtype} track"
        decoded, stems, rate = _separate_file_as_cli(repo, name, track)
        exact = range(written.shape[1], written.shape[1] + 1)
        _check_decoded(decoded, rate, written, what, frames=exact)
        assert_same_samples(written, decoded.numpy(), atol, what)
        _save_stems_as_cli(stems, rate, tmp_path / "separated" / label)


@pytest.mark.timeout(180)
def test_demucs_mp3(tmp_path):
    import soundfile as sf

    if "MP3" not in sf.available_formats():
        pytest.skip(f"no MP3 encoder: libsndfile {sf.__libsndfile_version__} lacks MP3")
    written = tone(1.0, SAMPLERATE, channels=2)
    repo, name = _model_repo(tmp_path)
    track = tmp_path / "track.mp3"
    sf.write(str(track), written.T, SAMPLERATE, format="MP3")
    decoded, stems, rate = _separate_file_as_cli(repo, name, track)
    what = "demucs decoding an MP3 track"
    frames = written.shape[1]
    allowed = range(frames - MP3_FRAME, frames + MP3_MAX_LAG + MP3_FRAME + 1)
    _check_decoded(decoded, rate, written, what, frames=allowed)
    lag, snr = aligned_snr_db(written, decoded.numpy(), MP3_MAX_LAG)
    print(f"{what}: {decoded.shape[-1]} frames, lag {lag}, SNR {snr:.1f} dB")
    if not snr >= MP3_MIN_SNR_DB:
        raise CorruptOutput(f"{what}: SNR {snr:.1f} dB at lag {lag} (at least {MP3_MIN_SNR_DB})")
    _save_stems_as_cli(stems, rate, tmp_path / "separated" / "mp3")


def _model_repo(tmp_path: Path) -> tuple[Path, str]:
    """A `--repo` folder holding the tiny package, and the name `-n` selects it by."""
    import torch

    from audiomatrix.suite import tiny_demucs

    torch.manual_seed(0)
    path = tiny_demucs.save_package(tiny_demucs.build_model(), tmp_path / "repo")
    return path.parent, path.stem.rsplit("-", 1)[0]


def _separate_file_as_cli(repo: Path, name: str, track: Path):
    """(decoded track, {stem: samples}, rate) the way `demucs.separate` gets them."""
    device = user_device()
    ffmpeg = "on PATH" if shutil.which("ffmpeg") else "absent"
    print(f"device {device}; the ffmpeg program is {ffmpeg}")
    if importlib.util.find_spec("demucs.api") is not None:  # demucs >= 4.1: the CLI's Separator
        from demucs.api import Separator

        separator = Separator(model=name, repo=repo, device=device, progress=False)
        decoded, stems = separator.separate_audio_file(track)
        return decoded, stems, separator.samplerate

    from demucs.apply import apply_model
    from demucs.pretrained import get_model

    model = get_model(name=name, repo=repo)
    model.cpu()
    model.eval()
    decoded = _load_track(track, model.audio_channels, model.samplerate)
    ref = decoded.mean(0)
    mix = (decoded - ref.mean()) / ref.std()
    sources = apply_model(
        model, mix[None], device=device, shifts=1, split=True, overlap=0.25, progress=False
    )[0]
    sources = sources * ref.std() + ref.mean()
    return decoded, dict(zip(model.sources, sources, strict=True)), model.samplerate


def _load_track(track: Path, channels: int, samplerate: int):
    """demucs 4.0's `separate.load_track`, whose failure is a printout and `sys.exit(1)`:
    raised here with what it printed, so the check's error names the loaders' errors."""
    from demucs.separate import load_track

    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            return load_track(track, channels, samplerate)
    except SystemExit:
        said = " ".join(printed.getvalue().split())
        raise RuntimeError(f"demucs.separate.load_track({track.name}) exited: {said}") from None


def _check_decoded(decoded, rate: int, written: np.ndarray, what: str, frames: range) -> None:
    """The decoded track has the written rate and channels, and a length in `frames`."""
    import torch

    assert isinstance(decoded, torch.Tensor) and decoded.dtype == torch.float32, (
        f"{what}: gave {type(decoded).__name__} {getattr(decoded, 'dtype', '')}"
    )
    if rate != SAMPLERATE or decoded.shape[0] != written.shape[0]:
        raise CorruptOutput(
            f"{what}: {rate} Hz, {decoded.shape[0]} ch; wrote {SAMPLERATE} Hz, 2 ch"
        )
    if decoded.shape[1] not in frames:
        raise CorruptOutput(
            f"{what}: {decoded.shape[1]} frames; wrote {written.shape[1]}, allowed {frames}"
        )


def _save_stems_as_cli(stems: dict, rate: int, folder: Path) -> None:
    """Every stem as the CLI's default output (16-bit WAV, clip "rescale"), checked."""
    import soundfile as sf
    from demucs.audio import save_audio

    folder.mkdir(parents=True)
    for name, source in stems.items():
        source = source.cpu()
        assert bool(source.isfinite().all()), f"separated {name} has non-finite samples"
        path = folder / f"{name}.wav"
        save_audio(source, str(path), samplerate=rate, clip="rescale", bits_per_sample=16)
        read, stored_rate = sf.read(str(path), dtype="float64", always_2d=True)
        promised = _rescaled(source.numpy().astype(np.float64)).T
        assert stored_rate == rate, f"save_audio({name}) stored {stored_rate} Hz, not {rate}"
        assert_same_samples(promised, read, INT16_ATOL, f"save_audio({name}) after decoding")
