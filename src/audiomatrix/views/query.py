"""Questions asked of a finished table: what changed between two (diff), and which cell to
use for given workloads and constraints (recommend). Both read compatibility.json only."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from audiomatrix.core.versions import version_key
from audiomatrix.records.compatibility import CheckRow, Compatibility, Remedy, Row
from audiomatrix.suite.schema import FAILED, MODES, Mode, Status
from audiomatrix.table import remedy_split as remedysplit
from audiomatrix.table.report import WORKLOADS
from audiomatrix.views.render import GPU_WORDS, stack_label, where_label


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


def where_key(row: Row) -> str:
    """`image`, `native`, or `image@sm_120` for a run on a GPU: rows of one cell apart."""
    gpu = row.host.compute_capability
    return f"{row.where.kind}@{gpu}" if gpu else row.where.kind


def _statuses(table: Compatibility) -> dict[tuple[str, str, str, Mode], Status]:
    return {
        (r.cell, where_key(r), name, mode): outcome.status
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
    rows_after = {(r.cell, where_key(r)) for r in new.rows}
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


def runs_on(row: Row, gpu_arch: str) -> bool:
    """The row's wheel has kernels for the GPU (native or through the PTX JIT), as measured;
    a row without a measurement never qualifies."""
    kernels = row.gpu.get(gpu_arch)
    return kernels is not None and kernels.verdict != "no-kernel-image"


def _passes(row: Row, checks: Sequence[str], mode: Mode) -> bool:
    def ok(name: str) -> bool:
        outcome = getattr(row.checks.get(name) or CheckRow(), mode)
        return outcome is not None and outcome.status == "pass"

    return all(ok(c) for c in checks)


def _gpu_failed(row: Row, mode: Mode) -> bool:
    outcome = getattr(row.checks.get("accelerator") or CheckRow(), mode)
    return outcome is not None and outcome.status in FAILED


def _remedy_sentence(remedy: Remedy) -> str:
    """A recommended remedy cell: the cell it repairs, the change, what the change fixed."""
    fixed = f"it fixes {', '.join(remedy.fixes)} there" if remedy.fixes else "it fixes nothing"
    return (
        f"It is {remedy.repairs} with {', '.join(remedy.change)}: {fixed}, measured on both "
        f"({', '.join(remedy.runs)})."
    )


def _remedies_needed(row: Row, checks: Sequence[str]) -> list[str]:
    """Which of compat's remedies each asked check that fails raw was proven to need."""
    proven = {
        name: remedysplit.summary(found)
        for name in dict.fromkeys(checks)
        if (found := (row.checks.get(name) or CheckRow()).remedies) is not None
    }
    if not proven:
        return []
    said = "; ".join(f"{name} {text}" for name, text in proven.items())
    return [f"Remedies it needs (each set proven by a run with only that set): {said}."]


def recommend(
    table: Compatibility,
    workloads: Sequence[str],
    python: str | None = None,
    gpu_arch: str | None = None,
    os: str | None = None,
    installer: str | None = None,
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
        rows = [r for r in rows if runs_on(r, gpu_arch)]
    if installer:
        filters.append(f"installer {installer}")
        rows = [r for r in rows if r.installer == installer]
    constraints = f" with {', '.join(filters)}" if filters else ""
    among = f" (among rows{constraints})" if filters else ""
    if not rows:
        return Recommendation(None, None, f"no tested cell matches{constraints}")

    def rank(row: Row) -> tuple[Any, ...]:
        """Seen on the asked GPU first, then a tested image (one pull away), then the newest
        torch, then Python."""
        seen = bool(gpu_arch) and row.gpu[str(gpu_arch)].basis == "observed"
        return (
            seen,
            row.where.kind == "image",
            version_key(row.axes.torch),
            version_key(row.axes.python),
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
            f"It is the newest torch{among}{' with a tested image' if rank(best)[1] else ''} "
            f"whose {', '.join(checks)} checks all pass {how}; {len(passing)} of {len(rows)} "
            f"matching rows pass {mode}.",
        ]
        if mode == "compat":
            text.append("No matching row passes them all raw.")
            text += _remedies_needed(best, checks)
        else:
            newer = [
                r
                for r in rows
                if _passes(r, checks, "compat") and version_key(r.axes.torch) > rank(best)[2]
            ]
            if newer:
                top = max(newer, key=rank)
                text.append(
                    f"With compat, a newer torch also works: {top.cell} (torch {top.axes.torch})."
                )
        if gpu_arch:
            kernels = best.gpu[gpu_arch]
            basis = (
                f"observed on {kernels.evidence}"
                if kernels.basis == "observed"
                else f"predicted from the wheel's compiled code ({kernels.evidence}); no "
                f"{gpu_arch} GPU ran it here"
            )
            text.append(f"On {gpu_arch}: {GPU_WORDS[kernels.verdict]}, {basis}.")
        text += [_remedy_sentence(r) for r in table.remedies
                 if (r.cell, r.where) == (best.cell, best.where.kind)]  # fmt: skip
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
