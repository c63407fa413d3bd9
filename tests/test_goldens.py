"""Golden outputs: stable draws and fingerprints (suite side), their comparison across cells
(report side), and the matrix's `reference:` cells. The in-cell half with real torch models
is tests/compat/test_golden.py, run in the CI cells' venvs."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from audiomatrix.records import run as run_record
from audiomatrix.smoke import results
from audiomatrix.spec import matrix as spec
from audiomatrix.spec.yamlpos import YamlFileError
from audiomatrix.suite import golden
from audiomatrix.suite.schema import CheckOutcome, Fingerprint, Provenance
from audiomatrix.table import golden_comparison, report
from audiomatrix.views import markdown
from support import run_result, write_cell_json

REFERENCE = "bookworm-py3.11-torch2.5.1-cu124-legacy-pinned"
SECOND = "bookworm-py3.11-torch2.9.1-cu128-maintained"
OTHER = "bookworm-py3.12-torch2.9.1-cu128-maintained"
PASS = {c: "pass" for c in report.CHECKS} | {"accelerator": "skip"}
TOLERANCE = 1e-4


def signal(size: int = 20_000, key: str = "signal") -> np.ndarray:
    return golden.stable_uniform(key, size, 0.5).astype(np.float64)


def moved(samples: np.ndarray, relative: float, key: str = "noise") -> np.ndarray:
    """`samples` plus noise whose norm is `relative` times theirs."""
    noise = golden.stable_uniform(key, samples.size, 1.0).astype(np.float64)
    return samples + noise * relative * np.linalg.norm(samples) / np.linalg.norm(noise)


def fingerprint(samples: np.ndarray, control_of: str | None = None) -> Fingerprint:
    return Fingerprint(
        shape=list(samples.shape), sketch=golden.sketch(samples),
        tolerance=0.0 if control_of else TOLERANCE, control_of=control_of,
    )  # fmt: skip


def outputs(samples: np.ndarray, control: float = 1e-2) -> dict[str, Fingerprint]:
    """A check's fingerprints: its output and a control moved by `control`."""
    return {
        "stems": fingerprint(samples),
        "control": fingerprint(moved(samples, control, "control"), control_of="stems"),
    }


# --------------------------------------------------------------------------- in the cell


def test_the_draws_are_pcg64s_raw_words_keyed_by_name() -> None:
    # numpy fixes PCG64's raw output across versions; these words are what every cell draws.
    assert golden.raw_stream("sketch", 3).tolist() == [
        3520771200116159190, 7302193551481724113, 13907262577663773522,
    ]  # fmt: skip
    values = golden.stable_uniform("tone:0", 10_000, 0.25)
    assert values.dtype == np.float32 and np.all(np.abs(values) <= 0.25)
    assert abs(float(values.std()) - 0.25 / math.sqrt(3)) < 0.01
    assert np.array_equal(values[:100], golden.stable_uniform("tone:0", 100, 0.25))
    assert not np.array_equal(values[:100], golden.stable_uniform("tone:1", 100, 0.25))


@pytest.mark.parametrize("relative", [1e-6, 1e-3, 0.1])
def test_a_fingerprint_distance_estimates_the_outputs_relative_error(relative: float) -> None:
    samples = signal()
    estimate = golden_comparison.relative_error(
        fingerprint(moved(samples, relative)), fingerprint(samples)
    )
    assert estimate is not None and 0.5 * relative < estimate < 1.5 * relative


def test_the_tone_every_check_starts_from_is_the_same_in_every_cell() -> None:
    from audiomatrix.suite.smokelib import tone

    first = tone(0.1, 8000, channels=2)
    assert first.shape == (2, 800) and np.array_equal(first, tone(0.1, 8000, channels=2))
    assert 0.3 < float(np.abs(first).max()) < 0.45


# --------------------------------------------------------------------------- comparison


def test_rounding_noise_matches_and_the_control_proves_it_could_fail() -> None:
    samples = signal()
    found = golden_comparison.compare(outputs(moved(samples, 1e-7)), outputs(samples), REFERENCE)
    assert found is not None and found.verdict == "match" and found.detail is None
    assert found.error is not None and found.error < TOLERANCE < (found.control or 0)
    assert (found.reference, found.outputs) == (REFERENCE, ["stems"])


def test_an_output_moved_beyond_the_tolerance_drifts_with_the_measured_error() -> None:
    samples = signal()
    found = golden_comparison.compare(outputs(moved(samples, 1e-2)), outputs(samples), REFERENCE)
    assert found is not None and found.verdict == "drift"
    assert found.error is not None and 5e-3 < found.error < 2e-2
    assert found.detail and found.detail.startswith("stems: relative error")


def test_another_shape_drifts_whatever_the_samples() -> None:
    samples = signal()
    found = golden_comparison.compare(outputs(samples[:-1]), outputs(samples), REFERENCE)
    assert found is not None and found.verdict == "drift" and found.error is None
    assert found.detail == "stems: shape [19999], the reference's [20000]"


def test_a_control_inside_the_tolerance_leaves_the_match_unproven() -> None:
    samples = signal()
    weak = golden_comparison.compare(outputs(samples, control=1e-6), outputs(samples), REFERENCE)
    assert weak is not None and weak.verdict == "unproven"
    alone = {"stems": fingerprint(samples)}
    assert golden_comparison.compare(alone, outputs(samples), REFERENCE).verdict == "unproven"
    assert golden_comparison.compare({}, outputs(samples), REFERENCE) is None


def outcome(check: str, status: str, prints: dict[str, Fingerprint]) -> CheckOutcome:
    return CheckOutcome(check=check, status=status, duration_s=1.0, fingerprints=prints)


def test_each_check_takes_the_first_reference_whose_run_of_it_passed() -> None:
    samples = signal()
    runs = [
        (REFERENCE, {"raw": [outcome("demucs", "fail", outputs(samples))]}),
        (SECOND, {"raw": [outcome("demucs", "pass", outputs(samples))]}),
    ]
    found = golden_comparison.references(runs, [REFERENCE, SECOND])
    assert list(found) == [("demucs", "raw")] and found[("demucs", "raw")][0] == SECOND
    judged = golden_comparison.judge({"raw": [outcome("demucs", "pass", outputs(samples))]}, found)
    assert judged[("demucs", "raw")].verdict == "match"


# --------------------------------------------------------------------------- the report


def with_outputs(run: run_record.RunResult, prints: dict[str, Fingerprint]) -> run_record.RunResult:
    modes = {
        mode: [c if c.check != "demucs" else outcome("demucs", c.status, prints) for c in checks]
        for mode, checks in run.modes.items()
    }
    return run.model_copy(update={"modes": modes})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The reference cell, a cell whose demucs output drifted, one that matches, and a
    manifest naming the reference."""
    root, envs = tmp_path / "results", tmp_path / "environments"
    samples = signal()
    results.write(root, with_outputs(run_result(REFERENCE, PASS), outputs(samples)))
    results.write(root, with_outputs(run_result(SECOND, PASS), outputs(moved(samples, 1e-7))))
    results.write(root, with_outputs(run_result(OTHER, PASS), outputs(moved(samples, 0.05))))
    for cell in (REFERENCE, SECOND, OTHER):
        write_cell_json(envs, cell)
    manifest = {"schema": 1, "cells": [], "reference": [REFERENCE]}
    (envs / "cells.json").write_text(json.dumps(manifest))
    return tmp_path


def test_the_report_turns_a_drifted_pass_into_drift_and_keeps_the_rest(repo: Path) -> None:
    table = report.build(repo / "results", repo / "environments", repo / "publications")
    rows = {r.cell: r for r in table.rows}
    drifted = rows[OTHER].checks["demucs"].raw
    assert drifted is not None and drifted.status == "drift"
    assert drifted.golden is not None and drifted.golden.error is not None
    assert 0.03 < drifted.golden.error < 0.07 and drifted.golden.reference == REFERENCE
    same = rows[SECOND].checks["demucs"].raw
    assert same is not None and same.status == "pass" and same.golden.verdict == "match"
    assert rows[REFERENCE].checks["demucs"].raw.golden.error == 0.0
    assert rows[OTHER].checks["xtts"].raw.golden is None  # no outputs: nothing compared
    text = markdown.markdown(table)
    assert "## Golden outputs" in text and "drift (passed, but its outputs left" in text
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| `{OTHER}` | demucs |"))
    assert "| drift: error 0.0" in line and f"| `{REFERENCE}` |" in line


def test_a_stale_run_is_not_compared(repo: Path) -> None:
    path = next((repo / "results" / OTHER).glob("*.json"))
    run = run_record.read(path)
    older = Provenance(suite_sha256="old", compat_sha256="old")
    environment = dataclasses.replace(run.environment, provenance=older)
    results.write(repo / "results", run.model_copy(update={"environment": environment}))
    table = report.build(repo / "results", repo / "environments", repo / "publications")
    row = next(r for r in table.rows if r.cell == OTHER)
    assert row.stale and row.checks["demucs"].raw.status == "pass"
    assert row.checks["demucs"].raw.golden is None


# --------------------------------------------------------------------------- matrix.yaml


def test_the_shipped_references_are_cells_of_the_matrix() -> None:
    matrix = spec.load(Path(__file__).resolve().parents[1] / "matrix.yaml")
    ids = {c.id for c in matrix.cells}
    assert matrix.file.reference and set(matrix.file.reference) <= ids


GOOD = Path(__file__).parent / "matrices" / "good" / "remedy.yaml"
GOOD_CELL = "bookworm-py3.11-torch2.9.1-cpu-maintained"


def test_a_reference_is_written_for_the_report() -> None:
    matrix = spec.parse(GOOD.read_text() + f"reference: [{GOOD_CELL}]\n", "remedy.yaml")
    assert matrix.file.reference == [GOOD_CELL]


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("[bookworm-py3.11-torch2.9.1-cpu-maintaned]", f"(did you mean '{GOOD_CELL}'?)"),
        (f"[{GOOD_CELL}, {GOOD_CELL}]", "duplicate value"),
        ("nope", "reference: input should be a valid list, got 'nope'"),
    ],
)
def test_a_bad_reference_is_one_line_at_its_place(reference: str, message: str) -> None:
    text = GOOD.read_text() + f"reference: {reference}\n"
    line = text.count("\n")
    with pytest.raises(YamlFileError) as caught:
        spec.parse(text, "remedy.yaml")
    said = str(caught.value)
    assert "\n" not in said and message in said and said.startswith(f"remedy.yaml:{line}:")
