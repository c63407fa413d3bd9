"""The installers a cell can declare, one module each (as cibuildwheel has one per platform):
uv, from PyPI's wheels, and conda, from conda channels. Each makes a cell's lock plan and
locks it; the stages above ask the installer by the name the cell declares."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from audiomatrix.lock.installers import conda, uv
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


INSTALLERS: dict[str, Installer] = {"uv": uv, "conda": conda}


def installer(name: str) -> Installer:
    """The installer a cell declares by name (`uv` or `conda`)."""
    return INSTALLERS[name]
