"""Which cell to use for given workloads and constraints, and why (`audiomatrix recommend`).

Three steps, each its own functions: the rows that meet the constraints, the best of those that
pass the asked checks (raw before compat), and the sentences that say why. Reads
compatibility.json only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from audiomatrix.core.versions import version_key
from audiomatrix.records.compatibility import CheckRow, Compatibility, Remedy, Row
from audiomatrix.suite.schema import FAILED, MODES, Mode
from audiomatrix.table import compat_split
from audiomatrix.table.report import WORKLOADS
from audiomatrix.views.labels import GPU_WORDS, stack_label, where_label


@dataclass(frozen=True)
class Recommendation:
    row: Row | None
    mode: Mode | None
    """raw: passes as installed; compat: passes with audiomatrix.compat."""
    explanation: str


@dataclass(frozen=True)
class Choice:
    """The best row in the first mode (raw, then compat) in which any matching row qualifies."""

    row: Row
    mode: Mode
    passing: int
    """How many matching rows qualify in that mode."""


# --------------------------------------------------------------------------- filtering


def runs_on(row: Row, gpu_arch: str) -> bool:
    """The row's wheel has kernels for the GPU (native or through the PTX JIT), as measured;
    a row without a measurement never qualifies."""
    kernels = row.gpu.get(gpu_arch)
    return kernels is not None and kernels.verdict != "no-kernel-image"


def matching(
    rows: Sequence[Row],
    python: str | None = None,
    gpu_arch: str | None = None,
    os: str | None = None,
    installer: str | None = None,
) -> list[Row]:
    """The rows that meet every given constraint; `os` names an os value or its family."""
    return [
        r
        for r in rows
        if (not python or r.axes.python == python)
        and (not os or os in (r.axes.os, r.family))
        and (not gpu_arch or runs_on(r, gpu_arch))
        and (not installer or r.installer == installer)
    ]


def constraints_said(
    python: str | None = None,
    gpu_arch: str | None = None,
    os: str | None = None,
    installer: str | None = None,
) -> list[str]:
    """The given constraints in the words the answer names them with, in this order."""
    named = (("Python", python), ("OS", os), ("GPU", gpu_arch), ("installer", installer))
    return [f"{word} {value}" for word, value in named if value]


# --------------------------------------------------------------------------- ranking


def _passes(row: Row, checks: Sequence[str], mode: Mode) -> bool:
    def ok(name: str) -> bool:
        outcome = getattr(row.checks.get(name) or CheckRow(), mode)
        return outcome is not None and outcome.status == "pass"

    return all(ok(c) for c in checks)


def _gpu_failed(row: Row, mode: Mode) -> bool:
    outcome = getattr(row.checks.get("accelerator") or CheckRow(), mode)
    return outcome is not None and outcome.status in FAILED


def qualifying(rows: Sequence[Row], checks: Sequence[str], mode: Mode) -> list[Row]:
    """The rows whose asked checks all pass in `mode`, and whose GPU check did not fail."""
    return [r for r in rows if _passes(r, checks, mode) and not _gpu_failed(r, mode)]


def rank(row: Row, gpu_arch: str | None) -> tuple[Any, ...]:
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


def best(rows: Sequence[Row], gpu_arch: str | None) -> Row:
    return max(rows, key=lambda r: rank(r, gpu_arch))


def choose(rows: Sequence[Row], checks: Sequence[str], gpu_arch: str | None) -> Choice | None:
    """Rows that pass every asked check raw come first, then those that pass with compat;
    None when no row passes them all in either mode."""
    for mode in MODES:
        passing = qualifying(rows, checks, mode)
        if passing:
            return Choice(best(passing, gpu_arch), mode, len(passing))
    return None


# --------------------------------------------------------------------------- the sentences


def _identity(row: Row) -> str:
    return (
        f"{row.cell} ({where_label(row.where, row.cell)}): torch {row.axes.torch}, Python "
        f"{row.versions.get('python') or row.axes.python}, {stack_label(row.versions)}."
    )


def _why(choice: Choice, rows: int, checks: Sequence[str], among: str) -> str:
    how = "as installed (raw)" if choice.mode == "raw" else "with audiomatrix.compat applied"
    image = " with a tested image" if choice.row.where.kind == "image" else ""
    return (
        f"It is the newest torch{among}{image} whose {', '.join(checks)} checks all pass {how}; "
        f"{choice.passing} of {rows} matching rows pass {choice.mode}."
    )


def _newer_with_compat(
    row: Row, rows: Sequence[Row], checks: Sequence[str], gpu_arch: str | None
) -> list[str]:
    """Beside a raw pick: the best row of a newer torch that passes with compat, if any."""
    newer = [
        r
        for r in rows
        if _passes(r, checks, "compat") and version_key(r.axes.torch) > version_key(row.axes.torch)
    ]
    if not newer:
        return []
    top = best(newer, gpu_arch)
    return [f"With compat, a newer torch also works: {top.cell} (torch {top.axes.torch})."]


def _remedies_needed(row: Row, checks: Sequence[str]) -> list[str]:
    """Which of compat's remedies each asked check that fails raw was proven to need."""
    proven = {
        name: compat_split.summary(found)
        for name in dict.fromkeys(checks)
        if (found := (row.checks.get(name) or CheckRow()).remedies) is not None
    }
    if not proven:
        return []
    said = "; ".join(f"{name} {text}" for name, text in proven.items())
    return [f"Remedies it needs (each set proven by a run with only that set): {said}."]


def _gpu_sentence(row: Row, gpu_arch: str) -> str:
    kernels = row.gpu[gpu_arch]
    basis = (
        f"observed on {kernels.evidence}"
        if kernels.basis == "observed"
        else f"predicted from the wheel's compiled code ({kernels.evidence}); no "
        f"{gpu_arch} GPU ran it here"
    )
    return f"On {gpu_arch}: {GPU_WORDS[kernels.verdict]}, {basis}."


def _remedy_sentence(remedy: Remedy) -> str:
    """A recommended remedy cell: the cell it repairs, the change, what the change fixed."""
    fixed = f"it fixes {', '.join(remedy.fixes)} there" if remedy.fixes else "it fixes nothing"
    return (
        f"It is {remedy.repairs} with {', '.join(remedy.change)}: {fixed}, measured on both "
        f"({', '.join(remedy.runs)})."
    )


def _evidence(row: Row) -> str:
    return f"Evidence: {row.source} (run {row.run}, lock {row.lock_sha256[:12]})."


def explanation(
    table: Compatibility,
    rows: Sequence[Row],
    choice: Choice,
    checks: Sequence[str],
    gpu_arch: str | None,
    among: str,
) -> str:
    """Why the chosen row: what it is, how it qualified, what compat would add or needs, its
    kernels on the asked GPU, the remedy it proves, and the run that shows it."""
    row = choice.row
    text = [_identity(row), _why(choice, len(rows), checks, among)]
    if choice.mode == "compat":
        text += ["No matching row passes them all raw.", *_remedies_needed(row, checks)]
    else:
        text += _newer_with_compat(row, rows, checks, gpu_arch)
    if gpu_arch:
        text.append(_gpu_sentence(row, gpu_arch))
    text += [_remedy_sentence(r) for r in table.remedies
             if (r.cell, r.where) == (row.cell, row.where.kind)]  # fmt: skip
    text.append(_evidence(row))
    return " ".join(text)


def none_passes(rows: Sequence[Row], checks: Sequence[str], constraints: str) -> str:
    """Why no matching row qualifies: the checks that pass nowhere, or that none passes all."""
    never = [c for c in checks if not any(_passes(r, [c], "compat") for r in rows)]
    why = f"{', '.join(never)} never passes" if never else "no single row passes them all at once"
    return (
        f"none of the {len(rows)} tested rows{constraints} passes {', '.join(checks)}, "
        f"even with compat: {why}"
    )


# --------------------------------------------------------------------------- the answer


def recommend(
    table: Compatibility,
    workloads: Sequence[str],
    python: str | None = None,
    gpu_arch: str | None = None,
    os: str | None = None,
    installer: str | None = None,
) -> Recommendation:
    """The best row for the asked workloads (all when none is asked), with why; `row` is None
    when none qualifies."""
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        names = ", ".join(WORKLOADS)
        return Recommendation(None, None, f"unknown workload {unknown[0]!r} (known: {names})")
    checks = [c for w in (list(workloads) or list(WORKLOADS)) for c in WORKLOADS[w]]
    said = constraints_said(python, gpu_arch, os, installer)
    constraints = f" with {', '.join(said)}" if said else ""
    rows = matching(table.rows, python, gpu_arch, os, installer)
    if not rows:
        return Recommendation(None, None, f"no tested cell matches{constraints}")
    choice = choose(rows, checks, gpu_arch)
    if choice is None:
        return Recommendation(None, None, none_passes(rows, checks, constraints))
    among = f" (among rows{constraints})" if said else ""
    text = explanation(table, rows, choice, checks, gpu_arch, among)
    return Recommendation(choice.row, choice.mode, text)
