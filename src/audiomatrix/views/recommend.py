"""Which cell to use for given workloads and constraints, and why (`audiomatrix recommend`).

Three steps, each its own functions: the rows that meet the constraints (views.constraints),
the best of those that pass the asked checks (raw before compat), and the sentences that say
why, with the failures the matching rows hit and each one's proven fix (views.proven). When
nothing fits, it says why (views.nofit) and answers again for the nearest constraints that
something meets. Reads compatibility.json only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from audiomatrix.core.versions import version_key
from audiomatrix.records.compatibility import CheckRow, Compatibility, Remedy, Row
from audiomatrix.suite.schema import FAILED, MODES, Mode
from audiomatrix.table import compat_split
from audiomatrix.table.report import WORKLOADS
from audiomatrix.views import fixes, nofit, proven
from audiomatrix.views.constraints import Constraints
from audiomatrix.views.labels import GPU_WORDS, stack_label, where_label


@dataclass(frozen=True)
class Recommendation:
    row: Row | None
    mode: Mode | None
    """raw: passes as installed; compat: passes with audiomatrix.compat."""
    explanation: str
    notes: tuple[str, ...] = ()
    """The lines after it: what the matching rows fail with and the proven fixes, what the
    chosen row still fails beside the asked checks; or why nothing fits."""
    matched: int = 0
    """How many tested rows meet the constraints."""
    nearest: tuple[tuple[str, Recommendation], ...] = ()
    """When nothing fits: the answers with some constraints set aside (named), fewest first:
    the first whose rows exist, and the first in which a row passes."""

    def lines(self) -> list[str]:
        found = [self.explanation, *self.notes]
        for aside, answer in self.nearest:
            found += [f"Setting aside {aside}:", *answer.lines()]
        return found


@dataclass(frozen=True)
class Choice:
    """The best row in the first mode (raw, then compat) in which any matching row qualifies."""

    row: Row
    mode: Mode
    passing: int
    """How many matching rows qualify in that mode."""


# --------------------------------------------------------------------------- filtering


def matching(rows: Sequence[Row], wanted: Constraints) -> list[Row]:
    """The rows that meet every given constraint; `os` names an os value or its family."""
    return [r for r in rows if wanted.admits_row(r)]


# --------------------------------------------------------------------------- ranking


def _passes(row: Row, checks: Sequence[str], mode: Mode) -> bool:
    return all(fixes.passed(row, c, mode) for c in checks)


def _gpu_failed(row: Row, mode: Mode) -> bool:
    return fixes.failed(row, "accelerator", mode)


def qualifying(rows: Sequence[Row], checks: Sequence[str], mode: Mode) -> list[Row]:
    """The rows whose asked checks all pass in `mode`, and whose GPU check did not fail."""
    return [r for r in rows if _passes(r, checks, mode) and not _gpu_failed(r, mode)]


GPU_PREFERENCE = ("partial", "ptx-jit", "native")
"""On the asked GPU: every library native before some kernels through the PTX JIT, before
some libraries without kernels."""


def rank(row: Row, gpu_arch: str | None) -> tuple[Any, ...]:
    """Seen on the asked GPU first, then its kernels there (native first), then a tested
    image (one pull away), then the newest torch, then Python."""
    kernels = row.gpu[gpu_arch] if gpu_arch else None
    return (
        kernels is not None and kernels.basis == "observed",
        GPU_PREFERENCE.index(kernels.verdict) if kernels else 0,
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


def _why(choice: Choice, rows: int, checks: Sequence[str], among: str, gpu_arch: str | None) -> str:
    how = "as installed (raw)" if choice.mode == "raw" else "with audiomatrix.compat applied"
    image = " with a tested image" if choice.row.where.kind == "image" else ""
    if gpu_arch:  # ranked before the image and the torch version
        kernels = f" with {GPU_WORDS[choice.row.gpu[gpu_arch].verdict]} kernels on {gpu_arch}"
        image = kernels + image.replace(" with", " and", 1)
    return (
        f"It is the newest torch{among}{image} whose {', '.join(checks)} checks all pass {how}; "
        f"{choice.passing} of {rows} matching rows pass {choice.mode}."
    )


def _proven_sets(row: Row, checks: Sequence[str]) -> str:
    """`diffrhythm_write proven alone: `torchaudio_save``: the remedies each asked check that
    fails raw was proven to need, by a run with only that set ("" where no split ran)."""
    return "; ".join(
        f"{name} {compat_split.summary(found)}"
        for name in dict.fromkeys(checks)
        if (found := (row.checks.get(name) or CheckRow()).remedies) is not None
    )


def _newer_with_compat(
    row: Row, rows: Sequence[Row], checks: Sequence[str], gpu_arch: str | None
) -> list[str]:
    """Beside a raw pick: the best row of a newer torch that passes with compat, if any, and
    the remedies it was proven to need."""
    newer = [
        r
        for r in rows
        if _passes(r, checks, "compat") and version_key(r.axes.torch) > version_key(row.axes.torch)
    ]
    if not newer:
        return []
    top = best(newer, gpu_arch)
    needs = f"; {sets}" if (sets := _proven_sets(top, checks)) else ""
    return [f"With compat, a newer torch also works: {top.cell} (torch {top.axes.torch}{needs})."]


def _remedies_needed(row: Row, checks: Sequence[str]) -> list[str]:
    """Which of compat's remedies each asked check that fails raw was proven to need."""
    said = _proven_sets(row, checks)
    return (
        [f"Remedies it needs (each set proven by a run with only that set): {said}."]
        if said
        else []
    )


def _in_code(row: Row, checks: Sequence[str]) -> list[str]:
    """The line that applies, in a user's own process, what the compat pick needs: the proven
    sets together, or every remedy where some check has none smaller proven."""
    names = fixes.compat_sets(row, [c for c in checks if not _passes(row, [c], "raw")])
    if names is not None:
        quoted = ", ".join(f'"{n}"' for n in names)
        call = f"enable(only=[{quoted}])"
    else:
        call = "enable()"
    return [
        f"In your code, before loading models: import audiomatrix.compat; audiomatrix.compat.{call}"
    ]


def _gpu_sentence(row: Row, gpu_arch: str) -> str:
    """The verdict on the asked GPU, what it rests on, and the operations a partial one
    lacks."""
    kernels = row.gpu[gpu_arch]
    basis = (
        f"observed on {kernels.evidence}"
        if kernels.basis == "observed"
        else f"predicted from the wheel's compiled code ({kernels.evidence}); no "
        f"{gpu_arch} GPU ran it here"
    )
    lacking = "".join(
        f" {lack.library.rsplit('/', 1)[-1]} has no kernels for it: no {lack.ops}."
        for lack in kernels.lacking
    )
    return f"On {gpu_arch}: {GPU_WORDS[kernels.verdict]}, {basis}.{lacking}"


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
    text = [_identity(row), _why(choice, len(rows), checks, among, gpu_arch)]
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


def _related(table: Compatibility, row: Row, mode: Mode, workloads: Sequence[str],
             checks: Sequence[str]) -> list[str]:  # fmt: skip
    """The checks beside the asked ones that the chosen row still fails, with how many rows
    pass them and their fix (XTTS: one model serving requests at once)."""
    lines = []
    for check in proven.related(workloads, checks):
        found = fixes.outcome(row, check, mode)
        if found is None or found.status not in FAILED:
            continue
        failing = [r for r in table.rows if fixes.failed_with(r, check, mode, found.signature)]
        passing = sum(_passes(r, [check], "compat") for r in table.rows)
        failure = proven.Failure(found.signature, (check,), tuple(failing))
        lines.append(
            f"Beside the asked checks, {check} fails here ({mode}): "
            f"{proven.title(table, found.signature)}; {passing} of {len(table.rows)} rows pass "
            f"it even with compat. {proven.fix(table, failure)}"
        )
    return lines


def _notes(table: Compatibility, rows: Sequence[Row], choice: Choice, checks: Sequence[str],
           workloads: Sequence[str]) -> tuple[str, ...]:  # fmt: skip
    """After the why: how to apply compat's part, what the matching rows fail with raw and
    the proven fixes, what the row still fails beside the asked checks."""
    lines = _in_code(choice.row, checks) if choice.mode == "compat" else []
    found = proven.failures(rows, checks, "raw")
    if found:
        lines += [f"What the {len(rows)} matching rows fail with, raw:",
                  *proven.failure_lines(table, found, len(rows))]  # fmt: skip
    return (*lines, *_related(table, choice.row, choice.mode, workloads, checks))


def answer(
    table: Compatibility, workloads: Sequence[str], checks: Sequence[str], wanted: Constraints
) -> Recommendation:
    """The best row for the checks under the constraints, with why and the notes; else why
    none fits (no answer for nearer constraints: see `recommend`)."""
    said = wanted.said()
    constraints = f" with {', '.join(said)}" if said else ""
    rows = matching(table.rows, wanted)
    if not rows:
        why = nofit.unmatched(table, wanted, checks)
        return Recommendation(None, None, f"no tested cell matches{constraints}", tuple(why))
    choice = choose(rows, checks, wanted.gpu_arch)
    if choice is None:
        why = nofit.blocked(table, rows, checks)
        text = none_passes(rows, checks, constraints)
        return Recommendation(None, None, text, tuple(why), matched=len(rows))
    among = f" (among rows{constraints})" if said else ""
    text = explanation(table, rows, choice, checks, wanted.gpu_arch, among)
    notes = _notes(table, rows, choice, checks, workloads)
    return Recommendation(choice.row, choice.mode, text, notes, matched=len(rows))


def nearest(
    table: Compatibility, workloads: Sequence[str], checks: Sequence[str], wanted: Constraints
) -> tuple[tuple[str, Recommendation], ...]:
    """Setting aside the fewest constraints (views.constraints.SET_ASIDE's order): the first
    answer whose rows exist, if none passes there, and the first in which a row passes."""
    found: list[tuple[str, Recommendation]] = []
    for aside in wanted.relaxations():
        relaxed = answer(table, workloads, checks, wanted.without(aside))
        named = ", ".join(w for name in aside for w in wanted.only(name).said())
        if relaxed.row is not None:
            return (*found, (named, relaxed))
        if not found and relaxed.matched:
            found.append((named, relaxed))
    return tuple(found)


def recommend(
    table: Compatibility,
    workloads: Sequence[str],
    python: str | None = None,
    gpu_arch: str | None = None,
    os: str | None = None,
    installer: str | None = None,
    torch: str | None = None,
    accelerator: str | None = None,
) -> Recommendation:
    """The best row for the asked workloads (all when none is asked), with why; `row` is None
    when none qualifies, and then the nearest answers say what does."""
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        names = ", ".join(WORKLOADS)
        return Recommendation(None, None, f"unknown workload {unknown[0]!r} (known: {names})")
    asked = list(workloads) or list(WORKLOADS)
    checks = [c for w in asked for c in WORKLOADS[w]]
    wanted = Constraints(python, torch, accelerator, os, gpu_arch, installer)
    found = answer(table, asked, checks, wanted)
    if found.row is not None:
        return found
    return replace(found, nearest=nearest(table, asked, checks, wanted))
