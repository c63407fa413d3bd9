"""The commands that read the matrix and write what one stage makes: cells, lock, report,
tox, doctor and the CI files (cli.app registers them)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from audiomatrix.cli import doctor as doctor_stage
from audiomatrix.cli.display import ConsoleDisplay
from audiomatrix.cli.options import (
    MatrixOption,
    SelectOption,
    err,
    fail,
    load_table,
    out,
    selected,
    show_written,
)
from audiomatrix.lock import index_check
from audiomatrix.lock.installers import cell_data
from audiomatrix.publish import bake, fanout
from audiomatrix.publish import tox as tox_stage
from audiomatrix.records import compatibility
from audiomatrix.records.index_check import INDEX_FILE
from audiomatrix.spec.matrix import Matrix, load
from audiomatrix.spec.yamlpos import YamlFileError
from audiomatrix.views import outputs
from audiomatrix.workflow import pipeline


def cells(
    ctx: typer.Context,
    matrix: MatrixOption = None,
    select: SelectOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the cells as JSON.")] = False,
) -> None:
    """List the expanded cells; unbuildable ones with the reason and its source."""
    loaded, chosen = selected(ctx, matrix, select)
    if as_json:
        typer.echo(json.dumps([cell_data(c) for c in chosen], indent=2))
        return
    table = Table(title=f"{len(chosen)} cells from {loaded.path}")
    table.add_column("cell", no_wrap=True)
    for column in ("torchaudio", "torchcodec", "device", "status"):
        table.add_column(column, overflow="fold")
    for c in chosen:
        status = (
            "[green]buildable[/]" if c.buildable else f"[yellow]not buildable:[/] {c.unbuildable}"
        )
        table.add_row(
            c.id, c.torch_value.torchaudio, c.torchcodec or "-", c.accelerator_value.device, status
        )
    out.print(table)


def lock(ctx: typer.Context, matrix: MatrixOption = None, select: SelectOption = None) -> None:
    """Lock each selected cell with uv into environments/<cell>/ (unchanged cells are skipped)."""
    loaded, chosen = selected(ctx, matrix, select)
    if pipeline.execute(pipeline.LOCK, pipeline.Run(loaded, chosen, ConsoleDisplay())):
        raise typer.Exit(1)


PreviousOption = Annotated[
    Path | None,
    typer.Option(
        "--previous",
        help="An earlier compatibility.json (e.g. the committed one, from `git show "
        "HEAD:compatibility.json`): the page shows what changed since it.",
    ),
]


def _previous(path: Path | None, root: Path) -> compatibility.Compatibility | None:
    """The previous table, never the report's own output (that would make the page depend on
    the order the report ran in)."""
    if path is None:
        return None
    if path.resolve() == (root / compatibility.JSON_FILE).resolve():
        raise fail(
            f"--previous {path}: that is the table this report writes; pass an earlier copy "
            "elsewhere, e.g. from `git show HEAD:compatibility.json`"
        )
    return load_table(path)


def report(
    ctx: typer.Context,
    matrix: MatrixOption = None,
    previous: PreviousOption = None,
    check_gpu: Annotated[
        bool,
        typer.Option(help="Exit 1 when a GPU observed other than its wheel's code predicted."),
    ] = False,
    check_index: Annotated[
        bool,
        typer.Option(
            help="First ask the index for newer releases of each stack's packages and write "
            "environments/index.json (committed; a plain report reads it, never the index)."
        ),
    ] = False,
) -> None:
    """Write COMPATIBILITY.md, compatibility.json and site/index.html from results/."""
    loaded, _ = selected(ctx, matrix, None)
    root = Path(loaded.path).parent
    if check_index:
        found = index_check.check(pipeline.environments(loaded), dt.datetime.now(dt.UTC).date())
        out.print(f"wrote environments/{INDEX_FILE} (the index as of {found.checked})")
    written = outputs.write(root, _previous(previous, root))
    show_written(root, written)
    table = written.table
    out.print(
        f"{len(table.rows)} rows, {len(table.apart)} runs apart (measured elsewhere than "
        f"declared), {len(table.missing)} cells without results"
    )
    contradicted = [
        f"{r.cell}: {finding}"
        for r in [*table.rows, *table.apart]
        for finding in r.gpu_findings
        if ", observed " in finding
    ]
    for line in contradicted:
        err.print(line, markup=False, highlight=False)
    if check_gpu and contradicted:
        raise typer.Exit(1)


OutOption = Annotated[Path | None, typer.Option("--out", help="Where to write it.")]


def _write_generated(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    out.print(f"wrote {path}")


def ci_github(
    ctx: typer.Context,
    matrix: MatrixOption = None,
    select: SelectOption = None,
    out_path: OutOption = None,
    shard_size: Annotated[int, typer.Option(min=1, max=fanout.MAX_JOBS)] = fanout.MAX_JOBS,
    table_path: Annotated[
        Path, typer.Option("--table", help="The measured kernels that choose the GPU jobs.")
    ] = Path(compatibility.JSON_FILE),
    gpu_runner: Annotated[
        list[str] | None,
        typer.Option(help="A GPU architecture with a labelled self-hosted runner; repeatable."),
    ] = None,
) -> None:
    """Write .github/workflows/matrix.yml: every buildable cell a job (sharded past GitHub's
    256-job limit) on its OS's runner, the GPU jobs the measured kernels call for (with a
    negative control per runner), then one job that merges the results into the table."""
    loaded, chosen = selected(ctx, matrix, select)
    path = out_path or Path(loaded.path).parent / fanout.WORKFLOW_PATH
    table = load_table(table_path) if table_path.exists() else None
    runners = tuple(gpu_runner or fanout.GPU_RUNNERS)
    _write_generated(path, fanout.github_workflow(loaded, chosen, shard_size, table, runners))


def ci_bake(
    ctx: typer.Context,
    matrix: MatrixOption = None,
    select: SelectOption = None,
    out_path: OutOption = None,
) -> None:
    """Write docker-bake.hcl: one target per Linux cell, for remote BuildKit builders (a uv
    cell's context is the one `audiomatrix build --context contexts` prepares)."""
    loaded, chosen = selected(ctx, matrix, select)
    _write_generated(
        out_path or Path(loaded.path).parent / fanout.BAKE_PATH, bake.bake_file(chosen)
    )


def tox(ctx: typer.Context, matrix: MatrixOption = None) -> None:
    """Write tox.ini with one env per locked cell: `tox -e <cell>` runs the suite natively."""
    loaded, _ = selected(ctx, matrix, None)
    path = tox_stage.write(Path(loaded.path).parent, pipeline.environments(loaded))
    out.print(f"wrote {path}")


def doctor(ctx: typer.Context, matrix: MatrixOption = None) -> None:
    """What this machine can do: uv, Docker Engine, debootstrap, GPU, package indexes."""
    path = matrix or ctx.obj.matrix
    try:
        loaded: Matrix | None = load(path, ctx.obj.max_cells)
    except YamlFileError as exc:
        err.print(f"{exc} (index checks skipped)", markup=False)
        loaded = None
    indexes = sorted({a.index for a in loaded.file.accelerator.values()}) if loaded else []
    table = Table(title="doctor")
    for column in ("what", "ok", "detail"):
        table.add_column(column, overflow="fold")
    for check in doctor_stage.checks(indexes):
        table.add_row(check.what, "[green]yes[/]" if check.ok else "[red]no[/]", check.detail)
    out.print(table)
