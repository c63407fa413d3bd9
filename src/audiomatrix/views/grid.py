"""The table at a glance: for each workload, torch one way and Python the other.

A square (one torch x one Python) holds a mark per row of the table that falls in it (each
accelerator, stack, OS, installer and where), coloured by the workload's outcome as a user
would install it (raw), with the compat outcome beside it and, where a run proves one, the
change that makes it pass (fixes.py); a declared cell without a row yet adds a `not run` mark,
and a run measured elsewhere (listed apart) adds nothing. The page and `audiomatrix show` both
draw from this module, so they cannot disagree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from audiomatrix.core.versions import version_key
from audiomatrix.records.compatibility import Axes, Compatibility, Missing, Remedy, Row
from audiomatrix.table.report import NOT_BUILDABLE
from audiomatrix.views.diff import Change
from audiomatrix.views.fixes import COMPAT, Fix, label, remedies_of, workload_fix

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
    skipped: list[str] = []
    """Why its skipped checks were skipped (their first error line, e.g. `no GPU`)."""


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
    fix: Fix | None = None
    """The change a run proves makes it pass, where it fails as installed."""
    waiting: str | None = None
    """A declared cell's lock status where it has no row (`not run`, `index unreachable`)."""
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
    fixed: int = 0
    """Rows that pass as installed or with a proven fix."""
    fixes: list[str] = []
    """The proven fixes (fixes.label), each once."""
    skipped: int = 0
    """Rows where the workload was skipped as installed (not applicable there)."""
    skip_why: list[str] = []
    not_run: int
    """Declared cells without a row."""
    not_run_why: dict[str, int] = {}
    """How many of those per lock status (`index unreachable`, `not run` yet, ...)."""
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
    why = [o.first_error for o in outcomes if o and o.status == "skip" and o.first_error]
    return Verdict(
        status=worst(statuses),
        signatures=list(dict.fromkeys(found)),
        skipped=list(dict.fromkeys(why)),
    )


def _change_text(change: Change) -> str:
    return f"{change.check} {change.mode}: {change.old or 'absent'} → {change.new or 'absent'}"


def _place(axes: Axes) -> dict[str, str]:
    """The axes a mark is filtered by (torch and Python place its square)."""
    return axes.model_dump(include={"os", "accelerator", "stack"})


def row_mark(
    index: int,
    row: Row,
    checks: Sequence[str],
    changes: Sequence[Change],
    remedies: Mapping[tuple[str, str], Sequence[Remedy]] | None = None,
) -> Mark:
    mine = [c for c in changes if (c.cell, c.where) == (row.cell, row.where.kind)]
    siblings = (remedies or {}).get((row.cell, row.where.kind), [])
    return Mark(
        **_place(row.axes),
        cell=row.cell,
        row=index,
        installer=installer_of(row),
        where=row.where.kind,
        raw=verdict(row, checks, "raw"),
        compat=verdict(row, checks, "compat"),
        fix=workload_fix(row, checks, siblings),
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
        waiting=missing.status,
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
    skipped = [m for m in rows if m.raw.status == "skip"]
    why = Counter(m.waiting or NOT_RUN for m in marks if m.row is None)
    return Tally(
        rows=len(rows),
        raw_pass=sum(m.raw.status == "pass" for m in rows),
        compat_pass=sum(m.compat.status == "pass" for m in rows),
        fixed=sum(m.raw.status == "pass" or m.fix is not None for m in rows),
        fixes=list(dict.fromkeys(label(m.fix) for m in rows if m.fix)),
        skipped=len(skipped),
        skip_why=list(dict.fromkeys(why for m in skipped for why in m.raw.skipped)),
        not_run=len(marks) - len(rows),
        not_run_why=dict(sorted(why.items(), key=lambda item: (-item[1], item[0]))),
        red=sum(c.regression for c in mine),
        green=sum(c.new == "pass" and c.old != "pass" for c in mine),
    )


def _chosen(axes: Axes, select: Mapping[str, str], installer: str) -> bool:
    """Whether a row or declared cell has every axis value `select` names."""
    values = {**axes.model_dump(), "installer": installer}
    return all(values.get(axis) == value for axis, value in select.items())


def grid(
    table: Compatibility,
    title: str,
    checks: Sequence[str],
    changes: Sequence[Change] = (),
    select: Mapping[str, str] | None = None,
) -> Grid:
    """One workload's grid over the table's rows and its declared cells not run yet; with
    `select` (axis -> value: stack, accelerator, installer, ...) only those that have them."""
    remedies = remedies_of(table)
    chosen = select or {}
    placed: list[tuple[Axes, Mark]] = [
        (row.axes, row_mark(i, row, checks, changes, remedies))
        for i, row in enumerate(table.rows)
        if _chosen(row.axes, chosen, installer_of(row))
    ]
    placed += [
        (m.axes, missing_mark(m))
        for m in not_run(table)
        if _chosen(m.axes, chosen, installer_of(m))
    ]
    if chosen:
        kept = {mark.cell for _, mark in placed}
        changes = [c for c in changes if c.cell in kept]
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


def grids(
    table: Compatibility,
    changes: Sequence[Change] = (),
    select: Mapping[str, str] | None = None,
) -> dict[str, Grid]:
    """Every workload's grid, then one per check outside the workloads, in table order."""
    return {
        name: grid(table, TITLES.get(name, name), checks, changes, select)
        for name, checks in views(table).items()
    }


def passing_text(t: Tally) -> str:
    """`7 of 40 rows pass as installed, 7 with compat, 9 with a proven fix (+six)`, or, where
    every row skipped the workload, why: `skipped on all 40 rows (no GPU)`. Never a bare count
    that hides a skip."""
    why = f" ({'; '.join(t.skip_why)})" if t.skip_why else ""
    if t.rows and t.skipped == t.rows:
        return f"skipped on all {t.rows} rows{why}"
    fixes = f" ({', '.join(t.fixes)})" if t.fixes else ""
    text = (
        f"{t.raw_pass} of {t.rows} rows pass as installed, {t.compat_pass} with compat, "
        f"{t.fixed} with a proven fix{fixes}"
    )
    return text + (f"; skipped on {t.skipped}{why}" if t.skipped else "")


def not_run_text(t: Tally) -> str:
    """`72 declared cells not run: 55 index unreachable, 12 not run yet`."""
    if list(t.not_run_why) == [NOT_RUN]:
        return f"{t.not_run} declared cells not run yet"
    why = ", ".join(f"{n} {s if s != NOT_RUN else 'not run yet'}" for s, n in t.not_run_why.items())
    return f"{t.not_run} declared cells not run" + (f": {why}" if why else "")


def tally_text(t: Tally) -> str:
    """One workload's summary line: how its rows pass, its cells not run and why, and what
    changed since the previous table."""
    parts = [passing_text(t)]
    if t.not_run:
        parts.append(not_run_text(t))
    if t.red or t.green:
        parts.append(f"since the previous table {t.red} went red, {t.green} went green")
    return "; ".join(parts)


def steps(mark: Mark) -> list[tuple[str, str | None]]:
    """How a mark's workload fares, in order: (status, how) as installed (how None), then with
    compat where it differs (`compat`, or the proven compat remedies), then a remedy cell's
    proven change (`+six`). The page and the terminal both draw these."""
    found: list[tuple[str, str | None]] = [(mark.raw.status, None)]
    by_compat = mark.fix is not None and mark.fix.by == COMPAT
    if mark.compat.status != mark.raw.status:
        found.append((mark.compat.status, label(mark.fix) if by_compat and mark.fix else COMPAT))
    if mark.fix is not None and not by_compat:
        found.append(("pass", label(mark.fix)))
    return found


def mark_label(mark: Mark) -> str:
    """`cu128 maintained`, then `native` or the installer where they are not the usual: the
    row's place in a square, readable without hovering."""
    parts = [mark.accelerator, mark.stack]
    parts += [mark.where] if mark.where == "native" else []
    parts += [mark.installer] if mark.installer != DEFAULT_INSTALLER else []
    return " ".join(parts)
