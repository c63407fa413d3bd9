"""Per check, what failed and the fix a run proves: from a run of the suite in a person's own
environment, or from the nearest row of the table (what it observed there)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from audiomatrix.check.environment import EnvironmentRun
from audiomatrix.check.evidence import Fix, catalog_fix, compat_fix, proven_in_table
from audiomatrix.records.compatibility import CheckRow, Compatibility, Outcome, Row
from audiomatrix.suite.schema import CHECKS, FAILED, CheckOutcome
from audiomatrix.table.compat_split import proof
from audiomatrix.table.report import signature_of

WORKLOAD = {c.name: c.workload for c in CHECKS}
HERE = "this environment"


@dataclass(frozen=True)
class Finding:
    check: str
    workload: str | None
    raw: str | None
    compat: str | None
    signature: str | None
    """The known failure raw (with compat where only compat failed); None when both passed."""
    first_error: str | None
    log: str | None
    fix: Fix | None
    """The proven fix of the raw failure (None: nothing failed raw)."""
    where: str
    """`this environment`, or the row's cell it was observed in."""

    @property
    def failed(self) -> bool:
        return self.raw in FAILED or self.compat in FAILED


def _failing(raw: Outcome | None, compat: Outcome | None) -> Outcome | None:
    return next((o for o in (raw, compat) if o is not None and o.status in FAILED), None)


def finding(
    check: str, found: CheckRow, where: str, table: Compatibility, own: Fix | None, near: list[Row]
) -> Finding:
    """One check's finding; the fix, for a raw failure: `own` (a proof from the same run),
    else one the table proves (`near` rows first), else the catalog's."""
    failing = _failing(found.raw, found.compat)
    fix = None
    if found.raw is not None and found.raw.status in FAILED:
        signature = found.raw.signature or ""
        fix = own or proven_in_table(table, check, signature, near) or catalog_fix(signature)
    return Finding(
        check=check,
        workload=WORKLOAD.get(check),
        raw=found.raw.status if found.raw else None,
        compat=found.compat.status if found.compat else None,
        signature=failing.signature if failing else None,
        first_error=failing.first_error if failing else None,
        log=failing.log if failing else None,
        fix=fix,
        where=where,
    )


def row_findings(table: Compatibility, row: Row, checks: Sequence[str]) -> list[Finding]:
    """What the row observed for the chosen checks (all of them when none are chosen)."""
    chosen = [c for c in row.checks if not checks or c in checks]
    own = {c: compat_fix(row.checks[c].remedies, row.cell, row.source) for c in chosen}
    return [finding(c, row.checks[c], row.cell, table, own[c], [row]) for c in chosen]


def _outcome(check: CheckOutcome | None, out: Path) -> Outcome | None:
    if check is None:
        return None
    log = out / check.log if check.log else None
    text = log.read_text(errors="replace") if log and check.status in FAILED else ""
    return Outcome(
        status=check.status,
        signature=signature_of(check, text),
        first_error=check.first_error,
        log=str(log) if log else None,
    )


def run_findings(run: EnvironmentRun, table: Compatibility, near: list[Row]) -> list[Finding]:
    """Each check the run made, raw and with compat, with its proven fix."""
    modes = run.modes or {}
    by_mode = {m: {c.check: c for c in record.checks} for m, record in modes.items()}
    names = list(dict.fromkeys(n for found in by_mode.values() for n in found))
    findings = []
    for name in names:
        raw, compat = (by_mode.get(m, {}).get(name) for m in ("raw", "compat"))
        row = CheckRow(raw=_outcome(raw, run.out), compat=_outcome(compat, run.out))
        split = proof(run.split, name, row.raw and row.raw.status, row.compat and row.compat.status,
                      str(run.out))  # fmt: skip
        own = compat_fix(split, HERE)
        findings.append(finding(name, row, HERE, table, own, near))
    return findings
