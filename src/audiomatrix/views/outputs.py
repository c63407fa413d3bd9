"""The report's three files over a repository's results/, environments/ and publications/:
written, or, where freshness finds them written from exactly these inputs and code, left as
they are (what `matrix` and `sweep` end with)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audiomatrix.records import publication
from audiomatrix.records.compatibility import Compatibility
from audiomatrix.table import report as report_stage
from audiomatrix.views import diff, freshness, writers


@dataclass(frozen=True)
class Written:
    table: Compatibility
    paths: list[Path]


def inputs(root: Path) -> list[Path]:
    return [root / "results", root / "environments", root / publication.FOLDER]


def write(root: Path, previous: Compatibility | None = None) -> Written:
    """The report stage over `root`; what changed since a previous table goes into the page."""
    found = inputs(root)
    digest = freshness.inputs_digest(found)  # before reading: a run written meanwhile counts
    table = report_stage.build(*found)
    changes = None if previous is None else diff.diff(previous, table)
    written = writers.write_all(table, root, changes)
    if previous is None:  # a page that shows changes depends on a file outside the inputs
        freshness.record(root, digest, written)
    return Written(table, written)


def refresh(root: Path) -> Written | None:
    """The report, unless the outputs on disk were written from exactly today's inputs and
    code: then None, and nothing is read."""
    if freshness.is_fresh(root, inputs(root), writers.output_paths(root)):
        return None
    return write(root)
