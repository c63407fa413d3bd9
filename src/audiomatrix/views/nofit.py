"""Why nothing tested fits what `recommend` was asked, in the table's own words.

No row meets the constraints: which constraint no tested row meets (alone, then the rest
together), the declared cells that would meet them and why they have no run (the table's
`missing`: not run yet, an index that did not answer, not buildable), and what the tested rows
of each such cell's Python, torch and stack show. Rows meet them but none passes: what they
fail with even with compat, and each failure's proven fix (views.proven). Reads
compatibility.json only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from audiomatrix.records.compatibility import Compatibility, Missing, Row
from audiomatrix.views import fixes, proven
from audiomatrix.views.constraints import Constraints, runs_on

SHOWN = 6
"""The most declared cells an answer names; the rest are counted."""


def declared(table: Compatibility, wanted: Constraints) -> list[Missing]:
    """The declared cells without a run that meet the constraints (all but the GPU, which no
    run measured for them)."""
    families = {r.axes.os: r.family for r in [*table.rows, *table.apart] if r.family}
    return [m for m in table.missing if wanted.admits_declared(m, families)]


def cells_said(cells: Sequence[Missing]) -> str:
    """`4 declared, none with a run (3 not run, 1 channel unreachable): a, b, ...` or `none`."""
    if not cells:
        return "none"
    counts = Counter(m.status for m in cells)
    why = ", ".join(f"{n} {status}" for status, n in counts.most_common())
    names = ", ".join(m.cell for m in cells[:SHOWN])
    more = f" and {len(cells) - SHOWN} more" if len(cells) > SHOWN else ""
    return f"{len(cells)} declared, none with a run ({why}): {names}{more}"


def _status(row: Row, checks: Sequence[str]) -> str:
    """How a row does on the asked checks: passes raw, passes with compat, or what it fails
    with even with compat."""
    for mode, words in (("raw", "passes them raw"), ("compat", "passes them with compat")):
        if not proven.failures([row], checks, mode) and all(
            fixes.outcome(row, c, mode) is not None
            for c in checks  # type: ignore[arg-type]
        ):
            return words
    failed = proven.failures([row], checks, "compat")
    return "fails " + ", ".join(f.signature or "an unknown failure" for f in failed)


def counterpart(table: Compatibility, cell: Missing, checks: Sequence[str]) -> str:
    """What a tested row with the declared cell's Python, torch, stack and installer shows
    (another OS or accelerator): a tested image first."""
    key = (cell.axes.python, cell.axes.torch, cell.axes.stack, cell.installer)
    same = sorted(
        (r for r in table.rows if (r.axes.python, r.axes.torch, r.axes.stack, r.installer) == key),
        key=lambda r: (r.where.kind != "image", r.cell),
    )
    if not same:
        return f"- {cell.cell} ({cell.status}): no tested row has its Python, torch and stack"
    row = same[0]
    return (
        f"- {cell.cell} ({cell.status}): {row.cell}, with the same Python, torch and stack, "
        f"{_status(row, checks)} ({row.source}){_repaired(table, row, checks)}"
    )


def _repaired(table: Compatibility, row: Row, checks: Sequence[str]) -> str:
    """`; with +six (its remedy cell) it passes them raw`, where a remedy cell of the row
    passes every asked check (fixes.remedy_for, as the page's third state)."""
    mine = fixes.remedies_of(table).get((row.cell, row.where.kind), [])
    remedy = fixes.remedy_for(row, checks, mine)
    if remedy is None:
        return ""
    return f"; with {', '.join(remedy.change)} ({remedy.cell}) it passes them raw"


def _gpu_unmatched(table: Compatibility, wanted: Constraints) -> list[str]:
    """Why no row runs on the asked GPU: no row meeting the other constraints was measured
    for it (not measured), or every measured wheel lacks kernels there (no kernel image)."""
    arch = wanted.gpu_arch
    rest = [r for r in table.rows if wanted.without(("gpu_arch",)).admits_row(r)]
    if arch is None or not rest or any(runs_on(r, arch) for r in rest):
        return []
    measured = [r for r in rest if arch in r.gpu]
    if not measured:
        return [f"GPU {arch}: not measured: none of the {len(rest)} tested rows meeting the "
                "other constraints has a measurement of its wheel's GPU code."]  # fmt: skip
    observed = sum(r.gpu[arch].basis == "observed" for r in measured)
    return [
        f"GPU {arch}: no kernel image in the wheel of any of the {len(measured)} measured rows "
        f"({observed} observed on a GPU, the rest predicted from the compiled code)."
    ]


def unmatched(table: Compatibility, wanted: Constraints, checks: Sequence[str]) -> list[str]:
    """Why no tested row meets the constraints, and the declared cells that would."""
    lines = _gpu_unmatched(table, wanted)
    alone = [n for n in wanted.given() if not any(wanted.only(n).admits_row(r) for r in table.rows)]
    if len(wanted.given()) > 1:
        for name in alone:
            [said] = wanted.only(name).said()
            cells = [] if name == "gpu_arch" else declared(table, wanted.only(name))
            lines.append(f"No tested row has {said}; declared cells with it: {cells_said(cells)}.")
    rest = wanted.without(tuple(alone))
    if alone and rest.given() and not any(rest.admits_row(r) for r in table.rows):
        together = cells_said(declared(table, rest))
        lines.append(
            f"Nor has any {', '.join(rest.said())} together; declared cells with them: {together}."
        )
    if not alone:
        lines.append("Tested rows meet each constraint, but none meets them all.")
    cells = declared(table, wanted)
    lines.append(f"Declared cells that meet them all: {cells_said(cells)}.")
    shown = cells or ([] if not alone or alone[0] == "gpu_arch" else
                      declared(table, wanted.only(alone[0])))  # fmt: skip
    if shown:
        lines.append("What tested rows with their Python, torch and stack show:")
        lines += [counterpart(table, cell, checks) for cell in shown[:SHOWN]]
    return lines


def blocked(table: Compatibility, rows: Sequence[Row], checks: Sequence[str]) -> list[str]:
    """What the matching rows fail with even with compat, each with its proven fix."""
    found = proven.failures(rows, checks, "compat")
    return [
        "What they fail with, even with compat:",
        *proven.failure_lines(table, found, len(rows)),
    ]
