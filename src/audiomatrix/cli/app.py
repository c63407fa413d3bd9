"""The `audiomatrix` command: a thin layer that runs the stages and prints what they found.

A user's mistake (bad matrix, bad --select) exits 2 with one line; a tool failure exits 1;
findings about cells (not buildable, unresolvable, index or channel unreachable) are reported,
not fatal.
"""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from audiomatrix.catalog.signatures import CatalogError
from audiomatrix.cli import doctor as doctor_stage
from audiomatrix.lock import stage as lock_stage
from audiomatrix.publish import bake, fanout
from audiomatrix.publish import tox as tox_stage
from audiomatrix.spec.cells import Cell
from audiomatrix.spec.matrix import MAX_CELLS, Matrix, load
from audiomatrix.spec.selection import SelectError
from audiomatrix.spec.yamlpos import YamlFileError
from audiomatrix.table import publications
from audiomatrix.table import report as report_stage
from audiomatrix.views import freshness, query, render

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Lock, build and smoke-test torch x torchaudio x Python x GPU cells for audio ML.",
)
# Piped output keeps whole lines: rich would otherwise wrap at 80 columns.
out = Console(width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 240)

MatrixOption = Annotated[
    Path | None, typer.Option("--matrix", "-m", help="The matrix file (default: matrix.yaml).")
]
SelectOption = Annotated[
    list[str] | None,
    typer.Option(
        "--select",
        "-s",
        help="Cell-id glob, axis=value (globs allowed) or a named selection; repeatable: "
        "the same axis ORs, different axes AND.",
    ),
]
MaxCellsOption = Annotated[
    int,
    typer.Option(
        "--max-cells",
        envvar="AUDIOMATRIX_MAX_CELLS",
        min=1,
        help="The most cells a matrix may expand to; a bigger one is refused before it is built.",
    ),
]
CaBundleOption = Annotated[
    Path | None,
    typer.Option(
        "--ca-bundle",
        envvar="AUDIOMATRIX_CA_BUNDLE",
        help="Extra CA bundle for a TLS-intercepting proxy: served to the build on loopback "
        "and deleted within each install step, never in an image layer.",
    ),
]


@dataclass
class Options:
    matrix: Path = Path("matrix.yaml")
    select: tuple[str, ...] = ()
    max_cells: int = MAX_CELLS


@app.callback()
def main(
    ctx: typer.Context,
    matrix: MatrixOption = None,
    select: SelectOption = None,
    max_cells: MaxCellsOption = MAX_CELLS,
) -> None:
    """Global options; each command also takes --matrix and --select itself."""
    ctx.obj = Options(matrix or Path("matrix.yaml"), tuple(select or ()), max_cells)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(message, markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _selected(
    ctx: typer.Context, matrix: Path | None, select: list[str] | None
) -> tuple[Matrix, list[Cell]]:
    opts: Options = ctx.obj
    path = matrix or opts.matrix
    try:
        loaded = load(path, opts.max_cells)
        return loaded, loaded.select([*opts.select, *(select or ())])
    except (YamlFileError, SelectError) as exc:
        raise _fail(str(exc)) from None


def _environments(matrix: Matrix) -> Path:
    """Locks live beside the matrix file they came from."""
    return Path(matrix.path).parent / "environments"


@app.command()
def cells(
    ctx: typer.Context,
    matrix: MatrixOption = None,
    select: SelectOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the cells as JSON.")] = False,
) -> None:
    """List the expanded cells; unbuildable ones with the reason and its source."""
    loaded, chosen = _selected(ctx, matrix, select)
    if as_json:
        typer.echo(json.dumps([c.to_dict() for c in chosen], indent=2))
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


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
        console=err,
        transient=True,
    )


_STATUS_STYLE = {
    lock_stage.Status.LOCKED: "green",
    lock_stage.Status.UNCHANGED: "dim",
    lock_stage.Status.NOT_BUILDABLE: "yellow",
    lock_stage.Status.INDEX_UNREACHABLE: "yellow",
    lock_stage.Status.CHANNEL_UNREACHABLE: "yellow",
    lock_stage.Status.UNRESOLVABLE: "red",
    lock_stage.Status.ERROR: "bold red",
}


def _run_lock(loaded: Matrix, chosen: list[Cell]) -> list[lock_stage.LockResult]:
    with _progress() as progress:
        task = progress.add_task("lock", total=len(chosen), last="")

        def done(result: lock_stage.LockResult) -> None:
            progress.update(task, advance=1, last=f"{result.cell}: {result.status}")

        results = lock_stage.lock_cells(chosen, loaded, _environments(loaded), on_done=done)
    table = Table(title="lock")
    for column in ("cell", "status", "detail"):
        table.add_column(column, overflow="fold")
    for r in results:
        table.add_row(r.cell, f"[{_STATUS_STYLE[r.status]}]{r.status}[/]", r.detail)
    out.print(table)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    out.print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return results


@app.command()
def lock(ctx: typer.Context, matrix: MatrixOption = None, select: SelectOption = None) -> None:
    """Lock each selected cell with uv into environments/<cell>/ (unchanged cells are skipped)."""
    loaded, chosen = _selected(ctx, matrix, select)
    results = _run_lock(loaded, chosen)
    if any(r.failed for r in results):
        raise typer.Exit(1)


def _report_inputs(root: Path) -> list[Path]:
    return [root / "results", root / "environments", root / publications.FOLDER]


def _refresh_report(root: Path) -> None:
    """The report, unless the outputs on disk were written from exactly today's inputs and
    code (freshness): what `matrix` and `sweep` end with."""
    if freshness.is_fresh(root, _report_inputs(root), render.output_paths(root)):
        out.print("report unchanged: written from these very results, locks and code")
        return
    _write_report(root)


def _write_report(
    root: Path, previous: report_stage.Compatibility | None = None
) -> report_stage.Compatibility:
    """The report stage over a repository's results/, environments/ and publications/; what
    changed since a previous table goes into the page."""
    inputs = _report_inputs(root)
    digest = freshness.inputs_digest(inputs)  # before reading: a run written meanwhile counts
    table = report_stage.build(*inputs)
    changes = None if previous is None else query.diff(previous, table)
    written = render.write_all(table, root, changes)
    for path in written:
        out.print(f"wrote {path.relative_to(root)}")
    if previous is None:  # a page that shows changes depends on a file outside the inputs
        freshness.record(root, digest, written)
    for damaged in table.damaged:
        err.print(f"{damaged.path}: {damaged.reason} (listed in the table)", markup=False)
    return table


PreviousOption = Annotated[
    Path | None,
    typer.Option(
        "--previous",
        help="An earlier compatibility.json (e.g. the committed one, from `git show "
        "HEAD:compatibility.json`): the page shows what changed since it.",
    ),
]


def _previous(path: Path | None, root: Path) -> report_stage.Compatibility | None:
    """The previous table, never the report's own output (that would make the page depend on
    the order the report ran in)."""
    if path is None:
        return None
    if path.resolve() == (root / report_stage.JSON_FILE).resolve():
        raise _fail(
            f"--previous {path}: that is the table this report writes; pass an earlier copy "
            "elsewhere, e.g. from `git show HEAD:compatibility.json`"
        )
    return _load_table(path)


@app.command("report")
def report_command(
    ctx: typer.Context,
    matrix: MatrixOption = None,
    previous: PreviousOption = None,
    check_gpu: Annotated[
        bool,
        typer.Option(help="Exit 1 when a GPU observed other than its wheel's code predicted."),
    ] = False,
) -> None:
    """Write COMPATIBILITY.md, compatibility.json and site/index.html from results/."""
    loaded, _ = _selected(ctx, matrix, None)
    root = Path(loaded.path).parent
    table = _write_report(root, _previous(previous, root))
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


def _load_table(path: Path) -> report_stage.Compatibility:
    try:
        return report_stage.load(path)
    except OSError as exc:
        raise _fail(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise _fail(f"{path}: not a compatibility.json: {exc}; regenerate it with "
                    "`audiomatrix report`") from None  # fmt: skip


ci_app = typer.Typer(help="CI files generated from the matrix: fan the cells out.")
app.add_typer(ci_app, name="ci")
OutOption = Annotated[Path | None, typer.Option("--out", help="Where to write it.")]


def _write_generated(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    out.print(f"wrote {path}")


@ci_app.command("github")
def ci_github(
    ctx: typer.Context,
    matrix: MatrixOption = None,
    select: SelectOption = None,
    out_path: OutOption = None,
    shard_size: Annotated[int, typer.Option(min=1, max=fanout.MAX_JOBS)] = fanout.MAX_JOBS,
    table_path: Annotated[
        Path, typer.Option("--table", help="The measured kernels that choose the GPU jobs.")
    ] = Path(report_stage.JSON_FILE),
    gpu_runner: Annotated[
        list[str] | None,
        typer.Option(help="A GPU architecture with a labelled self-hosted runner; repeatable."),
    ] = None,
) -> None:
    """Write .github/workflows/matrix.yml: every buildable cell a job (sharded past GitHub's
    256-job limit) on its OS's runner, the GPU jobs the measured kernels call for (with a
    negative control per runner), then one job that merges the results into the table."""
    loaded, chosen = _selected(ctx, matrix, select)
    path = out_path or Path(loaded.path).parent / fanout.WORKFLOW_PATH
    table = _load_table(table_path) if table_path.exists() else None
    runners = tuple(gpu_runner or fanout.GPU_RUNNERS)
    _write_generated(path, fanout.github_workflow(loaded, chosen, shard_size, table, runners))


@ci_app.command("bake")
def ci_bake(
    ctx: typer.Context,
    matrix: MatrixOption = None,
    select: SelectOption = None,
    out_path: OutOption = None,
) -> None:
    """Write docker-bake.hcl: one target per Linux cell, for remote BuildKit builders (a uv
    cell's context is the one `audiomatrix build --context contexts` prepares)."""
    loaded, chosen = _selected(ctx, matrix, select)
    _write_generated(
        out_path or Path(loaded.path).parent / fanout.BAKE_PATH, bake.bake_file(chosen)
    )


@app.command()
def tox(ctx: typer.Context, matrix: MatrixOption = None) -> None:
    """Write tox.ini with one env per locked cell: `tox -e <cell>` runs the suite natively."""
    loaded, _ = _selected(ctx, matrix, None)
    root = Path(loaded.path).parent
    try:
        path = tox_stage.write(root, _environments(loaded))
    except lock_stage.RecordError as exc:
        raise _fail(str(exc), 1) from None
    out.print(f"wrote {path}")


@app.command()
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


# The image commands (engine, build, smoke, sweep, matrix), the table's (diff, recommend,
# show, publish, pull) and `boundaries` register themselves on `app`.
from audiomatrix.cli import boundaries as cli_boundaries  # noqa: E402, F401
from audiomatrix.cli import images as cli_images  # noqa: E402, F401
from audiomatrix.cli import table as cli_table  # noqa: E402, F401

INTERRUPTED = (
    "interrupted: finished work is kept and nothing was recorded for the work in progress; "
    "rerun the same command to resume"
)


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM. A BaseException of its own, so that no `except Exception` and not
    the command-line framework (which turns KeyboardInterrupt into `Aborted!`) stops it."""


def _interrupt(signum: int, frame: object) -> None:
    raise Interrupted


def os_error(exc: OSError) -> str:
    """A file that could not be written or read (a full disk, permissions), as one line."""
    where = f"{exc.filename}: " if exc.filename else ""
    return (
        f"{where}{exc.strerror or exc}: the files written before are intact and nothing "
        "half-written was kept; free space or fix permissions, then rerun the same command"
    )


def run() -> None:
    """The `audiomatrix` command. An interruption (SIGINT, SIGTERM) at any moment ends in one
    line, never a traceback: every output is written atomically, so what finished is kept and
    what was in flight leaves no trace. A file that cannot be written (a full disk) is one line
    and exit 1, for the same reason."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app(prog_name="audiomatrix")
    except Interrupted:
        err.print(INTERRUPTED, markup=False, highlight=False, soft_wrap=True)
        sys.exit(130)
    except OSError as exc:
        err.print(os_error(exc), markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    except CatalogError as exc:
        err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
