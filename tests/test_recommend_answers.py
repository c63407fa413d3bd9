"""recommend answering the question asked: constraints as people write them, the failures the
matching rows hit with each one's proven fix, why nothing fits and the nearest answer that
does; over the committed table (the issue's six situations) and small hand-made ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from audiomatrix.cli.app import app
from audiomatrix.records import compatibility
from audiomatrix.views import constraints, nofit, proven, recommend
from audiomatrix.views.constraints import Constraints
from test_report import BROKEN, NEW, repo, table  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
SIX = "bookworm-py3.12-torch2.10.0-cu128-maintained-six"


@pytest.fixture(scope="module")
def committed() -> compatibility.Compatibility:
    return compatibility.load(REPO / compatibility.JSON_FILE)


def text(answer: recommend.Recommendation) -> str:
    return "\n".join(answer.lines())


# --------------------------------------------------------------------------- the constraints


@pytest.mark.parametrize(
    ("spelled", "arch"),
    [("sm_75", "sm_75"), ("sm75", "sm_75"), ("7.5", "sm_75"), ("75", "sm_75"),
     ("SM_120", "sm_120"), ("12.0", "sm_120"), ("120", "sm_120"), ("compute_86", "sm_86")],
)  # fmt: skip
def test_a_gpu_architecture_in_any_common_spelling(spelled: str, arch: str) -> None:
    assert constraints.gpu_arch(spelled) == arch


@pytest.mark.parametrize(
    ("spelled", "why"),
    [("ampere", "not a GPU architecture"), ("8", "not a GPU architecture"),
     ("sm_37", "sm_37: not an architecture CUDA 12.9 or 13.5 lists \\(the table's: sm_50, sm_52")],
)  # fmt: skip
def test_a_gpu_architecture_it_cannot_answer_for_is_refused(spelled: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        constraints.gpu_arch(spelled)


def test_versions_ranges_and_builds() -> None:
    assert constraints.admits("2.10", "2.10.0") and not constraints.admits("2.1", "2.10.0")
    assert constraints.admits(">=2.9", "2.10.0") and not constraints.admits(">=2.9", "2.8.0")
    assert constraints.admits(">=3.11,<3.13", "3.12") and not constraints.admits(">=3.11", "3.10")
    assert constraints.admits(None, "anything")
    assert constraints.split_build("2.10.0+cu130") == ("2.10.0", "cu130")
    assert constraints.split_build(">=2.9") == (">=2.9", None)
    assert constraints.version_filter(">=2.9") == ">=2.9"
    with pytest.raises(ValueError, match="not a version or range"):
        constraints.version_filter("2.x")
    wanted = Constraints(python="3.11", torch="2.10", os="windows", gpu_arch="sm_120")
    assert wanted.said() == ["Python 3.11", "torch 2.10", "OS windows", "GPU sm_120"]
    # Where it runs is set aside before what it runs, the GPU last.
    assert wanted.relaxations()[:5] == [
        ("os",),
        ("python",),
        ("torch",),
        ("gpu_arch",),
        ("os", "python"),
    ]


# --------------------------------------------------------------------------- small tables


def test_the_failures_of_the_other_rows_and_a_fix_no_run_proves(repo: Path) -> None:  # noqa: F811
    t = table(repo)
    answer = recommend.recommend(t, ["demucs"], torch="2.9.1")
    assert answer.row is not None and answer.row.cell == BROKEN
    assert answer.notes[0] == "What the 2 matching rows fail with, raw:"
    assert answer.notes[1].startswith(
        "- weights-only-demucs (torch 2.6+ loads with weights_only=True; Demucs model packages "
        "pickle the model class) on 1 of 2 rows (demucs; TTS 0.22.0 + demucs 4.0.1). "
        "Fix (catalog, not proven by a run): Load inside"
    )
    [failure] = proven.failures(recommend.matching(t.rows, Constraints(torch="2.9.1")),
                                ["demucs"], "raw")  # fmt: skip
    assert [r.cell for r in failure.rows] == [NEW] and failure.checks == ("demucs",)


def test_nothing_fits_says_what_is_declared_and_answers_the_nearest(repo: Path) -> None:  # noqa: F811
    t = table(repo)
    answer = recommend.recommend(t, ["demucs"], python="3.12")
    assert answer.row is None and answer.explanation == "no tested cell matches with Python 3.12"
    assert answer.notes == (
        "Declared cells that meet them all: 1 declared, none with a run (1 index unreachable): "
        "bookworm-py3.12-torch2.9.1-cu130-maintained.",
        "What tested rows with their Python, torch and stack show:",
        "- bookworm-py3.12-torch2.9.1-cu130-maintained (index unreachable): no tested row has "
        "its Python, torch and stack",
    )
    [(aside, near)] = answer.nearest
    assert aside == "Python 3.12" and near.row is not None and near.row.cell == BROKEN
    assert "Setting aside Python 3.12:" in answer.lines()

    two = recommend.recommend(t, ["demucs"], torch=">=2.9", os="windows")
    assert two.notes[:2] == (
        "No tested row has OS windows; declared cells with it: none.",
        "Declared cells that meet them all: none.",
    )
    assert [a for a, _ in two.nearest] == ["OS windows"]


def test_a_declared_cell_with_another_build_cannot_run_on_a_gpu(repo: Path) -> None:  # noqa: F811
    t = table(repo)
    cpu = "bookworm-py3.10-torch2.6.0-cpu-legacy"
    assert [m.cell for m in nofit.declared(t, Constraints(python="3.10"))] == [cpu]
    assert nofit.declared(t, Constraints(python="3.10", gpu_arch="sm_120")) == []


# --------------------------------------------------------------------------- the six situations


def test_windows_blackwell_torch_2_10_cu130_xtts(committed: compatibility.Compatibility) -> None:
    """Windows cells are declared, not run; torch 2.10 is tested with cu128 only; on Linux the
    same torch passes XTTS on sm_120 with six, the one-package fix two remedy cells prove."""
    answer = recommend.recommend(
        committed, ["xtts"], os="windows", gpu_arch="sm_120", torch="2.10", accelerator="cu130"
    )
    assert answer.row is None
    assert answer.explanation == (
        "no tested cell matches with torch 2.10, accelerator cu130, OS windows, GPU sm_120"
    )
    assert answer.notes[0].startswith(
        "No tested row has OS windows; declared cells with it: 4 declared, none with a run "
        "(2 not run, 1 channel unreachable, 1 index unreachable): windows-py3.11-torch2.5.1-"
    )
    assert answer.notes[1].startswith(
        "Nor has any torch 2.10, accelerator cu130, GPU sm_120 together; declared cells with "
        "them: 8 declared, none with a run (6 index unreachable, 2 not buildable)"
    )
    [(aside, near)] = answer.nearest
    assert aside == "OS windows, accelerator cu130"
    assert near.row is not None and (near.row.cell, near.mode) == (SIX, "raw")
    assert "It is bookworm-py3.12-torch2.10.0-cu128-maintained with +six: it fixes xtts" in (
        near.explanation
    )
    assert (
        "On sm_120: native, predicted from the wheel's compiled code (libtorch_cuda.so: sm_120 "
        "SASS in all 456 containers; libtorch_cuda_linalg.so: sm_120 SASS in all 107 containers"
        in near.explanation
    )
    six = next(n for n in near.notes if n.startswith("- coqui-tts-six-undeclared"))
    assert "Proven fix: `+six` (a single change, remedy cell): it fixed xtts" in six
    assert "results/bookworm-py3.11-torch2.6.0-cu124-maintained-six/20261129T020716Z.json" in six


def test_windows_python_3_11_names_six_where_xtts_never_passes(
    committed: compatibility.Compatibility,
) -> None:
    answer = recommend.recommend(
        committed, ["xtts"], os="windows", gpu_arch="sm_120", python="3.11"
    )
    (closer, blocked), (nearer, passing) = answer.nearest
    assert closer == "OS windows" and blocked.row is None
    assert blocked.notes[0] == "What they fail with, even with compat:"
    assert blocked.notes[1].startswith("- coqui-tts-six-undeclared")
    assert "Proven fix: `+six`" in blocked.notes[1]
    assert nearer == "OS windows, Python 3.11" and passing.row is not None


def test_demucs_on_torchaudio_2_9_1_names_the_failure_and_demucs_4_1_0(
    committed: compatibility.Compatibility,
) -> None:
    answer = recommend.recommend(committed, ["demucs"], torch="2.9.1")
    assert answer.row is not None and answer.row.versions["demucs"] == "4.1.0"
    line = next(n for n in answer.notes if n.startswith("- weights-only-demucs"))
    assert "on 3 of 9 rows (demucs, demucs_file, demucs_mp3; TTS 0.22.0 + demucs 4.0.1)" in line
    assert "the maintained stack, measured beside it: bookworm-py3.10-torch2.9.1-cu128-legacy " in (
        line
    )
    assert "demucs 4.0.1 -> 4.1.0" in line and "so no single change is proven" in line
    assert (
        "compat, proven together: `checkpoint_globals` + `torchaudio_save` (demucs in "
        "bookworm-py3.10-torch2.9.1-cu128-legacy: results/" in line
    )
    assert 'audiomatrix.compat.enable(only=["checkpoint_globals", "torchaudio_save"])' in line


def test_an_xtts_service_on_python_3_11_up_and_torch_2_9_up(
    committed: compatibility.Compatibility,
) -> None:
    answer = recommend.recommend(committed, ["xtts"], python=">=3.11", torch=">=2.9")
    assert answer.row is not None and (answer.row.cell, answer.mode) == (SIX, "raw")
    assert "(among rows with Python >=3.11, torch >=2.9)" in answer.explanation
    assert "1 of 15 matching rows pass raw" in answer.explanation
    concurrent = answer.notes[-1]
    assert concurrent.startswith(
        "Beside the asked checks, xtts_concurrent fails here (raw): xtts-concurrent-inference"
    )
    assert "0 of 40 rows pass it even with compat" in concurrent
    assert "Fix (catalog, not proven by a run): Serve one request at a time" in concurrent


def test_macos_xtts_is_declared_not_run_and_linux_shows_the_same_versions(
    committed: compatibility.Compatibility,
) -> None:
    answer = recommend.recommend(committed, ["xtts"], os="macos")
    assert answer.explanation == "no tested cell matches with OS macos"
    assert answer.notes[0].startswith(
        "Declared cells that meet them all: 4 declared, none with a run (3 not run, 1 channel "
        "unreachable): macos-py3.11-torch2.5.1-mps-legacy"
    )
    assert (
        "- macos-py3.12-torch2.10.0-mps-maintained (not run): "
        "bookworm-py3.12-torch2.10.0-cu128-maintained, with the same Python, torch and stack, "
        "fails coqui-tts-six-undeclared (results/bookworm-py3.12-torch2.10.0-cu128-maintained/"
        "20261129T043353Z.json); with +six (bookworm-py3.12-torch2.10.0-cu128-maintained-six) it "
        "passes them raw" in answer.notes
    )
    [(aside, near)] = answer.nearest
    assert aside == "OS macos" and near.row is not None


def test_diffrhythm_int16_write_prints_the_one_change_proven_alone(
    committed: compatibility.Compatibility,
) -> None:
    answer = recommend.recommend(committed, ["diffrhythm"], torch=">=2.9")
    assert answer.row is not None and answer.mode == "compat"
    assert "diffrhythm_write proven alone: `torchaudio_save`" in answer.explanation
    assert answer.notes[0] == (
        "In your code, before loading models: import audiomatrix.compat; "
        'audiomatrix.compat.enable(only=["torchaudio_save"])'
    )
    saturates = next(n for n in answer.notes if n.startswith("- torchcodec-int16-saturates"))
    assert "Proven fix: compat, proven alone: `torchaudio_save`" in saturates
    # Without the torch constraint the raw pick is older, and the newer one names the remedy.
    older = recommend.recommend(committed, ["diffrhythm"])
    assert older.mode == "raw" and "diffrhythm_write proven alone: `torchaudio_save`)." in (
        older.explanation
    )


# --------------------------------------------------------------------------- the command


def invoke(*args: str) -> tuple[int, str]:
    table = str(REPO / compatibility.JSON_FILE)
    outcome = CliRunner().invoke(app, ["recommend", "--table", table, *args])
    return outcome.exit_code, outcome.output


def test_the_command_prints_the_install_and_refuses_bad_constraints_in_one_line() -> None:
    code, output = invoke("--workload", "xtts", "--python", ">=3.11", "--torch", ">=2.9")
    assert code == 0 and output.splitlines()[0].startswith(SIX)
    assert "Install it natively from its committed lock:" in output
    assert f"  uv venv --quiet --clear --python 3.12 .venv-{SIX}" in output.splitlines()
    assert invoke("--gpu-arch", "12.0")[1] == invoke("--gpu-arch", "sm_120")[1]
    for args, line in [
        (("--gpu-arch", "ampere"),
         "--gpu-arch ampere: not a GPU architecture (write it as sm_120, sm120, 12.0 or 120)\n"),
        (("--torch", "2.x"), "--torch 2.x: not a version or range (e.g. 2.9.1, 2.10 or '>=2.9')\n"),
        (("--accelerator", "rocm"),
         "--accelerator rocm: choose from cpu, cu124, cu128, cu130, cuda, mps\n"),
        (("--torch", "2.10.0+cu130", "--accelerator", "cu128"),
         "--torch 2.10.0+cu130: its build cu130 is not --accelerator cu128\n"),
    ]:  # fmt: skip
        assert invoke(*args) == (2, line)
    code, output = invoke("--workload", "xtts", "--os", "windows", "--torch", "2.10.0+cu130")
    assert code == 1 and output.startswith(
        "no tested cell matches with torch 2.10.0, accelerator cu130, OS windows\n"
    )
    assert "Install it" not in output


# --------------------------------------------------------------------------- GPUs, every arch


def test_every_architecture_cuda_lists_answers_with_its_verdict() -> None:
    """On the committed table: Pascal runs the cu124 builds only, Volta every build before
    cu130, a T4 by name, and DGX Spark's sm_121 the Blackwell builds."""
    code, output = invoke("--workload", "demucs", "--gpu-arch", "sm_61")
    first = output.splitlines()[0]
    assert code == 0 and "-cu124-" in first.split()[0]
    assert (
        "On sm_61: native, predicted from the wheel's compiled code (libtorch_cuda.so: sm_60 "
        in (first)
    )
    code, output = invoke("--workload", "demucs", "--gpu-arch", "sm_70")
    assert code == 0 and "On sm_70: native" in output.splitlines()[0]
    assert "-cu130-" not in output.splitlines()[0].split()[0]
    code, output = invoke("--workload", "demucs", "--gpu", "Tesla T4")
    assert code == 0 and "On sm_75: native" in output
    assert "--gpu Tesla T4: NVIDIA T4 is sm_75 (https://developer.nvidia.com/cuda-gpus)" in output
    code, output = invoke("--workload", "demucs", "--gpu-arch", "sm_121")
    assert code == 0 and "On sm_121: native" in output and "sm_120 SASS in" in output
    assert invoke("--gpu", "Radeon 7900")[0] == 2
    assert invoke("--gpu", "t4", "--gpu-arch", "sm_90") == (
        2, "--gpu t4: NVIDIA T4 is sm_75, not --gpu-arch sm_90\n"
    )  # fmt: skip


def test_a_partial_verdict_names_the_library_and_what_it_serves(
    committed: compatibility.Compatibility,
) -> None:
    """torch 2.11.0+cu130's libtorch_cuda_linalg.so has no sm_75 code while libtorch_cuda.so
    has: a T4 runs it, but not torch.linalg; a native row ranks first."""
    cu130 = [r for r in committed.rows if r.axes.accelerator == "cu130"]
    assert cu130 and all(r.gpu["sm_75"].verdict == "partial" for r in cu130)
    only = committed.model_copy(update={"rows": cu130})
    answer = recommend.recommend(only, ["demucs"], gpu_arch="sm_75")
    assert answer.row is not None
    assert "On sm_75: partial, predicted from the wheel's compiled code" in answer.explanation
    assert "libtorch_cuda_linalg.so has no kernels for it: no torch.linalg's" in (
        answer.explanation
    )
    best = recommend.recommend(committed, ["demucs"], gpu_arch="sm_75")
    assert best.row is not None and best.row.gpu["sm_75"].verdict == "native"


def test_an_architecture_no_measured_row_covers_is_not_measured(
    committed: compatibility.Compatibility,
) -> None:
    unmeasured = committed.model_copy(
        update={"rows": [r.model_copy(update={"gpu": {}}) for r in committed.rows]}
    )
    answer = recommend.recommend(unmeasured, ["demucs"], gpu_arch="sm_90")
    assert answer.row is None
    assert answer.notes[0] == (
        "GPU sm_90: not measured: none of the 40 tested rows meeting the other constraints has "
        "a measurement of its wheel's GPU code."
    )
    blackwell = recommend.recommend(committed, ["demucs"], gpu_arch="sm_110")
    assert blackwell.row is None and blackwell.notes[0].startswith(
        "GPU sm_110: no kernel image in the wheel of any of the 40 measured rows"
    )
