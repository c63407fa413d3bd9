"""`audiomatrix show`: each workload's grid in the terminal, drawn with rich from grid.py, so
that it says what the page says."""

from __future__ import annotations

from collections import Counter

from rich.console import Group
from rich.table import Table
from rich.text import Text

from audiomatrix.views.grid import NOT_RUN, ORDER, Grid, Square, colour, glyph, rank, tally_text


def sign(status: str) -> Text:
    """The status's glyph on its colour: readable with colour, and without it (a pipe)."""
    return Text(f" {glyph(status)} ", style=f"bold white on {colour(status)}")


def square_text(square: Square | None) -> Text:
    """One line per outcome in the square, worst last: its sign, how many rows, and
    `raw→compat` where compat changes the outcome."""
    text = Text()
    if square is None:
        return text
    found = Counter((m.raw.status, m.compat.status) for m in square.marks)
    for i, ((raw, compat), count) in enumerate(
        sorted(found.items(), key=lambda item: (rank(item[0][0]), rank(item[0][1])))
    ):
        label = raw if raw == compat else f"{raw}→{compat}"
        text.append("\n" if i else "").append(sign(raw)).append(f" {count} {label}")
    return text


def table(g: Grid) -> Group:
    """The workload, its checks and its tally on one line; then torch down, Python across."""
    heading = Text(f"{g.title} ({' + '.join(g.checks)})", style="bold")
    drawn = Table(show_lines=True)
    drawn.add_column("torch ╲ Python", style="bold", no_wrap=True)
    for python in g.python:
        drawn.add_column(python, no_wrap=True)
    for torch in g.torch:
        squares = g.squares.get(torch, {})
        drawn.add_row(torch, *[square_text(squares.get(python)) for python in g.python])
    return Group(heading.append(f": {tally_text(g.tally)}", style="not bold"), drawn)


def legend() -> Text:
    """What the signs, counts and arrows mean."""
    text = Text()
    for status in ORDER:
        text.append(sign(status)).append(f" {status}  ")
    return text.append(
        f"\nEach square counts the rows (accelerator, stack, OS, installer, where) per outcome "
        f"as installed (raw), then raw→compat where audiomatrix.compat changes it; {NOT_RUN}: "
        "a declared cell with no run in its declared environment yet."
    )
