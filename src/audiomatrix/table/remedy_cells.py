"""Remedies proven by measurement: a remedy cell is its parent cell with one declared change
(`remedy_of` in matrix.yaml: a pin, a missing package, a switch), locked and run like any
other cell. Where a check fails in the parent's run and passes in the remedy cell's, that
change is proven to fix it; nothing else is claimed.

Both runs must stand for their cells (measured where their cells declare, from the current
suite) and be of the same kind (both images, or both native), and only raw outcomes count:
compat would hide what the change itself does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from audiomatrix.records.cell import CellRecord
from audiomatrix.records.compatibility import Remedy, Row
from audiomatrix.suite.schema import FAILED


def _raw(row: Row, check: str) -> tuple[str | None, str | None]:
    """A check's raw status and signature."""
    outcome = row.checks.get(check)
    if outcome is None or outcome.raw is None:
        return None, None
    return outcome.raw.status, outcome.raw.signature


def compare(row: Row, parent: Row, change: list[str]) -> Remedy:
    """The remedy cell's run against its parent's, check by check."""
    shared = [c for c in parent.checks if c in row.checks]
    before = {c: _raw(parent, c) for c in shared}
    after = {c: _raw(row, c) for c in shared}
    still = [c for c in shared if before[c][0] in FAILED and after[c][0] in FAILED]
    fixes = [c for c in shared if before[c][0] in FAILED and after[c][0] == "pass"]
    return Remedy(
        cell=row.cell,
        repairs=parent.cell,
        change=change,
        where=row.where.kind,
        fixes=fixes,
        still_fails=still,
        moved_on={c: after[c][1] for c in still if after[c][1] != before[c][1]},
        breaks=[c for c in shared if before[c][0] == "pass" and after[c][0] in FAILED],
        minimal=len(change) == 1 and bool(fixes),
        runs=[parent.source, row.source],
    )


def derive(rows: Iterable[Row], records: Mapping[str, CellRecord | None]) -> list[Remedy]:
    """Every remedy cell whose run and whose parent's run both stand, of the same kind."""
    current = [r for r in rows if not r.differs and not r.stale]
    by_place = {(r.cell, r.where.kind): r for r in current}
    found = []
    for row in current:
        record = records.get(row.cell)
        declared = record.cell.remedy_of if record else None
        if declared is None:
            continue
        parent = by_place.get((declared.cell, row.where.kind))
        if parent is not None:
            found.append(compare(row, parent, list(declared.change)))
    return sorted(found, key=lambda r: (r.repairs, r.cell, r.where))
