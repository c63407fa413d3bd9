"""Hostile conditions made real (marked `fault`; CI runs it as root): an interruption in the
middle of a smoke run, a disk that fills while a lock, a result or the report is written, the
package index out of reach, a smoke check that hits the container's memory limit and a
registry that goes away during a push (the engine stopped mid-run: test_engine_stop.py). Each
stage must say so in one line and leave every earlier file as it was: nothing half-written,
nothing recorded that did not happen.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from audiomatrix.cli import app as cli
from audiomatrix.image import engine
from audiomatrix.records import compatibility, publication
from audiomatrix.smoke import container
from audiomatrix.table import report
from audiomatrix.views import writers
from support import (
    INTERRUPTIONS,
    TrackedImages,
    add_smoke_requirement,
    audiomatrix,
    declare_this_host,
    files_under,
    small_cell,
    start_registry,
    wait_for_child,
    wait_until,
)

pytestmark = pytest.mark.fault

REPO = Path(__file__).resolve().parents[1]
SMALL = REPO / "tests" / "matrices" / "small.yaml"
CELL = "bookworm-py3.11-torch2.9.1-cu128-bare"
PAGE = 4096


def _tree(folder: Path) -> tuple[list[str], dict[str, bytes]]:
    """A folder's subfolders and files (with their bytes), to compare before and after."""
    folders = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_dir())
    return folders, files_under(folder)


def _finish(run) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    stdout, stderr = run.communicate(timeout=600)
    return run.returncode, stdout + stderr


def _running(pid: int, grace_s: float = 10) -> bool:
    """Whether process `pid` still runs after a moment's grace (a killed one is gone, or a
    zombie until its new parent reaps it)."""
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.05)
    return True


def _lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


# --------------------------------------------------------------------------- interruptions


@pytest.fixture
def native_cell(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A repository with the small matrix, a small cell (no torch) locked for real under one
    of its ids and declaring what this host gives a native run, and the environment that
    keeps venvs and temp files in this test's folder."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(SMALL, root / "matrix.yaml")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"  # a Python this host has
    declare_this_host(small_cell(root / "environments", CELL, python=python))
    (tmp_path / "tmp").mkdir()
    env = {"AUDIOMATRIX_CACHE": str(tmp_path / "cache"), "TMPDIR": str(tmp_path / "tmp")}
    return root, env


@pytest.mark.parametrize("interrupt", INTERRUPTIONS)
def test_an_interrupted_smoke_run_records_nothing(
    native_cell: tuple[Path, dict[str, str]], interrupt: Callable[[int], None]
) -> None:
    root, env = native_cell
    args = ("smoke", "--native", CELL, "--matrix", "matrix.yaml", "--mode", "raw")
    code, output = _finish(audiomatrix(root, *args, **env))
    assert code == 0, output
    before = _tree(root / "results")
    assert len(list((root / "results" / CELL).glob("*.json"))) == 1

    run = audiomatrix(root, *args, **env)
    runner = wait_for_child(run.pid, "audiomatrix.suite.run")
    check = wait_for_child(runner, "audiomatrix.suite.plugin")
    interrupt(run.pid)
    code, output = _finish(run)

    assert code == 130, output
    assert _lines_with(output, "interrupted:") == [cli.INTERRUPTED]
    assert "Traceback" not in output
    assert _tree(root / "results") == before  # no result, no logs, the earlier run as it was
    assert not _running(runner) and not _running(check), "the runner or a check outlived it"
    # No scratch folder left (pytest's own base folders, which the checks make, aside).
    assert [
        p.name for p in Path(env["TMPDIR"]).iterdir() if not p.name.startswith("pytest-of-")
    ] == []


# --------------------------------------------------------------------------- a full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs of this test's own, unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=755", "tmpfs", str(disk)],
        capture_output=True, text=True,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"mount refused a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)


def _fill(disk: Path, leave_pages: int) -> None:
    """Fill the disk to the last page, then give back `leave_pages` pages."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out, pytest.raises(OSError) as full:
        while True:
            out.write(b"\0" * PAGE)
    assert full.value.errno == errno.ENOSPC
    os.truncate(filler, max(0, filler.stat().st_size - leave_pages * PAGE))


@pytest.mark.parametrize(
    "free_pages",
    [
        pytest.param(0, id="before-uv"),  # the scratch folder's requirements.in
        pytest.param(4, id="uv-output"),  # uv's lock (11 pages) does not fit
        pytest.param(12, id="cell-json"),  # the lock fits, its record does not
    ],
)
def test_a_full_disk_while_locking_keeps_the_previous_lock(
    small_disk: Path, free_pages: int
) -> None:
    shutil.copy(SMALL, small_disk / "matrix.yaml")
    args = ("lock", "--matrix", "matrix.yaml", "--select", CELL)
    code, output = _finish(audiomatrix(small_disk, *args))
    assert code == 0, output
    add_smoke_requirement(small_disk / "matrix.yaml", "six")
    before = _tree(small_disk / "environments")
    _fill(small_disk, free_pages)

    code, output = _finish(audiomatrix(small_disk, *args))

    assert code == 1, output
    (line,) = _lines_with(output, "No space left on device")
    assert f"environments/{CELL}/" in line or f"{CELL} " in line, line
    assert "Traceback" not in output
    assert _tree(small_disk / "environments") == before  # no scratch folder or temp file


def test_a_full_disk_while_recording_a_result_keeps_the_earlier_results(
    small_disk: Path, native_cell: tuple[Path, dict[str, str]]
) -> None:
    source, env = native_cell
    shutil.copytree(source, small_disk / "repo")
    root = small_disk / "repo"
    args = ("smoke", "--native", CELL, "--matrix", "matrix.yaml", "--mode", "raw")
    code, output = _finish(audiomatrix(root, *args, **env))
    assert code == 0, output
    before = _tree(root / "results")
    _fill(small_disk, 0)

    code, output = _finish(audiomatrix(root, *args, **env))

    assert code == 1, output
    (line,) = _lines_with(output, "No space left on device")
    assert line.startswith(f"results/{CELL}: cannot record the run: No space left"), line
    assert "Traceback" not in output
    assert _tree(root / "results") == before


def test_a_full_disk_while_writing_the_report_is_one_line(small_disk: Path) -> None:
    shutil.copy(SMALL, small_disk / "matrix.yaml")
    _fill(small_disk, 0)
    code, output = _finish(audiomatrix(small_disk, "report", "--matrix", "matrix.yaml"))
    assert code == 1, output
    (line,) = _lines_with(output, "No space left on device")
    assert ".md: No space left on device: the files written before are intact" in line, line
    assert "Traceback" not in output
    assert files_under(small_disk).keys() == {"filler", "matrix.yaml"}


# --------------------------------------------------------------------------- no index


def test_an_unreachable_index_keeps_the_previous_lock(tmp_path: Path) -> None:
    shutil.copy(SMALL, tmp_path / "matrix.yaml")
    args = ("lock", "--matrix", "matrix.yaml", "--select", CELL)
    code, output = _finish(audiomatrix(tmp_path, *args))
    assert code == 0, output
    add_smoke_requirement(tmp_path / "matrix.yaml", "six")
    folder = tmp_path / "environments" / CELL
    before = files_under(folder)
    nowhere = "http://127.0.0.1:9"  # the discard port: nothing listens, every request fails
    proxies = {k: nowhere for k in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy",
                                    "http_proxy", "all_proxy")}  # fmt: skip
    # uv's own, empty cache: it must ask the index (a warm cache could answer by itself).
    cold = str(tmp_path / "uv-cache")

    code, output = _finish(audiomatrix(tmp_path, *args, UV_CACHE_DIR=cold, NO_PROXY="", **proxies))

    assert code == 0, output  # a finding about the index, not a tool failure
    table = re.sub(r"[\s│]+", " ", output)  # a long detail folds onto the next lines
    found = re.search(f"{re.escape(CELL)} index unreachable .*?; kept the previous lock", table)
    assert found, output
    assert files_under(folder) == before
    record = json.loads((folder / "cell.json").read_text())
    assert record["status"] == "locked"


# --------------------------------------------------------------------------- images


HOG = """
def test_hog():
    blocks = []
    while True:  # every page touched, so all of it counts against the limit
        blocks.append(bytearray(b"\\1") * (16 << 20))
"""
FINE = """
def test_fine():
    assert sorted([3, 1, 2]) == [1, 2, 3]
"""
MEMORY_LIMIT = 256 << 20


def _checks_folder(folder: Path, **checks: str) -> Path:
    """A folder of your own checks (test_<name>.py each), readable by an image's user."""
    folder.mkdir()
    for name, text in checks.items():
        (folder / f"test_{name}.py").write_text(text)
    for path in (folder, *folder.iterdir()):
        path.chmod(0o755)  # the image's user reads them through a read-only mount
    return folder


def test_your_own_checks_run_natively_through_the_cli(
    native_cell: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, env = native_cell
    checks = _checks_folder(tmp_path / "checks", fine=FINE)
    args = ("smoke", "--native", CELL, "--matrix", "matrix.yaml", "--mode", "raw")
    code, output = _finish(
        audiomatrix(root, *args, "--suite", str(checks), "--check", "fine", **env)
    )
    assert code == 0, output
    (written,) = (root / "results" / CELL).glob("*.json")
    outcomes = json.loads(written.read_text())["modes"]["raw"]
    assert [(c["check"], c["status"]) for c in outcomes] == [("fine", "pass")]


@pytest.fixture(scope="module")
def small_image(images: TrackedImages, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A small cell (no torch) locked for real and built into an image, removed at the end."""
    cell = small_cell(tmp_path_factory.mktemp("environments"), f"test-fault-{uuid.uuid4().hex[:6]}")
    built = images.build(cell)
    assert built.ok and built.tag, built.detail
    return cell, built.tag


def test_a_check_over_the_memory_limit_is_an_oom_crash_and_the_rest_run(
    small_image, tmp_path: Path
) -> None:
    cell, tag = small_image
    checks = _checks_folder(tmp_path / "checks", hog=HOG, fine=FINE)

    result = container.smoke_in_image(
        tag, cell, tmp_path / "results", modes=["raw"], checks=["hog", "fine"],
        suites=[checks], mem_limit=str(MEMORY_LIMIT), echo=lambda _: None,
    )  # fmt: skip

    outcomes = {c.check: c for c in result.modes["raw"]}
    assert outcomes["fine"].status == "pass"
    hog = outcomes["hog"]
    assert hog.status == "crash"
    assert (
        hog.first_error == f"killed by the kernel's OOM killer (memory limit {MEMORY_LIMIT} bytes)"
    )
    log = (tmp_path / "results" / cell.cell / str(hog.log)).read_text()
    assert report.signature_of(hog, log) == "oom"


def test_a_registry_that_goes_away_mid_push_records_no_publication(
    small_image, tmp_path: Path
) -> None:
    cell, tag = small_image
    root = tmp_path / "repo"
    shutil.copytree(cell.folder.parent, root / "environments")
    container.smoke_in_image(
        tag, cell, root / "results", modes=["raw"], checks=["torch_load"], echo=lambda _: None
    )
    writers.write_all(
        report.build(root / "results", root / "environments", root / publication.FOLDER), root
    )
    assert [r.cell for r in compatibility.load(root / compatibility.JSON_FILE).rows] == [cell.cell]
    before = files_under(root)
    (tmp_path / "registry").mkdir()
    registry, host, log = start_registry(tmp_path / "registry")
    try:
        run = audiomatrix(
            root, "publish", "--registry", f"{host}/test", "--table", compatibility.JSON_FILE
        )
        wait_until(lambda: "/blobs/uploads/" in log.read_text(), "the push's first blob upload")
        registry.kill()
        code, output = _finish(run)
    finally:
        registry.kill()
        registry.wait(timeout=30)

    assert code == 1, output
    assert _lines_with(output, cell.cell) == [line for line in output.splitlines() if line]
    (line,) = _lines_with(output, cell.cell)
    assert line.startswith(f"{cell.cell} failed push {host}/test/audiomatrix/cell:"), line
    assert "Traceback" not in output
    assert files_under(root) == before  # no publication, no SBOM, the table untouched
    assert engine.client().images.list(name=f"{host}/test/audiomatrix/cell") == []
