"""The record a sweep leaves (`audiomatrix sweep --record`): its wall time, peak disk and each
cell's outcome, time and image layers, from which benchmarks/images.py computes disk shared
against naive per-cell images. A sweep spans sessions, so the record is rewritten after every
cell and a resumed sweep adds to it: a cell skipped as done keeps the entry that did it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from audiomatrix.core.files import write_json
from audiomatrix.smoke.sweep import Step


def entry(step: Step) -> dict[str, Any]:
    return {
        "cell": step.cell,
        "status": step.status,
        "seconds": round(step.seconds, 1),
        "detail": step.detail,
        "image": step.tag,
        "layers": [list(layer) for layer in step.layers],
    }


def merged(
    previous: dict[str, Any] | None, steps: Sequence[Step], wall_s: float, peak_bytes: int
) -> dict[str, Any]:
    """This run's steps over the previous record: a cell this run skipped as unchanged keeps
    the earlier entry that built and ran it, a cell this run did not select keeps its entry
    (a sweep of another selection adds to the record), and wall time and peak disk
    accumulate."""
    earlier = {e["cell"]: e for e in (previous or {}).get("per_cell", [])}
    fresh = {}
    for step in steps:
        kept = earlier.get(step.cell)
        fresh[step.cell] = kept if step.status == "smoke unchanged" and kept else entry(step)
    cells = [fresh.pop(cell, kept) for cell, kept in earlier.items()] + list(fresh.values())
    counts: dict[str, int] = {}
    for cell in cells:
        counts[cell["status"]] = counts.get(cell["status"], 0) + 1
    return {
        "cells": len(cells),
        "statuses": counts,
        "wall_s": round((previous or {}).get("wall_s", 0) + wall_s, 1),
        "runs": (previous or {}).get("runs", 0) + 1,
        "peak_disk_gb": round(max((previous or {}).get("peak_disk_gb", 0), peak_bytes / 1e9), 2),
        "per_cell": cells,
    }


def load(path: Path) -> dict[str, Any] | None:
    """An earlier record to add to (None when there is none or it is unreadable)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write(path: Path, previous: dict[str, Any] | None, steps: Sequence[Step], wall_s: float,
          peak_bytes: int) -> None:  # fmt: skip
    write_json(path, merged(previous, steps, wall_s, peak_bytes))
