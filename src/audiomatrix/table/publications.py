"""publications/<cell>.json as the publish stage writes it, and which row it belongs to: the
report merges a publication into a row only while the row still shows the very image that
was pushed (the file's shape and its reader: audiomatrix.records.publication)."""

from __future__ import annotations

from pathlib import Path

from audiomatrix.core.files import write_atomic
from audiomatrix.records.compatibility import Row
from audiomatrix.records.publication import Published


def path_for(folder: Path, cell: str) -> Path:
    return folder / f"{cell}.json"


def write(folder: Path, published: Published) -> Path:
    path = path_for(folder, published.cell)
    write_atomic(path, published.model_dump_json(indent=2) + "\n")
    return path


def for_row(found: dict[str, Published], row: Row) -> Published | None:
    """The publication of exactly the image this row ran in, if there is one."""
    published = found.get(row.cell)
    if published and row.where.kind == "image" and published.image_id == row.where.image_digest:
        return published
    return None
