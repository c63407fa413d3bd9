"""What changed between two tables, for people: the changed checks grouped by the releases
that moved under them, so one line explains many rows ("transformers 5.23.0 -> 5.25.0: xtts
raw pass -> fail on 12 rows, new failure `sig`"), and the failures no catalog signature
matches, each with its first error line, as candidates for the catalog.

A row's change is put down to the packages whose version moved in that row between the two
tables: the versions its run measured (the stack's packages, torch and its pairs,
transformers, numpy, ...; a row stands for its lock, so each is the locked version). Where
several moved at once the line names them all, since one run cannot tell them apart; where
none of them moved but the lock did, the lock is named (a package the suite does not measure
moved); where neither did, the suite, compat or the catalog changed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from audiomatrix.records.compatibility import Compatibility, Outcome, Row
from audiomatrix.suite.schema import FAILED, MODES
from audiomatrix.views.diff import Change, where_key

ROWS_SHOWN = 3
"""Rows named per line before `and N more`."""


def moved_versions(old: Row, new: Row) -> tuple[str, ...]:
    """`name old -> new` for each measured version that differs between the row's runs."""
    names = sorted(set(old.versions) | set(new.versions), key=str.lower)
    return tuple(
        f"{n} {old.versions.get(n) or '-'} -> {new.versions.get(n) or '-'}"
        for n in names
        if old.versions.get(n) != new.versions.get(n)
    )


def cause(old: Row | None, new: Row | None) -> str:
    """What moved under one row's changes, as the group's heading."""
    if old is None or new is None:
        return "rows added to the table" if old is None else "rows gone from the table"
    moved = moved_versions(old, new)
    if len(moved) == 1:
        return moved[0]
    if moved:
        return " + ".join(moved) + " (moved together: one run cannot tell them apart)"
    if old.lock_sha256 != new.lock_sha256:
        return "the lock (no package the suite measures moved)"
    return "no locked package (the suite, compat or the catalog changed)"


def _outcome(row: Row | None, change: Change) -> Outcome | None:
    check = row.checks.get(change.check) if row else None
    return getattr(check, change.mode) if check else None


@dataclass
class Group:
    """The changes one cause explains: per check and status move, the rows and modes."""

    cause: str
    moves: dict[tuple[str, str], dict[str, set[str]]]
    """(check, `old -> new`) -> {row: modes}."""
    new_failures: set[str]

    def line(self) -> str:
        """Checks that moved alike (the same move, modes and rows) share one part."""
        alike: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[str]] = {}
        for (check, move), rows in self.moves.items():
            modes = tuple(m for m in MODES if any(m in found for found in rows.values()))
            alike.setdefault((move, modes, tuple(sorted(rows))), []).append(check)
        parts = [
            f"{', '.join(checks)} {move} ({', '.join(modes)}) on {_count(len(rows))}"
            for (move, modes, rows), checks in alike.items()
        ]
        text = f"{self.cause}: {'; '.join(parts)}"
        if self.new_failures:
            text += "; new failure " + ", ".join(f"`{s}`" for s in sorted(self.new_failures))
        return text

    def rows(self) -> list[str]:
        return sorted({row for rows in self.moves.values() for row in rows})


def _count(rows: int) -> str:
    return f"{rows} row{'s' if rows != 1 else ''}"


@dataclass(frozen=True)
class Unknown:
    """A failure no signature matches: a candidate for the catalog."""

    check: str
    first_error: str
    rows: tuple[str, ...]


def _indexed(table: Compatibility) -> dict[tuple[str, str], Row]:
    return {(r.cell, where_key(r)): r for r in table.rows}


def grouped(
    old: Compatibility, new: Compatibility, changes: Sequence[Change]
) -> tuple[list[Group], list[Unknown]]:
    """The changes grouped by cause (most rows first), and the unknown failures they reached."""
    before, after = _indexed(old), _indexed(new)
    groups: dict[str, Group] = {}
    unknown: dict[tuple[str, str], set[str]] = defaultdict(set)
    for change in changes:
        key = (change.cell, change.where)
        row_old, row_new = before.get(key), after.get(key)
        heading = cause(row_old, row_new)
        group = groups.setdefault(heading, Group(heading, {}, set()))
        move = f"{change.old or 'absent'} -> {change.new or 'absent'}"
        shown = f"{change.cell} [{change.where}]"
        rows = group.moves.setdefault((change.check, move), {})
        rows.setdefault(shown, set()).add(change.mode)
        now, was = _outcome(row_new, change), _outcome(row_old, change)
        if now is None or now.status not in FAILED:
            continue
        if now.signature is None:
            unknown[(change.check, now.first_error or "(no error line)")].add(shown)
        elif was is None or was.signature != now.signature:
            group.new_failures.add(now.signature)
    ordered = sorted(groups.values(), key=lambda g: (-len(g.rows()), g.cause))
    unknowns = [Unknown(c, e, tuple(sorted(r))) for (c, e), r in sorted(unknown.items())]
    return ordered, unknowns


def unchanged_moves(old: Compatibility, new: Compatibility, changes: Sequence[Change]) -> list[str]:
    """The releases that moved under rows none of whose checks changed, one line per
    release, so a refresh that broke nothing still says what it took."""
    changed = {(c.cell, c.where) for c in changes}
    before = _indexed(old)
    rows: dict[str, set[str]] = defaultdict(set)
    for key, row in _indexed(new).items():
        was = before.get(key)
        if was is None or key in changed:
            continue
        moved = moved_versions(was, row)
        if not moved and was.lock_sha256 != row.lock_sha256:
            moved = ("the lock (no package the suite measures moved)",)
        for release in moved:
            rows[release].add(f"{row.cell} [{key[1]}]")
    return [
        f"{moved}: no check changed on {_count(len(found))} ({_named(sorted(found))})"
        for moved, found in sorted(rows.items(), key=lambda item: (-len(item[1]), item[0]))
    ]


def _named(rows: Sequence[str]) -> str:
    shown = ", ".join(rows[:ROWS_SHOWN])
    return shown + (f" and {len(rows) - ROWS_SHOWN} more" if len(rows) > ROWS_SHOWN else "")


def lines(groups: Iterable[Group], unknowns: Sequence[Unknown]) -> list[str]:
    """The grouped changes as a person reads them: a line per cause with its rows beneath,
    then the unknown failures."""
    found = []
    for group in groups:
        found += [group.line(), f"  rows: {_named(group.rows())}"]
    if unknowns:
        found.append("failures no signature matches (candidates for the catalog):")
        for u in unknowns:
            found.append(
                f"  {u.check} on {_count(len(u.rows))}: {u.first_error} ({_named(u.rows)})"
            )
    return found
