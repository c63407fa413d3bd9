"""The commands that build and run images: engine, build, smoke, sweep and matrix (cli.app
registers them). The work is the pipeline's stages (audiomatrix.workflow.pipeline); here it
gets options, progress and a table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from audiomatrix.cli.display import ConsoleDisplay, status_line
from audiomatrix.cli.options import (
    CaBundleOption,
    MatrixOption,
    SelectOption,
    err,
    fail,
    out,
    selected,
)
from audiomatrix.core.errors import CellError
from audiomatrix.image import build as imagebuild
from audiomatrix.image import engine as engine_stage
from audiomatrix.lock import cell_lock
from audiomatrix.smoke import runner as smoke_stage
from audiomatrix.smoke import sweep as sweep_stage
from audiomatrix.suite.schema import MODES
from audiomatrix.workflow import pipeline

ModeOption = Annotated[list[str] | None, typer.Option(help="raw and/or compat \\[default: both].")]
CheckOption = Annotated[list[str] | None, typer.Option(help="Only these checks.")]


def engine() -> None:
    """Make sure a Docker Engine answers; as root with none running, start one."""
    out.print(f"Docker Engine {engine_stage.ensure_engine()} answers")


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
    loaded, chosen = selected(ctx, matrix, select)
    failed = False
    engine_stage.ensure_engine()
    display = ConsoleDisplay()
    locks = pipeline.locked(loaded, pipeline.linux(chosen), display.skipped)
    for cell in sweep_stage.sweep_order(locks):
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
    if failed:
        raise typer.Exit(1)


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
        raise fail(f"--mode {unknown[0]}: choose raw or compat")
    loaded, chosen = selected(ctx, matrix, [*(select or ()), *(cell_ids or ())])
    if not native:
        run = pipeline.Run(loaded, chosen, ConsoleDisplay(), ca_bundle, modes=mode or MODES,
                           checks=check or (), suites=suite or ())  # fmt: skip
        if pipeline.execute(pipeline.SMOKE, run):
            raise typer.Exit(1)
        return
    results_root = Path(loaded.path).parent / "results"
    failed = 0
    for cell in (c for c in chosen if c.buildable):
        try:
            lock_record = cell_lock.read_lock(pipeline.environments(loaded), cell.id)
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
    loaded, chosen = selected(ctx, matrix, select)
    run = pipeline.Run(loaded, chosen, ConsoleDisplay(), ca_bundle, keep_images=keep_images,
                       record=record)  # fmt: skip
    if pipeline.execute(pipeline.SWEEP, run):
        raise typer.Exit(1)


def run_matrix(
    ctx: typer.Context,
    matrix: MatrixOption = None,
    select: SelectOption = None,
    ca_bundle: CaBundleOption = None,
) -> None:
    """The pipeline for the selection: lock, engine, build, smoke in the images (raw and
    compat), report. Unchanged cells are skipped at every stage; macOS and Windows cells run
    natively on their own runners (`audiomatrix smoke --native`)."""
    loaded, chosen = selected(ctx, matrix, select)
    if pipeline.execute(pipeline.MATRIX, pipeline.Run(loaded, chosen, ConsoleDisplay(), ca_bundle)):
        raise typer.Exit(1)
