"""The results schema: versioned, strict, written atomically, newest run found."""

from __future__ import annotations

import json
import re
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from audiomatrix.core.files import current_umask, write_atomic
from audiomatrix.records import run as run_record
from audiomatrix.smoke import results
from audiomatrix.suite.schema import CheckOutcome
from support import environment

REPO = Path(__file__).resolve().parents[1]


def _result(run: str = "20261125T160000Z", status: str = "pass") -> run_record.RunResult:
    check = CheckOutcome(check="xtts", status=status, duration_s=1.5)
    return run_record.RunResult(
        cell="bookworm-py3.11-torch2.9.1-cu128-maintained",
        run=run,
        started=datetime(2026, 11, 25, 16, tzinfo=UTC),
        finished=datetime(2026, 11, 25, 16, 1, tzinfo=UTC),
        where=run_record.Where(kind="native"),
        lock_sha256="0" * 64,
        environment=environment(),
        modes={"raw": [check], "compat": [check]},
    )


def test_round_trip_and_lookup(tmp_path) -> None:
    written = results.write(tmp_path, _result())
    assert (
        written
        == tmp_path / "bookworm-py3.11-torch2.9.1-cu128-maintained" / "20261125T160000Z.json"
    )
    back = run_record.read(written)
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
        update={"where": run_record.Where(kind="image")}
    )
    results.write(tmp_path, image_run)
    cell = image_run.cell
    assert results.latest(tmp_path, cell).run == "20261125T160000Z"
    assert results.latest(tmp_path, cell, kind="image").run == "20261125T150000Z"
    assert results.latest(tmp_path, cell, kind="native").run == "20261125T160000Z"


def test_schema_rejects_unknown_status_fields_and_versions() -> None:
    data = _result().model_dump(mode="json")
    for edit in (
        lambda d: d["modes"]["raw"][0].update(status="ok"),
        lambda d: d["modes"]["raw"][0].update(extra=1),
        lambda d: d["environment"]["facts"].update(gpu_arch="sm_90"),
        lambda d: d.update(schema_version=3),
    ):
        broken = json.loads(json.dumps(data))
        edit(broken)
        with pytest.raises(ValidationError):
            run_record.RunResult.model_validate(broken)


def test_a_damaged_or_foreign_run_file_is_one_line_naming_it(tmp_path) -> None:
    path = results.write(tmp_path, _result())
    text = path.read_text()
    cases = {
        text[: len(text) // 2]: "not valid JSON at line",
        text.replace('"status": "pass"', '"status": 7', 1): "field 'modes.raw.0.status'",
    }
    for damaged, message in cases.items():
        path.write_text(damaged)
        with pytest.raises(run_record.ResultError, match=re.escape(f"{path}: {message}")):
            run_record.read(path)
    path.write_bytes(text.encode().replace(b"EPYC", b"EP\xffC"))
    with pytest.raises(run_record.ResultError, match="not UTF-8 text"):
        run_record.read(path)
    foreign = tmp_path / "other-cell" / path.name
    foreign.parent.mkdir()
    foreign.write_text(text)
    with pytest.raises(run_record.ResultError, match=r"names cell 'bookworm-py3\.11"):
        run_record.read(foreign)


def test_a_schema_1_run_reads_with_its_unmeasured_facts_unknown() -> None:
    old = REPO / "results/bookworm-py3.11-torch2.5.1-cu124-legacy-pinned"
    run = run_record.read(sorted(old.glob("*.json"))[0])
    assert run.environment.schema == 1
    assert run.environment.host.distribution is None
    assert run.environment.facts.python.startswith("3.11")
    assert run.environment.provenance.suite_sha256 == ""


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
