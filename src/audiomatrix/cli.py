"""The `audiomatrix` command: a thin layer that runs the stages and prints what they found.

A user's mistake (bad matrix, bad --select) exits 2 with one line; a tool failure exits 1;
findings about cells (not buildable, unresolvable, index unreachable) are reported, not fatal.
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

from audiomatrix import container as container_stage
from audiomatrix import doctor as doctor_stage
from audiomatrix import engine as engine_stage
from audiomatrix import fanout, publications, query, render
from audiomatrix import imagebuild as build_stage
from audiomatrix import lock as lock_stage
from audiomatrix import publish as publish_stage
from audiomatrix import report as report_stage
from audiomatrix import results as results_stage
from audiomatrix import smoke as smoke_stage
from audiomatrix import tox as tox_stage
from audiomatrix.spec import MAX_CELLS, Cell, Matrix, MatrixError, SelectError, load
from audiomatrix.suite.schema import MODES

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
    except (MatrixError, SelectError) as exc:
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


@app.command("matrix")
def run_matrix(
    ctx: typer.Context,
    matrix: MatrixOption = None,
    select: SelectOption = None,
    ca_bundle: CaBundleOption = None,
) -> None:
    """The pipeline for the selection: lock, engine, build, smoke in the images (raw and
    compat). Unchanged cells are skipped at every stage; macOS and Windows cells run natively
    on their own runners (`audiomatrix smoke --native`)."""
    loaded, chosen = _selected(ctx, matrix, select)
    locked = _run_lock(loaded, chosen)
    if any(r.failed for r in locked):
        raise typer.Exit(1)
    linux = [c for c in chosen if c.buildable and not c.os_value.native]
    failed = bool(linux) and _image_smoke(loaded, linux, ca_bundle)
    _write_report(Path(loaded.path).parent)
    if failed:
        raise typer.Exit(1)


def _write_report(root: Path) -> report_stage.Compatibility:
    """The report stage over a repository's results/, environments/ and publications/."""
    table = report_stage.build(root / "results", root / "environments", root / publications.FOLDER)
    for path in render.write_all(table, root):
        out.print(f"wrote {path.relative_to(root)}")
    for damaged in table.damaged:
        err.print(f"{damaged.path}: {damaged.reason} (listed in the table)", markup=False)
    return table


@app.command("report")
def report_command(ctx: typer.Context, matrix: MatrixOption = None) -> None:
    """Write COMPATIBILITY.md, compatibility.json and site/index.html from results/."""
    loaded, _ = _selected(ctx, matrix, None)
    table = _write_report(Path(loaded.path).parent)
    out.print(
        f"{len(table.rows)} rows, {len(table.apart)} runs apart (measured elsewhere than "
        f"declared), {len(table.missing)} cells without results"
    )


def _load_table(path: Path) -> report_stage.Compatibility:
    try:
        return report_stage.load(path)
    except OSError as exc:
        raise _fail(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise _fail(f"{path}: not a compatibility.json: {exc}; regenerate it with "
                    "`audiomatrix report`") from None  # fmt: skip


@app.command("diff")
def diff_command(
    old: Annotated[Path, typer.Argument(help="The previous compatibility.json.")],
    new: Annotated[Path, typer.Argument(help="The new compatibility.json.")],
) -> None:
    """What went red or green between two tables; exit 1 when a passing check now fails."""
    changes = query.diff(_load_table(old), _load_table(new))
    for change in changes:
        out.print(str(change), markup=False, highlight=False)
    bad = query.regressions(changes)
    out.print(f"{len(changes)} changes, {len(bad)} regressions")
    if bad:
        raise typer.Exit(1)


WorkloadOption = Annotated[
    list[str] | None,
    typer.Option(help=f"One of {', '.join(report_stage.WORKLOADS)}; repeatable [all]."),
]
PythonOption = Annotated[str | None, typer.Option(help="Python X.Y.")]
GpuArchOption = Annotated[str | None, typer.Option(help="GPU architecture, e.g. sm_120.")]
OsOption = Annotated[str | None, typer.Option(help="An os value or family (linux).")]
TableOption = Annotated[Path, typer.Option("--table", help="The compatibility.json to read.")]


def _recommended(
    table: report_stage.Compatibility,
    workload: list[str] | None,
    python: str | None,
    gpu_arch: str | None,
    os: str | None,
) -> report_stage.Row:
    """recommend's choice, explained on stdout; exit 1 when no row qualifies."""
    unknown = sorted(set(workload or ()) - set(report_stage.WORKLOADS))
    if unknown:
        raise _fail(f"--workload {unknown[0]}: choose from {', '.join(report_stage.WORKLOADS)}")
    choice = query.recommend(table, workload or (), python=python, gpu_arch=gpu_arch, os=os)
    out.print(choice.explanation, markup=False, highlight=False)
    if choice.row is None:
        raise typer.Exit(1)
    return choice.row


@app.command()
def recommend(
    table_path: TableOption = Path(report_stage.JSON_FILE),
    workload: WorkloadOption = None,
    python: PythonOption = None,
    gpu_arch: GpuArchOption = None,
    os: OsOption = None,
) -> None:
    """The best known-good cell for your constraints, and why."""
    _recommended(_load_table(table_path), workload, python, gpu_arch, os)


RegistryOption = Annotated[
    str | None,
    typer.Option(
        "--registry",
        envvar="AUDIOMATRIX_REGISTRY",
        help="host[:port][/namespace] of the registry; images go to <it>/audiomatrix/cell.",
    ),
]


def _registry(text: str | None, required: bool) -> publish_stage.Registry | None:
    if text is None:
        if required:
            raise _fail("no registry: pass --registry host[:port][/namespace] or set "
                        "AUDIOMATRIX_REGISTRY")  # fmt: skip
        return None
    try:
        return publish_stage.Registry.parse(text)
    except publish_stage.PublishError as exc:
        raise _fail(f"--registry: {exc}") from None


@app.command()
def publish(
    cell_ids: Annotated[
        list[str] | None, typer.Argument(help="Cells to publish [every image row].")
    ] = None,
    registry: RegistryOption = None,
    table_path: TableOption = Path(report_stage.JSON_FILE),
) -> None:
    """Push the images the table's rows ran in, each with a CycloneDX SBOM, record their
    digests in publications/<cell>.json and regenerate the table, which shows them."""
    target = _registry(registry, required=True)
    assert target is not None
    table = _load_table(table_path)
    rows = publish_stage.image_rows(table, cell_ids or ())
    unknown = sorted(set(cell_ids or ()) - {r.cell for r in rows})
    if unknown:
        raise _fail(f"{unknown[0]}: no image row in {table_path}")
    try:
        engine_stage.ensure_engine()
    except engine_stage.EngineError as exc:
        raise _fail(str(exc), 1) from None
    root = table_path.resolve().parent
    outcomes = []
    try:
        for row in rows:
            with err.status(f"[bold]{row.cell}[/]: push to {target.repository}"):
                outcome = publish_stage.publish_row(row, target, root, echo=lambda _: None)
            style = {"published": "green", "unchanged": "green", "skipped": "yellow"}
            colour = style.get(outcome.status, "red")
            out.print(f"[bold]{row.cell}[/] [{colour}]{outcome.status}[/] {outcome.detail}",
                      highlight=False)  # fmt: skip
            outcomes.append(outcome)
    except engine_stage.EngineError as exc:
        err.print(str(exc), markup=False, soft_wrap=True)
    for outcome in outcomes:
        if outcome.published is not None:
            publications.write(root / publications.FOLDER, outcome.published)
    if any(o.published for o in outcomes):
        _write_report(root)
    if len(outcomes) < len(rows) or any(o.status == "failed" for o in outcomes):
        raise typer.Exit(1)


@app.command()
def pull(
    cell: Annotated[str | None, typer.Argument(help="A cell id [the recommended one].")] = None,
    registry: RegistryOption = None,
    table_path: TableOption = Path(report_stage.JSON_FILE),
    workload: WorkloadOption = None,
    python: PythonOption = None,
    gpu_arch: GpuArchOption = None,
    os: OsOption = None,
) -> None:
    """Pull a known-good cell's image by its published digest and tag it
    audiomatrix/cell:<cell>; where no image is published, print the native install from its
    lock. Without a cell, the one `recommend` picks for the constraints."""
    table = _load_table(table_path)
    if cell is None:
        cell = _recommended(table, workload, python, gpu_arch, os).cell
    rows = sorted(
        (r for r in table.rows if r.cell == cell),
        key=lambda r: (r.published is None, r.where.kind != "image"),
    )
    mirror = _registry(registry, required=False)
    if rows and rows[0].published is not None:
        try:
            local = publish_stage.pull(rows[0], mirror)
        except (publish_stage.PublishError, engine_stage.EngineError) as exc:
            raise _fail(str(exc), 1) from None
        out.print(f"pulled {rows[0].published.reference} as {local}", highlight=False)
        out.print(f"run: docker run --rm -it --network none {local} bash", highlight=False)
        return
    environments = table_path.resolve().parent / "environments"
    try:
        cell_lock = publish_stage.environments_lock(environments, cell)
    except publish_stage.PublishError as exc:
        raise _fail(str(exc), 1) from None
    why = "no published image" if rows else f"no row of {table_path} stands for it yet"
    out.print(f"{cell}: {why}; its environment from the committed lock:", highlight=False)
    for line in publish_stage.native_install(cell_lock, venv=f".venv-{cell}"):
        out.print(f"  {line}", markup=False, highlight=False)


def _status_line(result: results_stage.RunResult, results_root: Path) -> str:
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
    mode: Annotated[
        list[str] | None, typer.Option(help="raw and/or compat [default: both].")
    ] = None,
    check: Annotated[list[str] | None, typer.Option(help="Only these checks.")] = None,
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
    root = Path(loaded.path).parent
    if not native:
        linux = [c for c in chosen if c.buildable and not c.os_value.native]
        if _image_smoke(loaded, linux, ca_bundle, modes=mode, checks=check, suites=suite):
            raise typer.Exit(1)
        return
    failed = 0
    for cell in chosen:
        if not cell.buildable:
            continue
        try:
            lock_record = smoke_stage.read_lock(_environments(loaded), cell.id)
            with err.status(f"[bold]{cell.id}[/]: preparing the venv and running the suite"):
                result = smoke_stage.smoke_native(
                    lock_record,
                    root / "results",
                    smoke_stage.venv_root(),
                    modes=mode or MODES,
                    checks=check or (),
                    suites=suite or (),
                    echo=lambda line, cid=cell.id: err.print(f"{cid}: {line}", markup=False),
                )
        except smoke_stage.SmokeError as exc:
            failed += 1
            err.print(str(exc), markup=False, soft_wrap=True)
            continue
        out.print(f"[bold]{cell.id}[/] {_status_line(result, root / 'results')}", highlight=False)
    if failed:
        raise typer.Exit(1)


def _locked(loaded: Matrix, cells: list[Cell]) -> list[smoke_stage.CellLock]:
    """The cells' lock records; a cell without a lock is reported and left out."""
    found = []
    for cell in cells:
        try:
            found.append(smoke_stage.read_lock(_environments(loaded), cell.id))
        except smoke_stage.SmokeError as exc:
            err.print(f"skipped {exc}", markup=False)
    return found


def _build(locks: list[smoke_stage.CellLock], ca_bundle: Path | None) -> list:
    """Build each cell's image (unchanged ones are found by their content tag)."""
    built = []
    with _progress() as progress:
        task = progress.add_task("build", total=len(locks), last="")
        for cell_lock in locks:
            progress.update(task, last=f"{cell_lock.cell}: building")
            result = build_stage.build(
                cell_lock,
                ca_bundle=ca_bundle,
                echo=lambda line: progress.update(task, last=line[:80]),
                progress=lambda line: progress.update(task, last=line[:80]),
            )
            built.append(result)
            progress.update(task, advance=1, last=f"{cell_lock.cell}: {result.status}")
    table = Table(title="build")
    for column in ("cell", "status", "image", "seconds", "detail"):
        table.add_column(column, overflow="fold")
    for r in built:
        style = "green" if r.ok else "red"
        table.add_row(r.cell, f"[{style}]{r.status}[/]", r.tag or "", f"{r.seconds:.1f}", r.detail)
    out.print(table)
    return built


def _smoke_is_current(
    results_root: Path, cell_lock: smoke_stage.CellLock, image_id: str, modes: list[str]
) -> bool:
    """The newest result already ran this very image on this lock, in every mode asked."""
    latest = results_stage.latest(results_root, cell_lock.cell, kind="image")
    return (
        latest is not None
        and latest.where.image_digest == image_id
        and latest.lock_sha256 == cell_lock.lock_sha256
        and set(modes) <= set(latest.modes)
    )


def _image_smoke(
    loaded: Matrix,
    cells: list[Cell],
    ca_bundle: Path | None,
    modes: list[str] | None = None,
    checks: list[str] | None = None,
    suites: list[Path] | None = None,
) -> bool:
    """Engine, build, smoke in the image for Linux cells; True when something failed."""
    try:
        version = engine_stage.ensure_engine()
    except engine_stage.EngineError as exc:
        err.print(str(exc), markup=False, soft_wrap=True)
        return True
    err.print(f"Docker Engine {version}", highlight=False)
    locks = _locked(loaded, cells)
    results_root = Path(loaded.path).parent / "results"
    wanted = list(modes or MODES)
    try:
        built = _build(locks, ca_bundle)
        failed = any(not b.ok and b.status == "failed" for b in built)
        by_cell = {c.cell: c for c in locks}
        for b in built:
            if not b.ok or b.tag is None:
                continue
            cell_lock = by_cell[b.cell]
            image_id = engine_stage.client().images.get(b.tag).id
            current = _smoke_is_current(results_root, cell_lock, image_id, wanted)
            if current and not checks and not suites:
                out.print(f"[bold]{b.cell}[/] smoke unchanged (image {image_id[7:19]})")
                continue
            try:
                with err.status(f"[bold]{b.cell}[/]: smoke in {b.tag}"):
                    result = container_stage.smoke_in_image(
                        b.tag, cell_lock, results_root, modes=wanted, checks=checks or (),
                        suites=suites or (),
                        echo=lambda line, cid=b.cell: err.print(f"{cid}: {line}", markup=False),
                    )  # fmt: skip
            except smoke_stage.SmokeError as exc:
                failed = True
                err.print(str(exc), markup=False, soft_wrap=True)
                continue
            out.print(f"[bold]{b.cell}[/] {_status_line(result, results_root)}", highlight=False)
    except engine_stage.EngineError as exc:
        err.print(str(exc), markup=False, soft_wrap=True)
        return True
    return failed


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
) -> None:
    """Build the image of each selected, locked Linux cell (tagged by content)."""
    loaded, chosen = _selected(ctx, matrix, select)
    try:
        engine_stage.ensure_engine()
        built = _build(
            _locked(loaded, [c for c in chosen if c.buildable and not c.os_value.native]), ca_bundle
        )
    except engine_stage.EngineError as exc:
        raise _fail(str(exc), 1) from None
    if any(b.status == "failed" for b in built):
        raise typer.Exit(1)


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
) -> None:
    """Write .github/workflows/matrix.yml: every buildable cell a job (sharded past GitHub's
    256-job limit) on its OS's runner, then one job that merges the results into the table."""
    loaded, chosen = _selected(ctx, matrix, select)
    path = out_path or Path(loaded.path).parent / fanout.WORKFLOW_PATH
    _write_generated(path, fanout.github_workflow(loaded, chosen, shard_size))


@ci_app.command("bake")
def ci_bake(
    ctx: typer.Context,
    matrix: MatrixOption = None,
    select: SelectOption = None,
    out_path: OutOption = None,
) -> None:
    """Write docker-bake.hcl: one target per Linux cell, for remote BuildKit builders."""
    loaded, chosen = _selected(ctx, matrix, select)
    _write_generated(
        out_path or Path(loaded.path).parent / fanout.BAKE_PATH, fanout.bake_file(chosen)
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
    except MatrixError as exc:
        err.print(f"{exc} (index checks skipped)", markup=False)
        loaded = None
    indexes = sorted({a.index for a in loaded.file.accelerator.values()}) if loaded else []
    table = Table(title="doctor")
    for column in ("what", "ok", "detail"):
        table.add_column(column, overflow="fold")
    for check in doctor_stage.checks(indexes):
        table.add_row(check.what, "[green]yes[/]" if check.ok else "[red]no[/]", check.detail)
    out.print(table)


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
