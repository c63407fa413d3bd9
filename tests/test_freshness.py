"""The report is skipped only when it was written from exactly today's inputs and code, and
nobody touched an output since."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from audiomatrix.cli.display import ConsoleDisplay
from audiomatrix.records import compatibility
from audiomatrix.smoke import results
from audiomatrix.table import report
from audiomatrix.views import freshness, outputs, writers
from support import run_result, write_cell_json

CELL = "bookworm-py3.11-torch2.5.1-cu124-legacy-pinned"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUDIOMATRIX_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "repo"
    results.write(root / "results", run_result(CELL, {c: "pass" for c in report.CHECKS}))
    write_cell_json(root / "environments", CELL)
    return root


def fresh(root: Path) -> bool:
    return freshness.is_fresh(root, outputs.inputs(root), writers.output_paths(root))


def test_a_written_report_is_fresh_until_an_input_changes(repo: Path) -> None:
    assert not fresh(repo)  # never written
    outputs.write(repo)
    assert fresh(repo)
    run = next((repo / "results" / CELL).glob("*.json"))
    os.utime(run, ns=(run.stat().st_atime_ns, run.stat().st_mtime_ns + 1))
    assert not fresh(repo)


def test_an_input_put_back_with_an_older_time_counts_as_changed(repo: Path) -> None:
    record = repo / "environments" / CELL / "cell.json"
    outputs.write(repo)
    os.utime(record, ns=(0, 0))  # as `cp -p` or an unpacked archive would leave it
    assert not fresh(repo)


def test_a_new_run_or_a_touched_output_is_not_fresh(repo: Path) -> None:
    outputs.write(repo)
    (repo / "COMPATIBILITY.md").write_text("edited by hand\n")
    assert not fresh(repo)
    outputs.write(repo)
    results.write(repo / "results", run_result(CELL, {"xtts": "fail"}, run="20261126T000000Z"))
    assert not fresh(repo)
    outputs.write(repo)
    (repo / "site" / "index.html").unlink()
    assert not fresh(repo)


def test_refresh_writes_once_then_says_unchanged(repo: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    ConsoleDisplay().report(repo, outputs.refresh(repo))
    assert "wrote COMPATIBILITY.md" in capsys.readouterr().out
    written = (repo / "compatibility.json").stat().st_mtime_ns
    ConsoleDisplay().report(repo, outputs.refresh(repo))
    assert "report unchanged" in capsys.readouterr().out
    assert (repo / "compatibility.json").stat().st_mtime_ns == written


def test_a_page_with_changes_since_a_previous_table_leaves_no_stamp(repo: Path) -> None:
    previous = outputs.write(repo).table
    freshness.stamp_path(repo).unlink()
    outputs.write(repo, previous)
    assert not fresh(repo)


def test_a_run_written_while_the_report_is_built_leaves_it_stale(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep may record a run while the report reads: that run is not in the table, so
    the stamp must not call the table fresh."""
    build = report.build

    def build_then_a_run_lands(*args: Path) -> compatibility.Compatibility:
        table = build(*args)
        later = run_result(CELL, {"xtts": "fail"}, run="20261126T000000Z")
        results.write(repo / "results", later)
        return table

    monkeypatch.setattr(report, "build", build_then_a_run_lands)
    outputs.write(repo)
    assert not fresh(repo)
