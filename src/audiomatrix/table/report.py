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

import json
import re
from collections.abc import Iterable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from audiomatrix.catalog import signatures
from audiomatrix.core.files import describe_error, json_text, read_text, sha256_file
from audiomatrix.core.versions import version_key
from audiomatrix.lock import stage as lock
from audiomatrix.smoke import evidence, results
from audiomatrix.suite import probe
from audiomatrix.suite.schema import CHECKS as SUITE_CHECKS
from audiomatrix.suite.schema import Facts, Host, Mode, Status, workloads
from audiomatrix.table import goldens, gpu, publications, remedies
from audiomatrix.table.gpu import Kernels
from audiomatrix.table.remedies import Remedy
from audiomatrix.table.remedy_split import RemedyProof, proof

SCHEMA_VERSION = 2
CHECKS: tuple[str, ...] = tuple(c.name for c in SUITE_CHECKS)
"""The smoke checks in table order; checks found in results but not named here come after."""
WORKLOADS: dict[str, tuple[str, ...]] = workloads()
MODES: tuple[Mode, ...] = ("raw", "compat")
CELL_ID = re.compile(
    r"^(?P<os>.+?)-py(?P<python>3\.\d+)-torch(?P<torch>\d+\.\d+\.\d+)"
    r"-(?P<accelerator>[a-z0-9._]+)-(?P<stack>.+)$"
)
NOT_BUILDABLE = "not buildable"
JSON_FILE = "compatibility.json"
SCHEMA_FILE = "compatibility.schema.json"


# --------------------------------------------------------------------------- schema


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Axes(_Model):
    os: str
    python: str
    torch: str
    accelerator: str
    stack: str


class Outcome(_Model):
    """One check in one mode: its status and, when it failed, the known signature."""

    status: Status | Literal["drift"]
    """As the check ended, or `drift`: it passed, but its outputs left the reference's."""
    signature: str | None = None
    first_error: str | None = None
    log: str | None = None
    """The check's log, relative to the repository (results/<cell>/logs/...)."""
    golden: goldens.Golden | None = None
    """Its outputs against the reference cell's, where both made them."""


class CheckRow(_Model):
    raw: Outcome | None = None
    compat: Outcome | None = None
    remedies: RemedyProof | None = None
    """Which of compat's remedies make it pass, where it failed raw and passed with compat."""


class Row(_Model):
    """The latest run of one cell in one place (an image or a native venv)."""

    cell: str
    axes: Axes
    family: str | None = None
    device: str | None = None
    gpu_arch: list[str] = []
    """The GPU architectures the cell's accelerator build declares (from cell.json)."""
    installer: str = "uv"
    """What installed the cell's torch: uv from PyPI's wheels, or conda from its channels."""
    versions: dict[str, str | None]
    lock_sha256: str
    where: results.Where
    host: Host
    facts: Facts
    run: str
    started: datetime
    finished: datetime
    source: str
    """The results file this row comes from, relative to the repository."""
    checks: dict[str, CheckRow]
    differs: list[str] = []
    """How the measured environment departs from the cell's declaration ([] for a row of
    the table; a run that differs is listed apart)."""
    stale: bool = False
    """The run came from another suite or compat than the current one."""
    gpu: dict[str, Kernels] = {}
    """Per GPU architecture people buy: kernels native, by PTX JIT only, or none, predicted
    from the wheel's compiled code or observed on the run's GPU (CUDA builds only)."""
    gpu_findings: list[str] = []
    """Where the declared GPU architectures and the measurement disagree."""
    published: publications.Published | None = None
    """Where this very image was pushed, from publications/."""


class Missing(_Model):
    """A cell with no results, and why (its lock status, or `not run`)."""

    cell: str
    axes: Axes
    status: str
    reason: str | None = None
    installer: str = "uv"


class SignatureEntry(_Model):
    id: str
    title: str
    remedy: str
    sources: list[str]


class Provenance(_Model):
    """What the table was made with: a result whose suite differs is stale."""

    suite_sha256: str
    compat_sha256: str
    catalog_sha256: str


class Compatibility(_Model):
    schema_version: Literal[2] = SCHEMA_VERSION
    provenance: Provenance
    checks: list[str]
    workloads: dict[str, list[str]]
    rows: list[Row]
    """Runs whose measured environment is the one their cell declares."""
    apart: list[Row]
    """Runs measured elsewhere than their cell declares, with what differed."""
    missing: list[Missing]
    damaged: list[results.Damaged]
    signatures: list[SignatureEntry]
    """Every signature some row names, for the legend."""
    remedies: list[Remedy] = []
    """What each remedy cell's declared change fixed in its parent cell, measured."""


def schema() -> dict[str, Any]:
    """The published JSON Schema of compatibility.json (committed beside this module)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **Compatibility.model_json_schema(),
    }


def schema_text() -> str:
    return json_text(schema())


def committed_schema() -> dict[str, Any]:
    return json.loads(resources.files("audiomatrix.table").joinpath(SCHEMA_FILE).read_text())


# --------------------------------------------------------------------------- build


def axes_from_id(cell: str) -> Axes:
    match = CELL_ID.match(cell)
    if match is None:
        return Axes(os=cell, python="", torch="", accelerator="", stack="")
    return Axes(**match.groupdict())


def _axes(record: dict[str, Any] | None, cell: str) -> Axes:
    data = (record or {}).get("cell") or {}
    try:
        return Axes(**{k: str(data[k]) for k in Axes.model_fields})
    except KeyError:
        return axes_from_id(cell)


def current_provenance() -> Provenance:
    made = probe.provenance()
    catalog = Path(str(resources.files("audiomatrix.catalog").joinpath("signatures.yaml")))
    return Provenance(
        suite_sha256=made.suite_sha256,
        compat_sha256=made.compat_sha256,
        catalog_sha256=sha256_file(catalog),
    )


def signature_of(check: results.CheckOutcome, log_text: str) -> str | None:
    """The known failure a failed check hit, by the current catalog; None when it passed."""
    if check.status not in results.FAILED:
        return None
    return signatures.classify("\n".join(t for t in (check.first_error, log_text) if t))


def _log_text(root: Path, cell: str, log: str | None) -> str:
    if not log:
        return ""
    try:
        return (root / cell / log).read_text(errors="replace")
    except OSError:
        return ""


def _outcome(check: results.CheckOutcome | None, cell: str, root: Path) -> Outcome | None:
    if check is None:
        return None
    text = _log_text(root, cell, check.log) if check.status in results.FAILED else ""
    return Outcome(
        status=check.status,
        signature=signature_of(check, text),
        first_error=check.first_error,
        log=f"{root.name}/{cell}/{check.log}" if check.log else None,
    )


def read_runs(root: Path) -> tuple[list[tuple[Path, results.RunResult]], list[results.Damaged]]:
    """Every run file under results/, read and checked; the unusable ones with why."""
    runs, damaged = [], []
    for path in sorted(root.glob("*/*.json")):
        try:
            runs.append((path, results.read(path)))
        except results.ResultError as exc:
            damaged.append(results.Damaged.of(f"{root.name}/{path.relative_to(root)}", exc))
    return runs, damaged


def newest(runs: Iterable[tuple[Path, results.RunResult]]) -> list[tuple[Path, results.RunResult]]:
    """The newest run per cell, per where.kind and per GPU architecture it ran on (a CUDA
    cell's run on a Blackwell runner is other evidence than its run on a CPU runner)."""
    found: dict[tuple[str, str, str], tuple[Path, results.RunResult]] = {}
    for path, run in runs:
        key = (run.cell, run.where.kind, run.environment.host.compute_capability or "")
        if key not in found or run.run > found[key][1].run:
            found[key] = (path, run)
    return [found[k] for k in sorted(found)]


PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def lock_pins(environments: Path, cell: str) -> dict[str, str]:
    """The cell's committed lock as {name: version} ({} without one): its requirement lines
    only, read once per report for each row."""
    try:
        text = (environments / cell / lock.LOCK_FILE).read_text()
    except OSError:
        return {}
    return dict(PIN.findall(text))


def _differs(
    run: results.RunResult, record: dict[str, Any] | None, pins: dict[str, str]
) -> list[str]:
    if record is None:
        return ["no cell.json declares this cell: run `audiomatrix lock` for it"]
    environment = run.environment
    return evidence.differences(
        evidence.declaration(record), environment.facts, environment.host, run.lock_sha256, pins
    )


def _check_row(run: results.RunResult, name: str, root: Path) -> CheckRow:
    """A check's outcome in each mode, and the remedies it was proven to need."""
    found = {m: _outcome(run.status(m, name), run.cell, root) for m in MODES}
    raw, compat = (found[m].status if found[m] else None for m in MODES)
    logs = f"{root.name}/{run.cell}"
    return CheckRow(**found, remedies=proof(run.remedy_split, name, raw, compat, logs))


def make_row(
    path: Path,
    run: results.RunResult,
    record: dict[str, Any] | None,
    root: Path,
    made_with: Provenance,
    pins: dict[str, str],
) -> Row:
    cell = (record or {}).get("cell") or {}
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
        axes=_axes(record, run.cell),
        family=cell.get("family"),
        device=cell.get("device"),
        gpu_arch=sorted(cell.get("gpu_arch") or [], key=lambda a: int(a.removeprefix("sm_"))),
        installer=cell.get("installer", "uv"),
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
        gpu_findings=gpu.findings(cell.get("gpu_arch") or [], kernels, facts.gpu_arch),
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
) -> tuple[dict[str, Any], list[results.Damaged]]:
    """Each cell's cell.json (None where there is none); the damaged ones listed."""
    records: dict[str, Any] = {}
    damaged = []
    for cell in sorted(set(cells)):
        try:
            records[cell] = lock.read_record(environments / cell)
        except lock.RecordError as exc:
            records[cell] = None
            damaged.append(results.Damaged.of(f"{environments.name}/{cell}/{lock.CELL_FILE}", exc))
    return records, damaged


def read_declared(environments: Path) -> tuple[dict[str, Any], list[results.Damaged]]:
    """environments/cells.json (empty, and listed as damaged, when it cannot be used)."""
    try:
        return lock.read_manifest(environments), []
    except lock.RecordError as exc:
        shown = f"{environments.name}/{lock.MANIFEST_FILE}"
        return {"cells": [], "reference": []}, [results.Damaged.of(shown, exc)]


def missing_cells(
    environments: Path, declared: dict[str, Any], covered: set[str], records: dict[str, Any]
) -> list[Missing]:
    """Declared or locked cells without a row, and why (not buildable, a lock status, or
    not run yet)."""
    folders = {p.parent.name for p in environments.glob(f"*/{lock.CELL_FILE}")}
    missing = []
    for cell in sorted((set(declared) | folders) - covered):
        record = records.get(cell) or {"cell": declared.get(cell, {})}
        data = record.get("cell") or {}
        if data.get("buildable") is False:
            status, reason = NOT_BUILDABLE, data.get("reason")
        elif record.get("status") in (None, "locked"):
            status, reason = "not run", "locked, but no run in its declared environment yet"
        else:
            status, reason = str(record["status"]), record.get("reason")
        missing.append(
            Missing(
                cell=cell,
                axes=_axes(record, cell),
                status=status,
                reason=reason,
                installer=data.get("installer", "uv"),
            )
        )
    missing.sort(key=lambda m: sort_key(m.axes))
    return missing


def build(results_root: Path, environments: Path, published: Path) -> Compatibility:
    """The table from results/, environments/ and publications/."""
    made_with = current_provenance()
    runs, damaged = read_runs(results_root)
    latest = newest(runs)
    folders = {p.parent.name for p in environments.glob(f"*/{lock.CELL_FILE}")}
    records, bad_records = _records(environments, folders | {run.cell for _, run in latest})
    pushed, bad_publications = publications.read_all(published)
    manifest, bad_manifest = read_declared(environments)
    made = []
    for path, run in latest:
        pins = lock_pins(environments, run.cell)
        row = make_row(path, run, records.get(run.cell), results_root, made_with, pins)
        made.append((row.model_copy(update={"published": publications.for_row(pushed, row)}), run))
    rows = goldens.compare_rows(made, manifest["reference"])
    rows.sort(key=lambda r: sort_key(r.axes, r.where.kind))
    standing = [r for r in rows if not r.differs]
    declared = {c["id"]: c for c in manifest["cells"]}
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
            damaged + bad_records + bad_manifest + bad_publications, key=lambda d: d.path
        ),
        signatures=legend(rows),
        remedies=remedies.derive(standing, records),
    )


def table_json(table: Compatibility) -> str:
    """compatibility.json's text."""
    return table.model_dump_json(indent=2) + "\n"


def load_text(text: str) -> Compatibility:
    return Compatibility.model_validate_json(text)


def load(path: Path) -> Compatibility:
    """A compatibility.json for diff, recommend and publish; ValueError with one line naming
    the field when it is damaged or foreign."""
    try:
        return load_text(read_text(path))
    except ValueError as exc:
        raise ValueError(describe_error(exc)) from None
