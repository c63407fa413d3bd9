"""`audiomatrix diff` grouped by what moved, on two committed tables: tests/data/diff/old.json
holds four rows of the committed table as they were; new.json the same rows as a refresh could
leave them, written by hand: the two six-remedy rows moved transformers 5.23.0 -> 5.25.0 and
their XTTS checks fail with a new signature (`fixture-new-failure`, no catalog entry), one
maintained row moved transformers and tokenizers together and fails an import no signature
matches, and one row moved nothing."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from audiomatrix.cli.app import app
from audiomatrix.records import compatibility
from audiomatrix.views import diff, releases

DATA = Path(__file__).parent / "data" / "diff"
SIX_311 = "bookworm-py3.11-torch2.6.0-cu124-maintained-six [image]"
SIX_312 = "bookworm-py3.12-torch2.10.0-cu128-maintained-six [image]"
PY310 = "bookworm-py3.10-torch2.9.1-cu128-maintained [image]"


def _tables():
    return compatibility.load(DATA / "old.json"), compatibility.load(DATA / "new.json")


def test_one_line_explains_the_rows_of_each_release():
    old, new = _tables()
    changes = diff.diff(old, new)
    assert len(changes) == 17
    assert releases.lines(*releases.grouped(old, new, changes)) == [
        "transformers 5.23.0 -> 5.25.0: xtts, xtts_api, xtts_service, xtts_stream pass -> fail "
        "(raw, compat) on 2 rows; new failure `fixture-new-failure`",
        f"  rows: {SIX_311}, {SIX_312}",
        "tokenizers 0.23.3 -> 0.23.4 + transformers 5.20.2 -> 5.25.0 (moved together: one run "
        "cannot tell them apart): xtts pass -> fail (raw) on 1 row",
        f"  rows: {PY310}",
        "failures no signature matches (candidates for the catalog):",
        f"  xtts on 1 row: ImportError: cannot import name 'FixtureMixin' from 'transformers' "
        f"({PY310})",
    ]


def test_a_row_whose_measured_versions_stayed_names_its_lock_or_nothing():
    old, _ = _tables()
    row = old.rows[0]
    moved_lock = row.model_copy(update={"lock_sha256": "0" * 64})
    assert releases.cause(row, moved_lock) == "the lock (no package the suite measures moved)"
    assert releases.cause(row, row) == (
        "no locked package (the suite, compat or the catalog changed)"
    )
    assert releases.cause(None, row) == "rows added to the table"


def test_diff_prints_each_change_then_the_groups_and_fails_on_a_regression():
    result = CliRunner().invoke(app, ["diff", str(DATA / "old.json"), str(DATA / "new.json")])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == f"RED   {PY310} xtts raw: pass -> fail"
    assert lines[17] == "by what moved under them:"
    assert lines[18].startswith("transformers 5.23.0 -> 5.25.0: ")
    assert lines[-1] == "17 changes, 17 regressions"


def test_the_same_table_twice_has_nothing_to_group():
    old, _ = _tables()
    assert releases.grouped(old, old, diff.diff(old, old)) == ([], [])
    result = CliRunner().invoke(app, ["diff", str(DATA / "old.json"), str(DATA / "old.json")])
    assert result.exit_code == 0
    assert result.output == "0 changes, 0 regressions\n"


def test_releases_that_moved_without_a_change_are_still_named():
    old, _ = _tables()
    rows = list(old.rows)
    first, second = rows[0], rows[1]
    rows[0] = first.model_copy(
        update={"versions": {**first.versions, "transformers": "9.9.9"}, "lock_sha256": "1" * 64}
    )
    rows[1] = second.model_copy(update={"lock_sha256": "2" * 64})
    moved = old.model_copy(update={"rows": rows})
    assert diff.diff(old, moved) == []
    was = first.versions.get("transformers") or "-"
    assert releases.unchanged_moves(old, moved, []) == [
        f"the lock (no package the suite measures moved): no check changed on 1 row "
        f"({second.cell} [{second.where.kind}])",
        f"transformers {was} -> 9.9.9: no check changed on 1 row "
        f"({first.cell} [{first.where.kind}])",
    ]
    assert releases.unchanged_moves(old, old, []) == []
