"""The commands that build and run images: engine, build, smoke, sweep and matrix.

They register on the `audiomatrix` app (cli.py imports this module) and share its options,
consoles and one-line errors. The work itself is audiomatrix.smoke.sweep's; here it gets
progress, an ETA and a table.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from audiomatrix.cli.app import (
    CaBundleOption,
    MatrixOption,
    SelectOption,
    _environments,
    _fail,
    _refresh_report,
    _run_lock,
    _selected,
    app,
    err,
    out,
)
from audiomatrix.core.errors import CellError
from audiomatrix.image import build as imagebuild
from audiomatrix.image import engine as engine_stage
from audiomatrix.lock import cell_lock
from audiomatrix.smoke import results as results_stage
from audiomatrix.smoke import runner as smoke_stage
from audiomatrix.smoke import sweep as pipeline
from audiomatrix.smoke import sweep_record as sweeprecord
from audiomatrix.spec.cells import Cell
from audiomatrix.spec.matrix import Matrix
from audiomatrix.suite.schema import MODES
from audiomatrix.table import report as report_stage

ModeOption = Annotated[list[str] | None, typer.Option(help="raw and/or compat [default: both].")]
CheckOption = Annotated[list[str] | None, typer.Option(help="Only these checks.")]


def status_line(result: results_stage.RunResult, results_root: Path) -> str:
    """`raw: xtts=pass demucs=fail[weights-only-demucs] ...; compat: ...`, classified as the
    report will classify it."""
    parts = []
    for mode, checks in result.modes.items():
        shown = []
        for c in checks:
            log = (results_root / result.cell / c.log) if c.log else None
            text = log.read_text(errors="replace") if log and log.is_file() else ""
            signature = report_stage.signature_of(c, text)
            shown.append(f"{c.check}={c.status}" + (f"[{signature}]" if signature else ""))
        parts.append(f"{mode}: {' '.join(shown)}")
    return "; ".join(parts)


def _locked(loaded: Matrix, cells: list[Cell]) -> list[cell_lock.CellLock]:
    """The cells' lock records; a cell without a lock is reported and left out."""
    found = []
    for cell in cells:
        try:
            found.append(cell_lock.read_lock(_environments(loaded), cell.id))
        except CellError as exc:
            err.print(f"skipped {exc}", markup=False)
    return found


def _linux(cells: list[Cell]) -> list[Cell]:
    return [c for c in cells if c.buildable and not c.os_value.native]


@contextmanager
def _peak_disk(every_s: float = 5.0) -> Iterator[Callable[[], int]]:
    """Samples the Docker Engine's disk while the block runs: yields a function that gives
    the peak use above the start, in bytes."""
    with engine_stage.engine_call("reading where the engine keeps its images"):
        root = engine_stage.client().info().get("DockerRootDir") or "/"
    start = shutil.disk_usage(root).used
    peak = [start]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every_s):
            peak[0] = max(peak[0], shutil.disk_usage(root).used)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lambda: max(peak[0], shutil.disk_usage(root).used) - start
    finally:
        stop.set()
        thread.join()


def run_images(
    loaded: Matrix,
    cells: list[Cell],
    ca_bundle: Path | None,
    *,
    modes: list[str] | None = None,
    checks: list[str] | None = None,
    suites: list[Path] | None = None,
    keep_images: bool = True,
    record: Path | None = None,
) -> bool:
    """Engine, then build and smoke each Linux cell in its image with progress and an ETA;
    True when something failed. `record` gets the run's wall time, per-cell times and the
    peak disk the Docker Engine used."""
    try:
        version = engine_stage.ensure_engine()
    except engine_stage.EngineError as exc:
        err.print(str(exc), markup=False, soft_wrap=True)
        return True
    err.print(f"Docker Engine {version}", highlight=False)
    locks = pipeline.sweep_order(_locked(loaded, cells))
    results_root = Path(loaded.path).parent / "results"
    steps: list[pipeline.Step] = []
    started = time.monotonic()
    earlier = sweeprecord.load(record) if record else None
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
               TextColumn("{task.fields[last]}"))  # fmt: skip
    try:
        with (
            _peak_disk() as peak,
            Progress(*columns, console=err, transient=True) as bar,
        ):
            task = bar.add_task("images", total=len(locks), last="")

            def show(line: str) -> None:
                bar.update(task, last=line[:90])

            for step in pipeline.image_runs(
                locks, results_root, modes=modes or MODES, checks=checks or (),
                suites=suites or (), ca_bundle=ca_bundle, keep_images=keep_images,
                echo=show, progress=show,
            ):  # fmt: skip
                steps.append(step)
                bar.update(task, advance=1, last=f"{step.cell}: {step.status}")
                _print_step(step, results_root)
                if record:
                    sweeprecord.write(record, earlier, steps, time.monotonic() - started, peak())
    except engine_stage.EngineError as exc:
        err.print(str(exc), markup=False, soft_wrap=True)
        return True
    return any(s.status == "failed" for s in steps)


def _print_step(step: pipeline.Step, results_root: Path) -> None:
    if step.result is not None and step.status == "smoked":
        out.print(f"[bold]{step.cell}[/] {escape(status_line(step.result, results_root))}",
                  highlight=False)  # fmt: skip
    else:
        colour = "dim" if step.status == "smoke unchanged" else "yellow"
        out.print(f"[bold]{step.cell}[/] [{colour}]{step.status}[/] {escape(step.detail)}",
                  highlight=False)  # fmt: skip


@app.command()
def engine() -> None:
    """Make sure a Docker Engine answers; as root with none running, start one."""
    try:
        version = engine_stage.ensure_engine()
    except engine_stage.EngineError as exc:
        raise _fail(str(exc), 1) from None
    out.print(f"Docker Engine {version} answers")


@app.command()
def build(
    ctx: typer.Context,
    matrix: MatrixOption = None,
    select: SelectOption = None,
    ca_bundle: CaBundleOption = None,
    context: Annotated[
        Path | None,
        typer.Option(
            help="Write each cell's build context and args into DIR/<cell>/ instead "
            "of building (for docker-bake.hcl and builds by hand)."
        ),
    ] = None,
) -> None:
    """Build the image of each selected, locked Linux cell (tagged by content)."""
    loaded, chosen = _selected(ctx, matrix, select)
    failed = False
    try:
        engine_stage.ensure_engine()
        for cell in pipeline.sweep_order(_locked(loaded, _linux(chosen))):
            if context is not None:
                ready = imagebuild.prepare(cell, echo=lambda _: None)
                if isinstance(ready, imagebuild.BuildResult):
                    out.print(f"[bold]{cell.cell}[/] {ready.status} {escape(ready.detail)}")
                    continue
                folder = imagebuild.write_context_folder(ready, context / cell.cell)
                out.print(f"[bold]{cell.cell}[/] context in {folder}", highlight=False)
                continue
            with err.status(f"[bold]{cell.cell}[/]: building"):
                built = imagebuild.build(cell, ca_bundle=ca_bundle, echo=lambda _: None)
            colour = "green" if built.ok else "red"
            out.print(f"[bold]{cell.cell}[/] [{colour}]{built.status}[/] {built.tag or ''} "
                      f"{built.seconds:.1f}s {built.detail}", highlight=False)  # fmt: skip
            failed |= built.status == "failed"
    except engine_stage.EngineError as exc:
        raise _fail(str(exc), 1) from None
    if failed:
        raise typer.Exit(1)


@app.command()
def smoke(
    ctx: typer.Context,
    cell_ids: Annotated[
        list[str] | None, typer.Argument(help="Cell ids (or use --select).")
    ] = None,
    matrix: MatrixOption = None,
    select: SelectOption = None,
    native: Annotated[
        bool, typer.Option("--native", help="Run in a venv made from the lock, not an image.")
    ] = False,
    mode: ModeOption = None,
    check: CheckOption = None,
    suite: Annotated[
        list[Path] | None,
        typer.Option(
            help="A folder of your own test_*.py checks (each `def test_NAME` a check), run "
            "with the suite's; repeatable.",
            exists=True,
            file_okay=False,
            resolve_path=True,
        ),
    ] = None,
    ca_bundle: CaBundleOption = None,
) -> None:
    """Run the smoke suite for each cell and write results/<cell>/<run>.json: inside the
    cell's image (built if needed), or natively with --native (only where this machine gives
    the environment the cell declares)."""
    unknown = sorted(set(mode or ()) - set(MODES))
    if unknown:
        raise _fail(f"--mode {unknown[0]}: choose raw or compat")
    loaded, chosen = _selected(ctx, matrix, [*(select or ()), *(cell_ids or ())])
    if not native:
        if run_images(loaded, _linux(chosen), ca_bundle, modes=mode, checks=check, suites=suite):
            raise typer.Exit(1)
        return
    results_root = Path(loaded.path).parent / "results"
    failed = 0
    for cell in (c for c in chosen if c.buildable):
        try:
            lock_record = cell_lock.read_lock(_environments(loaded), cell.id)
            with err.status(f"[bold]{cell.id}[/]: preparing the venv and running the suite"):
                result = smoke_stage.smoke_native(
                    lock_record, results_root, smoke_stage.venv_root(),
                    modes=mode or MODES, checks=check or (), suites=suite or (),
                    echo=lambda line, cid=cell.id: err.print(f"{cid}: {line}", markup=False),
                )  # fmt: skip
        except CellError as exc:
            failed += 1
            err.print(str(exc), markup=False, soft_wrap=True)
            continue
        line = escape(status_line(result, results_root))
        out.print(f"[bold]{cell.id}[/] {line}", highlight=False)
    if failed:
        raise typer.Exit(1)


@app.command()
def sweep(
    ctx: typer.Context,
    matrix: MatrixOption = None,
    select: SelectOption = None,
    ca_bundle: CaBundleOption = None,
    keep_images: Annotated[
        bool, typer.Option(help="Keep every image (by default each goes once the next is built).")
    ] = False,
    record: Annotated[
        Path | None, typer.Option(help="Write the sweep's wall time, per-cell times and peak disk.")
    ] = None,
) -> None:
    """Build, smoke-test and record every selected Linux cell in its own image, in an order
    that reuses layers, removing images no longer needed so the sweep fits the disk. Rerun it
    after any interruption: cells whose newest image run used the very image they would build
    now are skipped."""
    loaded, chosen = _selected(ctx, matrix, select)
    failed = run_images(loaded, _linux(chosen), ca_bundle, keep_images=keep_images,
                        record=record)  # fmt: skip
    _refresh_report(Path(loaded.path).parent)
    if failed:
        raise typer.Exit(1)


@app.command("matrix")
def run_matrix(
    ctx: typer.Context,
    matrix: MatrixOption = None,
    select: SelectOption = None,
    ca_bundle: CaBundleOption = None,
) -> None:
    """The pipeline for the selection: lock, engine, build, smoke in the images (raw and
    compat), report. Unchanged cells are skipped at every stage; macOS and Windows cells run
    natively on their own runners (`audiomatrix smoke --native`)."""
    loaded, chosen = _selected(ctx, matrix, select)
    locked = _run_lock(loaded, chosen)
    if any(r.failed for r in locked):
        raise typer.Exit(1)
    linux = _linux(chosen)
    failed = bool(linux) and run_images(loaded, linux, ca_bundle)
    _refresh_report(Path(loaded.path).parent)
    if failed:
        raise typer.Exit(1)
