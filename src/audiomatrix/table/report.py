"""results/ -> the table: which runs stand for their cells, and what they found.

The report stage reads only what earlier stages wrote: the run records under results/ (and
their logs), environments/<cell>/cell.json (each cell's declaration), environments/cells.json
(every declared cell), the publish stage's publications/ and the signature catalog. It never
reads its own output. It decides three things at report time, so that correcting an input
corrects the table: whether a run's measured environment is the one its cell declares (a run
that differs is shown apart, with what differed); which known failure each failed check hit
(the current catalog, over the check's first error and log); and whether the run came from
the current suite (an older one is marked stale). Its output is deterministic (sorted, no
clock), so a committed table changes only when the evidence does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from audiomatrix.catalog import signatures
from audiomatrix.core.files import sha256_file
from audiomatrix.core.versions import version_key
from audiomatrix.lock.installers import uv
from audiomatrix.records import index_check
from audiomatrix.records.base import Damaged
from audiomatrix.records.cell import (
    CELL_FILE,
    MANIFEST_FILE,
    CellData,
    CellRecord,
    Manifest,
    RecordError,
    read_manifest,
    read_record,
)
from audiomatrix.records.compatibility import (
    Axes,
    CheckRow,
    Compatibility,
    Missing,
    Outcome,
    Provenance,
    Row,
    SignatureEntry,
)
from audiomatrix.records.publication import Published, read_all
from audiomatrix.records.run import ResultError, RunResult, read
from audiomatrix.smoke import evidence
from audiomatrix.suite import probe
from audiomatrix.suite.schema import CHECKS as SUITE_CHECKS
from audiomatrix.suite.schema import FAILED, MODES, CheckOutcome, workloads
from audiomatrix.table import dated, golden_comparison, gpu, remedy_cells
from audiomatrix.table.compat_split import proof

CHECKS: tuple[str, ...] = tuple(c.name for c in SUITE_CHECKS)
"""The smoke checks in table order; checks found in results but not named here come after."""
WORKLOADS: dict[str, tuple[str, ...]] = workloads()
CELL_ID = re.compile(
    r"^(?P<os>.+?)-py(?P<python>3\.\d+)-torch(?P<torch>\d+\.\d+\.\d+)"
    r"-(?P<accelerator>[a-z0-9._]+)-(?P<stack>.+)$"
)
"""A cell id's axes, for a results folder no cell.json declares."""
NOT_BUILDABLE = "not buildable"


def axes_from_id(cell: str) -> Axes:
    match = CELL_ID.match(cell)
    if match is None:
        return Axes(os=cell, python="", torch="", accelerator="", stack="")
    return Axes(**match.groupdict())


def _axes(data: CellData | None, cell: str) -> Axes:
    """The declared cell's axes; only a cell nothing declares is read from its id."""
    if data is None:
        return axes_from_id(cell)
    return Axes(**data.model_dump(include=set(Axes.model_fields)))


def current_provenance() -> Provenance:
    made = probe.provenance()
    catalog = Path(str(resources.files("audiomatrix.catalog").joinpath("signatures.yaml")))
    return Provenance(
        suite_sha256=made.suite_sha256,
        compat_sha256=made.compat_sha256,
        catalog_sha256=sha256_file(catalog),
    )


def signature_of(check: CheckOutcome, log_text: str) -> str | None:
    """The known failure a failed check hit, by the current catalog; None when it passed."""
    if check.status not in FAILED:
        return None
    return signatures.classify("\n".join(t for t in (check.first_error, log_text) if t))


def _log_text(root: Path, cell: str, log: str | None) -> str:
    if not log:
        return ""
    try:
        return (root / cell / log).read_text(errors="replace")
    except OSError:
        return ""


def _outcome(check: CheckOutcome | None, cell: str, root: Path) -> Outcome | None:
    if check is None:
        return None
    text = _log_text(root, cell, check.log) if check.status in FAILED else ""
    return Outcome(
        status=check.status,
        signature=signature_of(check, text),
        first_error=check.first_error,
        log=f"{root.name}/{cell}/{check.log}" if check.log else None,
    )


def read_runs(root: Path) -> tuple[list[tuple[Path, RunResult]], list[Damaged]]:
    """Every run file under results/, read and checked; the unusable ones with why."""
    runs, damaged = [], []
    for path in sorted(root.glob("*/*.json")):
        try:
            runs.append((path, read(path)))
        except ResultError as exc:
            damaged.append(Damaged.of(f"{root.name}/{path.relative_to(root)}", exc))
    return runs, damaged


def newest(runs: Iterable[tuple[Path, RunResult]]) -> list[tuple[Path, RunResult]]:
    """The newest run per cell, per where.kind and per GPU architecture it ran on (a CUDA
    cell's run on a Blackwell runner is other evidence than its run on a CPU runner)."""
    found: dict[tuple[str, str, str], tuple[Path, RunResult]] = {}
    for path, run in runs:
        key = (run.cell, run.where.kind, run.environment.host.compute_capability or "")
        if key not in found or run.run > found[key][1].run:
            found[key] = (path, run)
    return [found[k] for k in sorted(found)]


def lock_pins(environments: Path, cell: str) -> dict[str, str]:
    """The cell's committed lock as {name: version} ({} without one): its requirement lines
    only, read once per report for each row."""
    try:
        text = (environments / cell / uv.LOCK_FILE).read_text()
    except OSError:
        return {}
    return uv.pins(text)


def _differs(run: RunResult, record: CellRecord | None, pins: dict[str, str]) -> list[str]:
    if record is None:
        return ["no cell.json declares this cell: run `audiomatrix lock` for it"]
    environment = run.environment
    return evidence.differences(
        evidence.declaration(record), environment.facts, environment.host, run.lock_sha256, pins
    )


def _check_row(run: RunResult, name: str, root: Path) -> CheckRow:
    """A check's outcome in each mode, and the remedies it was proven to need."""
    found = {m: _outcome(run.status(m, name), run.cell, root) for m in MODES}
    raw, compat = (found[m].status if found[m] else None for m in MODES)
    logs = f"{root.name}/{run.cell}"
    return CheckRow(**found, remedies=proof(run.remedy_split, name, raw, compat, logs))


def make_row(
    path: Path,
    run: RunResult,
    record: CellRecord | None,
    root: Path,
    made_with: Provenance,
    pins: dict[str, str],
) -> Row:
    data = record.cell if record else None
    declared_arch = data.gpu_arch if data else []
    present = {c.check for m in run.modes.values() for c in m}
    names = [c for c in CHECKS if c in present] + sorted(present - set(CHECKS))
    provenance = run.environment.provenance
    checks = {name: _check_row(run, name, root) for name in names}
    accelerator = (checks.get("accelerator") or CheckRow()).raw
    facts, host = run.environment.facts, run.environment.host
    kernels = gpu.verdicts(
        facts.gpu_arch, host.compute_capability, host.gpu,
        accelerator.status if accelerator else None, accelerator.signature if accelerator else None,
    )  # fmt: skip
    return Row(
        cell=run.cell,
        axes=_axes(data, run.cell),
        family=data.family if data else None,
        device=data.device if data else None,
        gpu_arch=sorted(declared_arch, key=lambda a: int(a.removeprefix("sm_"))),
        installer=data.installer if data else "uv",
        versions={**run.environment.versions, "ffmpeg": run.environment.facts.ffmpeg},
        lock_sha256=run.lock_sha256,
        where=run.where,
        host=run.environment.host,
        facts=run.environment.facts,
        run=run.run,
        started=run.started,
        finished=run.finished,
        source=f"{root.name}/{path.relative_to(root).as_posix()}",
        checks=checks,
        differs=_differs(run, record, pins),
        gpu=kernels,
        gpu_findings=gpu.findings(declared_arch, kernels, facts.gpu_arch),
        stale=(provenance.suite_sha256, provenance.compat_sha256)
        != (made_with.suite_sha256, made_with.compat_sha256),
    )


def sort_key(axes: Axes, *rest: str) -> tuple[Any, ...]:
    return (
        axes.os,
        version_key(axes.python),
        version_key(axes.torch),
        axes.accelerator,
        axes.stack,
        *rest,
    )


def legend(rows: Iterable[Row]) -> list[SignatureEntry]:
    seen = {
        o.signature
        for r in rows
        for c in r.checks.values()
        for o in (c.raw, c.compat)
        if o and o.signature
    }
    entries = []
    for sid in sorted(seen):
        known = signatures.by_id(sid)
        if known is not None:
            fields = set(SignatureEntry.model_fields)
            entries.append(SignatureEntry(**known.model_dump(include=fields)))
        else:
            entries.append(
                SignatureEntry(
                    id=sid,
                    title="a failure no known signature matches",
                    remedy="Read the check's log (linked from the run) and add a signature to "
                    "signatures.yaml once the cause is known.",
                    sources=[],
                )
            )
    return entries


def _records(
    environments: Path, cells: Iterable[str]
) -> tuple[dict[str, CellRecord | None], list[Damaged]]:
    """Each cell's cell.json (None where there is none); the damaged ones listed."""
    records: dict[str, CellRecord | None] = {}
    damaged = []
    for cell in sorted(set(cells)):
        try:
            records[cell] = read_record(environments / cell)
        except RecordError as exc:
            records[cell] = None
            damaged.append(Damaged.of(f"{environments.name}/{cell}/{CELL_FILE}", exc))
    return records, damaged


def read_declared(environments: Path) -> tuple[Manifest, list[Damaged]]:
    """environments/cells.json (empty, and listed as damaged, when it cannot be used)."""
    try:
        return read_manifest(environments), []
    except RecordError as exc:
        shown = f"{environments.name}/{MANIFEST_FILE}"
        return Manifest.empty(), [Damaged.of(shown, exc)]


def missing_cells(
    environments: Path,
    declared: dict[str, CellData],
    covered: set[str],
    records: dict[str, CellRecord | None],
) -> list[Missing]:
    """Declared or locked cells without a row, and why (not buildable, a lock status, or
    not run yet)."""
    folders = {p.parent.name for p in environments.glob(f"*/{CELL_FILE}")}
    missing = []
    for cell in sorted((set(declared) | folders) - covered):
        record = records.get(cell)
        data = record.cell if record else declared.get(cell)
        if data is not None and not data.buildable:
            status, reason = NOT_BUILDABLE, data.reason
        elif record is None or record.status == "locked":
            status, reason = "not run", "locked, but no run in its declared environment yet"
        else:
            status, reason = record.status, record.reason
        missing.append(
            Missing(
                cell=cell,
                axes=_axes(data, cell),
                status=status,
                reason=reason,
                installer=data.installer if data else "uv",
            )
        )
    missing.sort(key=lambda m: sort_key(m.axes))
    return missing


def publication_for(found: dict[str, Published], row: Row) -> Published | None:
    """The publication of exactly the image this row ran in, if there is one."""
    published = found.get(row.cell)
    if published and row.where.kind == "image" and published.image_id == row.where.image_digest:
        return published
    return None


def build(results_root: Path, environments: Path, published: Path) -> Compatibility:
    """The table from results/, environments/ and publications/."""
    made_with = current_provenance()
    runs, damaged = read_runs(results_root)
    latest = newest(runs)
    folders = {p.parent.name for p in environments.glob(f"*/{CELL_FILE}")}
    records, bad_records = _records(environments, folders | {run.cell for _, run in latest})
    pushed, bad_publications = read_all(published)
    manifest, bad_manifest = read_declared(environments)
    checked, bad_check = index_check.read(environments)
    made = []
    for path, run in latest:
        pins = lock_pins(environments, run.cell)
        row = make_row(path, run, records.get(run.cell), results_root, made_with, pins)
        row = dated.dated(row, records.get(run.cell), pins, checked)
        made.append((row.model_copy(update={"published": publication_for(pushed, row)}), run))
    rows = golden_comparison.compare_rows(made, manifest.reference)
    rows.sort(key=lambda r: sort_key(r.axes, r.where.kind))
    standing = [r for r in rows if not r.differs]
    declared = {c.id: c for c in manifest.cells}
    missing = missing_cells(environments, declared, {r.cell for r in standing}, records)
    names = list(CHECKS) + sorted({c for r in rows for c in r.checks} - set(CHECKS))
    return Compatibility(
        provenance=made_with,
        checks=names,
        workloads={k: list(v) for k, v in WORKLOADS.items()},
        rows=standing,
        apart=[r for r in rows if r.differs],
        missing=missing,
        damaged=sorted(
            damaged + bad_records + bad_manifest + bad_publications + bad_check,
            key=lambda d: d.path,
        ),
        signatures=legend(rows),
        remedies=remedy_cells.derive(standing, records),
        index_checked=checked.checked if checked else None,
    )


def table_json(table: Compatibility) -> str:
    """compatibility.json's text."""
    return table.model_dump_json(indent=2) + "\n"
