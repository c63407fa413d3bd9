"""The smoke runner for real, on a small suite of its own: a pass, a skip, a failure, a
corrupt write, a hang and a segfault, each in its own process; then the host's collection of
what it wrote into a RunResult with signatures and kept logs."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from audiomatrix.lock import cell_lock
from audiomatrix.records import run as run_record
from audiomatrix.smoke import runner as smoke
from audiomatrix.suite import probe
from audiomatrix.table import report
from support import record_model

CHECKS = """
import os, signal, time
import pytest
from audiomatrix.suite.smokelib import CorruptOutput, compat_enabled

def test_fine():
    assert 1 + 1 == 2

def test_no_gpu():
    pytest.skip("no GPU")

def test_codec():
    raise ImportError("TorchCodec is required for save_with_torchcodec. Please install torchcodec.")

def test_write():
    raise CorruptOutput("wav: samples differ by up to 0.5 (tolerance 3.05e-05)")

@pytest.mark.timeout(3)
def test_stuck():
    time.sleep(600)

def test_segfault():
    os.kill(os.getpid(), signal.SIGSEGV)

def test_mode():
    assert not compat_enabled()
"""


@pytest.fixture(scope="module")
def runner_output(tmp_path_factory):
    suite = tmp_path_factory.mktemp("suite")
    # The compat mode enables audiomatrix.compat, which needs torch: use raw here.
    (suite / "test_cases.py").write_text(CHECKS)
    out = tmp_path_factory.mktemp("out")
    names = ("fine", "no_gpu", "codec", "write", "stuck", "segfault", "mode")
    proc = subprocess.run(
        [sys.executable, "-m", "audiomatrix.suite.run", "--out", str(out), "--mode", "raw",
         "--timeout", "30", "--suite", str(suite), *(f"--check={n}" for n in names)],
        capture_output=True, text=True, timeout=300, env=smoke.suite_environment(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def _by_check(out: Path) -> dict[str, dict]:
    return {c["check"]: c for c in json.loads((out / "raw.json").read_text())["checks"]}


def test_each_outcome_gets_its_status(runner_output) -> None:
    checks = _by_check(runner_output)
    assert {name: c["status"] for name, c in checks.items()} == {
        "fine": "pass",
        "no_gpu": "skip",
        "codec": "fail",
        "write": "corrupt",
        "stuck": "hang",
        "segfault": "crash",
        "mode": "pass",
    }
    assert checks["no_gpu"]["first_error"] == "no GPU"
    assert checks["codec"]["first_error"].startswith("ImportError: TorchCodec is required")
    assert checks["write"]["first_error"].startswith(
        "audiomatrix.suite.smokelib.CorruptOutput: wav: samples differ"
    )
    assert checks["segfault"]["first_error"] == "killed by signal 11 SIGSEGV"
    assert checks["stuck"]["duration_s"] < 30


def test_logs_and_environment_are_written(runner_output) -> None:
    checks = _by_check(runner_output)
    log = (runner_output / checks["segfault"]["log"]).read_text()
    assert "Fatal Python error: Segmentation fault" in log
    # Machine paths are replaced: results are committed and shared.
    for path in (tempfile.gettempdir(), str(Path.home()), sys.prefix):
        assert f"{path}/" not in log
    environment = json.loads((runner_output / "environment.json").read_text())
    assert environment["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert environment["facts"]["python"] == environment["versions"]["python"]
    assert environment["host"]["machine"]
    assert environment["provenance"] == asdict(probe.provenance())


def test_collect_keeps_logs_and_the_report_classifies(runner_output, tmp_path) -> None:
    record = record_model("bookworm-py3.11-torch2.9.1-cu128-maintained")
    record = record.model_copy(update={"lock_sha256": "a" * 64})
    cell = cell_lock.CellLock("cell-a", tmp_path, record)
    started = datetime(2026, 11, 25, 12, tzinfo=UTC)
    root = tmp_path / "results"
    result = smoke.collect(cell, runner_output, root, {"kind": "native"}, started)
    assert run_record.read(root / "cell-a" / "20261125T120000Z.json") == result
    raw = {c.check: c for c in result.modes["raw"]}
    saved = root / "cell-a"
    assert "Segmentation fault" in (saved / raw["segfault"].log).read_text()
    assert raw["segfault"].log == "logs/20261125T120000Z/raw/segfault.log"

    def signature(name: str) -> str | None:
        return report.signature_of(raw[name], (saved / raw[name].log).read_text())

    assert signature("codec") == "torchcodec-missing"
    assert signature("write") == "unclassified"
    assert signature("fine") is None and signature("no_gpu") is None
