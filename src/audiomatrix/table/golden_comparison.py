"""Golden outputs across cells: each run's output fingerprints against a reference cell's.

The suite's model checks make the same tiny models from the same fixed weights in every cell
and fingerprint what they output (audiomatrix.suite.golden). Here, at report time, each
standing run's fingerprints are compared with those of the reference cells matrix.yaml names
(`reference:`, in order of preference; per check and mode the first whose run of it passed).
The measured relative error is kept with the tolerance the cells derived from float32
arithmetic; beyond it, a pass becomes `drift`.

The comparison has to be able to fail: each fingerprinting check also fingerprints a control
(the model with its weights moved by a regression-sized amount), which must land beyond the
tolerance from the reference's output. Where it does not, the verdict is `unproven`: a match
there says nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from audiomatrix.records.compatibility import Golden, GoldenVerdict, Row
from audiomatrix.suite.schema import CheckOutcome, Fingerprint, Mode


def relative_error(output: Fingerprint, reference: Fingerprint) -> float | None:
    """|output - reference| / |reference| as the fingerprints estimate it; None for another
    shape (no tolerance covers a different length)."""
    if output.shape != reference.shape or len(output.sketch) != len(reference.sketch):
        return None
    distance = math.dist(output.sketch, reference.sketch)
    size = math.hypot(*reference.sketch)
    if size == 0:
        return 0.0 if distance == 0 else math.inf
    return distance / size


def _outputs(fingerprints: Mapping[str, Fingerprint]) -> dict[str, Fingerprint]:
    return {name: f for name, f in fingerprints.items() if f.control_of is None}


def compare(
    fingerprints: Mapping[str, Fingerprint], reference: Mapping[str, Fingerprint], cell: str
) -> Golden | None:
    """A run's fingerprints of one check against the reference run's; None when they share
    no output to compare."""
    names = sorted(set(_outputs(fingerprints)) & set(_outputs(reference)))
    if not names:
        return None
    tolerance = max(max(fingerprints[n].tolerance, reference[n].tolerance) for n in names)
    errors = {n: relative_error(fingerprints[n], reference[n]) for n in names}
    shape = next((n for n, e in errors.items() if e is None), None)
    worst = max(names, key=lambda n: -1.0 if errors[n] is None else errors[n])
    error = None if shape else errors[worst]
    controls = [
        relative_error(f, reference[f.control_of])
        for f in fingerprints.values()
        if f.control_of in reference and f.control_of in names
    ]
    control = min((c for c in controls if c is not None), default=None)
    if shape is not None:
        verdict: GoldenVerdict = "drift"
        detail = (
            f"{shape}: shape {fingerprints[shape].shape}, the reference's {reference[shape].shape}"
        )
    elif error is not None and error > tolerance:
        verdict, detail = "drift", f"{worst}: relative error {error:.3g} > {tolerance:.3g}"
    elif control is None or control <= tolerance:
        verdict, detail = "unproven", "no control output drifted beyond the tolerance"
    else:
        verdict, detail = "match", None
    return Golden(
        reference=cell, outputs=names, error=error, tolerance=tolerance, control=control,
        verdict=verdict, detail=detail,
    )  # fmt: skip


Key = tuple[str, Mode]
"""(check, mode)."""
Reference = tuple[str, dict[str, Fingerprint]]
"""(reference cell, the fingerprints of its run of a check)."""


def references(
    runs: Iterable[tuple[str, Mapping[Mode, Sequence[CheckOutcome]]]], preferred: Sequence[str]
) -> dict[Key, Reference]:
    """Per check and mode, the first preferred cell whose run of it passed with outputs.
    `runs` are the standing, current runs: (cell, outcomes by mode)."""
    by_cell: dict[str, Mapping[Mode, Sequence[CheckOutcome]]] = dict(runs)
    found: dict[Key, Reference] = {}
    for cell in preferred:
        for mode, outcomes in (by_cell.get(cell) or {}).items():
            for outcome in outcomes:
                key = (outcome.check, mode)
                if key not in found and outcome.status == "pass" and _outputs(outcome.fingerprints):
                    found[key] = (cell, dict(outcome.fingerprints))
    return found


def judge(
    modes: Mapping[Mode, Sequence[CheckOutcome]], found: Mapping[Key, Reference]
) -> dict[Key, Golden]:
    """Every check of a run that has a reference, compared with it."""
    judged = {}
    for mode, outcomes in modes.items():
        for outcome in outcomes:
            reference = found.get((outcome.check, mode))
            if reference is None:
                continue
            golden = compare(outcome.fingerprints, reference[1], reference[0])
            if golden is not None:
                judged[(outcome.check, mode)] = golden
    return judged


def with_verdicts(row: Row, judged: Mapping[Key, Golden]) -> Row:
    """The report row with each compared check's golden verdict; a pass that drifted is
    `drift`."""
    checks = dict(row.checks)
    for (name, mode), golden in judged.items():
        outcome = getattr(checks[name], mode) if name in checks else None
        if outcome is None:
            continue
        drifted = golden.verdict == "drift" and outcome.status == "pass"
        update = {"golden": golden, **({"status": "drift"} if drifted else {})}
        checks[name] = checks[name].model_copy(update={mode: outcome.model_copy(update=update)})
    return row.model_copy(update={"checks": checks})


def compare_rows(made: Sequence[tuple[Row, Any]], preferred: Sequence[str]) -> list[Row]:
    """Every standing, current report row (with the run it came from) against the reference
    cells' runs; the others unchanged."""
    current = [(row, run) for row, run in made if not row.differs and not row.stale]
    found = references([(row.cell, run.modes) for row, run in current], preferred)
    judged = {id(row): judge(run.modes, found) for row, run in current}
    return [with_verdicts(row, judged[id(row)]) if id(row) in judged else row for row, _ in made]
