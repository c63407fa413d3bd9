"""`audiomatrix boundaries`: measure where each catalogued failure starts, and with --write
record it in signatures.yaml (audiomatrix.catalog.probe_runs does the work; here it gets progress, a
table and one-line errors)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from packaging.specifiers import Specifier
from packaging.version import Version
from rich.markup import escape
from rich.table import Table

from audiomatrix.catalog import boundaries, probe_runs, probes, signatures
from audiomatrix.catalog import edit as catalogedit
from audiomatrix.cli.options import fail, out, progress
from audiomatrix.spec.selection import did_you_mean


@dataclass
class Row:
    entry: str
    edge: str
    outcome: str
    detail: str
    probed: str = ""
    record: signatures.Boundary | None = None
    """What --write records for the edge: the measurement, or why this machine cannot."""


_STYLE = {"as catalogued": "green", "unmeasured": "dim"}
_FAILED = ("no probe", "no verdict", "range differs", "stopped")


def _measure_edge(
    venvs: probe_runs.ProbeVenvs,
    entry: signatures.Signature,
    package: str,
    clause: Specifier,
    on_verdict: Callable[[Version, boundaries.Verdict], None],
) -> Row:
    edge = f"{package} {clause}"
    probe = probes.probe_for(entry.id, package)
    if probe is None:
        return Row(entry.id, edge, "no probe", "add one to audiomatrix.catalog.probes")
    try:
        found = probe_runs.measure(venvs, probe, entry, clause, on_verdict)
    except probe_runs.Unmeasurable as exc:
        record = signatures.Boundary(package=package, bound=str(clause), unmeasured=str(exc))
        return Row(entry.id, edge, "unmeasured", str(exc), record=record)
    except (boundaries.NoVerdict, boundaries.EdgeNotFound) as exc:
        return Row(entry.id, edge, "no verdict", str(exc))
    probed = ", ".join(f"{v} {r}" for v, r in found.probed)
    pair = f"{found.good} works, {found.bad} fails"
    if not boundaries.fits(found, clause):
        return Row(entry.id, edge, "range differs", f"{pair}: fix affects, then rerun", probed)
    record = boundaries.measured(probe, clause, found, date.today())
    return Row(entry.id, edge, "as catalogued", pair, probed, record)


def _updates(
    rows: list[Row], entries: dict[str, signatures.Signature]
) -> dict[str, list[signatures.Boundary]]:
    """The records to write: every measurement, and an `unmeasured` reason only where the
    edge has no measurement yet (one made on a better-equipped machine is kept)."""
    updates: dict[str, list[signatures.Boundary]] = {}
    for r in rows:
        if r.record is None:
            continue
        old = {b.edge(): b for b in entries[r.entry].measured}.get(r.record.edge())
        if r.record.unmeasured is None or old is None or old.unmeasured is not None:
            updates.setdefault(r.entry, []).append(r.record)
    return updates


def boundaries_command(
    entry: Annotated[
        list[str] | None,
        typer.Option("--entry", help="A catalog entry's id; repeatable (default: all)."),
    ] = None,
    write: Annotated[
        bool, typer.Option("--write", help="Record each edge found as catalogued in the file.")
    ] = False,
    catalog: Annotated[
        Path | None, typer.Option("--catalog", help="The catalog (default: the package's own).")
    ] = None,
) -> None:
    """Measure each range edge of the failure catalog on the index's real releases: the
    release that works and the adjacent one that fails, each installed and probed."""
    path = catalog or signatures.catalog_path()
    entries = {e.id: e for e in signatures.load(path)}
    for name in entry or ():
        if name not in entries:
            raise fail(f"no catalog entry {name!r}{did_you_mean(name, list(entries))}")
    chosen = [e for e in entries.values() if not entry or e.id in entry]
    edges = [(e, p, c) for e in chosen for p, c in e.edges()]
    venvs = probe_runs.ProbeVenvs()
    rows: list[Row] = []
    with progress() as bar:
        task = bar.add_task("boundaries", total=len(edges), last="")
        for sig, package, clause in edges:
            name = f"{sig.id}: {package}"
            bar.update(task, last=f"{name} {clause}")

            def seen(version: Version, verdict: str, name: str = name) -> None:
                bar.update(task, last=f"{name} {version} {verdict}")

            try:
                rows.append(_measure_edge(venvs, sig, package, clause, seen))
            except probe_runs.DiskLow as exc:
                rows.append(Row(sig.id, f"{package} {clause}", "stopped", str(exc)))
                break
            bar.update(task, advance=1)
    table = Table(title="boundaries")
    for column in ("entry", "edge", "outcome", "measured", "probed"):
        table.add_column(column, overflow="fold")
    for r in rows:
        style = _STYLE.get(r.outcome, "red")
        table.add_row(r.entry, r.edge, f"[{style}]{r.outcome}[/]", escape(r.detail), r.probed)
    out.print(table)
    updates = _updates(rows, entries)
    if write and updates:
        try:
            catalogedit.write(path, updates)
        except ValueError as exc:  # CatalogError included
            raise fail(f"{path}: not written: {exc}", 1) from None
        out.print(f"wrote {sum(map(len, updates.values()))} edges to {path}")
    if len(rows) < len(edges) or any(r.outcome in _FAILED for r in rows):
        raise typer.Exit(1)
