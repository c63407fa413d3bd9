"""What changed between two tables: every (cell, where, check, mode) whose status moved, and
which of those are regressions. Reads compatibility.json only; `audiomatrix diff` prints it and
the page marks it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from audiomatrix.records.compatibility import Compatibility, Row
from audiomatrix.suite.schema import MODES, Mode, Status


@dataclass(frozen=True)
class Change:
    cell: str
    where: str
    check: str
    mode: Mode
    old: Status | None
    new: Status | None
    row_kept: bool = True
    """The (cell, where) row is still in the new table."""

    @property
    def regression(self) -> bool:
        """It passed before and, in a row that still exists, no longer passes."""
        return self.old == "pass" and self.new != "pass" and self.row_kept

    def __str__(self) -> str:
        mark = "RED  " if self.regression else "GREEN" if self.new == "pass" else "     "
        return (
            f"{mark} {self.cell} [{self.where}] {self.check} {self.mode}: "
            f"{self.old or 'absent'} -> {self.new or 'absent'}"
        )


def where_key(row: Row) -> str:
    """`image`, `native`, or `image@sm_120` for a run on a GPU: rows of one cell apart."""
    gpu = row.host.compute_capability
    return f"{row.where.kind}@{gpu}" if gpu else row.where.kind


def _statuses(table: Compatibility) -> dict[tuple[str, str, str, Mode], Status]:
    return {
        (r.cell, where_key(r), name, mode): outcome.status
        for r in table.rows
        for name, check in r.checks.items()
        for mode in MODES
        if (outcome := getattr(check, mode)) is not None
    }


def diff(old: Compatibility, new: Compatibility) -> list[Change]:
    """Every (cell, where, check, mode) whose status changed, sorted.

    A check missing from a row that still exists counts as "does not pass" (a regression if
    it passed), whereas a row that disappeared entirely (a cell dropped from the matrix) is
    listed but is not a regression.
    """
    before, after = _statuses(old), _statuses(new)
    rows_after = {(r.cell, where_key(r)) for r in new.rows}
    changes = []
    for key in sorted(before.keys() | after.keys()):
        was, now = before.get(key), after.get(key)
        if was == now:
            continue
        changes.append(Change(*key, old=was, new=now, row_kept=key[:2] in rows_after))
    return changes


def regressions(changes: Iterable[Change]) -> list[Change]:
    return [c for c in changes if c.regression]
