"""What the lock stage recorded for a cell, as every later stage reads it: the cell's folder,
its record and the lock files an install reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audiomatrix.core.errors import CellError
from audiomatrix.lock import stage as lock
from audiomatrix.lock.installers import conda, installer, uv
from audiomatrix.records.cell import CELL_FILE, CellRecord, RecordError, read_record


@dataclass(frozen=True)
class CellLock:
    """What the lock stage recorded for a cell: the only input this stage reads."""

    cell: str
    folder: Path
    record: CellRecord

    @property
    def requirements(self) -> Path:
        return self.folder / uv.LOCK_FILE

    @property
    def installer(self) -> str:
        return self.record.cell.installer

    @property
    def subdir(self) -> str:
        """A conda cell's platform, whose rendered files its installs read."""
        return conda.subdir(self.record.cell.platform) or ""

    @property
    def lock_files(self) -> list[Path]:
        """What an install reads, as the cell's installer says (a uv lock, a conda lock's two
        renders)."""
        names = installer(self.installer).lock_files(self.record.cell.platform)
        return [self.folder / name for name in names]

    @property
    def python(self) -> str:
        return self.record.cell.python

    @property
    def index(self) -> str | None:
        return self.record.inputs["index"]

    @property
    def lock_sha256(self) -> str:
        return str(self.record.lock_sha256)


def read_lock(environments: Path, cell: str) -> CellLock:
    folder = environments / cell
    try:
        record = read_record(folder)
    except RecordError as exc:
        raise CellError(str(exc)) from None
    if record is None:
        raise CellError(f"{cell}: no {folder / CELL_FILE}: run `audiomatrix lock` first")
    found = CellLock(cell, folder, record)
    if record.status != lock.Status.LOCKED or not all(p.is_file() for p in found.lock_files):
        reason = record.reason or "no lock file"
        raise CellError(f"{cell}: not locked ({record.status}: {reason})")
    return found
