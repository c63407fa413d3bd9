"""The split of the compat run on the host: collected into the result, claimed by the report,
shown in COMPATIBILITY.md and the page, named by recommend."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from audiomatrix.core.errors import CellError
from audiomatrix.lock import cell_lock
from audiomatrix.records import compatibility
from audiomatrix.records import run as run_record
from audiomatrix.smoke import results
from audiomatrix.smoke import runner as smoke
from audiomatrix.suite import run as runner
from audiomatrix.suite import schema
from audiomatrix.table import compat_split, report
from audiomatrix.views import markdown, recommend
from audiomatrix.views import page as page_view
from support import environment, record_model, run_result, write_cell_json

REPO = Path(__file__).resolve().parents[1]
CELL = "bookworm-py3.11-torch2.9.1-cu128-maintained"
RUN = "20261125T160000Z"
RAW = {c.name: "pass" for c in schema.CHECKS} | {
    "accelerator": "skip",
    "torch_load": "fail",
    "diffrhythm_write": "corrupt",
    "demucs": "fail",
    "xtts": "fail",
}
COMPAT = RAW | {"torch_load": "pass", "diffrhythm_write": "pass", "demucs": "pass"}
APPLICABLE = ["torchaudio_save", "checkpoint_globals"]
TRIED = [
    ("torch_load", ["checkpoint_globals"], "pass"),
    ("torch_load", ["torchaudio_save"], "fail"),
    ("diffrhythm_write", ["checkpoint_globals"], "corrupt"),
    ("diffrhythm_write", ["torchaudio_save"], "pass"),
    ("demucs", ["checkpoint_globals"], "fail"),
    ("demucs", ["torchaudio_save"], "fail"),
    ("demucs", ["checkpoint_globals", "torchaudio_save"], "fail"),
]


def _split(logs: str = "") -> schema.RemedySplit:
    """The runs TRIED, their logs under `logs` (the runner's layout when empty)."""
    return schema.RemedySplit(
        schema=schema.SCHEMA, started=1.0, finished=2.0, applicable=APPLICABLE,
        checks=[
            schema.SubsetOutcome(
                check=check, remedies=subset, status=status, duration_s=1.5,
                first_error=None if status == "pass" else "boom",
                log=f"{logs}remedies/{'+'.join(subset)}/{check}.log",
            )
            for check, subset, status in TRIED
        ],
    )  # fmt: skip


def test_results_with_and_without_the_split_validate(tmp_path: Path) -> None:
    committed = sorted((REPO / "results").glob("*/*.json"))
    runs = [run_record.read(p) for p in committed]  # every committed run still validates
    assert any(r.remedy_split is None for r in runs), "runs from before the split read too"
    with_split = run_result(CELL, RAW, COMPAT).model_copy(
        update={"remedy_split": _split(f"logs/{RUN}/")}
    )
    path = results.write(tmp_path, with_split)
    assert run_record.read(path) == with_split
    assert run_record.read(path).remedy_split.checks[0].remedies == ["checkpoint_globals"]


def test_collect_keeps_the_split_and_its_logs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    runner.write_json(out / "environment.json", environment())
    for mode, statuses in (("raw", RAW), ("compat", COMPAT)):
        checks = [schema.CheckOutcome(c, s, 1.0, log=f"logs/{mode}/{c}.log")
                  for c, s in statuses.items()]  # fmt: skip
        runner.write_json(out / f"{mode}.json", schema.ModeRecord(2, mode, 1.0, 2.0, checks))
    split = _split()
    runner.write_json(out / "remedies.json", split)
    for record in split.checks:
        (out / record.log).parent.mkdir(parents=True, exist_ok=True)
        (out / record.log).write_text(f"{record.check} with {record.remedies}: {record.status}\n")
    cell = cell_lock.CellLock(
        CELL, tmp_path, record_model(CELL).model_copy(update={"lock_sha256": "a" * 64})
    )
    root = tmp_path / "results"
    started = datetime(2026, 11, 25, 16, tzinfo=UTC)
    result = smoke.collect(cell, out, root, {"kind": "native"}, started)
    assert run_record.read(root / CELL / f"{RUN}.json") == result
    assert result.remedy_split == _split(f"logs/{RUN}/")
    pair = result.remedy_split.checks[-1]
    kept = root / CELL / pair.log
    assert pair.log == f"logs/{RUN}/remedies/checkpoint_globals+torchaudio_save/demucs.log"
    assert kept.read_text() == "demucs with ['checkpoint_globals', 'torchaudio_save']: fail\n"


def test_a_damaged_split_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "remedies.json").write_text('{"schema": 2}')
    with pytest.raises(CellError) as caught:
        smoke.read_remedy_split(tmp_path)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("the smoke runner's output is unusable: ")


@pytest.fixture
def table(tmp_path: Path) -> compatibility.Compatibility:
    """A table of one row whose run split compat as TRIED."""
    root, envs = tmp_path / "results", tmp_path / "environments"
    run = run_result(CELL, RAW, COMPAT, ffmpeg="5", torchcodec="0.9.1")
    results.write(root, run.model_copy(update={"remedy_split": _split(f"logs/{RUN}/")}))
    write_cell_json(envs, CELL, ffmpeg=True, torchcodec="0.9.1")
    return report.build(root, envs, tmp_path / "publications")


def _log(subset: str, check: str) -> str:
    return f"results/{CELL}/logs/{RUN}/remedies/{subset}/{check}.log"


def test_the_report_names_each_checks_minimal_sets_and_their_runs(table) -> None:  # type: ignore[no-untyped-def]
    [row] = table.rows
    assert row.checks["torch_load"].remedies == compatibility.RemedyProof(
        applicable=APPLICABLE,
        minimal=[compatibility.ProvenSet(
            remedies=["checkpoint_globals"], log=_log("checkpoint_globals", "torch_load"),
        )],
        tried=2,
    )  # fmt: skip
    assert [s.remedies for s in row.checks["diffrhythm_write"].remedies.minimal] == [
        ["torchaudio_save"]
    ]
    demucs = row.checks["demucs"].remedies
    assert (demucs.minimal, demucs.tried) == ([], 3)
    # Only a check that failed raw and passed with compat has anything to prove.
    assert row.checks["xtts"].remedies is None and row.checks["xtts_api"].remedies is None
    assert compatibility.load_text(report.table_json(table)) == table


def test_a_run_from_before_the_split_claims_nothing() -> None:
    assert compat_split.proof(None, "torch_load", "fail", "pass", "results/c") is None


def test_a_split_where_no_remedy_applies_says_so() -> None:
    nothing = schema.RemedySplit(schema=2, started=1, finished=2, applicable=[], checks=[])
    found = compat_split.proof(nothing, "xtts", "fail", "pass", "results/c")
    assert found == compatibility.RemedyProof(applicable=[], minimal=[], tried=0)
    assert compat_split.summary(found) == (
        "no set smaller than all of compat proven (compat says none applies here)"
    )


def test_together_and_alternatives_read_as_such() -> None:
    pair = compatibility.ProvenSet(remedies=["a", "b"], log="results/c/x.log")
    other = compatibility.ProvenSet(remedies=["a", "c"])
    found = compatibility.RemedyProof(applicable=["a", "b", "c"], minimal=[pair, other], tried=6)
    assert compat_split.summary(found) == "proven together: `a` + `b` or `a` + `c`"
    assert compat_split.summary(found, link=True) == (
        "proven together: [`a` + `b`](results/c/x.log) or `a` + `c`"
    )


def test_the_markdown_shows_the_proof_next_to_the_compat_outcome(table) -> None:  # type: ignore[no-untyped-def]
    text = markdown.markdown(table)
    fixed = "pass ([unclassified](#unclassified))"
    assert (
        f"| {fixed.replace('pass', 'fail → pass', 1)}; proven alone: "
        f"[`checkpoint_globals`]({_log('checkpoint_globals', 'torch_load')}) | skip → skip |"
    ) in text
    assert f"| corrupt → {fixed}; proven alone: [`torchaudio_save`](" in text
    assert f"| fail → {fixed}; no set smaller than all of compat proven |" in text
    assert "| fail → fail ([unclassified](#unclassified)) |" in text  # xtts: nothing to prove
    assert "`proven alone` names the remedies" in text
    page = page_view.html(table)
    embedded = re.search(r'<script type="application/json" id="data">(.*?)</script>', page)
    assert embedded is not None
    checks = json.loads(embedded.group(1))["rows"][0]["checks"]
    assert checks["diffrhythm_write"]["remedies"]["minimal"][0]["remedies"] == ["torchaudio_save"]
    assert "function proof(p)" in page


def test_recommend_names_the_remedies_compat_mode_needs(table) -> None:  # type: ignore[no-untyped-def]
    found = recommend.recommend(table, ["demucs", "diffrhythm"])
    assert found.mode == "compat"
    assert (
        "Remedies it needs (each set proven by a run with only that set): demucs no set smaller "
        "than all of compat proven; diffrhythm_write proven alone: `torchaudio_save`."
    ) in found.explanation
    assert "Remedies it needs" not in recommend.recommend(table, ["xtts"]).explanation
