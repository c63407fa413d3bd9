"""The failures `recommend` names and the fix each has, with the runs that prove it.

A fix is named with its proof: a change of packages, as a remedy cell's declared change that
fixed the failing checks in its parent cell (both runs named), else as another stack measured
beside a failing row (the same OS, Python, torch and accelerator) that passes (both runs and
every version that differs named: not a single change); and compat's remedies as the split
proved them for that failure (the run with only that set named). Where no run proves a fix,
the catalog's remedy, marked as such. What a run proves is asked of views.fixes, as the page and
`audiomatrix check` ask it. Reads compatibility.json only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from audiomatrix.records.compatibility import Compatibility, Row
from audiomatrix.suite.schema import CHECKS, Mode
from audiomatrix.table.compat_split import summary
from audiomatrix.views.fixes import (
    catalog_entry,
    compat_proofs,
    failed,
    failed_with,
    outcome,
    passed,
    remedy_fixes,
)
from audiomatrix.views.labels import stack_label

MOST = 5
"""The most failures an answer lists; the rest are counted."""


@dataclass(frozen=True)
class Failure:
    """One known failure (or an unknown one: None) of the asked checks, over rows."""

    signature: str | None
    checks: tuple[str, ...]
    rows: tuple[Row, ...]


def failures(rows: Sequence[Row], checks: Sequence[str], mode: Mode) -> list[Failure]:
    """The failures of the asked checks in `mode`, those on most rows first."""
    found: dict[str | None, tuple[list[str], list[Row]]] = {}
    for row in rows:
        for check in checks:
            if failed(row, check, mode):
                signature = outcome(row, check, mode).signature  # type: ignore[union-attr]
                names, where = found.setdefault(signature, ([], []))
                names += [check] if check not in names else []
                where += [row] if row not in where else []
    groups = [
        Failure(s, tuple(sorted(c, key=checks.index)), tuple(r)) for s, (c, r) in found.items()
    ]
    return sorted(groups, key=lambda f: (-len(f.rows), f.signature or "~"))


def related(workloads: Sequence[str], asked: Sequence[str]) -> list[str]:
    """The checks beside a workload's in its suite modules that no workload asks for (XTTS:
    xtts_concurrent, the same model serving requests at once)."""
    modules = {c.module for c in CHECKS if c.workload in workloads}
    return [c.name for c in CHECKS if c.module in modules and c.name not in asked]


# --------------------------------------------------------------------------- the fixes


def _failed_with(row: Row, checks: Sequence[str], signature: str | None) -> list[str]:
    return [c for c in checks if failed_with(row, c, "raw", signature)]


def _remedy_cell_fix(table: Compatibility, failure: Failure) -> str | None:
    found = remedy_fixes(table, failure.checks, failure.signature)
    if not found:
        return None
    change = found[0][0].change
    alone = "a single change, " if found[0][0].minimal else ""
    pairs = "; and ".join(
        f"{', '.join(fixed)} in {r.repairs} ({' and '.join(r.runs)})"
        for r, fixed in found if r.change == change
    )  # fmt: skip
    return f"`{', '.join(change)}` ({alone}remedy cell): it fixed {pairs}"


def _compat_fix(table: Compatibility, failure: Failure) -> str | None:
    """The split's proof on the failure's own rows first, then on any row."""
    found = next(compat_proofs(table, failure.checks, failure.signature, failure.rows), None)
    if found is None:
        return None
    row, check, proof = found
    names = ", ".join(f'"{n}"' for n in proof.minimal[0].remedies)
    return (
        f"compat, {summary(proof)} ({check} in {row.cell}: "
        f"{proof.minimal[0].log or row.source}), applied by "
        f"audiomatrix.compat.enable(only=[{names}])"
    )


def changed(row: Row, other: Row) -> str:
    """`demucs 4.0.1 -> 4.1.0, TTS 0.22.0 -> -`: how two rows' measured versions differ."""
    names = dict.fromkeys([*row.versions, *other.versions])
    return ", ".join(
        f"{n} {row.versions.get(n) or '-'} -> {other.versions.get(n) or '-'}"
        for n in names
        if row.versions.get(n) != other.versions.get(n) and n != "python"
    )


def _beside(row: Row, other: Row) -> bool:
    """The same OS, Python, torch, accelerator, installer and place, another stack."""
    axes = ("os", "python", "torch", "accelerator")
    return (
        all(getattr(row.axes, a) == getattr(other.axes, a) for a in axes)
        and (row.installer, row.where.kind) == (other.installer, other.where.kind)
        and row.axes.stack != other.axes.stack
    )


def _side_by_side(table: Compatibility, failure: Failure) -> str | None:
    """A row of the failure beside one with another stack that passes, raw, the checks it
    failed."""
    for row in failure.rows:
        hit = _failed_with(row, failure.checks, failure.signature)
        for other in table.rows:
            if hit and _beside(row, other) and all(passed(other, c, "raw") for c in hit):
                return (
                    f"the {other.axes.stack} stack, measured beside it: {row.cell} fails and "
                    f"{other.cell} passes ({row.source} and {other.source}); they differ in "
                    f"{changed(row, other)}, so no single change is proven"
                )
    return None


def fix(table: Compatibility, failure: Failure) -> str:
    """The proven fixes of a failure, or the catalog's remedy marked as proven by no run."""
    change = _remedy_cell_fix(table, failure) or _side_by_side(table, failure)
    proven = [f for f in (change, _compat_fix(table, failure)) if f]
    if proven:
        return "Proven fix: " + "; or ".join(proven) + "."
    entry = catalog_entry(failure.signature)
    if entry is None:
        return "No known fix: no catalog entry names this failure."
    return f"Fix (catalog, not proven by a run): {entry.remedy}"


def title(table: Compatibility, signature: str | None) -> str:
    entry = next((s for s in table.signatures if s.id == signature), None)
    return f"{signature} ({entry.title})" if entry else (signature or "an unknown failure")


def failure_line(table: Compatibility, failure: Failure, of: int) -> str:
    """`- <signature> (<title>) on 5 of 9 rows (xtts, ...), stacks: ... Proven fix: ...`"""
    stacks = sorted({stack_label(r.versions) for r in failure.rows})
    return (
        f"- {title(table, failure.signature)} on {len(failure.rows)} of {of} rows "
        f"({', '.join(failure.checks)}; {' / '.join(stacks)}). {fix(table, failure)}"
    )


def failure_lines(table: Compatibility, found: Sequence[Failure], of: int) -> list[str]:
    lines = [failure_line(table, f, of) for f in found[:MOST]]
    if len(found) > MOST:
        lines.append(f"- and {len(found) - MOST} more failures, each on fewer rows")
    return lines
