"""The commands that read a finished table: diff, recommend, show, publish and pull.

cli.app registers them; they share cli.options' options, consoles and one-line refusals.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from audiomatrix.cli.options import err, fail, load_table, out, show_written
from audiomatrix.image import engine as engine_stage
from audiomatrix.lock.cell_lock import CellLock
from audiomatrix.lock.installers import INSTALLERS
from audiomatrix.publish import registry as publish_stage
from audiomatrix.records import compatibility, publication
from audiomatrix.table import gpu_data
from audiomatrix.table import report as report_stage
from audiomatrix.views import constraints, diff, grid, outputs, releases
from audiomatrix.views import grid_text as gridtext
from audiomatrix.views import recommend as recommend_view


def diff_command(
    old: Annotated[Path, typer.Argument(help="The previous compatibility.json.")],
    new: Annotated[Path, typer.Argument(help="The new compatibility.json.")],
) -> None:
    """What went red or green between two tables, grouped by the releases that moved under
    them, with the failures no signature matches; exit 1 when a passing check now fails."""
    before, after = load_table(old), load_table(new)
    changes = diff.diff(before, after)
    for change in changes:
        out.print(str(change), markup=False, highlight=False)
    if changes:
        out.print("by what moved under them:")
    for line in releases.lines(*releases.grouped(before, after, changes)):
        out.print(line, markup=False, highlight=False)
    quiet = releases.unchanged_moves(before, after, changes)
    if quiet:
        out.print("moved with no check changing:")
    for line in quiet:
        out.print(f"  {line}", markup=False, highlight=False)
    bad = diff.regressions(changes)
    out.print(f"{len(changes)} changes, {len(bad)} regressions")
    if bad:
        raise typer.Exit(1)


WorkloadOption = Annotated[
    list[str] | None,
    typer.Option(help=f"One of {', '.join(report_stage.WORKLOADS)}; repeatable \\[all]."),
]
PythonOption = Annotated[
    str | None, typer.Option(help="Python X.Y, or a range: '>=3.11', '>=3.10,<3.13'.")
]
TorchOption = Annotated[
    str | None,
    typer.Option(
        help="torch (and its torchaudio) version: 2.9.1, 2.10 (any 2.10.x), a range ('>=2.9') "
        "or with its build (2.10.0+cu130 also sets --accelerator)."
    ),
]
AcceleratorOption = Annotated[
    str | None, typer.Option(help="cpu, mps, a CUDA build (cu128, cu130) or cuda (any of them).")
]
GpuArchOption = Annotated[
    str | None,
    typer.Option(help="GPU architecture CUDA lists (sm_50 to sm_121): sm_120, sm120, 12.0 or 120."),
]
GpuOption = Annotated[
    str | None,
    typer.Option(
        help="A GPU by name: 'Tesla T4', t4, 'RTX 4090', 'GeForce GTX 1080', H100, 'DGX Spark' "
        "(its architecture from table/gpu_names.yaml)."
    ),
]
OsOption = Annotated[str | None, typer.Option(help="An os value or family (linux).")]
InstallerOption = Annotated[
    str | None, typer.Option(help="uv (PyPI's wheels) or conda (a conda channel's builds).")
]
TableOption = Annotated[Path, typer.Option("--table", help="The compatibility.json to read.")]


@dataclass(frozen=True)
class Asked:
    """recommend's and pull's constraints as given on the command line."""

    workload: list[str] | None = None
    python: str | None = None
    gpu_arch: str | None = None
    os: str | None = None
    installer: str | None = None
    torch: str | None = None
    accelerator: str | None = None
    gpu: str | None = None


def _parsed(option: str, text: str | None, parse: Callable[[str], str]) -> str | None:
    try:
        return None if text is None else parse(text)
    except ValueError as exc:
        raise fail(f"{option} {text}: {exc}") from None


def _checked(table: compatibility.Compatibility, asked: Asked) -> constraints.Constraints:
    """The constraints, each refused in one line (exit 2) where it cannot mean anything."""
    unknown = sorted(set(asked.workload or ()) - set(report_stage.WORKLOADS))
    if unknown:
        raise fail(f"--workload {unknown[0]}: choose from {', '.join(report_stage.WORKLOADS)}")
    if asked.installer is not None and asked.installer not in INSTALLERS:
        raise fail(f"--installer {asked.installer}: choose {' or '.join(INSTALLERS)}")
    torch, build = constraints.split_build(asked.torch) if asked.torch else (None, None)
    if build and asked.accelerator and build != asked.accelerator:
        raise fail(
            f"--torch {asked.torch}: its build {build} is not --accelerator {asked.accelerator}"
        )
    accelerator = asked.accelerator or build
    known = sorted({c.axes.accelerator for c in [*table.rows, *table.missing]} | {"cuda"})
    if accelerator is not None and accelerator not in known:
        raise fail(f"--accelerator {accelerator}: choose from {', '.join(known)}")
    return constraints.Constraints(
        python=_parsed("--python", asked.python, constraints.version_filter),
        torch=_parsed("--torch", torch, constraints.version_filter),
        accelerator=accelerator,
        os=asked.os,
        gpu_arch=_gpu_arch(asked),
        installer=asked.installer,
    )


def _gpu_arch(asked: Asked) -> str | None:
    """--gpu-arch, or the architecture of the GPU --gpu names (said on stderr); refused when
    both are given and disagree."""
    arch = _parsed("--gpu-arch", asked.gpu_arch, constraints.gpu_arch)
    if asked.gpu is None:
        return arch
    gpu = gpu_data.gpu_named(asked.gpu)
    if arch is not None and arch != gpu.arch:
        raise fail(f"--gpu {asked.gpu}: {gpu.name} is {gpu.arch}, not --gpu-arch {arch}")
    said = f"--gpu {asked.gpu}: {gpu.name} is {gpu.arch} ({gpu_data.source_of(gpu)})"
    err.print(said, highlight=False, markup=False)
    return gpu.arch


def _lock(table_path: Path, cell: str) -> CellLock:
    """A cell's committed lock beside the table, for its native install."""
    return publish_stage.environments_lock(table_path.resolve().parent / "environments", cell)


def _native_install(cell_lock: CellLock) -> None:
    for line in publish_stage.native_install(cell_lock, venv=f".venv-{cell_lock.cell}"):
        out.print(f"  {line}", markup=False, highlight=False)


def _install(table_path: Path, row: compatibility.Row) -> None:
    """How to get the chosen row, as `pull` gives it: its published image, else its native
    install from the committed lock (pins and index)."""
    if row.published is not None:
        out.print(f"Its tested image: audiomatrix pull {row.cell} ({row.published.reference})",
                  markup=False, highlight=False)  # fmt: skip
        return
    try:
        cell_lock = _lock(table_path, row.cell)
    except publish_stage.PublishError as exc:
        out.print(f"No install to print: {exc}", markup=False, highlight=False)
        return
    out.print("Install it natively from its committed lock:", highlight=False)
    _native_install(cell_lock)


def _recommended(
    table: compatibility.Compatibility, asked: Asked, table_path: Path | None = None
) -> compatibility.Row:
    """recommend's choice, explained on stdout (with its install where `table_path` is
    given); exit 1 when no row qualifies."""
    wanted = _checked(table, asked)
    choice = recommend_view.recommend(table, asked.workload or (), **asdict(wanted))
    for line in choice.lines():
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    if choice.row is None:
        raise typer.Exit(1)
    if table_path is not None:
        _install(table_path, choice.row)
    return choice.row


def recommend(
    table_path: TableOption = Path(compatibility.JSON_FILE),
    workload: WorkloadOption = None,
    python: PythonOption = None,
    torch: TorchOption = None,
    accelerator: AcceleratorOption = None,
    gpu_arch: GpuArchOption = None,
    os: OsOption = None,
    installer: InstallerOption = None,
    gpu: GpuOption = None,
) -> None:
    """The best known-good cell for your constraints, and why: what the matching rows fail
    with and each failure's proven fix, then its install. When nothing fits: why (declared
    but not run, the blocking failures) and the nearest row that passes; exit 1."""
    asked = Asked(
        workload, python, gpu_arch, os, installer, torch=torch, accelerator=accelerator, gpu=gpu
    )
    _recommended(load_table(table_path), asked, table_path)


ShowWorkloadOption = Annotated[
    list[str] | None,
    typer.Option(
        "--workload",
        help=f"One of {', '.join(report_stage.WORKLOADS)} or another check "
        "(accelerator, ...); repeatable \\[all].",
    ),
]


def _narrowed(found: dict[str, grid.Grid], **chosen: str | None) -> dict[str, str]:
    """The axis values a --stack or --accelerator names, refused when no row or declared cell
    in the grids has it."""
    marks = [m for g in found.values() for s in g.squares.values() for q in s.values()
             for m in q.marks]  # fmt: skip
    for axis, value in chosen.items():
        known = sorted({getattr(m, axis) for m in marks})
        if value is not None and value not in known:
            raise fail(f"--{axis} {value}: choose from {', '.join(known)}")
    return {axis: value for axis, value in chosen.items() if value is not None}


def show(
    table_path: TableOption = Path(compatibility.JSON_FILE),
    workload: ShowWorkloadOption = None,
    stack: Annotated[str | None, typer.Option(help="Only this stack's rows.")] = None,
    accelerator: Annotated[
        str | None, typer.Option(help="Only this accelerator's rows (cpu, cu128, ...).")
    ] = None,
    plain: Annotated[
        bool, typer.Option("--plain", help="A line per square, no colour or box: for logs.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the grids as JSON.")] = False,
) -> None:
    """Each workload's grid: torch down, Python across, a line per row in each square (as
    installed, with compat, with a proven fix; its accelerator and stack), as on the page;
    as wide as the terminal or COLUMNS."""
    table = load_table(table_path)
    found = grid.grids(table)
    unknown = sorted(set(workload or ()) - set(found))
    if unknown:
        raise fail(f"--workload {unknown[0]}: choose from {', '.join(found)}")
    select = _narrowed(found, stack=stack, accelerator=accelerator)
    chosen = {
        name: g
        for name, g in grid.grids(table, select=select).items()
        if not workload or name in workload
    }
    if as_json:
        typer.echo(json.dumps({n: g.model_dump(mode="json") for n, g in chosen.items()}, indent=2))
        return
    console = Console(color_system=None if plain else "auto", highlight=False)
    for g in chosen.values():
        console.print(gridtext.plain(g) if plain else gridtext.table(g, console.width))
    console.print(gridtext.legend())


RegistryOption = Annotated[
    str | None,
    typer.Option(
        "--registry",
        envvar="AUDIOMATRIX_REGISTRY",
        help=escape("host[:port][/namespace] of the registry; images go to <it>/audiomatrix/cell."),
    ),
]


def _registry(text: str | None, required: bool) -> publish_stage.Registry | None:
    if text is None:
        if required:
            raise fail("no registry: pass --registry host[:port][/namespace] or set "
                        "AUDIOMATRIX_REGISTRY")  # fmt: skip
        return None
    try:
        return publish_stage.Registry.parse(text)
    except publish_stage.PublishError as exc:
        raise fail(f"--registry: {exc}") from None


def publish(
    cell_ids: Annotated[
        list[str] | None, typer.Argument(help="Cells to publish [every image row].")
    ] = None,
    registry: RegistryOption = None,
    table_path: TableOption = Path(compatibility.JSON_FILE),
) -> None:
    """Push the images the table's rows ran in, each with a CycloneDX SBOM, record their
    digests in publications/<cell>.json and regenerate the table, which shows them."""
    target = _registry(registry, required=True)
    assert target is not None
    table = load_table(table_path)
    rows = publish_stage.image_rows(table, cell_ids or ())
    unknown = sorted(set(cell_ids or ()) - {r.cell for r in rows})
    if unknown:
        raise fail(f"{unknown[0]}: no image row in {table_path}")
    engine_stage.ensure_engine()
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
            publish_stage.write_publication(root / publication.FOLDER, outcome.published)
    if any(o.published for o in outcomes):
        show_written(root, outputs.write(root))
    if len(outcomes) < len(rows) or any(o.status == "failed" for o in outcomes):
        raise typer.Exit(1)


def pull(
    cell: Annotated[str | None, typer.Argument(help="A cell id \\[the recommended one].")] = None,
    registry: RegistryOption = None,
    table_path: TableOption = Path(compatibility.JSON_FILE),
    workload: WorkloadOption = None,
    python: PythonOption = None,
    torch: TorchOption = None,
    accelerator: AcceleratorOption = None,
    gpu_arch: GpuArchOption = None,
    os: OsOption = None,
    installer: InstallerOption = None,
) -> None:
    """Pull a known-good cell's image by its published digest and tag it
    audiomatrix/cell:<cell>; where no image is published, print the native install from its
    lock. Without a cell, the one `recommend` picks for the constraints."""
    table = load_table(table_path)
    if cell is None:
        asked = Asked(
            workload, python, gpu_arch, os, installer, torch=torch, accelerator=accelerator
        )
        cell = _recommended(table, asked).cell
    rows = sorted(
        (r for r in table.rows if r.cell == cell),
        key=lambda r: (r.published is None, r.where.kind != "image"),
    )
    mirror = _registry(registry, required=False)
    if rows and rows[0].published is not None:
        local = publish_stage.pull(rows[0], mirror)
        out.print(f"pulled {rows[0].published.reference} as {local}", highlight=False)
        out.print(f"run: docker run --rm -it --network none {local} bash", highlight=False)
        return
    cell_lock = _lock(table_path, cell)
    why = "no published image" if rows else f"no row of {table_path} stands for it yet"
    out.print(f"{cell}: {why}; its environment from the committed lock:", highlight=False)
    _native_install(cell_lock)
