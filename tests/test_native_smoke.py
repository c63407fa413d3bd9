"""The smoke suite for real, natively, in the CI cells' venvs (marked `smoke`; CI runs it).

Asserts what the libraries really do in each cell, raw and with audiomatrix.compat, where a
native run stands for the cell: the run gets the environment the cell declares or records
nothing. The pinned old stack (torch 2.5.1, TTS 0.22, transformers<4.50) declares no FFmpeg
and works end to end; on a host that has FFmpeg of its own, its native run is refused (the
measured environment is not the declared one). The current stack (torch 2.9.1, TorchCodec,
coqui-tts 0.28, demucs 4.1.0) declares Debian's FFmpeg 5, which the native runner provides
from the distribution's packages: TorchCodec loads, and the stack breaks in known ways, most
of which compat fixes. Both cells declare Debian bookworm: elsewhere both are refused.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from audiomatrix.core.errors import CellError
from audiomatrix.lock import cell_lock
from audiomatrix.records import run as run_record
from audiomatrix.smoke import runner as smoke
from audiomatrix.spec import matrix as spec
from audiomatrix.table import compat_split, golden_comparison, report
from support import this_host

pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parents[1]
LEGACY = "bookworm-py3.11-torch2.5.1-cu124-legacy-pinned"
CURRENT = "bookworm-py3.11-torch2.9.1-cu128-maintained"
CHECKS = {"xtts", "xtts_service", "xtts_concurrent", "xtts_api", "xtts_stream", "demucs",
          "demucs_file", "demucs_mp3", "diffrhythm_write", "torchaudio_io", "torch_load",
          "accelerator"}  # fmt: skip
HOST, HOST_FFMPEG = this_host()
on_bookworm = pytest.mark.skipif(
    HOST != "debian bookworm", reason=f"the CI cells declare Debian bookworm; this host is {HOST}"
)


def _lock(cell: str) -> cell_lock.CellLock:
    return cell_lock.read_lock(ROOT / "environments", cell)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Each cell's native run (once per module): its result and the folder it was written
    to, or the CellError that refused it."""
    cache: dict[str, tuple[run_record.RunResult, Path] | CellError] = {}

    def get(cell: str) -> tuple[run_record.RunResult, Path] | CellError:
        if cell not in cache:
            folder = tmp_path_factory.mktemp("results")
            try:
                cache[cell] = (
                    smoke.smoke_native(_lock(cell), folder, smoke.venv_root(), echo=lambda _: None),
                    folder,
                )
            except CellError as exc:
                cache[cell] = exc
        return cache[cell]

    return get


def _outcomes(result: run_record.RunResult, folder: Path, mode: str) -> dict[str, tuple]:
    """check -> (status, the known failure it hit, as the report classifies it)."""
    found = {}
    for c in result.modes[mode]:
        log = (folder / result.cell / c.log).read_text(errors="replace") if c.log else ""
        found[c.check] = (c.status, report.signature_of(c, log))
    return found


def test_ci_selection_is_these_cells() -> None:
    matrix = spec.load(ROOT / "matrix.yaml")
    assert [c.id for c in matrix.select(["ci"])] == [CURRENT, LEGACY]


@pytest.mark.parametrize("cell", [LEGACY, CURRENT])
def test_compat_unit_tests_pass_in_the_cell(cell: str) -> None:
    python = smoke.ensure_venv(_lock(cell), smoke.venv_root() / cell)
    proc = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest",
         str(ROOT / "tests/compat")],
        capture_output=True, text=True, env=smoke.suite_environment(), timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@on_bookworm
@pytest.mark.skipif(HOST_FFMPEG is None, reason="this host has no FFmpeg of its own")
def test_the_old_stack_is_refused_on_a_host_with_ffmpeg(run) -> None:  # type: ignore[no-untyped-def]
    refused = run(LEGACY)
    assert isinstance(refused, CellError)
    assert f"FFmpeg: declared none, measured FFmpeg {HOST_FFMPEG}" in str(refused)
    assert "nothing recorded" in str(refused)


@on_bookworm
@pytest.mark.skipif(HOST_FFMPEG is not None, reason="this host has FFmpeg: the cell is refused")
def test_pinned_old_stack_works_end_to_end_but_for_the_api_and_streaming(run) -> None:  # type: ignore[no-untyped-def]
    result, folder = run(LEGACY)
    versions = result.environment.versions
    assert (versions["torch"], versions["TTS"]) == ("2.5.1", "0.22.0")
    assert result.where.kind == "native" and result.environment.facts.ffmpeg is None
    expected = {check: ("pass", None) for check in CHECKS} | {
        "accelerator": ("skip", None),
        # TTS 0.22's stream generator predates the transformers API it calls, even below 4.50.
        "xtts_stream": ("fail", "xtts-stream-pad-token-tensor"),
        # TTS 0.22's Synthesizer labels XTTS audio loaded by model_path with audio.sample_rate.
        "xtts_api": ("corrupt", "tts022-api-xtts-output-rate"),
        # Requests served at once overwrite each other's prefix on the one loaded GPT.
        "xtts_concurrent": ("fail", "xtts-concurrent-inference"),
    }
    assert _outcomes(result, folder, "raw") == expected
    assert _outcomes(result, folder, "compat") == expected


@on_bookworm
def test_current_stack_breaks_in_known_ways_and_compat_fixes_the_io(run) -> None:  # type: ignore[no-untyped-def]
    result, folder = run(CURRENT)
    versions = result.environment.versions
    assert (versions["torch"], versions["torchcodec"], versions["coqui-tts"]) == (
        "2.9.1", "0.9.1", "0.28.0",
    )  # fmt: skip
    assert result.environment.facts.ffmpeg == "5"  # provided natively: TorchCodec loads it
    six = ("fail", "coqui-tts-six-undeclared")
    assert _outcomes(result, folder, "raw") == {
        "xtts": six,
        "xtts_service": six,
        "xtts_concurrent": six,
        "xtts_api": six,
        "xtts_stream": six,
        "demucs": ("pass", None),  # demucs 4.1.0 writes WAV itself and loads weights_only=False
        # demucs 4.1.0 decodes tracks with sphn (then the ffmpeg program), never torchaudio.
        "demucs_file": ("pass", None),
        "demucs_mp3": ("pass", None),
        # TorchCodec loads FFmpeg, and torchaudio.save through it clips int16 and writes
        # PCM_16 whatever encoding was asked for.
        "diffrhythm_write": ("corrupt", "torchcodec-int16-saturates"),
        "torchaudio_io": ("corrupt", "torchcodec-save-ignores-encoding"),
        "torch_load": ("fail", "weights-only-demucs"),
        "accelerator": ("skip", None),
    }
    assert _outcomes(result, folder, "compat") == {
        "xtts": six,  # a missing dependency is not something compat can remedy
        "xtts_service": six,
        "xtts_concurrent": six,
        "xtts_api": six,
        "xtts_stream": six,
        "demucs": ("pass", None),
        "demucs_file": ("pass", None),
        "demucs_mp3": ("pass", None),
        "diffrhythm_write": ("pass", None),
        "torchaudio_io": ("pass", None),
        "torch_load": ("pass", None),
        "accelerator": ("skip", None),
    }
    failing = next(c for c in result.modes["raw"] if c.check == "torch_load")
    assert failing.first_error.startswith("_pickle.UnpicklingError: Weights only load failed")


@on_bookworm
@pytest.mark.skipif(HOST_FFMPEG is not None, reason="this host has FFmpeg: the old cell is refused")
def test_both_stacks_separate_the_golden_track_alike(run) -> None:  # type: ignore[no-untyped-def]
    """Demucs 4.0.1 on torch 2.5.1 and 4.1.0 on torch 2.9.1, from the same fixed weights and
    track: the same stems within float32 rounding, and each control beyond it."""
    (legacy, _), (current, _) = run(LEGACY), run(CURRENT)
    for mode in ("raw", "compat"):
        ours, theirs = (
            next(c for c in r.modes[mode] if c.check == "demucs").fingerprints
            for r in (current, legacy)
        )
        found = golden_comparison.compare(ours, theirs, LEGACY)
        assert found is not None and found.verdict == "match", found
        assert found.control is not None and found.control > 10 * found.tolerance
    service = next(c for c in legacy.modes["raw"] if c.check == "xtts_service")
    assert set(service.fingerprints) == {"request", "control"}


@on_bookworm
def test_each_fix_of_compat_is_proven_with_the_fewest_remedies(run) -> None:  # type: ignore[no-untyped-def]
    """The run splits compat for the checks it fixes, each set of remedies in a run of its
    own: torch 2.9's weights-only torch.load needs the checkpoint allow-list alone, and
    TorchCodec's writes (int16 saturated, the encoding ignored) the soundfile-backed save
    alone."""
    result, folder = run(CURRENT)
    split = result.remedy_split
    assert split is not None
    assert split.applicable == ["torchaudio_save", "torchaudio_info", "checkpoint_globals"]
    tried = {(c.check, tuple(c.remedies)): c.status for c in split.checks}
    assert {check for check, _ in tried} == {"torch_load", "diffrhythm_write", "torchaudio_io"}
    assert tried[("torch_load", ("checkpoint_globals",))] == "pass"
    assert tried[("torch_load", ("torchaudio_save",))] == "fail"
    assert tried[("diffrhythm_write", ("torchaudio_save",))] == "pass"
    assert tried[("diffrhythm_write", ("checkpoint_globals",))] == "corrupt"
    for record in split.checks:  # each run's own log, kept with the result
        assert (folder / result.cell / str(record.log)).is_file()
    row = report.make_row(
        folder / result.cell / f"{result.run}.json",
        result,
        None,
        folder,
        report.current_provenance(),
        {},
    )
    assert compat_split.summary(row.checks["torch_load"].remedies) == (
        "proven alone: `checkpoint_globals`"
    )
    for check in ("diffrhythm_write", "torchaudio_io"):  # info is checked where it exists
        assert compat_split.summary(row.checks[check].remedies) == "proven alone: `torchaudio_save`"
