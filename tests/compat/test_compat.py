"""audiomatrix.compat against the real torch and torchaudio of a cell.

Runs inside a cell's venv (it needs torch), started by tests/test_native_smoke.py for the CI
cells: torch 2.5.1 (torchaudio with its own backends) and torch 2.9.1 (TorchCodec era).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from audiomatrix import compat


def _signal(channels: int = 2, frames: int = 4410) -> torch.Tensor:
    t = torch.arange(frames, dtype=torch.float32) / 44100
    return torch.stack([0.5 * torch.sin(2 * torch.pi * 220 * (c + 1) * t) for c in range(channels)])


@pytest.mark.parametrize(
    ("dtype", "bits", "subtype", "atol"),
    [(torch.float32, None, "FLOAT", 0.0), (torch.float32, 16, "PCM_16", 1 / 32767)],
)
def test_save_then_load_round_trip(tmp_path, dtype, bits, subtype, atol) -> None:
    audio = _signal().to(dtype)
    path = tmp_path / "a.wav"
    compat.save(path, audio, 44100, bits_per_sample=bits)
    assert sf.info(str(path)).subtype == subtype
    back, rate = compat.load(path)
    assert rate == 44100 and back.shape == audio.shape and back.dtype == torch.float32
    assert torch.max(torch.abs(back - audio)).item() <= atol + 1e-6


def test_int16_tensor_is_stored_exactly(tmp_path) -> None:
    samples = (torch.randn(1, 1000) * 8000).clamp(-32768, 32767).to(torch.int16)
    compat.save(tmp_path / "i.wav", samples, 16000)
    stored, _ = sf.read(str(tmp_path / "i.wav"), dtype="int16", always_2d=True)
    assert np.array_equal(stored.T, samples.numpy())
    raw, _ = compat.load(tmp_path / "i.wav", normalize=False)
    assert raw.dtype == torch.int16 and torch.equal(raw, samples)


def test_info_and_partial_load(tmp_path) -> None:
    compat.save(
        tmp_path / "p.wav", _signal(frames=1000), 8000, encoding="PCM_S", bits_per_sample=16
    )
    meta = compat.info(tmp_path / "p.wav")
    fields = (meta.sample_rate, meta.num_frames, meta.num_channels, meta.bits_per_sample)
    assert fields == (8000, 1000, 2, 16) and meta.encoding == "PCM_S"
    compat.save(tmp_path / "f.wav", _signal(frames=10), 8000)
    float_meta = compat.info(tmp_path / "f.wav")
    assert (float_meta.encoding, float_meta.bits_per_sample) == ("PCM_F", 32)
    part, _ = compat.load(tmp_path / "p.wav", frame_offset=100, num_frames=50)
    assert part.shape == (2, 50)


def test_write_int16_wav_is_peak_normalised_and_exact(tmp_path) -> None:
    decoded = torch.randn(2, 2, 300) * 3  # DiffRhythm's [batch, channels, frames]
    written = compat.write_int16_wav(tmp_path / "s.wav", decoded, 44100)
    assert written.shape == (2, 600) and written.dtype == torch.int16
    assert written.abs().max().item() == 32767
    stored, rate = sf.read(str(tmp_path / "s.wav"), dtype="int16", always_2d=True)
    assert rate == 44100 and np.array_equal(stored.T, written.numpy())


def test_soundfile_patch_is_scoped(tmp_path) -> None:
    original = torchaudio.load
    with compat.soundfile_audio_io(force=True) as patched:
        assert patched and torchaudio.load is compat.load
        torchaudio.save(str(tmp_path / "t.wav"), _signal(), 44100)
        assert torchaudio.load(str(tmp_path / "t.wav"))[1] == 44100
    assert torchaudio.load is original


def test_patch_applies_only_where_torchaudio_needs_it() -> None:
    version = tuple(int(p) for p in torchaudio.__version__.split(".")[:2])
    remedies = compat.torchaudio_remedies()
    if version < (2, 9):
        assert remedies == {}
    else:  # TorchCodec's save mishandles int16; load only when TorchCodec cannot load
        assert remedies["save"] is compat.save
        assert ("load" in remedies) == (compat.torchcodec_problem() is not None)
        assert ("info" in remedies) == (not hasattr(torchaudio, "info"))
    with compat.soundfile_audio_io() as patched:
        assert patched == bool(remedies)


class Config:
    """Stands in for a checkpoint's pickled config class."""

    def __init__(self, rate: int = 24000):
        self.rate = rate


@pytest.mark.skipif(not hasattr(torch.serialization, "safe_globals"), reason="torch < 2.5")
def test_safe_globals_admit_exactly_the_named_classes(tmp_path) -> None:
    sys.modules[__name__].Config = Config
    path = tmp_path / "ckpt.pth"
    torch.save({"config": Config(), "model": {"w": torch.ones(2)}}, path)
    with pytest.raises(pickle.UnpicklingError, match="Unsupported global"):
        torch.load(path, weights_only=True)
    with torch.serialization.safe_globals([Config]):
        loaded = torch.load(path, weights_only=True)
    assert loaded["config"].rate == 24000
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)  # the allowance ended with the block


def test_checkpoint_globals_name_importable_classes_only() -> None:
    found = compat.checkpoint_globals(("fractions.Fraction", "no_such_module.Thing", "os.nope"))
    from fractions import Fraction

    assert found == [Fraction]


def test_a_moved_class_is_allowed_under_the_name_the_pickle_uses() -> None:
    found = compat.checkpoint_globals(("json.JSONDecodeError",))  # defined in json.decoder
    from json import JSONDecodeError

    torch_version = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2])
    if torch_version < (2, 6):  # no renamed entries before 2.6, nor weights_only by default
        assert found == [JSONDecodeError]
    else:
        assert found == [(JSONDecodeError, "json.JSONDecodeError")]


FRACTION_LOADS = """
import fractions, sys, torch, torchaudio
from audiomatrix import compat
path = sys.argv[1]
torch.save({"segment": fractions.Fraction(39, 5)}, path)
original = {name: getattr(torchaudio, name, None) for name in ("load", "save", "info")}
compat.enable(only=None if sys.argv[2] == "all" else sys.argv[2].split(",")[1:])
patched = sorted(n for n, f in original.items() if getattr(torchaudio, n, None) is not f)
try:
    torch.load(path, weights_only=True)
    loads = "loads"
except Exception as exc:
    loads = type(exc).__name__
print(",".join(patched) + "|" + loads)
"""


def _enabled(tmp_path, only: str) -> tuple[str, str]:
    """(the torchaudio functions enable() replaced, whether a pickled Fraction then loads
    weights-only) in a fresh process: enable() lasts for the rest of its process."""
    proc = subprocess.run(
        [sys.executable, "-c", FRACTION_LOADS, str(tmp_path / "f.pt"), only],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    patched, loads = proc.stdout.strip().splitlines()[-1].split("|")
    return patched, loads


def _patched_functions() -> str:
    """The torchaudio functions all of compat replaces here, as _enabled reports them."""
    return ",".join(sorted(compat.torchaudio_remedies()))


@pytest.mark.skipif(not hasattr(torch.serialization, "add_safe_globals"), reason="torch < 2.4")
def test_enable_applies_every_remedy_by_default(tmp_path) -> None:
    assert _enabled(tmp_path, "all") == (_patched_functions(), "loads")


@pytest.mark.skipif(not hasattr(torch.serialization, "add_safe_globals"), reason="torch < 2.4")
def test_enable_only_the_checkpoint_globals_leaves_torchaudio_as_installed(tmp_path) -> None:
    assert _enabled(tmp_path, "only,checkpoint_globals") == ("", "loads")


def test_enable_only_torchaudio_save_replaces_save_alone(tmp_path) -> None:
    patched, loads = _enabled(tmp_path, "only,torchaudio_save")
    assert patched == ("save" if "save" in compat.torchaudio_remedies() else "")
    assert loads == "UnpicklingError"  # the checkpoint allow-list was not applied


def test_enable_with_nothing_changes_nothing(tmp_path) -> None:
    assert _enabled(tmp_path, "only") == ("", "UnpicklingError")


def test_enable_refuses_a_name_that_is_no_remedy() -> None:
    with pytest.raises(ValueError, match=r"unknown remedy 'torch_load' \(known: torchaudio_save"):
        compat.enable(only=["checkpoint_globals", "torch_load"])


def test_applicable_names_the_remedies_that_change_something_here() -> None:
    torch_version = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2])
    expected = {f"torchaudio_{name}" for name in compat.torchaudio_remedies()}
    expected |= {"checkpoint_globals"} if torch_version >= (2, 6) else set()
    found = compat.applicable()
    assert set(found) == expected and set(found) <= set(compat.REMEDIES)
    assert found == [name for name in compat.REMEDIES if name in found]


def test_the_plugin_refuses_an_unknown_remedy_in_one_line(tmp_path) -> None:
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
         "audiomatrix.suite.plugin", str(tmp_path / "test_one.py")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "AUDIOMATRIX_COMPAT": "checkpoint_globals,nope"},
    )  # fmt: skip
    assert proc.returncode == 4, proc.stdout + proc.stderr
    said = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert said == [
        "ERROR: AUDIOMATRIX_COMPAT='checkpoint_globals,nope': unknown remedy 'nope' (known: "
        "torchaudio_save, torchaudio_load, torchaudio_info, checkpoint_globals); set 1 (all), "
        "0 (none) or remedy names separated by commas"
    ]
