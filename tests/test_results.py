"""The results schema: versioned, strict, written atomically, newest run found."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from audiomatrix import results
from audiomatrix.files import current_umask, write_atomic


def _result(run: str = "20261125T160000Z", status: str = "pass") -> results.RunResult:
    check = results.CheckResult(check="xtts", status=status, duration_s=1.5)
    return results.RunResult(
        cell="bookworm-py3.11-torch2.9.1-cu128-maintained",
        run=run,
        started=datetime(2026, 11, 25, 16, tzinfo=UTC),
        finished=datetime(2026, 11, 25, 16, 1, tzinfo=UTC),
        where=results.Where(kind="native", os="Linux", machine="x86_64", cpu="EPYC"),
        lock_sha256="0" * 64,
        versions={"torch": "2.9.1", "TTS": None},
        modes={"raw": [check], "compat": [check]},
    )


def test_round_trip_and_lookup(tmp_path) -> None:
    written = results.write(tmp_path, _result())
    assert (
        written
        == tmp_path / "bookworm-py3.11-torch2.9.1-cu128-maintained" / "20261125T160000Z.json"
    )
    back = results.read(written)
    assert back == _result()
    assert back.status("raw", "xtts").status == "pass"
    assert back.status("compat", "demucs") is None
    assert not list(tmp_path.rglob("*.tmp"))


def test_latest_skips_a_damaged_newer_file(tmp_path) -> None:
    results.write(tmp_path, _result("20261125T160000Z"))
    folder = tmp_path / "bookworm-py3.11-torch2.9.1-cu128-maintained"
    (folder / "20261125T170000Z.json").write_text('{"schema_version": 1, "cell": ')
    assert results.latest(tmp_path, folder.name).run == "20261125T160000Z"
    assert results.latest(tmp_path, "no-such-cell") is None


def test_latest_of_a_kind_skips_newer_runs_of_the_other(tmp_path) -> None:
    results.write(tmp_path, _result("20261125T160000Z"))  # native
    image_run = _result("20261125T150000Z").model_copy(
        update={"where": results.Where(kind="image", os="Linux", machine="x86_64", cpu="EPYC")}
    )
    results.write(tmp_path, image_run)
    cell = image_run.cell
    assert results.latest(tmp_path, cell).run == "20261125T160000Z"
    assert results.latest(tmp_path, cell, kind="image").run == "20261125T150000Z"
    assert results.latest(tmp_path, cell, kind="native").run == "20261125T160000Z"


def test_schema_rejects_unknown_status_and_fields() -> None:
    with pytest.raises(ValidationError):
        results.CheckResult(check="x", status="ok", duration_s=1)
    with pytest.raises(ValidationError):
        results.CheckResult(check="x", status="pass", duration_s=1, extra=1)
    data = _result().model_dump()
    data["schema_version"] = 2
    with pytest.raises(ValidationError):
        results.RunResult.model_validate(data)


def test_run_id_sorts_by_time() -> None:
    early = results.run_id(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    late = results.run_id(datetime(2026, 11, 2, 3, 4, 5, tzinfo=UTC))
    assert early == "20260102T030405Z" and early < late


def test_atomic_writes_get_the_usual_file_mode(tmp_path: Path) -> None:
    """Result files are shared (CI artifacts, other users): not mkstemp's owner-only mode."""
    target = tmp_path / "r.json"
    write_atomic(target, "{}")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~current_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
