"""The pipeline as a tuple of stages, as nox's workflow is a tuple of tasks: `matrix` runs
lock, the sweep (build and smoke in images) and the report over one Run; `lock`, `smoke` and
`sweep` run a part of it. Each stage does its work and tells a Display what a person should
see; the command line draws that display and only runs the tuple."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from audiomatrix.core.errors import CellError
from audiomatrix.image import engine
from audiomatrix.lock import cell_lock
from audiomatrix.lock import run as lock_run
from audiomatrix.lock import stage as lock_stage
from audiomatrix.records import sweep as sweep_record_file
from audiomatrix.smoke import sweep as sweep_stage
from audiomatrix.smoke import sweep_record
from audiomatrix.spec.cells import Cell
from audiomatrix.spec.matrix import Matrix
from audiomatrix.suite.schema import MODES
from audiomatrix.views import outputs


class Bar(Protocol):
    """One stage's progress: a cell done (`last` says how), or a line of what goes on."""

    def advance(self, last: str) -> None: ...

    def note(self, line: str) -> None: ...


class Display(Protocol):
    """What a person sees of a run while its stages work."""

    def progress(self, stage: str, total: int, *, eta: bool) -> AbstractContextManager[Bar]: ...

    def locked(self, results: Sequence[lock_stage.LockResult]) -> None: ...

    def engine(self, version: str) -> None: ...

    def skipped(self, reason: str) -> None: ...

    def problem(self, line: str) -> None: ...

    def step(self, step: sweep_stage.Step, results_root: Path) -> None: ...

    def report(self, root: Path, written: outputs.Written | None) -> None: ...


@dataclass
class Run:
    """What the stages of one command share, and whether one of them failed."""

    matrix: Matrix
    cells: list[Cell]
    display: Display
    ca_bundle: Path | None = None
    modes: Sequence[str] = MODES
    checks: Sequence[str] = ()
    suites: Sequence[Path] = ()
    keep_images: bool = True
    record: Path | None = None
    """Where the sweep writes its wall time, per-cell times and peak disk."""
    failed: bool = False

    @property
    def root(self) -> Path:
        return Path(self.matrix.path).parent


Stage = Callable[[Run], bool]
"""A stage: does its work on the run; False stops the stages after it."""


def environments(matrix: Matrix) -> Path:
    """Locks live beside the matrix file they came from."""
    return Path(matrix.path).parent / "environments"


def linux(cells: Sequence[Cell]) -> list[Cell]:
    return [c for c in cells if c.buildable and not c.os_value.native]


def locked(
    matrix: Matrix, cells: Sequence[Cell], skipped: Callable[[str], None]
) -> list[cell_lock.CellLock]:
    """The cells' lock records; a cell without a lock is told to `skipped` and left out."""
    found = []
    for cell in cells:
        try:
            found.append(cell_lock.read_lock(environments(matrix), cell.id))
        except CellError as exc:
            skipped(str(exc))
    return found


def lock(run: Run) -> bool:
    """Lock each cell; a tool failure (not a finding about a cell) stops the pipeline."""
    with run.display.progress("lock", len(run.cells), eta=False) as bar:
        results = lock_run.lock_cells(
            run.cells,
            run.matrix,
            environments(run.matrix),
            on_done=lambda result: bar.advance(f"{result.cell}: {result.status}"),
        )
    run.display.locked(results)
    if any(r.failed for r in results):
        run.failed = True
        return False
    return True


def _images(run: Run) -> bool:
    """Engine, then build and smoke each locked Linux cell in its image; True when a cell
    failed. A record, if asked, is rewritten after each cell."""
    run.display.engine(engine.ensure_engine())
    locks = sweep_stage.sweep_order(locked(run.matrix, linux(run.cells), run.display.skipped))
    results_root = run.root / "results"
    steps: list[sweep_stage.Step] = []
    started = time.monotonic()
    earlier = sweep_record_file.read(run.record) if run.record else None
    with (
        sweep_stage.peak_disk() as peak,
        run.display.progress("images", len(locks), eta=True) as bar,
    ):
        for step in sweep_stage.image_runs(
            locks, results_root, modes=run.modes, checks=run.checks, suites=run.suites,
            ca_bundle=run.ca_bundle, keep_images=run.keep_images, echo=bar.note,
            progress=bar.note,
        ):  # fmt: skip
            steps.append(step)
            bar.advance(f"{step.cell}: {step.status}")
            run.display.step(step, results_root)
            if run.record:
                elapsed = time.monotonic() - started
                sweep_record.write(run.record, earlier, steps, elapsed, peak())
    return any(s.status == "failed" for s in steps)


def sweep(run: Run) -> bool:
    """The images stage. A missing or vanished engine is told and counts as a failure, but
    the stages after still run (the report shows what finished)."""
    try:
        run.failed |= _images(run)
    except engine.EngineError as exc:
        run.display.problem(str(exc))
        run.failed = True
    return True


def linux_sweep(run: Run) -> bool:
    """The sweep, where the selection has a Linux cell: a `matrix` of only macOS or Windows
    cells asks no Docker Engine."""
    return sweep(run) if linux(run.cells) else True


def report(run: Run) -> bool:
    """The report, unless it was written from exactly these inputs and code."""
    run.display.report(run.root, outputs.refresh(run.root))
    return True


LOCK: tuple[Stage, ...] = (lock,)
SMOKE: tuple[Stage, ...] = (sweep,)
SWEEP: tuple[Stage, ...] = (sweep, report)
MATRIX: tuple[Stage, ...] = (lock, linux_sweep, report)


def execute(stages: Sequence[Stage], run: Run) -> bool:
    """Each stage in turn until one says stop; True when something failed."""
    for stage in stages:
        if not stage(run):
            break
    return run.failed
