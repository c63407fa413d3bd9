"""views.fixes: the page, `recommend` and `audiomatrix check` ask one module what a run proves
fixes a failure, so they answer alike, on the committed table and where it is changed."""

from __future__ import annotations

from pathlib import Path

from audiomatrix.check import evidence, findings
from audiomatrix.records import compatibility
from audiomatrix.suite.schema import CHECKS
from audiomatrix.views import fixes, nofit, proven

TABLE = compatibility.load(Path(__file__).parents[1] / compatibility.JSON_FILE)
SIX = "bookworm-py3.11-torch2.6.0-cu124-maintained"
XTTS = [c.name for c in CHECKS if c.workload == "xtts"]


def _only_six(table: compatibility.Compatibility, **update: str) -> compatibility.Compatibility:
    """The table with one remedy cell: +six beside SIX's image (changed by `update`)."""
    [six] = [r.model_copy(update=update) for r in table.remedies if r.repairs == SIX]
    return table.model_copy(update={"remedies": [six]})


def test_the_page_recommend_and_check_name_the_same_remedy_cell() -> None:
    [row] = [r for r in TABLE.rows if r.cell == SIX and r.where.kind == "image"]
    mine = fixes.remedies_of(TABLE)[(SIX, "image")]
    assert fixes.workload_fix(row, XTTS, mine) == fixes.Fix(changes=["+six"], by=f"{SIX}-six")
    assert nofit._repaired(TABLE, row, XTTS) == f"; with +six ({SIX}-six) it passes them raw"
    [failure] = proven.failures([row], XTTS, "raw")
    assert proven.fix(TABLE, failure).startswith("Proven fix: `+six` (a single change, remedy")
    found = {f.check: f.fix for f in findings.row_findings(TABLE, row, XTTS)}
    assert {c: (f.kind, f.proven) for c, f in found.items() if f} == dict.fromkeys(
        XTTS, ("remedy cell", True)
    )


def test_a_remedy_cell_proves_a_fix_only_beside_its_parents_run_of_the_same_kind() -> None:
    elsewhere = _only_six(TABLE, where="native")
    signature = "coqui-tts-six-undeclared"
    fix = evidence.proven_in_table(elsewhere, "xtts", signature)
    assert fix is None or fix.kind != "remedy cell"  # check once matched the parent by name only
    assert fixes.remedy_fixes(elsewhere, XTTS, signature) == []
    [row] = [r for r in elsewhere.rows if r.cell == SIX and r.where.kind == "image"]
    assert nofit._repaired(elsewhere, row, XTTS) == ""


def test_a_remedy_cell_that_breaks_an_asked_check_does_not_pass_them() -> None:
    [row] = [r for r in TABLE.rows if r.cell == SIX and r.where.kind == "image"]
    passing = next(c for c, found in row.checks.items() if found.raw and found.raw.status == "pass")
    [six] = _only_six(TABLE).remedies
    breaking = TABLE.model_copy(update={"remedies": [six.model_copy(update={"breaks": [passing]})]})
    mine = fixes.remedies_of(breaking)[(SIX, "image")]
    assert fixes.workload_fix(row, [*XTTS, passing], mine) is None
    assert nofit._repaired(breaking, row, [*XTTS, passing]) == ""  # once "it passes them raw"


def test_an_unclassified_failure_has_no_catalog_remedy_anywhere() -> None:
    legend = compatibility.SignatureEntry(
        id="unclassified", title="a failure no known signature matches", remedy="Read the log.",
        sources=[],
    )  # fmt: skip
    table = TABLE.model_copy(update={"signatures": [*TABLE.signatures, legend]})
    failure = proven.Failure("unclassified", ("xtts",), tuple(table.rows[:1]))
    assert proven.fix(table, failure) == "No known fix: no catalog entry names this failure."
    assert evidence.catalog_fix("unclassified").kind == "none"
    assert fixes.catalog_entry("unclassified") is None
    assert fixes.catalog_entry("coqui-tts-six-undeclared") is not None
