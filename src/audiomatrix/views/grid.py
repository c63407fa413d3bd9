"""The table at a glance: for each workload, torch one way and Python the other.

A square (one torch x one Python) holds a mark per row of the table that falls in it (each
accelerator, stack, OS, installer and where), coloured by the workload's outcome as a user
would install it (raw), with the compat outcome beside it; a declared cell without a row yet
adds a `not run` mark, and a run measured elsewhere (listed apart) adds nothing. The page and
`audiomatrix show` both draw from this module, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

from audiomatrix.core.versions import version_key
from audiomatrix.records.compatibility import Axes, Compatibility, Missing, Row
from audiomatrix.table.report import NOT_BUILDABLE
from audiomatrix.views.diff import Change

NOT_RUN = "not run"
ORDER: tuple[str, ...] = ("pass", "skip", NOT_RUN, "drift", "fail", "hang", "crash", "corrupt")
"""Statuses from best to worst: a workload's status in a row is its checks' worst. A status
not named here (a newer suite's) ranks with drift: not a pass, and not a known failure."""
PALETTE: dict[str, str] = {
    "pass": "#1a7f37",
    "skip": "#6e7781",
    NOT_RUN: "#d0d7de",
    "drift": "#9a6700",
    "fail": "#cf222e",
    "hang": "#8250df",
    "crash": "#82071e",
    "corrupt": "#bc4c00",
}
"""Each status's colour, on the page and in the terminal."""
GLYPHS: dict[str, str] = {
    "pass": "✓",
    "skip": "\u2013",  # an en dash: a skipped check
    NOT_RUN: "·",
    "drift": "~",
    "fail": "✗",
    "hang": "∞",
    "crash": "‼",
    "corrupt": "≠",
}
"""Each status's sign on a mark, so that no status is told by colour alone."""
OTHER = "other"
"""The tone of a status the palette does not know."""
OTHER_COLOUR = "#0550ae"
OTHER_GLYPH = "?"
DEFAULT_INSTALLER = "uv"
"""What made an environment when its row does not say: uv locks and installs every cell today."""
TITLES = {"xtts": "XTTS", "demucs": "Demucs", "diffrhythm": "DiffRhythm"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Verdict(_Model):
    """One workload in one mode of one row: its checks' worst status, and their signatures."""

    status: str
    signatures: list[str] = []


class Mark(_Model):
    """One row of the table (or one declared cell not run yet) in a square."""

    cell: str
    row: int | None
    """The row's index in compatibility.json's rows; None for a declared cell without one."""
    os: str
    accelerator: str
    stack: str
    installer: str
    where: str | None
    raw: Verdict
    compat: Verdict
    reason: str | None = None
    """Why a declared cell has no row (its lock status, or that it was not run yet)."""
    changes: list[str] = []
    """This workload's checks that changed status since the previous table."""


class Square(_Model):
    marks: list[Mark]
    raw: str
    """The worst raw status of its marks."""
    compat: str


class Tally(_Model):
    """How a workload fares over the whole table."""

    rows: int
    raw_pass: int
    compat_pass: int
    not_run: int
    """Declared cells without a row."""
    red: int = 0
    """Checks of this workload that passed in the previous table and no longer do."""
    green: int = 0
    """Checks of this workload that pass now and did not in the previous table."""


class Grid(_Model):
    title: str
    checks: list[str]
    torch: list[str]
    python: list[str]
    squares: dict[str, dict[str, Square]]
    """torch -> Python -> the square; an empty square is absent."""
    tally: Tally


def rank(status: str) -> int:
    return ORDER.index(status) if status in ORDER else ORDER.index("drift")


def worst(statuses: Iterable[str]) -> str:
    """The worst of the statuses; `not run` when there are none."""
    return max(statuses, key=rank, default=NOT_RUN)


def tone(status: str) -> str:
    """The status's colour name: itself when the palette knows it, else `other`."""
    return status if status in PALETTE else OTHER


def colour(status: str) -> str:
    return PALETTE.get(status, OTHER_COLOUR)


def glyph(status: str) -> str:
    return GLYPHS.get(status, OTHER_GLYPH)


def installer_of(item: Row | Missing) -> str:
    """The installer a row or declared cell was made with (uv or conda)."""
    return item.installer or DEFAULT_INSTALLER


def views(table: Compatibility) -> dict[str, list[str]]:
    """Each workload with its checks, then every other check on its own."""
    named = {c for checks in table.workloads.values() for c in checks}
    return {**table.workloads, **{c: [c] for c in table.checks if c not in named}}


def verdict(row: Row, checks: Sequence[str], mode: str) -> Verdict:
    """The workload's outcome in one mode: a check the row lacks counts as not run."""
    outcomes = [getattr(row.checks[c], mode) if c in row.checks else None for c in checks]
    statuses = [o.status if o else NOT_RUN for o in outcomes]
    found = [o.signature for o in outcomes if o and o.signature]
    return Verdict(status=worst(statuses), signatures=list(dict.fromkeys(found)))


def _change_text(change: Change) -> str:
    return f"{change.check} {change.mode}: {change.old or 'absent'} → {change.new or 'absent'}"


def _place(axes: Axes) -> dict[str, str]:
    """The axes a mark is filtered by (torch and Python place its square)."""
    return axes.model_dump(include={"os", "accelerator", "stack"})


def row_mark(index: int, row: Row, checks: Sequence[str], changes: Sequence[Change]) -> Mark:
    mine = [c for c in changes if (c.cell, c.where) == (row.cell, row.where.kind)]
    return Mark(
        **_place(row.axes),
        cell=row.cell,
        row=index,
        installer=installer_of(row),
        where=row.where.kind,
        raw=verdict(row, checks, "raw"),
        compat=verdict(row, checks, "compat"),
        changes=[_change_text(c) for c in mine if c.check in checks],
    )


def missing_mark(missing: Missing) -> Mark:
    reason = missing.status if missing.status == NOT_RUN else f"{missing.status}, so not run"
    return Mark(
        **_place(missing.axes),
        cell=missing.cell,
        row=None,
        installer=installer_of(missing),
        where=None,
        raw=Verdict(status=NOT_RUN),
        compat=Verdict(status=NOT_RUN),
        reason=f"{reason}: {missing.reason}" if missing.reason else reason,
    )


def not_run(table: Compatibility) -> list[Missing]:
    """The declared cells the grid shows as not run: every cell without a row that the
    matrix does not rule out."""
    return [m for m in table.missing if m.status != NOT_BUILDABLE]


def _order(mark: Mark) -> tuple[str, ...]:
    """Marks sit in the same order in every square: by OS, accelerator, stack, installer."""
    return (mark.os, mark.accelerator, mark.stack, mark.installer, mark.where or "~")


def tally(marks: Sequence[Mark], checks: Sequence[str], changes: Sequence[Change]) -> Tally:
    rows = [m for m in marks if m.row is not None]
    mine = [c for c in changes if c.check in checks]
    return Tally(
        rows=len(rows),
        raw_pass=sum(m.raw.status == "pass" for m in rows),
        compat_pass=sum(m.compat.status == "pass" for m in rows),
        not_run=len(marks) - len(rows),
        red=sum(c.regression for c in mine),
        green=sum(c.new == "pass" and c.old != "pass" for c in mine),
    )


def grid(
    table: Compatibility, title: str, checks: Sequence[str], changes: Sequence[Change] = ()
) -> Grid:
    """One workload's grid over the table's rows and its declared cells not run yet."""
    placed: list[tuple[Axes, Mark]] = [
        (row.axes, row_mark(i, row, checks, changes)) for i, row in enumerate(table.rows)
    ]
    placed += [(m.axes, missing_mark(m)) for m in not_run(table)]
    squares: dict[str, dict[str, list[Mark]]] = {}
    for axes, mark in sorted(placed, key=lambda p: _order(p[1])):
        squares.setdefault(axes.torch, {}).setdefault(axes.python, []).append(mark)
    pythons = {python for by_python in squares.values() for python in by_python}
    return Grid(
        title=title,
        checks=list(checks),
        torch=sorted(squares, key=version_key),
        python=sorted(pythons, key=version_key),
        squares={
            torch: {
                python: Square(
                    marks=marks,
                    raw=worst(m.raw.status for m in marks),
                    compat=worst(m.compat.status for m in marks),
                )
                for python, marks in sorted(by_python.items(), key=lambda i: version_key(i[0]))
            }
            for torch, by_python in sorted(squares.items(), key=lambda i: version_key(i[0]))
        },
        tally=tally([m for _, m in placed], checks, changes),
    )


def grids(table: Compatibility, changes: Sequence[Change] = ()) -> dict[str, Grid]:
    """Every workload's grid, then one per check outside the workloads, in table order."""
    return {
        name: grid(table, TITLES.get(name, name), checks, changes)
        for name, checks in views(table).items()
    }


def tally_text(t: Tally) -> str:
    """`3 of 4 rows pass as installed, 4 with compat; ...`: one workload's summary line."""
    parts = [f"{t.raw_pass} of {t.rows} rows pass as installed, {t.compat_pass} with compat"]
    if t.not_run:
        parts.append(f"{t.not_run} declared cells not run")
    if t.red or t.green:
        parts.append(f"since the previous table {t.red} went red, {t.green} went green")
    return "; ".join(parts)
