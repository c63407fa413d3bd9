"""results/ -> COMPATIBILITY.md, compatibility.json, site/index.html; plus diff and recommend.

The report stage reads only what earlier stages wrote: the run records under results/, the
signature catalog, and environments/<cell>/cell.json (a cell's axes and GPU architectures, and
for a cell with no results, why not). Everything it writes is generated and deterministic
(sorted, no clock), so a committed table changes only when the evidence does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jinja2
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, ValidationError

from audiomatrix import lock, results, signatures
from audiomatrix.files import json_text, write_atomic
from audiomatrix.results import FAILED, Mode, Status

SCHEMA_VERSION = 1
CHECKS: tuple[str, ...] = (
    "xtts",
    "xtts_service",
    "demucs",
    "diffrhythm_write",
    "torchaudio_io",
    "torch_load",
    "accelerator",
)
"""The smoke checks in table order; checks found in results but not named here come after."""
WORKLOADS: dict[str, tuple[str, ...]] = {
    "xtts": ("xtts", "xtts_service"),
    "demucs": ("demucs",),
    "diffrhythm": ("diffrhythm_write",),
}
"""What a user asks for (recommend --workload) -> the checks that must pass for it."""
MODES: tuple[Mode, ...] = ("raw", "compat")
CELL_ID = re.compile(
    r"^(?P<os>.+?)-py(?P<python>3\.\d+)-torch(?P<torch>\d+\.\d+\.\d+)"
    r"-(?P<accelerator>[a-z0-9._]+)-(?P<stack>.+)$"
)
NONE = "-"
NOT_BUILDABLE = "not buildable"
"""What a table shows for a missing value or an absent check."""
MD_FILE = "COMPATIBILITY.md"
JSON_FILE = "compatibility.json"
SITE_FILE = "site/index.html"
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

    status: Status
    signature: str | None = None
    first_error: str | None = None
    log: str | None = None
    """The check's log, relative to the repository (results/<cell>/logs/...)."""


class CheckRow(_Model):
    raw: Outcome | None = None
    compat: Outcome | None = None


class Sbom(_Model):
    """The CycloneDX SBOM of a published image: a copy in the repository and an OCI artifact
    beside the image in the registry (tagged `sha256-<image digest hex>.sbom`)."""

    format: Literal["CycloneDX 1.6"] = "CycloneDX 1.6"
    path: str
    """Relative to the repository (sboms/<cell>.cdx.json)."""
    reference: str
    digest: str
    components: int


class Published(_Model):
    """Where the tested image was pushed: pull `reference` to get exactly what ran."""

    reference: str
    """repository@sha256:..., the registry's digest of the pushed manifest."""
    tags: list[str]
    digest: str
    image_id: str
    """The local image id that ran the smoke suite and was pushed (where.image_digest)."""
    pushed: datetime
    sbom: Sbom


class Row(_Model):
    """The latest run of one cell in one place (an image or a native venv)."""

    cell: str
    axes: Axes
    family: str | None = None
    device: str | None = None
    gpu_arch: list[str] = []
    """The GPU architectures the cell's accelerator build declares (from cell.json)."""
    versions: dict[str, str | None]
    lock_sha256: str
    where: results.Where
    run: str
    started: datetime
    finished: datetime
    source: str
    """The results file this row comes from, relative to the repository."""
    checks: dict[str, CheckRow]
    published: Published | None = None
    """Set by `audiomatrix publish`; kept by later reports while the row's image is the same."""


class Missing(_Model):
    """A cell with no results, and why (its lock status, or `not run`)."""

    cell: str
    axes: Axes
    status: str
    reason: str | None = None


class SignatureEntry(_Model):
    id: str
    title: str
    remedy: str
    sources: list[str]


class Compatibility(_Model):
    schema_version: Literal[1] = SCHEMA_VERSION
    checks: list[str]
    workloads: dict[str, list[str]]
    rows: list[Row]
    missing: list[Missing]
    signatures: list[SignatureEntry]
    """Every signature some row names, for the legend."""


def schema() -> dict[str, Any]:
    """The published JSON Schema of compatibility.json (committed beside this module)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **Compatibility.model_json_schema(),
    }


def schema_text() -> str:
    return json_text(schema())


def committed_schema() -> dict[str, Any]:
    return json.loads(resources.files("audiomatrix").joinpath(SCHEMA_FILE).read_text())


# --------------------------------------------------------------------------- build


def _version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")


def _axes_from_id(cell: str) -> Axes:
    match = CELL_ID.match(cell)
    if match is None:
        return Axes(os=cell, python="", torch="", accelerator="", stack="")
    return Axes(**match.groupdict())


def _axes(record: dict[str, Any] | None, cell: str) -> Axes:
    data = (record or {}).get("cell") or {}
    try:
        return Axes(**{k: str(data[k]) for k in Axes.model_fields})
    except KeyError:
        return _axes_from_id(cell)


def _outcome(check: results.CheckResult | None, cell: str, root_name: str) -> Outcome | None:
    if check is None:
        return None
    log = f"{root_name}/{cell}/{check.log}" if check.log else None
    return Outcome(
        status=check.status, signature=check.signature, first_error=check.first_error, log=log
    )


def latest_runs(root: Path) -> list[tuple[Path, results.RunResult]]:
    """The newest readable run per cell and per where.kind (damaged files are skipped)."""
    newest: dict[tuple[str, str], tuple[Path, results.RunResult]] = {}
    for path in sorted(root.glob("*/*.json")):
        try:
            run = results.read(path)
        except (OSError, ValidationError):
            continue
        key = (run.cell, run.where.kind)
        if key not in newest or run.run > newest[key][1].run:
            newest[key] = (path, run)
    return [newest[k] for k in sorted(newest)]


def _row(path: Path, run: results.RunResult, record: dict[str, Any] | None, root: Path) -> Row:
    cell = (record or {}).get("cell") or {}
    names = list(CHECKS) + sorted({c.check for m in run.modes.values() for c in m} - set(CHECKS))
    checks = {
        name: CheckRow(**{m: _outcome(run.status(m, name), run.cell, root.name) for m in MODES})
        for name in names
        if any(run.status(m, name) for m in MODES)
    }
    return Row(
        cell=run.cell,
        axes=_axes(record, run.cell),
        family=cell.get("family"),
        device=cell.get("device"),
        gpu_arch=sorted(cell.get("gpu_arch") or [], key=lambda a: int(a.removeprefix("sm_"))),
        versions=run.versions,
        lock_sha256=run.lock_sha256,
        where=run.where,
        run=run.run,
        started=run.started,
        finished=run.finished,
        source=f"{root.name}/{path.relative_to(root).as_posix()}",
        checks=checks,
    )


def _sort_key(axes: Axes, *rest: str) -> tuple[Any, ...]:
    return (
        axes.os,
        _version(axes.python),
        _version(axes.torch),
        axes.accelerator,
        axes.stack,
        *rest,
    )


def _legend(rows: Iterable[Row]) -> list[SignatureEntry]:
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
            entries.append(
                SignatureEntry(**known.model_dump(include=set(SignatureEntry.model_fields)))
            )
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


def carried_publication(row: Row, previous: Compatibility | None) -> Published | None:
    """The previous table's publication of this row's image, if the row still shows the very
    image that was pushed (a new build or run of the cell drops it)."""
    for old in previous.rows if previous else ():
        if (
            old.cell == row.cell
            and old.published
            and row.where.kind == "image"
            and old.published.image_id == row.where.image_digest
        ):
            return old.published
    return None


def build(
    results_root: Path, environments: Path, previous: Compatibility | None = None
) -> Compatibility:
    """The table from results/ (latest run per cell and where) and environments/*/cell.json;
    `previous` (the table being replaced) only lends the publications still valid."""
    rows = [
        _row(path, run, lock.read_record(environments / run.cell), results_root)
        for path, run in latest_runs(results_root)
    ]
    rows = [r.model_copy(update={"published": carried_publication(r, previous)}) for r in rows]
    rows.sort(key=lambda r: _sort_key(r.axes, r.where.kind))
    covered = {r.cell for r in rows}
    declared = {c["id"]: c for c in lock.read_manifest(environments)}
    folders = {p.parent.name for p in environments.glob(f"*/{lock.CELL_FILE}")}
    missing = []
    for cell in sorted((set(declared) | folders) - covered):
        record = lock.read_record(environments / cell) or {"cell": declared.get(cell, {})}
        data = record.get("cell") or {}
        if data.get("buildable") is False:
            status, reason = NOT_BUILDABLE, data.get("reason")
        elif record.get("status") in (None, "locked", "unchanged"):
            status, reason = "not run", "locked, but no results yet"
        else:
            status, reason = str(record["status"]), record.get("reason")
        missing.append(Missing(cell=cell, axes=_axes(record, cell), status=status, reason=reason))
    missing.sort(key=lambda m: _sort_key(m.axes))
    names = list(CHECKS) + sorted({c for r in rows for c in r.checks} - set(CHECKS))
    return Compatibility(
        checks=names,
        workloads={k: list(v) for k, v in WORKLOADS.items()},
        rows=rows,
        missing=missing,
        signatures=_legend(rows),
    )


def table_json(table: Compatibility) -> str:
    """compatibility.json's text."""
    return table.model_dump_json(indent=2) + "\n"


def load_text(text: str) -> Compatibility:
    return Compatibility.model_validate_json(text)


def load(path: Path) -> Compatibility:
    """A compatibility.json (for diff and recommend); raises ValidationError when malformed."""
    return load_text(path.read_text())


# --------------------------------------------------------------------------- render


def _md(text: object) -> str:
    """A value safe inside a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _check_md(row: CheckRow | None) -> str:
    """`fail → pass`, then the failures' signatures (raw's first), each linked to the legend."""
    if row is None:
        return NONE
    outcomes = (row.raw, row.compat)
    text = " → ".join(o.status if o else NONE for o in outcomes)
    sigs = list(dict.fromkeys(o.signature for o in outcomes if o and o.signature))
    return text + (f" ({', '.join(f'[{s}](#{s})' for s in sigs)})" if sigs else "")


def stack_label(versions: dict[str, str | None]) -> str:
    tts = next(
        (f"{name} {versions[name]}" for name in ("coqui-tts", "TTS") if versions.get(name)), None
    )
    parts = [tts, f"demucs {versions['demucs']}" if versions.get("demucs") else None]
    return " + ".join(p for p in parts if p) or NONE


def accelerator_label(row: Row) -> str:
    cuda = f" (CUDA {row.where.cuda})" if row.where.cuda else ""
    return f"{row.axes.accelerator}{cuda}"


def device_label(where: results.Where) -> str:
    if not where.gpu:
        return "CPU"
    return f"{where.gpu} ({where.compute_capability})" if where.compute_capability else where.gpu


def where_label(where: results.Where, cell: str = "") -> str:
    """`native`, or `image <content tag> @<digest>` (the tag without the cell id it repeats)."""
    if where.kind == "native":
        return "native"
    tag = (where.image or "?").rsplit(":", 1)[-1].removeprefix(f"{cell}-")
    digest = f" @{where.image_digest.removeprefix('sha256:')[:12]}" if where.image_digest else ""
    return f"image {tag}{digest}"


def markdown(table: Compatibility) -> str:
    """COMPATIBILITY.md: the table for people, every row citing its results file and lock."""

    def v(row: Row, key: str) -> str:
        return row.versions.get(key) or NONE

    head = [
        "cell", "where", "OS", "Python", "torch", "torchaudio", "TorchCodec", "FFmpeg",
        "accelerator build", "ran on", "stack", *table.checks, "results", "lock",
    ]  # fmt: skip
    lines = [
        "# Compatibility",
        "",
        "Generated by `audiomatrix report` from `results/`; do not edit by hand.",
        f"{len(table.rows)} rows from {len({r.cell for r in table.rows})} cells; "
        f"{len(table.missing)} cells without results.",
        "",
        "Each check reads `raw → with compat` (`audiomatrix.compat` applied). Statuses: "
        "pass, fail, corrupt (ran but wrote wrong audio), hang (timed out), crash (killed), "
        "skip (not applicable here, e.g. no GPU). A failure names its signature; see the "
        "[legend](#signatures).",
        "",
        "## Results",
        "",
        "| " + " | ".join(head) + " |",
        "|" + " --- |" * len(head),
    ]
    for row in table.rows:
        cells = [
            f"`{row.cell}`",
            where_label(row.where, row.cell),
            row.axes.os,
            v(row, "python"),
            v(row, "torch"),
            v(row, "torchaudio"),
            v(row, "torchcodec"),
            v(row, "ffmpeg"),
            accelerator_label(row),
            device_label(row.where),
            stack_label(row.versions),
            *[_check_md(row.checks.get(c)) for c in table.checks],
            f"[{row.run}]({row.source})",
            f"`{row.lock_sha256[:12]}`",
        ]
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    lines += _published_md(table.rows)
    lines += ["", "## Signatures", ""]
    if not table.signatures:
        lines += ["No failures.", ""]
    for sig in table.signatures:
        lines += [f"### {sig.id}", "", f"**{sig.title}**", "", f"Remedy: {sig.remedy}", ""]
        lines += [f"- <{s}>" for s in sig.sources]
        lines += [""] if sig.sources else []
    lines += ["## Cells without results", ""]
    unrun = [m for m in table.missing if m.status != NOT_BUILDABLE]
    if unrun:
        lines += ["| cell | status | reason |", "| --- | --- | --- |"]
        lines += [f"| `{m.cell}` | {_md(m.status)} | {_md(m.reason or NONE)} |" for m in unrun]
    else:
        lines.append("None." if not table.missing else "Every buildable cell has results.")
    lines += _unbuildable_md([m for m in table.missing if m.status == NOT_BUILDABLE])
    return "\n".join(lines) + "\n"


def _published_md(rows: Sequence[Row]) -> list[str]:
    """Where each tested image can be pulled from, by digest, and its SBOM."""
    published = [r for r in rows if r.published]
    if not published:
        return []
    lines = ["", "## Published images", "", "| cell | pull | SBOM |", "| --- | --- | --- |"]
    for r in published:
        assert r.published is not None
        sbom = f"[{r.published.sbom.format}]({r.published.sbom.path})"
        lines.append(f"| `{r.cell}` | `docker pull {_md(r.published.reference)}` | {sbom} |")
    return lines


def _unbuildable_md(cells: Sequence[Missing]) -> list[str]:
    """The cells the matrix's facts rule out, one line per reason (there can be hundreds)."""
    if not cells:
        return []
    by_reason: dict[str, list[str]] = {}
    for m in cells:
        by_reason.setdefault(m.reason or NONE, []).append(m.cell)
    lines = [
        "",
        f"### Not buildable ({len(cells)} cells)",
        "",
        "| reason | cells |",
        "| --- | --- |",
    ]
    for reason, ids in sorted(by_reason.items(), key=lambda item: (-len(item[1]), item[0])):
        listed = "<br>".join(f"`{c}`" for c in ids)
        lines.append(
            f"| {_md(reason)} | <details><summary>{len(ids)}</summary>{listed}</details> |"
        )
    return lines


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("audiomatrix", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def html(table: Compatibility) -> str:
    """site/index.html: one offline page (inline CSS/JS, the table embedded as JSON)."""
    filters = {
        "os": sorted({r.axes.os for r in table.rows}),
        "python": sorted({r.axes.python for r in table.rows}, key=_version),
        "torch": sorted({r.axes.torch for r in table.rows}, key=_version),
        "accelerator": sorted({r.axes.accelerator for r in table.rows}),
        "stack": sorted({r.axes.stack for r in table.rows}),
        "where": sorted({r.where.kind for r in table.rows}),
    }
    return (
        _environment()
        .get_template("index.html.j2")
        .render(
            table=table,
            filters=filters,
            data=table.model_dump(mode="json"),
            stack_label=stack_label,
            device_label=device_label,
            where_label=where_label,
            accelerator_label=accelerator_label,
        )
    )


def write_all(table: Compatibility, out: Path) -> list[Path]:
    """Write the three forms under `out` (the repository root); returns their paths."""
    paths = [out / MD_FILE, out / JSON_FILE, out / SITE_FILE]
    write_atomic(paths[0], markdown(table))
    write_atomic(paths[1], table_json(table))
    write_atomic(paths[2], html(table))
    return paths


# --------------------------------------------------------------------------- diff


@dataclass(frozen=True)
class Change:
    cell: str
    where: str
    check: str
    mode: Mode
    old: Status | None
    new: Status | None
    row_kept: bool = True
    """The (cell, where) row is still in the new table."""

    @property
    def regression(self) -> bool:
        """It passed before and, in a row that still exists, no longer passes."""
        return self.old == "pass" and self.new != "pass" and self.row_kept

    def __str__(self) -> str:
        mark = "RED  " if self.regression else "GREEN" if self.new == "pass" else "     "
        return (
            f"{mark} {self.cell} [{self.where}] {self.check} {self.mode}: "
            f"{self.old or 'absent'} -> {self.new or 'absent'}"
        )


def _statuses(table: Compatibility) -> dict[tuple[str, str, str, Mode], Status]:
    return {
        (r.cell, r.where.kind, name, mode): outcome.status
        for r in table.rows
        for name, check in r.checks.items()
        for mode in MODES
        if (outcome := getattr(check, mode)) is not None
    }


def diff(old: Compatibility, new: Compatibility) -> list[Change]:
    """Every (cell, where, check, mode) whose status changed, sorted.

    A check missing from a row that still exists counts as "does not pass" (a regression if
    it passed), whereas a row that disappeared entirely (a cell dropped from the matrix) is
    listed but is not a regression.
    """
    before, after = _statuses(old), _statuses(new)
    rows_after = {(r.cell, r.where.kind) for r in new.rows}
    changes = []
    for key in sorted(before.keys() | after.keys()):
        was, now = before.get(key), after.get(key)
        if was == now:
            continue
        changes.append(Change(*key, old=was, new=now, row_kept=key[:2] in rows_after))
    return changes


def regressions(changes: Iterable[Change]) -> list[Change]:
    return [c for c in changes if c.regression]


# --------------------------------------------------------------------------- recommend


@dataclass(frozen=True)
class Recommendation:
    row: Row | None
    mode: Mode | None
    """raw: passes as installed; compat: passes with audiomatrix.compat."""
    explanation: str


def _passes(row: Row, checks: Sequence[str], mode: Mode) -> bool:
    def ok(name: str) -> bool:
        outcome = getattr(row.checks.get(name) or CheckRow(), mode)
        return outcome is not None and outcome.status == "pass"

    return all(ok(c) for c in checks)


def _gpu_failed(row: Row, mode: Mode) -> bool:
    outcome = getattr(row.checks.get("accelerator") or CheckRow(), mode)
    return outcome is not None and outcome.status in FAILED


def recommend(
    table: Compatibility,
    workloads: Sequence[str],
    python: str | None = None,
    gpu_arch: str | None = None,
    os: str | None = None,
) -> Recommendation:
    """The best row for the asked workloads, with why; `row` is None when none qualifies.

    Rows that pass every asked check raw come first, then those that pass with compat; within
    each, the newest torch, then the newest Python, then an image over a native venv (an image
    is the known-good environment one pull away).
    """
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        names = ", ".join(WORKLOADS)
        return Recommendation(None, None, f"unknown workload {unknown[0]!r} (known: {names})")
    asked = list(workloads) or list(WORKLOADS)
    checks = [c for w in asked for c in WORKLOADS[w]]
    filters = []
    rows = list(table.rows)
    if python:
        filters.append(f"Python {python}")
        rows = [r for r in rows if r.axes.python == python]
    if os:
        filters.append(f"OS {os}")
        rows = [r for r in rows if os in (r.axes.os, r.family)]
    if gpu_arch:
        filters.append(f"GPU {gpu_arch}")
        rows = [r for r in rows if gpu_arch in r.gpu_arch]
    constraints = f" with {', '.join(filters)}" if filters else ""
    among = f" (among rows{constraints})" if filters else ""
    if not rows:
        return Recommendation(None, None, f"no tested cell matches{constraints}")

    def rank(row: Row) -> tuple[Any, ...]:
        return (
            _version(row.axes.torch),
            _version(row.axes.python),
            row.where.kind == "image",
            row.cell,
        )

    for mode in MODES:
        passing = [r for r in rows if _passes(r, checks, mode) and not _gpu_failed(r, mode)]
        if not passing:
            continue
        best = max(passing, key=rank)
        how = "as installed (raw)" if mode == "raw" else "with audiomatrix.compat applied"
        text = [
            f"{best.cell} ({where_label(best.where, best.cell)}): torch {best.axes.torch}, Python "
            f"{best.versions.get('python') or best.axes.python}, {stack_label(best.versions)}.",
            f"It is the newest torch{among} whose {', '.join(checks)} checks all pass "
            f"{how}; {len(passing)} of {len(rows)} matching rows pass {mode}.",
        ]
        if mode == "compat":
            text.append("No matching row passes them all raw.")
        else:
            newer = [r for r in rows if _passes(r, checks, "compat") and rank(r)[0] > rank(best)[0]]
            if newer:
                top = max(newer, key=rank)
                text.append(
                    f"With compat, a newer torch also works: {top.cell} (torch {top.axes.torch})."
                )
        if gpu_arch:
            acc = getattr(best.checks.get("accelerator") or CheckRow(), mode)
            verified = acc is not None and acc.status == "pass"
            text.append(
                f"{best.axes.accelerator} builds declare {gpu_arch}; "
                + (
                    f"the accelerator check passed on {device_label(best.where)}."
                    if verified
                    else "the accelerator check did not run on a GPU here, so that is unverified."
                )
            )
        text.append(f"Evidence: {best.source} (run {best.run}, lock {best.lock_sha256[:12]}).")
        return Recommendation(best, mode, " ".join(text))
    never = [c for c in checks if not any(_passes(r, [c], "compat") for r in rows)]
    why = f"{', '.join(never)} never passes" if never else "no single row passes them all at once"
    return Recommendation(
        None,
        None,
        f"none of the {len(rows)} tested rows{constraints} passes {', '.join(checks)}, "
        f"even with compat: {why}",
    )
