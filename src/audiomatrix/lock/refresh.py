"""`audiomatrix refresh`: the selected uv cells relocked as the index stood on a later day,
and what moved in each lock (old -> new version, added, removed).

Every cell is resolved side by side into a scratch folder, exactly as `lock` resolves it but
for the date; only then are the moved cells' files moved over theirs (each file synced, then
renamed, the record last), so an interruption or a failure leaves every previous lock as it
was. A cell whose packages did not move gets its new date in its record and keeps its lock
byte for byte (its image, made of the lock, stays the same, so nothing reruns it). A cell the
index cannot resolve at the new date, or whose index does not answer, keeps its lock and its
date: the refresh says so. Conda cells have no date to move (conda-lock solves a channel as
it stands) and are listed as such.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from audiomatrix.lock import run as lock_run
from audiomatrix.lock.installers import uv
from audiomatrix.lock.stage import LockResult, Status, move_in
from audiomatrix.records.cell import CELL_FILE, RecordError, read_record
from audiomatrix.spec.cells import Cell
from audiomatrix.spec.matrix import Matrix

WORKERS = 8
"""Cells resolved at once: a warm relock is mostly uv waiting on the index, not computing."""

MOVED = "moved"
SAME = "unchanged"
UNDATED = "not dated"


@dataclass(frozen=True)
class Move:
    """One package whose pin differs between two locks (None: absent from that lock)."""

    name: str
    old: str | None
    new: str | None

    def __str__(self) -> str:
        if self.old is None:
            return f"+ {self.name} {self.new}"
        if self.new is None:
            return f"- {self.name} {self.old}"
        return f"{self.name} {self.old} -> {self.new}"


def moves(old: dict[str, str], new: dict[str, str]) -> list[Move]:
    """What differs between two locks' pins, by package name."""
    names = sorted(set(old) | set(new), key=str.lower)
    return [Move(n, old.get(n), new.get(n)) for n in names if old.get(n) != new.get(n)]


@dataclass(frozen=True)
class CellRefresh:
    """One cell's refresh: moved (with its moves), unchanged, or why it was not refreshed."""

    cell: str
    status: str
    before: str | None
    """The date its lock was resolved as of before (None: no lock, or no date)."""
    moves: list[Move] = field(default_factory=list)
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status == Status.ERROR


def as_of_stamp(day: dt.date) -> str:
    """A day as the RFC 3339 cut-off the lock records (`Matrix.exclude_newer`'s form)."""
    return f"{day.isoformat()}T00:00:00Z"


def _dated(matrix: Matrix, day: dt.date) -> Matrix:
    """The matrix as it reads once its exclude_newer says `day`."""
    file = matrix.file.model_copy(update={"exclude_newer": day})
    return Matrix(file=file, cells=matrix.cells, path=matrix.path)


def _before(folder: Path) -> tuple[dict[str, str] | None, str | None]:
    """The cell's current lock pins (None without an intact lock) and its date."""
    try:
        record = read_record(folder)
    except RecordError:
        return None, None
    if record is None or record.status != Status.LOCKED or not record.lock:
        return None, None
    date = record.inputs.get("exclude_newer")
    try:
        return uv.pins((folder / uv.LOCK_FILE).read_text()), date
    except OSError:
        return None, date


def _outcome(result: LockResult, environments: Path, scratch: Path) -> CellRefresh:
    old, before = _before(environments / result.cell)
    if result.status != Status.LOCKED:
        detail = result.detail or ""
        if old is not None and result.status != Status.ERROR:
            detail = f"{detail}; kept the lock as of {(before or '-')[:10]}"
        return CellRefresh(result.cell, str(result.status), before, [], detail)
    new = uv.pins((scratch / result.cell / uv.LOCK_FILE).read_text())
    found = moves(old or {}, new)
    return CellRefresh(result.cell, MOVED if found else SAME, before, found)


def _write(outcome: CellRefresh, environments: Path, scratch: Path) -> None:
    """The new files over the cell's: all three where the lock moved, else the record only
    (the new date; the lock stays byte for byte)."""
    folder = environments / outcome.cell
    folder.mkdir(parents=True, exist_ok=True)
    names = (uv.INPUT_FILE, uv.LOCK_FILE, CELL_FILE) if outcome.status == MOVED else (CELL_FILE,)
    move_in(scratch / outcome.cell, folder, names)


def refresh_cells(
    cells: Sequence[Cell],
    matrix: Matrix,
    environments: Path,
    day: dt.date,
    *,
    dry_run: bool,
    on_done: Callable[[LockResult], None] = lambda _: None,
    workers: int = WORKERS,
) -> list[CellRefresh]:
    """Relock the buildable uv cells as of `day` and compare each with its lock; unless
    `dry_run`, write the new locks (the caller moves matrix.yaml's date first). Sorted by cell."""
    dated = [c for c in cells if c.buildable and c.installer == "uv"]
    undated = [
        CellRefresh(c.id, UNDATED, None, [], "conda-lock solves the channel as it stands")
        for c in cells
        if c.buildable and c.installer != "uv"
    ]
    where = None if dry_run else environments  # a real refresh renames within one file system
    if where:
        where.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".refresh-", dir=where) as tmp:
        scratch = Path(tmp)
        results = lock_run.lock_cells(
            dated, _dated(matrix, day), scratch, on_done=on_done, workers=workers
        )
        outcomes = [_outcome(r, environments, scratch) for r in results]
        if not dry_run:
            for outcome in outcomes:
                if outcome.status in (MOVED, SAME):
                    _write(outcome, environments, scratch)
    return sorted([*outcomes, *undated], key=lambda o: o.cell)


def needing_a_run(outcomes: Iterable[CellRefresh]) -> list[str]:
    """The cells whose locks moved: what `sweep` and `make matrix` will build and run (every
    other cell's image is the same, so its run stands)."""
    return [o.cell for o in outcomes if o.status == MOVED]
