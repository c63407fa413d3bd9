"""The smoke suite for real, natively, in the CI cells' venvs (marked `smoke`; CI runs it).

Asserts what the libraries really do in each cell, raw and with audiomatrix.compat:
the pinned old stack (torch 2.5.1, TTS 0.22, transformers<4.50) works end to end; the
current one (torch 2.9.1, coqui-tts 0.28, demucs 4.1.0) breaks in known ways, most of which
compat fixes. This machine has no FFmpeg, so TorchCodec cannot load here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from audiomatrix import smoke, spec

pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parents[1]
LEGACY = "bookworm-py3.11-torch2.5.1-cu124-legacy-pinned"
CURRENT = "bookworm-py3.11-torch2.9.1-cu128-maintained"
CHECKS = {"xtts", "xtts_service", "demucs", "diffrhythm_write", "torchaudio_io", "torch_load",
          "accelerator"}  # fmt: skip


def _venv(cell: str) -> Path:
    return smoke.ensure_venv(
        smoke.read_lock(ROOT / "environments", cell), smoke.venv_root() / cell, None
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    cache: dict[str, object] = {}

    def get(cell: str):
        if cell not in cache:
            cache[cell] = smoke.smoke_native(
                smoke.read_lock(ROOT / "environments", cell),
                ROOT / "tests" / "smoke",
                tmp_path_factory.mktemp("results"),
                smoke.venv_root(),
                echo=lambda line: None,
            )
        return cache[cell]

    return get


def _outcomes(result, mode: str) -> dict[str, tuple[str, str | None]]:
    return {c.check: (c.status, c.signature) for c in result.modes[mode]}


def test_ci_selection_is_these_cells() -> None:
    matrix = spec.load(ROOT / "matrix.yaml")
    assert [c.id for c in matrix.select(["ci"])] == [CURRENT, LEGACY]


@pytest.mark.parametrize("cell", [LEGACY, CURRENT])
def test_compat_unit_tests_pass_in_the_cell(cell: str) -> None:
    python = _venv(cell)
    proc = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "tests/compat")],
        capture_output=True, text=True, env=smoke.suite_environment(), timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_pinned_old_stack_works_end_to_end(run) -> None:
    result = run(LEGACY)
    assert result.versions["torch"] == "2.5.1" and result.versions["TTS"] == "0.22.0"
    assert result.where.kind == "native"
    expected = {check: ("pass", None) for check in CHECKS} | {"accelerator": ("skip", None)}
    assert _outcomes(result, "raw") == expected
    assert _outcomes(result, "compat") == expected


def test_current_stack_breaks_in_known_ways_and_compat_fixes_the_io(run) -> None:
    result = run(CURRENT)
    versions = result.versions
    assert (versions["torch"], versions["torchcodec"], versions["coqui-tts"]) == (
        "2.9.1", "0.9.1", "0.28.0",
    )  # fmt: skip
    assert versions["ffmpeg"] is None, "this test describes a host without FFmpeg"
    six = ("fail", "coqui-tts-six-undeclared")
    no_codec = ("fail", "torchcodec-unloadable")
    assert _outcomes(result, "raw") == {
        "xtts": six,
        "xtts_service": six,
        "demucs": ("pass", None),  # demucs 4.1.0 writes WAV itself and loads weights_only=False
        "diffrhythm_write": no_codec,
        "torchaudio_io": no_codec,
        "torch_load": ("fail", "weights-only-demucs"),
        "accelerator": ("skip", None),
    }
    assert _outcomes(result, "compat") == {
        "xtts": six,  # a missing dependency is not something compat can remedy
        "xtts_service": six,
        "demucs": ("pass", None),
        "diffrhythm_write": ("pass", None),
        "torchaudio_io": ("pass", None),
        "torch_load": ("pass", None),
        "accelerator": ("skip", None),
    }
    failing = next(c for c in result.modes["raw"] if c.check == "torch_load")
    assert failing.first_error.startswith("_pickle.UnpicklingError: Weights only load failed")
