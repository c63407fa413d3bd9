"""What the table proves about a failure: the rows that reproduced it, the nearest measured row
to a set of versions, and the fix for a check's failure that a run proves.

A fix is named with its proof or marked as having none, in this order: a compat remedy set
proven by a run with only that set (this environment's own run, else a table row's); a remedy
cell's one declared change that fixed the check in its parent cell (both runs named); else the
catalog's remedy, "not proven by a run". What a run proves is asked of views.fixes, as the page
and `recommend` ask it. Reads compatibility.json only.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from packaging.version import InvalidVersion, Version

from audiomatrix.catalog.signatures import Signature, catalog
from audiomatrix.records.compatibility import Compatibility, Outcome, RemedyProof, Row
from audiomatrix.suite.probe import normalise
from audiomatrix.suite.schema import MODES
from audiomatrix.table.compat_split import summary
from audiomatrix.views import fixes

STACK = ("torch", "torchaudio", "torchcodec", "tts", "coqui-tts", "transformers", "demucs")
"""The packages of the workloads (normalised names), shown first."""
MISSING_PACKAGE = re.compile(
    r"No module named '(\w+)'|(\w+) is required for|the (\w+) library is required"
)
"""How an entry's pattern says a package is missing."""


def missing_package(signature: Signature) -> str | None:
    """The package (normalised) whose absence the entry's failure is, if it is one."""
    found = MISSING_PACKAGE.search(signature.pattern.replace("\\", ""))
    return normalise(next(g for g in found.groups() if g)) if found else None


@functools.cache
def relevant() -> tuple[str, ...]:
    """The packages a row's nearness is counted on: the workloads', then every one the
    catalog's ranges name or whose absence an entry is (six, setuptools, ...)."""
    named = {normalise(p) for s in catalog() for p in s.affects}
    named |= {m for s in catalog() if (m := missing_package(s))}
    return (*STACK, *sorted(named - set(STACK)))


def _theirs(row: Row) -> dict[str, str | None]:
    """Every distribution the row's run measured, by normalised name, at its public version."""
    found = {normalise(k): public(v) for k, v in row.facts.installed.items()}
    return {**found, **{normalise(k): public(v) for k, v in row.versions.items() if v}}


@dataclass(frozen=True)
class Seen:
    """One check of one row that failed with a signature, and the log that shows it."""

    cell: str
    check: str
    mode: str
    where: str
    log: str | None
    first_error: str | None


@dataclass(frozen=True)
class Fix:
    kind: Literal["compat", "remedy cell", "catalog", "none"]
    text: str
    proven_by: list[str] = field(default_factory=list)
    """The runs (results files or logs) that prove it; [] for a fix no run proves."""

    @property
    def proven(self) -> bool:
        return bool(self.proven_by)


def public(version: str | None) -> str | None:
    """`2.6.0+cu124` -> `2.6.0`: the release a row and a range speak of."""
    if version is None:
        return None
    try:
        return Version(version).public
    except InvalidVersion:
        return version


def outcomes(row: Row) -> Iterable[tuple[str, str, Outcome]]:
    for check, found in row.checks.items():
        for mode in MODES:
            outcome = getattr(found, mode)
            if outcome is not None:
                yield check, mode, outcome


def reproduced(table: Compatibility, signature: str) -> list[Seen]:
    """Every check of the table's rows that failed with `signature`, raw before compat."""
    seen = [
        Seen(row.cell, check, mode, row.where.kind, outcome.log, outcome.first_error)
        for row in table.rows
        for check, mode, outcome in outcomes(row)
        if outcome.signature == signature
    ]
    return sorted(seen, key=lambda s: (MODES.index(s.mode), s.cell, s.check))  # type: ignore[arg-type]


def _same(row: Row, versions: Mapping[str, str | None]) -> list[str]:
    theirs = _theirs(row)
    return [p for p in relevant() if versions.get(p) and theirs.get(p) == public(versions[p])]


def nearness(
    row: Row, versions: Mapping[str, str | None], python: str, ffmpeg: bool | None = None
) -> tuple[int, ...]:
    """Same torch first, then how many stack packages agree (the failures follow them), then
    FFmpeg present or absent alike where it was measured (TorchCodec's failures follow it),
    then the same Python (minor), then a tested image before a native run."""
    return (
        bool(versions.get("torch"))
        and public(row.versions.get("torch")) == public(versions["torch"]),
        len(_same(row, versions)),
        ffmpeg is not None and (row.facts.ffmpeg is not None) == ffmpeg,
        row.axes.python == python,
        row.where.kind == "image",
    )


def nearest(
    table: Compatibility,
    versions: Mapping[str, str | None],
    python: str,
    ffmpeg: bool | None = None,
) -> Row | None:
    """The measured row closest to these versions (normalised names), Python X.Y and, where
    measured, FFmpeg's presence; None where no row shares torch or a stack package with them."""
    rows = sorted(table.rows, key=lambda r: r.cell)
    found = max(rows, key=lambda r: nearness(r, versions, python, ffmpeg), default=None)
    return found if found is not None and any(nearness(found, versions, python)[:2]) else None


def differences(row: Row, versions: Mapping[str, str | None], python: str) -> list[str]:
    """How the row departs from these versions, in words: `transformers 4.57.1 (here 4.49.0)`."""
    theirs = _theirs(row)
    found = [] if row.axes.python == python else [f"Python {row.axes.python} (here {python})"]
    for package in relevant():
        if package in versions and theirs.get(package) != public(versions[package]):
            there = theirs.get(package) or "absent"
            found.append(f"{package} {there} (here {versions[package] or 'absent'})")
    return found


def proven_in_table(
    table: Compatibility, check: str, signature: str, prefer: Sequence[Row] = ()
) -> Fix | None:
    """A compat remedy set a row's split proves for this check and failure (the preferred
    rows first), else a remedy cell's change that fixed it in its parent."""
    split = next(fixes.compat_proofs(table, [check], signature, prefer), None)
    if split is not None:
        row, _, proof = split
        return compat_fix(proof, row.cell, row.source)
    remedy = next((r for r, _ in fixes.remedy_fixes(table, [check], signature)), None)
    if remedy is None:
        return None
    text = f"{', '.join(remedy.change)}: fixed {check} in {remedy.cell}"
    return Fix("remedy cell", text, list(remedy.runs))


def compat_fix(found: RemedyProof | None, where: str, run: str = "") -> Fix | None:
    """The compat remedy sets a split proves (each by its run's log, else `run`), or None."""
    proven = fixes.proven_set(found)
    if proven is None:
        return None
    text = f"audiomatrix.compat, {summary(proven)} (in {where})"
    return Fix("compat", text, [s.log or run for s in proven.minimal])


def catalog_fix(signature: str | None) -> Fix:
    entry = fixes.catalog_entry(signature)
    if entry is None:
        return Fix("none", "no catalog entry knows this failure")
    return Fix("catalog", f"{entry.remedy} (not proven by a run)")
