"""benchmarks/results/sweep.json: what a sweep did (`audiomatrix sweep --record`), per cell
and in all, added up across resumed runs and selections; benchmarks/images.py reads the
layers from it."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from audiomatrix.records.base import Record


class SweepEntry(Record):
    """One cell's last step that did the work: its outcome, time and image layers."""

    cell: str
    status: str
    seconds: float
    detail: str
    image: str | None
    layers: list[tuple[str, int]]
    """Each layer's id and size, bottom first (none where no image was built)."""


class SweepRecord(Record):
    cells: int
    statuses: dict[str, int]
    wall_s: float
    runs: int
    peak_disk_gb: float
    per_cell: list[SweepEntry]


def read(path: Path) -> SweepRecord | None:
    """An earlier record to add to; None when there is none or it is unreadable (a sweep
    then starts a new one rather than stop)."""
    try:
        return SweepRecord.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None
