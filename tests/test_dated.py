"""How old each row is: its lock's day from its cell.json, the stack packages the committed
index check (environments/index.json) found newer, and the page's and COMPATIBILITY.md's
words for it, all from files: a plain report never asks the index or the clock."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from audiomatrix.core.files import json_text
from audiomatrix.lock.installers import uv
from audiomatrix.records import compatibility
from audiomatrix.records.cell import read_record
from audiomatrix.records.index_check import INDEX_FILE, IndexCheck, Newest
from audiomatrix.table import dated, report
from audiomatrix.views import writers
from audiomatrix.views.age import age_text

REPO = Path(__file__).resolve().parents[1]
MAINTAINED = "bookworm-py3.11-torch2.9.1-cu128-maintained"
PLATFORM = "x86_64-manylinux_2_36"


def _check(**versions: str) -> IndexCheck:
    newest = [Newest(python="3.11", platform=PLATFORM, versions=versions)]
    return IndexCheck(checked=date(2026, 12, 8), source="a test", newest=newest)


def _committed(cell: str):
    folder = REPO / "environments" / cell
    return read_record(folder), uv.pins((folder / uv.LOCK_FILE).read_text())


def test_a_row_is_as_of_its_locks_day():
    record, _ = _committed(MAINTAINED)
    assert dated.as_of(record) == date.fromisoformat(record.inputs["exclude_newer"][:10])
    assert dated.as_of(None) is None


def test_newer_releases_are_those_a_refresh_could_take():
    """coqui-tts is unpinned: a newer release counts; demucs==4.1.0 is pinned by the stack, so
    a newer demucs is not one a refresh could take; the same release as the lock is not newer."""
    record, pins = _committed(MAINTAINED)
    assert pins["coqui-tts"] == "0.28.0" and pins["demucs"] == "4.1.0"
    check = _check(**{"coqui-tts": "0.28.1", "demucs": "4.2.0"})
    assert dated.newer(record, pins, check) == {"coqui-tts": "0.28.1"}
    assert dated.newer(record, pins, _check(**{"coqui-tts": "0.28.0"})) == {}
    assert dated.newer(record, pins, None) == {}
    other_python = IndexCheck(checked=date(2026, 12, 8), source="a test", newest=[
        Newest(python="3.12", platform=PLATFORM, versions={"coqui-tts": "0.28.1"})])  # fmt: skip
    assert dated.newer(record, pins, other_python) == {}


@pytest.fixture(scope="module")
def committed() -> compatibility.Compatibility:
    return compatibility.load(REPO / "compatibility.json")


def test_the_age_says_as_of_when_relative_to_the_index_check(committed):
    rows = [r.model_copy(update={"as_of": date(2026, 11, 20), "newer": {}}) for r in committed.rows]
    unchecked = committed.model_copy(update={"rows": rows, "index_checked": None})
    assert age_text(unchecked) == (
        "Locks resolved as of 2026-11-20; newer releases not checked "
        "(`audiomatrix report --check-index`)."
    )
    rows[0] = rows[0].model_copy(update={"as_of": date(2026, 12, 7), "newer": {"six": "1.18.0"}})
    rows[1] = rows[1].model_copy(update={"newer": {"six": "1.18.0", "coqui-tts": "0.28.1"}})
    checked = committed.model_copy(update={"rows": rows, "index_checked": date(2026, 12, 8)})
    assert age_text(checked) == (
        f"Locks resolved as of 2026-11-20 to 2026-12-07 (1 of {len(rows)} rows as of "
        "2026-12-07). The index was checked on 2026-12-08, 18 days after 2026-11-20: 2 of "
        f"{len(rows)} rows have newer releases of their stack's packages that a refresh "
        "(`audiomatrix refresh`) could take: coqui-tts 0.28.1 (on 1 rows), six 1.18.0 "
        "(on 2 rows)."
    )


def test_a_plain_report_reads_the_committed_check_and_stays_byte_identical(tmp_path):
    environments = tmp_path / "environments"
    shutil.copytree(REPO / "environments", environments)
    check = _check(**{"coqui-tts": "0.28.1"})
    (environments / INDEX_FILE).write_text(json_text(check.model_dump(mode="json")))

    def build() -> compatibility.Compatibility:
        return report.build(REPO / "results", environments, REPO / "publications")

    table = build()
    assert table.index_checked == date(2026, 12, 8)
    newer = [r for r in table.rows if r.newer]
    assert MAINTAINED in {r.cell for r in newer}
    for row in newer:  # the check named Python 3.11 only, and coqui-tts is the maintained stacks'
        assert row.axes.python == "3.11" and row.newer == {"coqui-tts": "0.28.1"}
    first = [p.read_bytes() for p in writers.write_all(table, tmp_path / "a")]
    second = [p.read_bytes() for p in writers.write_all(build(), tmp_path / "b")]
    assert first == second
    page = (tmp_path / "a" / "COMPATIBILITY.md").read_text()
    assert "The index was checked on 2026-12-08" in page
    assert "| coqui-tts 0.28.1 |" in page
