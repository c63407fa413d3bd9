"""The record a sweep leaves (`audiomatrix sweep --record`): its wall time, peak disk and each
cell's outcome, time and image layers, from which benchmarks/images.py computes disk shared
against naive per-cell images. A sweep spans sessions, so the record is rewritten after every
cell and a resumed sweep adds to it: a cell skipped as done keeps the entry that did it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from audiomatrix.core.files import write_json
from audiomatrix.records.sweep import SweepEntry, SweepRecord
from audiomatrix.smoke.sweep import Step


def entry(step: Step) -> SweepEntry:
    return SweepEntry(
        cell=step.cell,
        status=step.status,
        seconds=round(step.seconds, 1),
        detail=step.detail,
        image=step.tag,
        layers=list(step.layers),
    )


def merged(
    previous: SweepRecord | None, steps: Sequence[Step], wall_s: float, peak_bytes: int
) -> SweepRecord:
    """This run's steps over the previous record: a cell this run skipped as unchanged keeps
    the earlier entry that built and ran it, a cell this run did not select keeps its entry
    (a sweep of another selection adds to the record), and wall time and peak disk
    accumulate."""
    earlier = {e.cell: e for e in previous.per_cell} if previous else {}
    fresh = {}
    for step in steps:
        kept = earlier.get(step.cell)
        fresh[step.cell] = kept if step.status == "smoke unchanged" and kept else entry(step)
    cells = [fresh.pop(cell, kept) for cell, kept in earlier.items()] + list(fresh.values())
    counts: dict[str, int] = {}
    for cell in cells:
        counts[cell.status] = counts.get(cell.status, 0) + 1
    return SweepRecord(
        cells=len(cells),
        statuses=counts,
        wall_s=round((previous.wall_s if previous else 0) + wall_s, 1),
        runs=(previous.runs if previous else 0) + 1,
        peak_disk_gb=round(max(previous.peak_disk_gb if previous else 0, peak_bytes / 1e9), 2),
        per_cell=cells,
    )


def write(path: Path, previous: SweepRecord | None, steps: Sequence[Step], wall_s: float,
          peak_bytes: int) -> None:  # fmt: skip
    write_json(path, merged(previous, steps, wall_s, peak_bytes).model_dump(mode="json"))
