"""The report's outputs: each file `audiomatrix report` writes, and what writes it.

A new output format is one more Writer in WRITERS; the report writes them in this order, and
freshness checks the same paths.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from audiomatrix.core.files import write_atomic
from audiomatrix.records.compatibility import JSON_FILE, Compatibility
from audiomatrix.table.report import table_json
from audiomatrix.views import markdown, page
from audiomatrix.views.diff import Change


@dataclass(frozen=True)
class Writer:
    path: str
    """Relative to the repository root."""
    render: Callable[[Compatibility, Sequence[Change] | None], str]
    """The file's text from the table and, when given, the changes since a previous table."""


WRITERS: tuple[Writer, ...] = (
    Writer(markdown.MD_FILE, lambda table, _changes: markdown.markdown(table)),
    Writer(JSON_FILE, lambda table, _changes: table_json(table)),
    Writer(page.SITE_FILE, page.html),
)
"""COMPATIBILITY.md, compatibility.json and the page; only the page shows the changes."""


def output_paths(out: Path) -> list[Path]:
    """Each writer's file under the repository root `out`."""
    return [out / w.path for w in WRITERS]


def write_all(
    table: Compatibility, out: Path, changes: Sequence[Change] | None = None
) -> list[Path]:
    """Write every output under `out` (the repository root), in order; returns their paths.
    `changes` (diff.diff against a previous table) goes to each writer; only the page shows it."""
    for writer in WRITERS:
        write_atomic(out / writer.path, writer.render(table, changes))
    return output_paths(out)
