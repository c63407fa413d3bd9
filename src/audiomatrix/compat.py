"""Remedies for the known failures, as code a user can import.

Needs only torch, numpy and soundfile (it is copied into images and native venvs beside the
smoke suite). Everything is explicit or opt-in and scoped:

- `load`, `save`, `info`: audio I/O through soundfile, for when torchaudio 2.9+ has no
  working TorchCodec (missing, or its FFmpeg is). `soundfile_audio_io()` patches
  torchaudio's functions for third-party code that calls them itself (TTS does), and puts
  them back afterwards.
- `checkpoint_globals()`: the exact classes XTTS and Demucs checkpoints pickle, for
  `torch.serialization.safe_globals`: loading stays `weights_only=True` and admits these
  classes only, never `weights_only=False` for everything.
- `write_int16_wav`: a correct int16 WAV write (peak-normalised, clamped, PCM_16).

`enable()` applies the code remedies for the whole process, all of them or only the named ones
(`REMEDIES`), so that each can be proven alone; `applicable()` names those that change
something in this environment.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

XTTS_GLOBALS = (
    "TTS.tts.configs.xtts_config.XttsConfig",
    "TTS.tts.models.xtts.XttsAudioConfig",
    "TTS.tts.models.xtts.XttsArgs",
    "TTS.config.shared_configs.BaseDatasetConfig",
)
DEMUCS_GLOBALS = (
    "fractions.Fraction",  # HTDemucs packages store `segment` as a Fraction
    "demucs.htdemucs.HTDemucs",
    "demucs.hdemucs.HDemucs",
    "demucs.demucs.Demucs",
)

REMEDIES = ("torchaudio_save", "torchaudio_load", "torchaudio_info", "checkpoint_globals")
"""The code remedies `enable()` applies, by name: each torchaudio function routed through
soundfile, and the finder that allow-lists the checkpoint classes as their modules import."""
_TORCHAUDIO = "torchaudio_"

_SUBTYPES = {
    ("PCM_S", 16): "PCM_16",
    ("PCM_S", 24): "PCM_24",
    ("PCM_S", 32): "PCM_32",
    ("PCM_U", 8): "PCM_U8",
    ("PCM_F", 32): "FLOAT",
    ("PCM_F", 64): "DOUBLE",
}
_TENSOR_SUBTYPES = {torch.int16: "PCM_16", torch.int32: "PCM_32", torch.float64: "DOUBLE"}


@dataclass(frozen=True)
class AudioMetaData:
    """What `torchaudio.info` returned before torchaudio 2.9 removed it."""

    sample_rate: int
    num_frames: int
    num_channels: int
    bits_per_sample: int
    encoding: str


def load(
    path: str | Path, *, frame_offset: int = 0, num_frames: int = -1, normalize: bool = True,
    channels_first: bool = True, **_ignored: Any,
) -> tuple[torch.Tensor, int]:  # fmt: skip
    """torchaudio.load's contract through soundfile: float32 in [-1, 1] (or the file's
    integer samples with normalize=False), shaped [channels, frames]."""
    dtype = "float32" if normalize else _integer_dtype(path)
    stop = None if num_frames < 0 else frame_offset + num_frames
    data, rate = sf.read(str(path), start=frame_offset, stop=stop, dtype=dtype, always_2d=True)
    tensor = torch.from_numpy(np.ascontiguousarray(data.T if channels_first else data))
    return tensor, rate


def _integer_dtype(path: str | Path) -> str:
    subtype = sf.info(str(path)).subtype
    return {"PCM_16": "int16", "PCM_32": "int32"}.get(subtype, "float32")


def _subtype(tensor: torch.Tensor, encoding: str | None, bits: int | None) -> str:
    """The WAV subtype torchaudio.save would have written for these arguments."""
    if not (encoding or bits):
        return _TENSOR_SUBTYPES.get(tensor.dtype, "FLOAT")
    if encoding is None:
        encoding = "PCM_F" if tensor.is_floating_point() and bits in (32, 64) else "PCM_S"
    key = (encoding, bits or (32 if encoding == "PCM_F" else 16))
    if key not in _SUBTYPES:
        raise ValueError(f"unsupported encoding/bits_per_sample for WAV: {key}")
    return _SUBTYPES[key]


def save(
    path: str | Path, src: torch.Tensor, sample_rate: int, channels_first: bool = True,
    format: str | None = None, encoding: str | None = None, bits_per_sample: int | None = None,
    **_ignored: Any,
) -> None:  # fmt: skip
    """torchaudio.save's contract through soundfile, samples stored exactly as given."""
    data = src.detach().cpu()
    if data.ndim == 1:
        data = data[None]
    frames_first = data.T if channels_first else data
    subtype = _subtype(data, encoding, bits_per_sample)
    sf.write(str(path), frames_first.numpy(), sample_rate, subtype=subtype, format=format)


# soundfile subtype -> torchaudio's (encoding, bits_per_sample)
_ENCODINGS = {value: key for key, value in _SUBTYPES.items()}


def info(path: str | Path, **_ignored: Any) -> AudioMetaData:
    """torchaudio.info's contract (removed in torchaudio 2.9) through soundfile."""
    meta = sf.info(str(path))
    encoding, bits = _ENCODINGS.get(meta.subtype, (meta.subtype, 0))
    return AudioMetaData(
        sample_rate=meta.samplerate,
        num_frames=meta.frames,
        num_channels=meta.channels,
        bits_per_sample=bits,
        encoding=encoding,
    )


def torchcodec_problem() -> str | None:
    """Why torchaudio cannot use TorchCodec here, or None when it can."""
    try:
        from torchcodec.decoders import AudioDecoder  # noqa: F401
        from torchcodec.encoders import AudioEncoder  # noqa: F401
    except Exception as exc:  # a missing FFmpeg surfaces as RuntimeError or OSError
        first = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {first[0] if first else ''}"
    return None


def _major_minor(version: str) -> tuple[int, int]:
    major, minor = (int(p) for p in version.split("+")[0].split(".")[:2])
    return major, minor


def _torch_version() -> tuple[int, int]:
    return _major_minor(torch.__version__)


def _torchaudio_version() -> tuple[int, int]:
    import torchaudio

    return _major_minor(torchaudio.__version__)


def torchaudio_remedies() -> dict[str, Any]:
    """Which torchaudio functions to route through soundfile here.

    From 2.9, torchaudio does I/O only through TorchCodec: `save` casts int16 samples to
    float without scaling (every sample clips) and ignores encoding/bits_per_sample, so it
    is always replaced; `load` only when TorchCodec cannot load; `info` was removed.
    """
    import torchaudio

    if _torchaudio_version() < (2, 9):
        return {}
    remedies: dict[str, Any] = {"save": save}
    if torchcodec_problem() is not None:
        remedies["load"] = load
    if not hasattr(torchaudio, "info"):
        remedies["info"] = info
    return remedies


@contextlib.contextmanager
def soundfile_audio_io(*, force: bool = False) -> Iterator[bool]:
    """Route torchaudio's audio I/O through soundfile inside the block where torchaudio
    gets it wrong (or all of load/save/info with force=True); yields whether it patched."""
    remedies = {"load": load, "save": save, "info": info} if force else torchaudio_remedies()
    with _torchaudio_patched(remedies):
        yield bool(remedies)


@contextlib.contextmanager
def _torchaudio_patched(remedies: dict[str, Any]) -> Iterator[None]:
    """torchaudio's functions replaced by `remedies` (name -> replacement) inside the block."""
    import torchaudio

    missing = object()
    saved = {name: getattr(torchaudio, name, missing) for name in remedies}
    for name, replacement in remedies.items():
        setattr(torchaudio, name, replacement)
    try:
        yield
    finally:
        for name, original in saved.items():
            if original is missing:
                delattr(torchaudio, name)
            else:
                setattr(torchaudio, name, original)


def _allowance(cls: type, dotted: str) -> Any:
    """The class as torch's allow-list should name it: under the name the pickle uses, which
    is the old module path when a library has moved the class (coqui-tts 0.28 did)."""
    if f"{cls.__module__}.{cls.__qualname__}" == dotted or _torch_version() < (2, 6):
        return cls
    return (cls, dotted)


def checkpoint_globals(names: Sequence[str] = XTTS_GLOBALS + DEMUCS_GLOBALS) -> list[Any]:
    """The named classes that are importable here (a stack without Demucs skips those)."""
    found = []
    for dotted in names:
        module, _, attr = dotted.rpartition(".")
        try:
            found.append(_allowance(getattr(importlib.import_module(module), attr), dotted))
        except (ImportError, AttributeError):
            continue
    return found


def safe_checkpoint_globals() -> contextlib.AbstractContextManager[None]:
    """`with safe_checkpoint_globals(): model.load_checkpoint(...)`: weights-only loading
    that admits exactly the XTTS and Demucs classes."""
    return torch.serialization.safe_globals(checkpoint_globals())


def write_int16_wav(path: str | Path, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Write [channels, frames] (or DiffRhythm's [batch, channels, frames]) as 16-bit PCM.

    Peak-normalised in float32, clamped, scaled to int16; returns the int16 samples written,
    so a caller can compare what it reads back.
    """
    data = audio.detach().to(torch.float32).cpu()
    if data.ndim == 3:
        data = data.permute(1, 0, 2).reshape(data.shape[1], -1)
    peak = data.abs().max()
    if peak > 0:
        data = data / peak
    samples = data.clamp(-1, 1).mul(32767).round().to(torch.int16)
    sf.write(str(path), samples.T.numpy(), sample_rate, subtype="PCM_16")
    return samples


class _AllowOnImport(importlib.abc.MetaPathFinder):
    """Adds a module's checkpoint classes to torch's safe globals once the module is
    imported, so enabling compat does not import TTS or Demucs itself."""

    def __init__(self, names: Sequence[str]):
        self.wanted: dict[str, list[str]] = {}
        for dotted in names:
            module, _, attr = dotted.rpartition(".")
            self.wanted.setdefault(module, []).append(attr)

    def allow(self, module: Any) -> None:
        attrs = [a for a in self.wanted.get(module.__name__, []) if hasattr(module, a)]
        torch.serialization.add_safe_globals(
            [_allowance(getattr(module, a), f"{module.__name__}.{a}") for a in attrs]
        )

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in self.wanted:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            self.allow(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


_enabled = contextlib.ExitStack()


def applicable() -> list[str]:
    """The remedies of REMEDIES that change something here, in REMEDIES' order: the
    torchaudio functions `torchaudio_remedies()` replaces, and the checkpoint allow-list where
    torch >= 2.6 loads with weights_only=True by default."""
    found = {f"{_TORCHAUDIO}{name}" for name in torchaudio_remedies()}
    if _torch_version() >= (2, 6):
        found.add("checkpoint_globals")
    return [name for name in REMEDIES if name in found]


def enable(
    names: Sequence[str] = XTTS_GLOBALS + DEMUCS_GLOBALS, *, only: Collection[str] | None = None
) -> None:
    """Apply every remedy for the rest of the process (what the smoke suite's compat run
    does), or only those `only` names (what proves each alone); ValueError for a name that
    is no remedy. Libraries should prefer the scoped forms above."""
    chosen = set(REMEDIES if only is None else only)
    unknown = sorted(chosen - set(REMEDIES))
    if unknown:
        raise ValueError(f"unknown remedy {unknown[0]!r} (known: {', '.join(REMEDIES)})")
    if any(name.startswith(_TORCHAUDIO) for name in chosen):
        functions = torchaudio_remedies().items()
        wanted = {n: f for n, f in functions if f"{_TORCHAUDIO}{n}" in chosen}
        _enabled.enter_context(_torchaudio_patched(wanted))
    if "checkpoint_globals" in chosen:
        _allow_on_import(names)


def _allow_on_import(names: Sequence[str]) -> None:
    """Allow-list the named classes of the modules already imported, and of the others as
    they import."""
    finder = _AllowOnImport(names)
    for module in list(finder.wanted):
        if module in sys.modules:
            finder.allow(sys.modules[module])
    sys.meta_path.insert(0, finder)
