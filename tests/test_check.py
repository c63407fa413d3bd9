"""`audiomatrix check`: pasted errors against the catalog, versions against the table, an
environment checked without being changed, and every command's --help."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import sysconfig
import time
import venv
from pathlib import Path

import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from audiomatrix.catalog import matching, signatures
from audiomatrix.check import environment, evidence, versions
from audiomatrix.check.errors import CheckInputError
from audiomatrix.cli.app import app
from audiomatrix.lock.installers import conda
from audiomatrix.records import compatibility
from audiomatrix.spec import matrix
from audiomatrix.suite.probe import normalise

ROOT = Path(__file__).parents[1]
CAPTURED = sorted((Path(__file__).parent / "data" / "errors").glob("*.txt"))
TABLE = compatibility.load(ROOT / compatibility.JSON_FILE)

GPU_WARNING = (
    "C:\\Users\\me\\app\\.venv\\Lib\\site-packages\\torch\\cuda\\__init__.py:235: UserWarning: \n"
    "NVIDIA GeForce RTX 5090 with CUDA capability sm_120 is not compatible with the current "
    "PyTorch installation.\nThe current PyTorch install supports CUDA capabilities sm_50 sm_60 "
    "sm_70 sm_75 sm_80 sm_86 sm_90.\n  warnings.warn(\n"
)
FUTURE_WARNING = (
    "/home/me/.venv/lib/python3.11/site-packages/TTS/utils/io.py:54: FutureWarning: You are "
    "using `torch.load` with `weights_only=False` (the current default value)\n"
    "  return torch.load(f, map_location=map_location, **kwargs)\n"
)


def audiomatrix(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **kwargs.pop("env", {})}
    return subprocess.run(
        [sys.executable, "-m", "audiomatrix", *args],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT, **kwargs,
    )  # fmt: skip


def cli(*args: str, **kwargs) -> Result:
    """The command in this process: what the subprocess tests need not pay for."""
    return CliRunner().invoke(app, list(args), **kwargs)


def first(text: str) -> str | None:
    found = matching.matches(text)
    return found[0].signature.id if found else None


def outcomes_with_signatures() -> list[tuple[str, str, str]]:
    """(signature, first error, log text) of every failed check of the committed table."""
    found = []
    for row in TABLE.rows + TABLE.apart:
        for _, _, outcome in evidence.outcomes(row):
            if outcome.signature and outcome.signature != signatures.UNCLASSIFIED:
                log = (ROOT / outcome.log).read_text(errors="replace") if outcome.log else ""
                found.append((outcome.signature, outcome.first_error or "", log))
    return found


# --------------------------------------------------------------------------- every --help


def command_paths() -> list[list[str]]:
    group = typer.main.get_command(app)
    paths = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        paths.append([name])
        paths += [[name, sub] for sub in getattr(command, "commands", {})]
    return paths


@pytest.mark.parametrize("path", command_paths(), ids=" ".join)
def test_every_help_renders(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and "Error" not in result.output


@pytest.mark.parametrize(
    ("path", "written"),
    [
        (["publish"], "host[:port][/namespace]"),
        (["recommend"], "repeatable [all]."),
        (["show"], "repeatable [all]."),
        (["pull"], "A cell id [the recommended one]."),
        (["smoke"], "raw and/or compat [default: both]."),
    ],
)
def test_bracketed_help_is_shown_as_written(path: list[str], written: str) -> None:
    """rich reads [...] as markup: a help text's brackets are escaped, or they vanish."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert written in result.output


# --------------------------------------------------------------------------- --log


@pytest.mark.parametrize("path", CAPTURED, ids=[p.stem for p in CAPTURED])
def test_captured_error_puts_its_signature_first(path: Path) -> None:
    assert first(path.read_text()) == path.stem.split("--")[0]


def test_every_failure_of_the_committed_results_puts_its_signature_first() -> None:
    found = outcomes_with_signatures()
    assert len({s for s, _, _ in found}) >= 15
    for signature, first_error, log in found:
        assert first(f"{first_error}\n{log}") == signature, (signature, first_error)


def test_a_first_error_line_alone_names_its_signature() -> None:
    """Every entry from the first error line the suite recorded; the two weights-only entries
    share theirs word for word, so it names both, by the first part of their pattern."""
    for signature, first_error, _ in outcomes_with_signatures():
        found = matching.matches(first_error)
        ids = [m.signature.id for m in found]
        if signature.startswith("weights-only-"):
            assert set(ids) == {"weights-only-xtts", "weights-only-demucs"}
            assert not any(m.whole for m in found)
        else:
            assert ids[0] == signature, (signature, first_error)


def as_pasted(text: str) -> str:
    """A log as a Windows user pastes it: their paths, CRLF, colours, warnings around."""
    text = text.replace("<venv>/lib/python3.10/site-packages/", "C:\\Users\\me\\.venv\\Lib\\")
    text = text.replace("<venv>", "C:\\Users\\me\\.venv").replace("<tmp>", "C:\\Temp")
    text = f"{GPU_WARNING}{FUTURE_WARNING}\x1b[31m{text}\x1b[0m\n{GPU_WARNING}"
    return text.replace("\n", "\r\n")


@pytest.mark.parametrize("path", CAPTURED, ids=[p.stem for p in CAPTURED])
def test_a_pasted_traceback_puts_its_signature_first(path: Path) -> None:
    found = matching.matches(as_pasted(path.read_text()))
    assert found[0].signature.id == path.stem.split("--")[0]
    assert not found[0].in_warning
    kernel = [m for m in found if m.signature.id == "no-kernel-image"]
    assert kernel and kernel[0].in_warning


WINDOWS_TRACEBACK = (
    "Traceback (most recent call last):\r\n"
    '  File "D:\\work\\tts_service\\app.py", line 12, in <module>\r\n'
    "    from TTS.api import TTS\r\n"
    '  File "D:\\work\\tts_service\\.venv\\Lib\\site-packages\\TTS\\tts\\utils\\text\\'
    'punctuation.py", line 5, in <module>\r\n'
    "    import six\r\n"
    "ModuleNotFoundError: No module named 'six'\r\n"
)
"""A traceback as a Windows user pastes it: their own paths, CRLF."""


def test_a_user_traceback_with_their_own_paths() -> None:
    found = matching.matches(WINDOWS_TRACEBACK)
    assert [m.signature.id for m in found] == ["coqui-tts-six-undeclared"]
    assert found[0].line == "ModuleNotFoundError: No module named 'six'"


def test_the_gpu_warning_alone_is_still_named() -> None:
    found = matching.matches(GPU_WARNING)
    assert [m.signature.id for m in found] == ["no-kernel-image"]


def test_check_log_reads_stdin_and_says_when_nothing_matches() -> None:
    known = audiomatrix("check", "--log", "-", "--json",
                        input=(ROOT / "tests/data/errors/oom.txt").read_text())  # fmt: skip
    assert known.returncode == 0, known.stderr
    data = json.loads(known.stdout)
    assert data["matches"][0]["signature"] == "oom"
    unknown = cli("check", "--log", "-", input="ZeroDivisionError: division by zero\n")
    assert unknown.exit_code == 1
    assert "no catalog entry matches this text" in unknown.stdout


def test_check_log_names_the_rows_and_logs_that_reproduced_it() -> None:
    six = ROOT / "tests/data/errors/coqui-tts-six-undeclared.txt"
    proc = cli("check", "--log", str(six), "--json")
    match = json.loads(proc.stdout)["matches"][0]
    assert match["signature"] == "coqui-tts-six-undeclared"
    assert match["reproduced"] and all((ROOT / s["log"]).is_file() for s in match["reproduced"])
    assert match["remedy"] and match["affects"] == {"coqui-tts": ">=0.27.4"}


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give one of --log FILE (or -), --python PATH"),
        (("--log", "-", "torch==2.6.0"), "give one of"),
        (("torch>=2.6",), "torch>=2.6: give pinned versions like torch==2.6.0"),
        (("torch==2.6.0", "--check", "nope"), "--check nope: choose from"),
        (("torch==2.6.0", "--python-version", "three"), "--python-version three: give"),
        (("--python", "/nonexistent/python"), "/nonexistent/python: no such interpreter"),
        (("--log", "/nonexistent.log"), "/nonexistent.log: cannot read the error text"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    proc = cli("check", *args)
    assert proc.exit_code == 2, proc.output
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr


def test_an_environment_yml_without_a_solver_is_one_line(tmp_path: Path, monkeypatch) -> None:
    env = tmp_path / "environment.yml"
    env.write_text("dependencies:\n  - python=3.11\n  - pytorch=2.6.0\n")
    monkeypatch.setattr(conda, "solver", lambda: None)
    proc = cli("check", "--env", str(env))
    assert proc.exit_code == 1
    assert proc.stderr.strip().endswith(
        "needs a conda solver (micromamba, mamba, conda) on PATH, and none is; "
        "`--versions-only` reads its pins without one"
    )


# --------------------------------------------------------------------------- --versions-only


def test_pins_of_words_locks_and_environment_files(tmp_path: Path) -> None:
    assert versions.pinned_words(["TTS==0.22.0", "torch==2.6.0+cu124"]) == {
        "tts": "0.22.0", "torch": "2.6.0+cu124",
    }  # fmt: skip
    lock = ROOT / "environments/bookworm-py3.11-torch2.9.1-cu128-maintained/requirements.txt"
    pins = versions.lock_pins(lock.read_text())
    assert pins["torch"] == "2.9.1" and pins["coqui-tts"]
    env = tmp_path / "environment.yml"
    env.write_text("dependencies:\n  - python=3.11\n  - conda-forge::pytorch==2.6.0=cuda*\n"
                   "  - pip\n  - pip:\n    - TTS==0.22.0\n")  # fmt: skip
    assert versions.environment_pins(env) == {"python": "3.11", "pytorch": "2.6.0", "tts": "0.22.0"}
    with pytest.raises(CheckInputError):
        versions.python_version("3")


def test_expected_failures_follow_the_catalog_ranges() -> None:
    found = {e.signature.id: e.because for e in versions.expected(
        {"torch": "2.6.0+cu124", "tts": "0.22.0", "transformers": "4.57.1"})}  # fmt: skip
    assert found["weights-only-xtts"] == ["torch 2.6.0 in >=2.6"]
    assert found["transformers-beamsearchscorer"] == [
        "TTS 0.22.0 in >=0.17.7", "transformers 4.57.1 in >=4.57",
    ]  # fmt: skip

    # Every TTS release with XTTS streaming, and only the transformers that break it.
    def ids(transformers: str) -> set[str]:
        found = versions.expected({"tts": "0.21.3", "transformers": transformers})
        return {e.signature.id for e in found}

    assert "xtts-stream-pad-token-tensor" in ids("4.49.0")
    assert "xtts-stream-pad-token-tensor" not in ids("4.40.2")
    assert "transformers-needs-newer-torch" not in found
    six = {"coqui-tts": "0.27.4", "torch": "2.9.1"}
    assert "coqui-tts-six-undeclared" in {e.signature.id for e in versions.expected(six)}
    with_six = versions.expected({**six, "six": "1.17.0"})
    assert "coqui-tts-six-undeclared" not in {e.signature.id for e in with_six}
    codec = {"torch": "2.9.1", "torchaudio": "2.9.1", "coqui-tts": "0.27.4"}
    without = {e.signature.id for e in versions.expected(codec)}
    assert {"torchcodec-missing", "coqui-tts-requires-torchcodec"} <= without
    with_codec = {e.signature.id for e in versions.expected({**codec, "torchcodec": "0.8.1"})}
    assert not {"torchcodec-missing", "coqui-tts-requires-torchcodec"} & with_codec


def test_the_nearest_row_shares_torch_and_the_stack_before_python() -> None:
    legacy_pinned = {"torch": "2.6.0", "torchaudio": "2.6.0", "tts": "0.22.0",
                     "transformers": "4.49.0"}  # fmt: skip
    row = evidence.nearest(TABLE, legacy_pinned, "3.11")
    assert row is not None and row.cell == "bookworm-py3.10-torch2.6.0-cu124-legacy-pinned"
    assert evidence.differences(row, legacy_pinned, "3.11") == ["Python 3.10 (here 3.11)"]
    assert evidence.nearest(TABLE, {"numpy": "2.0.0"}, "3.11") is None


def test_versions_only_names_the_expected_failures_and_the_proven_fix() -> None:
    started = time.monotonic()
    proc = audiomatrix("check", "torch==2.6.0", "torchaudio==2.6.0", "TTS==0.22.0",
                       "transformers==4.49.0", "--python-version", "3.11", "--workload", "xtts",
                       "--json")  # fmt: skip
    assert time.monotonic() - started < 10
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["matches"][0]["signature"] == "weights-only-xtts"
    assert data["nearest"]["cell"] == "bookworm-py3.10-torch2.6.0-cu124-legacy-pinned"
    xtts = next(c for c in data["checks"] if c["check"] == "xtts")
    assert xtts["signature"] == "weights-only-xtts" and xtts["raw"] == "fail"
    assert (
        xtts["fix"]["kind"] == "compat"
        and "proven alone: `checkpoint_globals`" in (xtts["fix"]["text"])
    )
    assert all((ROOT / log).is_file() for log in xtts["fix"]["proven_by"])


def test_a_remedy_cell_fix_names_both_runs() -> None:
    proc = cli("check", "torch==2.6.0", "coqui-tts==0.27.5", "--python-version", "3.11",
               "--check", "xtts", "--json")  # fmt: skip
    xtts = json.loads(proc.stdout)["checks"][0]
    if xtts["signature"] == "coqui-tts-six-undeclared":
        assert xtts["fix"]["kind"] == "remedy cell" and "+six" in xtts["fix"]["text"]
        assert len(xtts["fix"]["proven_by"]) == 2
    assert all(c["signature"] for c in json.loads(proc.stdout)["checks"] if c["raw"] == "fail")


# --------------------------------------------------------------------------- --python


def tree(folder: Path) -> dict[str, str]:
    """Every file below `folder` and its hash: the environment, byte for byte."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_check_python_runs_the_suite_and_leaves_the_environment_as_it_was(
    tmp_path: Path, monkeypatch
) -> None:
    """A venv of the standard library that sees this interpreter's packages (pytest, no
    torch): the suite runs in it raw and with compat, and it is byte-identical afterwards.
    What it lacks of the suite's needs is not installed beside it here (no network: the
    marked test in test_check_real does)."""
    env = tmp_path / "venv"
    venv.create(env, with_pip=False)
    site = next(env.glob("lib/python*/site-packages"))
    (site / "parent.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    before = tree(env)
    monkeypatch.setenv("AUDIOMATRIX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(environment, "harness", lambda python, measured: None)
    proc = cli("check", "--python", str(env), "--check", "torch_load", "--json")
    assert tree(env) == before
    assert proc.exit_code == 1, proc.output
    data = json.loads(proc.stdout)
    (check,) = data["checks"]
    assert check["check"] == "torch_load" and check["raw"] == "fail"
    assert check["first_error"] == "ModuleNotFoundError: No module named 'torch'"
    assert check["signature"] == "unclassified" and check["fix"]["kind"] == "none"
    assert Path(check["log"]).is_file() and str(tmp_path / "cache") in check["log"]
    assert any(re.search(r"no NVIDIA GPU|sm_\d+", line) for line in data["notes"] + data["gpus"])


def test_the_suite_writes_no_cache_into_the_environment(tmp_path: Path, monkeypatch) -> None:
    """Bytecode and numba's cached jits (librosa's, which numba writes beside their sources in
    site-packages otherwise, as a real legacy venv showed) go to the check's cache."""
    monkeypatch.setenv("AUDIOMATRIX_CACHE", str(tmp_path / "cache"))
    env = environment.check_environment()
    for name in ("PYTHONPYCACHEPREFIX", "NUMBA_CACHE_DIR"):
        assert Path(env[name]).is_relative_to(tmp_path / "cache" / "check"), name


def test_the_suite_needs_what_the_matrix_adds_to_every_cell() -> None:
    shipped = matrix.load(ROOT / "matrix.yaml").file.smoke_requirements
    assert set(environment.HARNESS) == set(shipped)


def test_a_broken_environment_is_a_finding(tmp_path: Path) -> None:
    env = tmp_path / "venv"
    venv.create(env, with_pip=False)
    (env / "pyvenv.cfg").write_text("home = /nonexistent\n")
    python = env / "bin" / "python"
    python.unlink()
    python.write_text("#!/bin/sh\necho 'python: broken' >&2\nexit 1\n")
    python.chmod(0o755)
    proc = cli("check", "--python", str(python), "--json",
               env={"AUDIOMATRIX_CACHE": str(tmp_path / "cache")})  # fmt: skip
    assert proc.exit_code == 1, proc.output
    assert "the environment probe failed: python: broken" in json.loads(proc.stdout)["broken"]


def test_the_nearest_row_has_ffmpeg_where_the_environment_has_it() -> None:
    """Two rows alike in every version but FFmpeg: the measured environment decides."""
    without = next(r for r in TABLE.rows if r.facts.ffmpeg is None and r.versions.get("torch"))
    alike = next(r for r in TABLE.rows if r.facts.ffmpeg is not None and r.cell != without.cell)
    alike = alike.model_copy(update={"versions": without.versions, "axes": without.axes})
    table = TABLE.model_copy(update={"rows": [alike, without]})
    versions = {normalise(k): v for k, v in without.versions.items()}
    assert evidence.nearest(table, versions, without.axes.python, ffmpeg=False) == without
    assert evidence.nearest(table, versions, without.axes.python, ffmpeg=True) == alike
