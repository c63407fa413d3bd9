"""`audiomatrix lock`: the manifest of every declared cell, and the selected cells locked side
by side, each by its own installer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from audiomatrix.core.files import json_text, write_atomic
from audiomatrix.lock.installers import INSTALLERS, Locker, cell_data, installer
from audiomatrix.lock.stage import LockResult, Plan, Status, Stopper
from audiomatrix.records.cell import MANIFEST_FILE, MANIFEST_SCHEMA
from audiomatrix.spec.cells import Cell
from audiomatrix.spec.matrix import Matrix


def write_manifest(matrix: Matrix, root: Path) -> Path:
    """environments/cells.json: every cell the matrix declares, with why it cannot be built,
    so that the report accounts for cells that never get a folder of their own."""
    path = root / MANIFEST_FILE
    cells = sorted((cell_data(c) for c in matrix.cells), key=lambda c: c["id"])
    text = json_text(
        {"schema": MANIFEST_SCHEMA, "cells": cells, "reference": list(matrix.file.reference)}
    )
    if not path.exists() or path.read_text() != text:
        write_atomic(path, text)
    return path


def lock_cells(
    cells: Iterable[Cell],
    matrix: Matrix,
    root: Path,
    on_done: Callable[[LockResult], None] = lambda _: None,
    workers: int = 2,
) -> list[LockResult]:
    """Lock cells side by side; one cell's failure never stops the others. An interruption
    (any BaseException: the CLI raises one for SIGINT and SIGTERM) stops the uv processes, records
    nothing for the cells in flight and propagates."""
    write_manifest(matrix, root)
    lockers = {name: found.locker() for name, found in INSTALLERS.items()}
    plans = [(installer(c.installer).plan_for(c, matrix), lockers[c.installer]) for c in cells]
    stopper = Stopper()

    def work(plan: Plan, lock_cell: Locker) -> LockResult:
        try:
            result = lock_cell(plan, root / plan.cell.id, stopper)
        except OSError as exc:
            result = LockResult(plan.cell.id, Status.ERROR, f"{exc.filename}: {exc.strerror}")
        on_done(result)
        return result

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = [pool.submit(work, plan, lock_cell) for plan, lock_cell in plans]
        return [future.result() for future in futures]
    except BaseException:
        stopper.stop()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
