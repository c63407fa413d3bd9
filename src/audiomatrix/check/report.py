"""What `audiomatrix check` answers, as data: the catalog entries an error or a set of versions
matches (`matches`), each check's outcome with its proven fix (`checks`), the nearest measured
row, this machine's GPUs, and whether anything fails. The command line prints it or dumps it
as JSON; both read this one record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from audiomatrix.catalog import matching
from audiomatrix.catalog.matching import Match
from audiomatrix.catalog.signatures import Signature
from audiomatrix.check import evidence, gpu
from audiomatrix.check.environment import EnvironmentRun
from audiomatrix.check.findings import Finding, row_findings, run_findings
from audiomatrix.check.versions import Expected, expected
from audiomatrix.records.compatibility import Compatibility, Row
from audiomatrix.suite import schema
from audiomatrix.suite.probe import normalise
from audiomatrix.views.labels import gpu_label, where_label

ERROR_TEXT = "the error text"


@dataclass
class Report:
    subject: str
    matches: list[dict[str, Any]] = field(default_factory=list)
    checks: list[Finding] = field(default_factory=list)
    versions: dict[str, str | None] = field(default_factory=dict)
    python: str | None = None
    nearest: dict[str, Any] | None = None
    gpus: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    broken: str | None = None
    """Why the environment could not be checked: a finding (exit 1), not a crash."""

    @property
    def failing(self) -> bool:
        """Something failed: the environment could not be checked, a check failed (here, or
        in the nearest row), or, where no row was measured, the catalog's ranges hold; for
        an error text, that the catalog does not know it."""
        if self.subject == ERROR_TEXT:
            return not self.matches
        if self.broken or any(c.failed for c in self.checks):
            return True
        return self.nearest is None and bool(self.matches)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for item, finding in zip(data["checks"], self.checks, strict=True):
            item["fix"] = _fix_json(finding.fix)
        return data


def _fix_json(fix: evidence.Fix | None) -> dict[str, Any] | None:
    return None if fix is None else {**asdict(fix), "proven": fix.proven}


def _entry(signature: Signature, table: Compatibility) -> dict[str, Any]:
    return {
        "signature": signature.id,
        "title": signature.title,
        "affects": dict(signature.affects),
        "remedy": signature.remedy,
        "sources": list(signature.sources),
        "reproduced": [asdict(s) for s in evidence.reproduced(table, signature.id)],
    }


def log_matches(found: Sequence[Match], table: Compatibility) -> list[dict[str, Any]]:
    """Each match of a pasted error with the rows that reproduced its signature."""
    return [
        {**_entry(m.signature, table), "whole": m.whole, "line": m.line, "in_warning": m.in_warning}
        for m in found
    ]


def expected_matches(found: Sequence[Expected], table: Compatibility) -> list[dict[str, Any]]:
    """Each catalog entry whose ranges hold the versions, with why and its rows."""
    return [{**_entry(e.signature, table), "because": e.because} for e in found]


def describe_row(row: Row, versions: Mapping[str, str | None], python: str) -> dict[str, Any]:
    return {
        "cell": row.cell,
        "where": where_label(row.where, row.cell),
        "source": row.source,
        "torch": row.axes.torch,
        "python": row.axes.python,
        "differs": evidence.differences(row, versions, python),
    }


def gpu_lines(
    run: EnvironmentRun | None, checks: Sequence[Finding], row: Row | None
) -> tuple[list[str], list[str]]:
    """(this machine's GPUs, each with what the checked wheel has for it: as the run's
    accelerator check observed or its fatbins predict, else as the nearest row measured;
    notes)."""
    found = gpu.local_gpus()
    if isinstance(found, str):
        return [], [f"{found}: no GPU here to read the wheel's kernels for"]
    accelerator = next((c for c in checks if c.check == "accelerator"), None)
    observed = (accelerator.raw, accelerator.signature) if accelerator else (None, None)
    lines = []
    for card in found:
        if run is not None and run.environment is not None:
            host = (run.environment.host.compute_capability, run.environment.host.gpu)
            verdict = gpu.wheel_verdict(card.arch, run.environment.facts.gpu_arch, host, observed)
        elif row is not None and card.arch in row.gpu:
            verdict = f"{gpu_label(row.gpu[card.arch])} in {row.cell}"
        else:
            verdict = "not measured"
        lines.append(f"{card.label}: {verdict}")
    return lines, []


def for_log(text: str, table: Compatibility) -> Report:
    """A pasted error or traceback against the catalog."""
    found = log_matches(matching.matches(text), table)
    notes = [] if found else ["no catalog entry matches this text"]
    return Report(ERROR_TEXT, matches=found, notes=notes)


def versions_of(environment: schema.Environment) -> dict[str, str | None]:
    return {normalise(k): v for k, v in environment.versions.items() if k != "python"}


def for_versions(
    subject: str,
    versions: Mapping[str, str | None],
    python: str,
    table: Compatibility,
    checks: Sequence[str],
) -> Report:
    """Versions without a run: the catalog entries their ranges hold, the nearest row and
    what it observed."""
    row = evidence.nearest(table, versions, python)
    observed = row_findings(table, row, checks) if row else []
    gpus, notes = gpu_lines(None, observed, row)
    return Report(
        subject,
        matches=expected_matches(expected(versions), table),
        checks=observed,
        versions=dict(versions),
        python=python,
        nearest=describe_row(row, versions, python) if row else None,
        gpus=gpus,
        notes=notes if row else [*notes, "the table has no rows to compare with"],
    )


def for_environment(run: EnvironmentRun, table: Compatibility, subject: str = "") -> Report:
    """A run of the suite in an environment: each check, the nearest row, the GPU."""
    subject = subject or str(run.python)
    if run.environment is None:
        return Report(subject, broken=run.broken or "the environment could not be measured")
    versions = versions_of(run.environment)
    python = ".".join(run.environment.facts.python.split(".")[:2])
    row = evidence.nearest(table, versions, python, run.environment.facts.ffmpeg is not None)
    checks = run_findings(run, table, [row] if row else [])
    gpus, notes = gpu_lines(run, checks, row)
    return Report(
        subject,
        checks=checks,
        versions=versions,
        python=run.environment.facts.python,
        nearest=describe_row(row, versions, python) if row else None,
        gpus=gpus,
        notes=notes,
        broken=run.broken,
    )
