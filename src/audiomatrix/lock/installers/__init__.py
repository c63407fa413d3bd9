"""The installers a cell can declare, one module each (as cibuildwheel has one per platform):
uv, from PyPI's wheels, and conda, from conda channels. Each makes a cell's lock plan, locks
it and says what its cells add to their record; the stages above ask the installer by the name
the cell declares."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from audiomatrix.lock.installers import conda, uv
from audiomatrix.lock.resolved import resolved_cell
from audiomatrix.lock.stage import LockResult, Plan, Stopper
from audiomatrix.spec.cells import Cell
from audiomatrix.spec.matrix import Matrix


class Locker(Protocol):
    def __call__(self, plan: Any, folder: Path, stopper: Stopper) -> LockResult: ...


class Installer(Protocol):
    """What an installer's module gives."""

    def plan_for(self, cell: Cell, matrix: Matrix) -> Plan: ...

    def locker(self) -> Locker:
        """Its lock_cell, with what it needs found once per run (the uv binary)."""
        ...

    def record_additions(self, cell: Cell) -> dict[str, Any]:
        """What its cells add to (or change in) their resolved record."""
        ...


INSTALLERS: dict[str, Installer] = {"uv": uv, "conda": conda}


def installer(name: str) -> Installer:
    """The installer a cell declares by name (`uv` or `conda`)."""
    return INSTALLERS[name]


def cell_data(cell: Cell) -> dict[str, Any]:
    """The resolved cell as data, with its installer's additions: what `cells --json` prints,
    environments/cells.json lists and each cell.json records."""
    return resolved_cell(cell, installer(cell.installer).record_additions(cell))
