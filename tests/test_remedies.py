"""Remedy cells: a stack declared `remedy_of` another is its parent plus a change, and the
report names which of the parent's failing checks that change fixed, from both runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audiomatrix.lock.installers import cell_data
from audiomatrix.records import compatibility
from audiomatrix.smoke import results
from audiomatrix.spec import matrix as spec
from audiomatrix.spec.cells import stack_change
from audiomatrix.spec.schema import StackValue
from audiomatrix.table import report
from audiomatrix.views import markdown, recommend
from support import run_result, write_cell_json

GOOD = Path(__file__).parent / "matrices" / "good" / "remedy.yaml"
PARENT = "bookworm-py3.12-torch2.9.1-cu128-maintained"
SIX = "bookworm-py3.12-torch2.9.1-cu128-maintained-six"
PINNED = "bookworm-py3.12-torch2.9.1-cu128-maintained-pinned"
PASS = {c: "pass" for c in report.CHECKS} | {"accelerator": "skip"}
NO_SIX = PASS | {"xtts": "fail", "xtts_service": "fail", "diffrhythm_write": "corrupt"}


def stack(packages: list[str], **flags: bool) -> StackValue:
    return StackValue(packages=packages, torchcodec=flags.get("torchcodec", True),
                      ffmpeg=flags.get("ffmpeg", True))  # fmt: skip


def test_the_change_lists_added_and_dropped_requirements_and_switches() -> None:
    parent = stack(["coqui-tts", "demucs==4.1.0"])
    assert stack_change(parent, stack(["coqui-tts", "demucs==4.1.0", "six"])) == ["+six"]
    changed = stack(["coqui-tts", "demucs==4.0.1"], torchcodec=False)
    assert stack_change(parent, changed) == ["+demucs==4.0.1", "-demucs==4.1.0", "-TorchCodec"]
    assert stack_change(parent, stack(["demucs==4.1.0", "coqui-tts"])) == []


def test_a_remedy_cell_records_its_parent_cell_and_the_change() -> None:
    cells = {c.id: cell_data(c) for c in spec.load(GOOD).cells}
    assert cells["bookworm-py3.11-torch2.9.1-cpu-maintained-six"]["remedy_of"] == {
        "cell": "bookworm-py3.11-torch2.9.1-cpu-maintained",
        "change": ["+six"],
    }
    assert "remedy_of" not in cells["bookworm-py3.11-torch2.9.1-cpu-maintained"]


def write_remedy_cell(envs: Path, cell: str, change: list[str], **kwargs: object) -> None:
    write_cell_json(envs, cell, **kwargs)
    path = envs / cell / "cell.json"
    record = json.loads(path.read_text())
    record["cell"]["remedy_of"] = {"cell": PARENT, "change": change}
    path.write_text(json.dumps(record))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A parent cell failing XTTS and writing corrupt audio, in an image; a one-package
    remedy fixing XTTS only, in an image; a two-item remedy run natively."""
    root, envs = tmp_path / "results", tmp_path / "environments"
    codec = {"ffmpeg": True, "torchcodec": "0.9.1"}
    measured = {"ffmpeg": "5", "torchcodec": "0.9.1"}
    write_cell_json(envs, PARENT, **codec)
    write_remedy_cell(envs, SIX, ["+six"], **codec)
    write_remedy_cell(envs, PINNED, ["+six", "+transformers<5"], **codec)
    results.write(root, run_result(PARENT, NO_SIX, kind="image", **measured))
    six = NO_SIX | {"xtts": "pass", "xtts_service": "pass", "demucs": "fail"}
    results.write(root, run_result(SIX, six, kind="image", **measured))
    results.write(root, run_result(PINNED, PASS, kind="native", **measured))
    return tmp_path


def build(repo: Path) -> compatibility.Compatibility:
    return report.build(repo / "results", repo / "environments", repo / "publications")


def test_a_remedy_is_proven_by_its_parents_failing_run_and_its_own_passing_one(
    repo: Path,
) -> None:
    [remedy] = build(repo).remedies
    assert (remedy.cell, remedy.repairs, remedy.where) == (SIX, PARENT, "image")
    assert remedy.fixes == ["xtts", "xtts_service"]
    assert remedy.still_fails == ["diffrhythm_write"]
    assert remedy.breaks == ["demucs"]
    assert remedy.minimal
    assert remedy.runs == [
        f"results/{PARENT}/20261125T160000Z.json",
        f"results/{SIX}/20261125T160000Z.json",
    ]


def test_runs_of_different_kinds_prove_nothing_until_both_stand_in_one(repo: Path) -> None:
    assert PINNED not in {r.cell for r in build(repo).remedies}
    results.write(
        repo / "results",
        run_result(PARENT, NO_SIX, kind="native", ffmpeg="5", torchcodec="0.9.1"),
    )
    pinned = {r.cell: r for r in build(repo).remedies}[PINNED]
    assert pinned.where == "native"
    assert pinned.fixes == ["xtts", "xtts_service", "diffrhythm_write"]
    assert not pinned.minimal


def test_a_remedy_run_measured_elsewhere_proves_nothing(repo: Path) -> None:
    # The remedy's newest run lacks the FFmpeg its cell declares: it stands apart.
    fixed = NO_SIX | {"xtts": "pass", "xtts_service": "pass"}
    later = run_result(SIX, fixed, kind="image", run="20261126T000000Z", torchcodec="0.9.1")
    results.write(repo / "results", later)
    table = build(repo)
    assert SIX in {r.cell for r in table.apart}
    assert table.remedies == []


def test_the_table_names_each_change_and_what_it_fixed(repo: Path) -> None:
    table = build(repo)
    text = markdown.markdown(table)
    section = text.split("## Remedies, proven", 1)[1].split("\n## ", 1)[0]
    assert (
        f"| `+six` | `{PARENT}` | `{SIX}` | image | xtts, xtts_service | diffrhythm_write "
        "| demucs | yes |"
    ) in section
    assert compatibility.load_text(report.table_json(table)).remedies == table.remedies


def test_a_check_that_fails_past_the_parents_failure_says_what_it_fails_with_now(
    tmp_path: Path,
) -> None:
    root, envs = tmp_path / "results", tmp_path / "environments"
    write_cell_json(envs, PARENT)
    write_remedy_cell(envs, SIX, ["+six"])
    six = "ModuleNotFoundError: No module named 'six'"
    weights = "Weights only load failed ... Unsupported global: GLOBAL TTS.tts.configs.XttsConfig"
    failing = PASS | {"xtts": "fail"}
    results.write(root, run_result(PARENT, failing, kind="image", errors={"xtts": six}))
    results.write(root, run_result(SIX, failing, kind="image", errors={"xtts": weights}))
    [remedy] = report.build(root, envs, tmp_path / "publications").remedies
    assert (remedy.fixes, remedy.still_fails) == ([], ["xtts"])
    assert remedy.moved_on == {"xtts": "weights-only-xtts"}
    assert not remedy.minimal  # a change that fixes nothing is not a minimal remedy
    built = report.build(root, envs, tmp_path / "p")
    section = markdown.markdown(built).split("Remedies, proven")[1]
    assert "| xtts (now weights-only-xtts) |" in section


def test_recommend_names_the_change_when_it_recommends_a_remedy_cell(repo: Path) -> None:
    # Python 3.12, XTTS: the parent fails it, the six remedy passes it (in an image).
    answer = recommend.recommend(build(repo), ["xtts"], python="3.12")
    assert answer.row is not None and answer.row.cell == SIX
    assert f"It is {PARENT} with +six: it fixes xtts, xtts_service there" in answer.explanation
