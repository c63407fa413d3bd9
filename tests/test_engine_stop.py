"""The engine stopped in the middle of `audiomatrix smoke`: one clear line, no result for the
interrupted cell (and no half-written file), and the next run resumes where it stopped.

It really stops the Docker Engine (SIGTERM to dockerd, as `systemctl stop docker` does) and
starts it again with `audiomatrix engine`; it needs root and an engine this test may restart.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audiomatrix import engine, imagebuild, spec
from support import small_cell

pytestmark = pytest.mark.image
REPO = Path(__file__).resolve().parents[1]


def _smoke(root: Path, cells: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "audiomatrix", "smoke", *cells, "--matrix",
         str(root / "matrix.yaml"), "--mode", "raw"],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _running(cell: str) -> bool:
    found = engine.client().containers.list(filters={"label": f"{engine.LABEL}.cell={cell}"})
    return bool(found)


def _wait(condition, what: str, timeout_s: float = 300) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def _result_files(root: Path, cell: str) -> list[Path]:
    return sorted((root / "results" / cell).glob("*.json"))


@pytest.mark.skipif(os.geteuid() != 0, reason="stopping and starting dockerd needs root")
def test_engine_stopped_mid_run_then_resumed(tmp_path: Path) -> None:
    engine.ensure_engine()
    if not engine.DOCKERD_PIDFILE.exists():
        pytest.skip("this engine was not started as a local dockerd with a pid file")
    pid = engine.DOCKERD_PIDFILE.read_text().strip()
    if "docker.service" in Path(f"/proc/{pid}/cgroup").read_text():
        pytest.skip("dockerd belongs to systemd here: this test would replace it by its own")
    shutil.copy(REPO / "tests" / "matrices" / "small.yaml", tmp_path / "matrix.yaml")
    matrix = spec.load(tmp_path / "matrix.yaml")
    first, second = [c.id for c in matrix.cells if c.buildable][:2]
    for cell in (first, second):
        small_cell(tmp_path / "environments", cell)  # a small lock under the matrix's id

    try:
        _stop_and_resume(tmp_path, first, second)
    finally:
        for cell in (first, second):  # the images are this test's own
            imagebuild.remove_stale(engine.client(), cell, keep="")


def _stop_and_resume(tmp_path: Path, first: str, second: str) -> None:
    run = _smoke(tmp_path, [first, second])
    try:
        _wait(lambda: _result_files(tmp_path, first) and _running(second), f"{second} to run")
        os.kill(int(engine.DOCKERD_PIDFILE.read_text()), signal.SIGTERM)
        output, _ = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
        engine.ensure_engine()  # back up for the rest of the tests, whatever happened

    assert run.returncode == 1, output
    stopped = [line for line in output.splitlines() if f"smoke run of {second}" in line]
    assert len(stopped) == 1 and "rerun to resume" in stopped[0], output
    assert "Traceback" not in output
    assert len(_result_files(tmp_path, first)) == 1
    assert _result_files(tmp_path, second) == []  # nothing recorded for the interrupted cell
    leftovers = [p for p in (tmp_path / "results").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []

    again = _smoke(tmp_path, [first, second])
    output, _ = again.communicate(timeout=600)
    assert again.returncode == 0, output
    assert f"{first} smoke unchanged" in output  # resumed: the finished cell is not rerun
    assert len(_result_files(tmp_path, first)) == 1
    (written,) = _result_files(tmp_path, second)
    assert json.loads(written.read_text())["cell"] == second
