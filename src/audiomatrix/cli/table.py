"""The commands that read a finished table: diff, recommend, show, publish and pull.

cli.app registers them; they share cli.options' options, consoles and one-line refusals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from audiomatrix.cli.options import err, fail, load_table, out, show_written
from audiomatrix.image import engine as engine_stage
from audiomatrix.lock.installers import INSTALLERS
from audiomatrix.publish import registry as publish_stage
from audiomatrix.records import compatibility, publication
from audiomatrix.table import report as report_stage
from audiomatrix.views import diff, grid, outputs
from audiomatrix.views import grid_text as gridtext
from audiomatrix.views import recommend as recommend_view


def diff_command(
    old: Annotated[Path, typer.Argument(help="The previous compatibility.json.")],
    new: Annotated[Path, typer.Argument(help="The new compatibility.json.")],
) -> None:
    """What went red or green between two tables; exit 1 when a passing check now fails."""
    changes = diff.diff(load_table(old), load_table(new))
    for change in changes:
        out.print(str(change), markup=False, highlight=False)
    bad = diff.regressions(changes)
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
InstallerOption = Annotated[
    str | None, typer.Option(help="uv (PyPI's wheels) or conda (a conda channel's builds).")
]
TableOption = Annotated[Path, typer.Option("--table", help="The compatibility.json to read.")]


def _recommended(
    table: compatibility.Compatibility,
    workload: list[str] | None,
    python: str | None,
    gpu_arch: str | None,
    os: str | None,
    installer: str | None = None,
) -> compatibility.Row:
    """recommend's choice, explained on stdout; exit 1 when no row qualifies."""
    unknown = sorted(set(workload or ()) - set(report_stage.WORKLOADS))
    if unknown:
        raise fail(f"--workload {unknown[0]}: choose from {', '.join(report_stage.WORKLOADS)}")
    if installer is not None and installer not in INSTALLERS:
        raise fail(f"--installer {installer}: choose {' or '.join(INSTALLERS)}")
    choice = recommend_view.recommend(
        table, workload or (), python=python, gpu_arch=gpu_arch, os=os, installer=installer
    )
    out.print(choice.explanation, markup=False, highlight=False)
    if choice.row is None:
        raise typer.Exit(1)
    return choice.row


def recommend(
    table_path: TableOption = Path(compatibility.JSON_FILE),
    workload: WorkloadOption = None,
    python: PythonOption = None,
    gpu_arch: GpuArchOption = None,
    os: OsOption = None,
    installer: InstallerOption = None,
) -> None:
    """The best known-good cell for your constraints, and why."""
    _recommended(load_table(table_path), workload, python, gpu_arch, os, installer)


ShowWorkloadOption = Annotated[
    list[str] | None,
    typer.Option(
        "--workload",
        help=f"One of {', '.join(report_stage.WORKLOADS)} or another check "
        "(accelerator, ...); repeatable [all].",
    ),
]


def show(
    table_path: TableOption = Path(compatibility.JSON_FILE),
    workload: ShowWorkloadOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the grids as JSON.")] = False,
) -> None:
    """Each workload's grid: torch down, Python across, each square's rows counted by outcome
    as installed (raw) and with compat, as on the page."""
    found = grid.grids(load_table(table_path))
    unknown = sorted(set(workload or ()) - set(found))
    if unknown:
        raise fail(f"--workload {unknown[0]}: choose from {', '.join(found)}")
    chosen = {name: g for name, g in found.items() if not workload or name in workload}
    if as_json:
        typer.echo(json.dumps({n: g.model_dump(mode="json") for n, g in chosen.items()}, indent=2))
        return
    for g in chosen.values():
        out.print(gridtext.table(g))
    out.print(gridtext.legend(), highlight=False)


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
    cell: Annotated[str | None, typer.Argument(help="A cell id [the recommended one].")] = None,
    registry: RegistryOption = None,
    table_path: TableOption = Path(compatibility.JSON_FILE),
    workload: WorkloadOption = None,
    python: PythonOption = None,
    gpu_arch: GpuArchOption = None,
    os: OsOption = None,
    installer: InstallerOption = None,
) -> None:
    """Pull a known-good cell's image by its published digest and tag it
    audiomatrix/cell:<cell>; where no image is published, print the native install from its
    lock. Without a cell, the one `recommend` picks for the constraints."""
    table = load_table(table_path)
    if cell is None:
        cell = _recommended(table, workload, python, gpu_arch, os, installer).cell
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
    environments = table_path.resolve().parent / "environments"
    cell_lock = publish_stage.environments_lock(environments, cell)
    why = "no published image" if rows else f"no row of {table_path} stands for it yet"
    out.print(f"{cell}: {why}; its environment from the committed lock:", highlight=False)
    for line in publish_stage.native_install(cell_lock, venv=f".venv-{cell}"):
        out.print(f"  {line}", markup=False, highlight=False)
