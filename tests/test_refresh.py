"""`audiomatrix refresh` without the index: matrix.yaml's date moved by a one-token edit, the
moves between two locks, a lock a partial refresh left behind kept by `lock`, and a cell whose
index does not answer keeping its lock byte for byte. tests/test_refresh_real.py relocks."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from audiomatrix.core.files import sha256_file
from audiomatrix.lock import refresh
from audiomatrix.lock import stage as lock
from audiomatrix.lock.installers import uv
from audiomatrix.records import cell as cell_file
from audiomatrix.spec.dated import with_date, write_exclude_newer
from audiomatrix.spec.matrix import load, parse
from audiomatrix.spec.yamlpos import YamlFileError

SMALL = Path(__file__).parent / "matrices" / "small.yaml"
SHIPPED = Path(__file__).parents[1] / "matrix.yaml"
DAY = dt.date(2026, 12, 7)


@pytest.fixture
def matrix_file(tmp_path):
    shutil.copy(SMALL, tmp_path / "matrix.yaml")
    return tmp_path / "matrix.yaml"


def test_the_shipped_matrix_changes_by_the_date_token_alone():
    text = SHIPPED.read_text()
    edited = with_date(text, DAY, "matrix.yaml")
    changed = [
        (a, b) for a, b in zip(text.splitlines(), edited.splitlines(), strict=True) if a != b
    ]
    before = next(line for line in text.splitlines() if line.startswith("exclude_newer:"))
    assert changed == [(before, "exclude_newer: 2026-12-07")]
    assert parse(edited).file.exclude_newer == DAY


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('exclude_newer: "2026-11-20"  # quoted\n', 'exclude_newer: "2026-12-07"  # quoted\n'),
        ("exclude_newer: '2026-11-20'\n", "exclude_newer: '2026-12-07'\n"),
        ("exclude_newer: ~\n", "exclude_newer: 2026-12-07\n"),
        ("exclude_newer: 2026-11-20\r\n", "exclude_newer: 2026-12-07\r\n"),
    ],
)
def test_quoting_comments_and_line_endings_stay(line, expected):
    text = f"version: 1\n{line}python: ['3.11']\n"
    assert with_date(text, DAY, "m.yaml") == f"version: 1\n{expected}python: ['3.11']\n"


def test_a_matrix_without_a_date_gets_one_after_its_version():
    text = "# a comment\nversion: 1  # the schema\npython: ['3.11']\n"
    assert with_date(text, DAY, "m.yaml") == (
        "# a comment\nversion: 1  # the schema\nexclude_newer: 2026-12-07\npython: ['3.11']\n"
    )


def test_writing_the_date_keeps_the_file_but_for_it(matrix_file):
    before = matrix_file.read_text()
    assert write_exclude_newer(matrix_file, DAY)
    after = matrix_file.read_text()
    assert after == before.replace("exclude_newer: 2026-11-20", "exclude_newer: 2026-12-07")
    stamp = matrix_file.stat().st_mtime_ns
    assert not write_exclude_newer(matrix_file, DAY)  # already so: nothing written
    assert matrix_file.stat().st_mtime_ns == stamp


def test_a_broken_matrix_is_refused_before_any_edit(matrix_file):
    matrix_file.write_text(matrix_file.read_text().replace("family: linux", "famly: linux"))
    before = matrix_file.read_bytes()
    with pytest.raises(YamlFileError, match="unknown key 'famly'"):
        write_exclude_newer(matrix_file, DAY)
    assert matrix_file.read_bytes() == before


def test_moves_name_each_package_that_differs():
    old = {"torch": "2.9.1", "transformers": "5.23.0", "gone": "1.0"}
    new = {"torch": "2.9.1", "transformers": "5.24.0", "Kernels": "0.19.1"}
    assert [str(m) for m in refresh.moves(old, new)] == [
        "- gone 1.0",
        "+ Kernels 0.19.1",
        "transformers 5.23.0 -> 5.24.0",
    ]
    assert refresh.moves(old, dict(old)) == []


def _fake_lock(plan: uv.LockPlan, folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / uv.LOCK_FILE).write_text("soundfile==0.13.1 \\\n    --hash=sha256:00\n")
    record = lock.new_record(plan, lock.Status.LOCKED, None, sha256_file(folder / uv.LOCK_FILE))
    (folder / cell_file.CELL_FILE).write_text(json.dumps(record))


def _plan(matrix, cell_id: str, day: str) -> uv.LockPlan:
    (cell,) = matrix.select([cell_id])
    return uv.LockPlan(cell, uv.plan_for(cell, matrix).requirements, None, day)


def test_lock_keeps_a_lock_a_partial_refresh_left_behind(tmp_path):
    """The matrix moved to a later day for other cells: this lock stands, saying so, and is
    not relocked (uv does not exist here: reaching it would raise)."""
    small = load(SMALL)
    cell = "bookworm-py3.11-torch2.9.1-cu128-bare"
    folder = tmp_path / cell
    _fake_lock(_plan(small, cell, "2026-11-20T00:00:00Z"), folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    later = _plan(small, cell, "2026-12-07T00:00:00Z")
    result = uv.lock_cell(later, folder, uv=str(tmp_path / "no-uv"))
    assert result.status is lock.Status.UNCHANGED
    assert result.detail == (
        "as of 2026-11-20, before the matrix's 2026-12-07: `audiomatrix refresh` moves it"
    )
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_lock_relocks_a_lock_dated_after_the_matrix_or_with_other_inputs(tmp_path):
    small = load(SMALL)
    cell = "bookworm-py3.11-torch2.9.1-cu128-bare"
    no_uv = str(tmp_path / "no-uv")
    folder = tmp_path / cell
    _fake_lock(_plan(small, cell, "2026-12-07T00:00:00Z"), folder)
    with pytest.raises(FileNotFoundError):  # the matrix's date was set back by hand
        uv.lock_cell(_plan(small, cell, "2026-11-20T00:00:00Z"), folder, uv=no_uv)
    later = _plan(small, cell, "2026-12-20T00:00:00Z")
    other = uv.LockPlan(later.cell, (*later.requirements, "numpy"), None, later.exclude_newer)
    with pytest.raises(FileNotFoundError):  # an earlier date keeps only an otherwise-same lock
        uv.lock_cell(other, folder, uv=no_uv)


def test_a_cell_whose_index_does_not_answer_keeps_its_lock_and_date(tmp_path):
    small = load(SMALL)
    cell = "bookworm-py3.11-torch2.9.1-unreachable-bare"
    environments = tmp_path / "environments"
    folder = environments / cell
    _fake_lock(uv.plan_for(small.select([cell])[0], small), folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    (outcome,) = refresh.refresh_cells(
        small.select([cell]), small, environments, DAY, dry_run=False
    )
    assert outcome.status == "index unreachable"
    assert outcome.before == "2026-11-20T00:00:00Z"
    assert outcome.detail.endswith("; kept the lock as of 2026-11-20")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert [p.name for p in environments.iterdir()] == [cell]  # no scratch left behind


def _refresh(matrix: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audiomatrix", "refresh", "--matrix", str(matrix), *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("as_of", "message"),
    [
        ("soon", "--as-of soon: not a day; write YYYY-MM-DD or `today`"),
        ("2026-02-30", "--as-of 2026-02-30: not a day of the calendar; write YYYY-MM-DD"),
        (
            "9999-01-01",
            "--as-of 9999-01-01: after today ({today}); the index cannot be read as "
            "of a day still to come",
        ),
        (
            "2026-11-01",
            "--as-of 2026-11-01: before {matrix}'s exclude_newer 2026-11-20; a "
            "refresh only moves forward (to go back, set exclude_newer there and run "
            "`audiomatrix lock`)",
        ),
    ],
)
def test_a_day_that_cannot_be_refreshed_to_is_one_line_and_exit_2(matrix_file, as_of, message):
    before = matrix_file.read_bytes()
    proc = _refresh(matrix_file, "--as-of", as_of)
    today = dt.datetime.now(dt.UTC).date()
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == message.format(today=today, matrix=matrix_file)
    assert matrix_file.read_bytes() == before
    assert not (matrix_file.parent / "environments").exists()


def test_a_dry_run_writes_nothing(matrix_file):
    """The one cell's index does not answer: the run is offline, and says so per cell."""
    cell = "bookworm-py3.11-torch2.9.1-unreachable-bare"
    before = matrix_file.read_bytes()
    proc = _refresh(matrix_file, "--select", cell, "--as-of", "2026-12-07", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"{cell}: index unreachable: https://127.0.0.1:9/whl/cu999 ")
    assert lines[1] == (
        "refresh as of 2026-12-07: 1 cells: 1 index unreachable (dry run: nothing written)"
    )
    assert matrix_file.read_bytes() == before
    assert [p.name for p in matrix_file.parent.iterdir()] == ["matrix.yaml"]
