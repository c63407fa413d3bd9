"""What a run proves fixes a failure, asked in one place: the page's and `show`'s third state
(passes with a proven fix), `recommend`'s fixes (views.proven) and `audiomatrix check`'s
(check.evidence) all ask these questions here, so one question gets one answer everywhere.

A fix is only what a run proves one named change does: a remedy cell (its parent cell with one
declared change, `remedy_of` in matrix.yaml, e.g. `+six`) fixed the check in a run beside the
parent's (table.remedy_cells: both runs), or the split proved which of compat's remedies make
the check pass (table.compat_split: the run with only that set, e.g. `torchaudio_save`).
Otherwise only the catalog's remedy, which no run proves. Nothing here is typed in: the runs
come from compatibility.json.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pydantic import BaseModel, ConfigDict

from audiomatrix.catalog.signatures import UNCLASSIFIED, Signature, by_id
from audiomatrix.records.compatibility import (
    CheckRow,
    Compatibility,
    Outcome,
    Remedy,
    RemedyProof,
    Row,
)
from audiomatrix.suite.schema import FAILED, Mode

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


# --------------------------------------------------------------------------- a row's outcomes


def outcome(row: Row, check: str, mode: Mode) -> Outcome | None:
    return getattr(row.checks.get(check) or CheckRow(), mode)


def passed(row: Row, check: str, mode: Mode) -> bool:
    found = outcome(row, check, mode)
    return found is not None and found.status == "pass"


def failed(row: Row, check: str, mode: Mode) -> bool:
    found = outcome(row, check, mode)
    return found is not None and found.status in FAILED


def failed_with(row: Row, check: str, mode: Mode, signature: str | None) -> bool:
    return (
        failed(row, check, mode)
        and getattr(outcome(row, check, mode), "signature", None) == signature
    )


def _failing(row: Row, checks: Sequence[str]) -> list[str] | None:
    """The checks that do not pass raw in this row; None where one of them has no run here
    (nothing can be proven for it)."""
    found = [c for c in checks if not passed(row, c, "raw")]
    return None if any(c not in row.checks for c in found) else found


# --------------------------------------------------------------------------- remedy cells


def remedies(table: Compatibility) -> list[Remedy]:
    """The remedy cells, fewest changes first: the smallest change a run proves is named first."""
    return sorted(table.remedies, key=lambda r: (len(r.change), r.cell))


def remedies_of(table: Compatibility) -> dict[tuple[str, str], list[Remedy]]:
    """The remedy cells measured against each parent cell, by (parent, where)."""
    found: dict[tuple[str, str], list[Remedy]] = {}
    for remedy in remedies(table):
        found.setdefault((remedy.repairs, remedy.where), []).append(remedy)
    return found


def remedy_fixes(
    table: Compatibility, checks: Sequence[str], signature: str | None
) -> list[tuple[Remedy, list[str]]]:
    """Each remedy cell (fewest changes first) with those of `checks` its change fixed where its
    parent's run (the same cell, the same place) failed with `signature`, raw; `runs` of each
    names both runs."""
    parents = {(r.cell, r.where.kind): r for r in table.rows}
    found = []
    for remedy in remedies(table):
        parent = parents.get((remedy.repairs, remedy.where))
        fixed = [
            c for c in checks
            if c in remedy.fixes and parent and failed_with(parent, c, "raw", signature)
        ]  # fmt: skip
        if fixed:
            found.append((remedy, fixed))
    return found


def remedy_for(row: Row, checks: Sequence[str], mine: Sequence[Remedy]) -> Remedy | None:
    """Of the row's remedy cells (`mine`, fewest changes first), the first whose run passes all
    of `checks`: it fixed each one failing here and broke none; None where all pass already."""
    failing = _failing(row, checks)
    if not failing:
        return None
    return next(
        (r for r in mine if set(failing) <= set(r.fixes) and not set(checks) & set(r.breaks)),
        None,
    )


# --------------------------------------------------------------------------- compat's split


def proven_set(found: RemedyProof | None) -> RemedyProof | None:
    """A split's claim where it proves a set of compat's remedies smaller than all of them."""
    return found if found is not None and found.minimal else None


def _proof(row: Row, check: str) -> RemedyProof | None:
    return proven_set((row.checks.get(check) or CheckRow()).remedies)


def compat_proofs(
    table: Compatibility, checks: Sequence[str], signature: str | None, first: Sequence[Row] = ()
) -> Iterator[tuple[Row, str, RemedyProof]]:
    """The split's proven sets for `checks` where they failed with `signature`, raw, by row
    (the `first` rows, then the table's) and check."""
    for row in [*first, *(r for r in table.rows if r not in first)]:
        for check in checks:
            proof = _proof(row, check)
            if proof is not None and failed_with(row, check, "raw", signature):
                yield row, check, proof


def compat_sets(row: Row, checks: Sequence[str]) -> list[str] | None:
    """compat's remedies the split proved these checks of the row need, together: each one's
    first minimal set, in order; None where one of them has no proven set."""
    proofs = [_proof(row, c) for c in checks]
    if not all(proofs):
        return None
    return list(dict.fromkeys(n for p in proofs if p for n in p.minimal[0].remedies))


# --------------------------------------------------------------------------- the catalog


def catalog_entry(signature: str | None) -> Signature | None:
    """The catalog's entry for a failure, whose remedy no run proves; None for a failure no
    entry names (no signature, or unclassified)."""
    return by_id(signature) if signature and signature != UNCLASSIFIED else None


# --------------------------------------------------------------------------- the grid's state


def workload_fix(row: Row, checks: Sequence[str], mine: Sequence[Remedy]) -> Fix | None:
    """The proven change that makes every check of the workload pass in this row: one of its
    remedy cells (`mine`, remedy_for), else the split's proven compat remedies for each failing
    check (compat_sets); None where the row passes as installed or no run proves a fix."""
    remedy = remedy_for(row, checks, mine)
    if remedy is not None:
        return Fix(changes=list(remedy.change), by=remedy.cell)
    failing = _failing(row, checks)
    names = compat_sets(row, failing) if failing else None
    return Fix(changes=sorted(names), by=COMPAT) if names is not None else None
