"""Passes with a proven fix: the third state beside as installed (raw) and with compat.

A workload that fails as installed passes with a proven fix only where a run proves one named
change: a remedy cell (its parent cell with one declared change, `remedy_of` in matrix.yaml,
e.g. `+six`) fixed every failing check in a run beside the parent's (table.remedy_cells), or
the split proved which of compat's remedies make each failing check pass (table.compat_split,
e.g. `torchaudio_save`). Nothing here is typed in: both come from compatibility.json.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from audiomatrix.records.compatibility import Compatibility, Remedy, Row

COMPAT = "compat"
"""Fix.by for compat's remedies proven by the split."""


class Fix(BaseModel):
    """The change that makes a workload pass, and the evidence it rests on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    changes: list[str]
    """A remedy cell's declared change (`+six`), or the compat remedies the split proved."""
    by: str
    """The remedy cell whose run proves it, or `compat` (the split's runs of this row)."""


def label(fix: Fix) -> str:
    """`+six`, or `checkpoint_globals + torchaudio_save`: the change as the grid names it."""
    return (" + " if fix.by == COMPAT else ", ").join(fix.changes)


def evidence(fix: Fix) -> str:
    """Where the claim comes from, for a tooltip or a legend."""
    if fix.by == COMPAT:
        return "compat's remedies, proven by rerunning each failing check with only them"
    return f"remedy cell {fix.by}: its run passes where this one fails"


def remedies_of(table: Compatibility) -> dict[tuple[str, str], list[Remedy]]:
    """The remedy cells measured against each parent cell, by (parent, where)."""
    found: dict[tuple[str, str], list[Remedy]] = {}
    for remedy in sorted(table.remedies, key=lambda r: (len(r.change), r.cell)):
        found.setdefault((remedy.repairs, remedy.where), []).append(remedy)
    return found


def _raw(row: Row, check: str) -> str | None:
    outcome = row.checks.get(check)
    return outcome.raw.status if outcome and outcome.raw else None


def workload_fix(row: Row, checks: Sequence[str], remedies: Sequence[Remedy]) -> Fix | None:
    """The proven change that makes every check of the workload pass in this row: one remedy
    cell (fewest changes first) that fixes each failing check and breaks none, else the split's
    proven compat remedies for each failing check (each check's first minimal set, together);
    None where the row passes as installed or no run proves a fix."""
    failing = [c for c in checks if _raw(row, c) != "pass"]
    if not failing or any(c not in row.checks for c in failing):
        return None
    for remedy in remedies:
        if set(failing) <= set(remedy.fixes) and not set(checks) & set(remedy.breaks):
            return Fix(changes=list(remedy.change), by=remedy.cell)
    proofs = [row.checks[c].remedies for c in failing]
    if all(p is not None and p.minimal for p in proofs):
        names = {name for p in proofs if p for name in p.minimal[0].remedies}
        return Fix(changes=sorted(names), by=COMPAT)
    return None
