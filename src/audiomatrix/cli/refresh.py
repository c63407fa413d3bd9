"""`audiomatrix refresh`: relock the selected cells as the index stood on a later day, print
what moved per cell, and (unless --dry-run) move matrix.yaml's exclude_newer and the locks."""

from __future__ import annotations

import datetime as dt
import re
import shlex
from pathlib import Path
from typing import Annotated

import typer

from audiomatrix.cli.display import ConsoleDisplay
from audiomatrix.cli.options import MatrixOption, SelectOption, fail, selected
from audiomatrix.lock import refresh as refresh_stage
from audiomatrix.spec.dated import write_exclude_newer
from audiomatrix.spec.matrix import Matrix
from audiomatrix.workflow.pipeline import environments

AsOfOption = Annotated[
    str,
    typer.Option(
        "--as-of",
        help="The day to resolve as of: YYYY-MM-DD or `today` (UTC); packages uploaded from "
        "that day on are not seen.",
    ),
]


def as_of_day(given: str, today: dt.date, matrix: Matrix) -> dt.date:
    """The day asked for; one line when it is not a day, is still to come, or is before the
    matrix's exclude_newer (a refresh only moves forward)."""
    if given == "today":
        day = today
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", given):
        try:
            day = dt.date.fromisoformat(given)
        except ValueError:
            raise fail(f"--as-of {given}: not a day of the calendar; write YYYY-MM-DD") from None
    else:
        raise fail(f"--as-of {given}: not a day; write YYYY-MM-DD or `today`")
    if day > today:
        raise fail(f"--as-of {given}: after today ({today}); the index cannot be read as of "
                   "a day still to come")  # fmt: skip
    current = matrix.file.exclude_newer
    if current is not None and day < current:
        raise fail(
            f"--as-of {given}: before {matrix.path}'s exclude_newer {current}; a refresh only "
            "moves forward (to go back, set exclude_newer there and run `audiomatrix lock`)"
        )
    return day


def _cell_lines(outcome: refresh_stage.CellRefresh, dry_run: bool) -> list[str]:
    before = f" (as of {outcome.before[:10]})" if outcome.before else ""
    if outcome.status == refresh_stage.MOVED:
        verb = "would move" if dry_run else "moved"
        head = f"{outcome.cell}{before}: {len(outcome.moves)} {verb}"
        return [head, *(f"  {move}" for move in outcome.moves)]
    detail = f": {outcome.detail}" if outcome.detail else ""
    return [f"{outcome.cell}{before}: {outcome.status}{detail}"]


def summary(outcomes: list[refresh_stage.CellRefresh], day: dt.date, dry_run: bool) -> str:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    shown = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    written = "dry run: nothing written" if dry_run else "written"
    return f"refresh as of {day}: {len(outcomes)} cells: {shown} ({written})"


def refresh(
    ctx: typer.Context,
    matrix: MatrixOption = None,
    select: SelectOption = None,
    as_of: AsOfOption = "today",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would move; write nothing.")
    ] = False,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=1, help="Cells resolved at once.")
    ] = refresh_stage.WORKERS,
) -> None:
    """Relock the selected cells as of a later day, print the packages that moved per cell,
    and write matrix.yaml's exclude_newer and the locks that moved."""
    loaded, chosen = selected(ctx, matrix, select)
    day = as_of_day(as_of, dt.datetime.now(dt.UTC).date(), loaded)
    if not dry_run:  # first: a lock is never dated after the matrix, even if interrupted
        write_exclude_newer(Path(loaded.path), day, ctx.obj.max_cells)
    with ConsoleDisplay().progress("refresh", len(chosen), eta=False) as bar:
        outcomes = refresh_stage.refresh_cells(
            chosen, loaded, environments(loaded), day, dry_run=dry_run, workers=jobs,
            on_done=lambda result: bar.advance(f"{result.cell}: {result.status}"),
        )  # fmt: skip
    for outcome in outcomes:
        for line in _cell_lines(outcome, dry_run):
            typer.echo(line)
    typer.echo(summary(outcomes, day, dry_run))
    if moved := refresh_stage.needing_a_run(outcomes):
        selects = " ".join(f"--select {shlex.quote(c)}" for c in moved)
        typer.echo(f"{'would need' if dry_run else 'needs'} a run ({len(moved)}): "
                   f"audiomatrix sweep {selects}")  # fmt: skip
    if any(o.failed for o in outcomes):
        raise typer.Exit(1)
