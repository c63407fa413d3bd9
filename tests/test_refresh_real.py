"""`audiomatrix refresh` against the real index: two cells locked as of one day, one of them
refreshed to a later one; the moves it prints are the two locks' difference, matrix.yaml
moves by its date alone, and the next `lock` moves neither cell."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from packaging.version import Version
from typer.testing import CliRunner

from audiomatrix.cli.app import app
from audiomatrix.lock import refresh
from audiomatrix.lock.index_check import newest
from audiomatrix.lock.installers import uv

pytestmark = pytest.mark.lock

SMALL = Path(__file__).parent / "matrices" / "small.yaml"
MOVED = "bookworm-py3.11-torch2.9.1-cu128-bare"
KEPT = "bookworm-py3.11-torch2.5.1-cu124-bare"


def _run(workdir: Path, *args: str):
    return CliRunner().invoke(app, [*args, "--matrix", str(workdir / "matrix.yaml")])


def _pins(workdir: Path, cell: str) -> dict[str, str]:
    return uv.pins((workdir / "environments" / cell / uv.LOCK_FILE).read_text())


def _record(workdir: Path, cell: str) -> dict:
    return json.loads((workdir / "environments" / cell / "cell.json").read_text())


def test_a_partial_refresh_moves_its_cells_and_lock_keeps_the_rest(tmp_path):
    shutil.copy(SMALL, tmp_path / "matrix.yaml")
    assert _run(tmp_path, "lock", "--select", "two").exit_code == 0
    old = _pins(tmp_path, MOVED)
    kept = (tmp_path / "environments" / KEPT / uv.LOCK_FILE).read_bytes()
    text = (tmp_path / "matrix.yaml").read_text()

    result = _run(tmp_path, "refresh", "--select", MOVED, "--as-of", "2026-12-07")
    assert result.exit_code == 0, result.output
    new = _pins(tmp_path, MOVED)
    moves = refresh.moves(old, new)
    assert moves, "the index moved no package of this cell in 17 days: pick a later day"
    assert f"{MOVED} (as of 2026-11-20): {len(moves)} moved" in result.output
    for move in moves:
        assert f"\n  {move}\n" in result.output
    assert f"needs a run (1): audiomatrix sweep --select {MOVED}" in result.output
    assert (tmp_path / "matrix.yaml").read_text() == text.replace(
        "exclude_newer: 2026-11-20", "exclude_newer: 2026-12-07"
    )
    assert _record(tmp_path, MOVED)["inputs"]["exclude_newer"] == "2026-12-07T00:00:00Z"
    assert _record(tmp_path, KEPT)["inputs"]["exclude_newer"] == "2026-11-20T00:00:00Z"

    again = _run(tmp_path, "lock", "--select", "two")
    assert again.exit_code == 0, again.output
    assert "2 unchanged" in again.output
    assert "as of 2026-11-20, before the matrix's 2026-12-07" in again.output.replace("\n", "")
    assert _pins(tmp_path, MOVED) == new
    assert (tmp_path / "environments" / KEPT / uv.LOCK_FILE).read_bytes() == kept


def test_the_index_check_names_the_newest_release_of_each_package():
    found = newest(["demucs", "coqui-tts"], "3.11", "x86_64-manylinux_2_36")
    assert set(found) == {"demucs", "coqui-tts"}
    assert Version(found["demucs"]) >= Version("4.1.0")
    assert Version(found["coqui-tts"]) >= Version("0.28.0")
