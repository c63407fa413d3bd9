"""The installers a cell can declare, one module each behind one protocol (as cibuildwheel has
one per platform): uv, from PyPI's wheels, and conda, from conda channels. Every stage above
asks the cell's installer (`installer(cell.installer)`) instead of branching on its name.

What an installer's module gives (`Installer`), as data or as functions of core, spec, records
and lock only:
- its lock: `plan_for` (the plan whose inputs' hash decides a relock, and the cell's record
  data) and `locker` (its `lock_cell`, with its tools found once per run);
- what an install reads: `lock_files`, and `install_commands`, those a user runs (`pull`);
- its record additions: `record_additions`, what its cells add to cell.json (`cell_data`);
- its image: `IMAGE` (steps.ImageSteps: Dockerfile, install script, tool, build args);
- its native environment: `NATIVE` (steps.NativeSteps: which kind smoke makes, whether it
  brings FFmpeg, whether tox can install it);
- `CUDA_UP_TO` (whether a torch built for an older CUDA of the declared major serves) and
  `LOCKED_IN_CI` (whether CI locks its cells in their own jobs).
The engine and subprocess work stays in image/ and smoke/, looked up by what IMAGE.tool and
NATIVE.environment declare (image.build.TOOL_IMAGES, smoke.runner.ENVIRONMENTS).

To add one: allow its name in spec/schema.py (what a stack may declare), write its module here
with all of the above, register it in INSTALLERS, and add its Dockerfile and install script
under docker/, its tool's one-file image to TOOL_IMAGES and, for a new kind of native
environment, its maker to ENVIRONMENTS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from audiomatrix.lock.installers import conda, uv
from audiomatrix.lock.installers.steps import ImageSteps, NativeSteps
from audiomatrix.lock.resolved import resolved_cell
from audiomatrix.lock.stage import LockResult, Plan, Stopper
from audiomatrix.records.cell import CellRecord
from audiomatrix.spec.cells import Cell
from audiomatrix.spec.matrix import Matrix


class Locker(Protocol):
    def __call__(self, plan: Any, folder: Path, stopper: Stopper) -> LockResult: ...


class Installer(Protocol):
    """What an installer's module gives."""

    IMAGE: ImageSteps
    NATIVE: NativeSteps
    CUDA_UP_TO: bool
    LOCKED_IN_CI: bool

    def plan_for(self, cell: Cell, matrix: Matrix) -> Plan: ...

    def locker(self) -> Locker:
        """Its lock_cell, with what it needs found once per run (the uv binary)."""
        ...

    def lock_files(self, platform: str) -> tuple[str, ...]:
        """The names, in the cell's folder, of the files an install on `platform` reads."""
        ...

    def install_commands(self, folder: Path, record: CellRecord, env: Path) -> list[list[str]]:
        """The commands that make the environment `env` from the lock in `folder`."""
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
