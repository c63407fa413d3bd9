"""`audiomatrix show`: each workload's grid in the terminal, drawn with rich from grid.py, so
that it says what the page says.

Every row in a square gets a line: how it fares (`✗→✓`: as installed, then with compat or with
a proven fix), its accelerator and stack, and the proven change that makes it pass. The grid
fits the width it is given: full names where they fit; else stacks and fixes by a short code
(the initials of their words), listed below the grid; else the Python columns in several
tables. A line is never cut, so the compat and fixed outcomes always show. `--plain` writes a
line per row instead, led by its square, without colour or box drawing, for logs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from audiomatrix.views.grid import (
    NOT_RUN,
    ORDER,
    Grid,
    Mark,
    Square,
    colour,
    glyph,
    mark_label,
    steps,
    tally_text,
)

CORNER = "torch ╲\nPython"
SHORT = 5
"""Names this long or shorter are never abbreviated (`+six`, `cu128`)."""
Namer = Callable[[str], str]


def code(name: str) -> str:
    """A name's short form: the initials of its words, a leading + or - kept
    (`maintained-six` -> `ms`, `checkpoint_globals` -> `cg`, `+setuptools<81` -> `+s`)."""
    if len(name) <= SHORT:
        return name
    words = re.findall(r"[A-Za-z][A-Za-z0-9]*", name)
    return name[0] * (name[0] in "+-") + "".join(w[0] for w in words).lower()


def codes(names: Iterable[str]) -> dict[str, str]:
    """Each name's code, numbered from 2 where two names share one, in sorted order."""
    found: dict[str, str] = {}
    for name in sorted(set(names)):
        short, n = code(name), 2
        while (short if n == 2 else f"{short}{n - 1}") in found.values():
            n += 1
        found[name] = short if n == 2 else f"{short}{n - 1}"
    return found


def _names(mark: Mark) -> list[str]:
    """The names in a mark's line that a code may stand for: its stack and its fix."""
    return [mark.stack, *(mark.fix.changes if mark.fix else [])]


def chain(mark: Mark) -> Text:
    """`✗→✓`: each of the mark's steps (grid.steps), coloured."""
    text = Text()
    for i, (status, _) in enumerate(steps(mark)):
        text.append("→" if i else "").append(glyph(status), style=f"bold {colour(status)}")
    return text


def mark_text(mark: Mark, name: Namer) -> Text:
    """`✗→✓ cu124 maintained [+six]`: the steps, the row's place, the proven change."""
    place = mark_label(mark).replace(mark.stack, name(mark.stack), 1)
    text = chain(mark).append(f" {place}")
    if mark.fix:
        joiner = "+" if mark.fix.by == "compat" else ","
        text.append(f" [{joiner.join(name(c) for c in mark.fix.changes)}]")
    return text


def square_text(square: Square | None, name: Namer) -> Text:
    """One line per row in the square, then the declared cells not run, counted."""
    if square is None:
        return Text()
    ran = [mark_text(m, name) for m in square.marks if m.row is not None]
    waiting = sum(m.row is None for m in square.marks)
    lines = ran + ([Text(f"{glyph(NOT_RUN)} {waiting} {NOT_RUN}")] if waiting else [])
    return Text("\n").join(lines)


def _width(text: Text) -> int:
    return max((len(line) for line in text.plain.splitlines()), default=0)


def _chunks(widths: Sequence[int], first: int, room: int) -> list[list[int]]:
    """The Python columns (by index) in tables that each fit `room`: a rich table with a
    border takes each column's width plus 3 (padding and rule), and 1 more at the edge."""
    found: list[list[int]] = []
    used = 0
    for i, w in enumerate(widths):
        if not found or used + w + 3 > room:
            found.append([])
            used = 1 + first + 3
        found[-1].append(i)
        used += w + 3
    return found


def _table(g: Grid, columns: Sequence[str], cells: dict[tuple[str, str], Text]) -> Table:
    drawn = Table(show_lines=True, box=box.SQUARE, pad_edge=True)
    drawn.add_column(Text(CORNER), style="bold", no_wrap=True, overflow="fold")
    for python in columns:
        drawn.add_column(python, no_wrap=True, overflow="fold")
    for torch in g.torch:
        if any(g.squares.get(torch, {}).get(p) for p in columns):
            drawn.add_row(torch, *[cells[torch, p] for p in columns])
    return drawn


def _fits(g: Grid, name: Namer, width: int) -> tuple[dict[tuple[str, str], Text], list[list[int]]]:
    cells = {
        (t, p): square_text(g.squares.get(t, {}).get(p), name) for t in g.torch for p in g.python
    }
    widths = [max([len(p), *(_width(cells[t, p]) for t in g.torch)]) for p in g.python]
    first = max(len(line) for line in [*CORNER.splitlines(), *g.torch])
    return cells, _chunks(widths, first, width)


def table(g: Grid, width: int) -> Group:
    """The workload, its checks and its tally; then torch down, Python across, as wide as
    `width` allows: full names when they fit in one table, else codes (and their legend
    below), in as many tables as the Python columns need."""
    heading = Text(f"{g.title} ({' + '.join(g.checks)})", style="bold")
    heading.append(f": {tally_text(g.tally)}", style="not bold")
    cells, chunks = _fits(g, str, width)
    legend: dict[str, str] = {}
    if len(chunks) > 1:
        legend = codes(n for s in g.squares.values() for q in s.values() for m in q.marks
                       if m.row is not None for n in _names(m))  # fmt: skip
        cells, chunks = _fits(g, lambda n: legend.get(n, n), width)
    drawn: list[RenderableType] = [heading]
    drawn += [_table(g, [g.python[i] for i in chunk], cells) for chunk in chunks]
    shown = {c: n for n, c in legend.items() if c != n}
    if shown:
        drawn.append(Text("  ".join(f"{c}={n}" for c, n in sorted(shown.items()))))
    return Group(*drawn)


def plain(g: Grid) -> Text:
    """The grid for logs and grep: the heading, then a line per row (and per square's count
    of cells not run), each led by its square: `torch 2.6.0 py3.11  ✗→✓ cu124 maintained [+six]`;
    full names, no colour, no box."""
    lines = [Text(f"{g.title} ({' + '.join(g.checks)}): {tally_text(g.tally)}")]
    for torch in g.torch:
        for python in g.python:
            said = square_text(g.squares.get(torch, {}).get(python), str).plain
            lines += [Text(f"torch {torch} py{python}  {line}") for line in said.splitlines()]
    return Text("\n").join(lines)


def legend() -> Text:
    """What the signs, steps, names and counts mean."""
    text = Text()
    for status in ORDER:
        text.append(glyph(status), style=f"bold {colour(status)}").append(f" {status}  ")
    return text.append(
        "\nA line per row in its square: the workload as installed (raw); then, where it "
        "differs, → with audiomatrix.compat; then → ✓ where a remedy cell's run proves its "
        "change makes it pass. Then the row's accelerator and stack (native, conda where so) "
        "and, in [ ], the proven change: a remedy cell's (+six), or the compat remedies the "
        f"split proved it needs (torchaudio_save). {NOT_RUN}: declared cells with no run in "
        "their declared environment yet, counted per square; the heading says why."
    )
