"""How old each row is: the day its lock was resolved as of (its cell.json), and the stack
packages with newer releases on the index than its lock has, as the committed index check
(environments/index.json) found them. Both come from files, never from the clock, so the same
repository gives the same table on any day."""

from __future__ import annotations

from datetime import date

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from audiomatrix.lock.index_check import requirements
from audiomatrix.records.cell import CellRecord
from audiomatrix.records.compatibility import Row
from audiomatrix.records.index_check import IndexCheck


def as_of(record: CellRecord | None) -> date | None:
    """The day the cell's lock was resolved as of (None: no record, or no date in it)."""
    stamp = record.inputs.get("exclude_newer") if record else None
    return date.fromisoformat(stamp[:10]) if isinstance(stamp, str) else None


def _later(newest: str, locked: str) -> bool:
    try:
        return Version(newest) > Version(locked)
    except InvalidVersion:
        return False


def newer(record: CellRecord | None, pins: dict[str, str], check: IndexCheck | None) -> dict:
    """{package: newest release} for the stack's packages the index has newer than the lock
    and within the stack's own requirement (what a refresh could move the lock to: a stack
    that pins `demucs==4.0.1` is not told about 4.1.0)."""
    if record is None or check is None:
        return {}
    newest = check.newest_for(record.cell.python, record.cell.platform)
    locked = {canonicalize_name(name): version for name, version in pins.items()}
    found = {}
    for requirement in requirements(record.cell.packages):
        name = requirement.name
        have, latest = locked.get(canonicalize_name(name)), newest.get(name)
        if have and latest and _later(latest, have) and requirement.specifier.contains(latest):
            found[name] = latest
    return found


def dated(
    row: Row, record: CellRecord | None, pins: dict[str, str], check: IndexCheck | None
) -> Row:
    """The row with its lock's day and its newer releases."""
    return row.model_copy(update={"as_of": as_of(record), "newer": newer(record, pins, check)})
