"""results/<cell>/<run>.json as the smoke stage writes it and looks up a cell's runs (the file's
shape and its reader: audiomatrix.records.run)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from audiomatrix.core.files import write_atomic
from audiomatrix.records.run import ResultError, RunResult, read


def run_id(started: datetime) -> str:
    """Sortable and filesystem-safe: 20261125T160102Z."""
    return started.strftime("%Y%m%dT%H%M%SZ")


def path_for(root: Path, cell: str, run: str) -> Path:
    return root / cell / f"{run}.json"


def write(root: Path, result: RunResult) -> Path:
    path = path_for(root, result.cell, result.run)
    write_atomic(path, result.model_dump_json(indent=2) + "\n")
    return path


def runs(root: Path, cell: str) -> list[Path]:
    """A cell's run files, newest first."""
    return sorted((root / cell).glob("*.json"), reverse=True)


def latest(root: Path, cell: str, kind: str | None = None) -> RunResult | None:
    """The newest usable run of a cell, of one kind (image, native) if asked. A damaged file
    does not stand in the way of deciding whether to rerun: it is skipped here and listed by
    the report."""
    for path in runs(root, cell):
        try:
            run = read(path, cell)
        except ResultError:
            continue
        if kind is None or run.where.kind == kind:
            return run
    return None
