"""diff and recommend, over tables built by the report stage from real result files."""

from __future__ import annotations

import shutil
from pathlib import Path

from audiomatrix.smoke import results
from audiomatrix.views import constraints, diff, recommend
from audiomatrix.views.constraints import Constraints
from support import run_result
from test_report import ALL_PASS, BROKEN, NEW, OLD, repo, table  # noqa: F401


def test_diff_flags_what_went_red(repo: Path) -> None:  # noqa: F811
    old = table(repo)
    results.write(repo / "results", run_result(NEW, ALL_PASS, run="20261125T180000Z"))
    results.write(
        repo / "results",
        run_result(OLD, ALL_PASS | {"xtts": "fail"}, ALL_PASS, run="20261125T180000Z"),
    )
    shutil.rmtree(repo / "results" / BROKEN)
    new = table(repo)
    changes = diff.diff(old, new)
    red = diff.regressions(changes)
    assert [(c.cell, c.where, c.check, c.mode, c.old, c.new) for c in red] == [
        (OLD, "native", "xtts", "raw", "pass", "fail")
    ]
    assert str(red[0]).startswith("RED ")
    green = [c for c in changes if c.new == "pass" and c.old != "pass"]
    assert {(c.cell, c.check, c.mode) for c in green} == {
        (NEW, "demucs", "raw"),
        (NEW, "diffrhythm_write", "raw"),
    }
    gone = [c for c in changes if c.cell == BROKEN]
    assert gone and all(c.new is None and not c.regression for c in gone)
    assert diff.diff(new, new) == []


def test_diff_counts_a_vanished_check_in_a_kept_row(repo: Path) -> None:  # noqa: F811
    old = table(repo)
    results.write(
        repo / "results",
        run_result(
            OLD, {k: v for k, v in ALL_PASS.items() if k != "demucs"}, run="20261125T180000Z"
        ),
    )
    red = diff.regressions(diff.diff(old, table(repo)))
    assert {(c.check, c.mode, c.new) for c in red} == {
        ("demucs", "raw", None),
        ("demucs", "compat", None),
    }


def test_recommend_prefers_raw_then_a_tested_image_then_newest_torch(repo: Path) -> None:  # noqa: F811
    t = table(repo)
    r = recommend.recommend(t, ["xtts", "demucs", "diffrhythm"])
    assert (r.row.cell, r.row.where.kind, r.mode) == (OLD, "image", "raw")
    assert "with a tested image" in r.explanation
    assert "pass as installed (raw)" in r.explanation
    assert f"a newer torch also works: {NEW}" in r.explanation
    assert f"results/{OLD}/20261125T150000Z.json" in r.explanation
    # An image is preferred over a newer torch that only ran natively.
    r = recommend.recommend(t, ["xtts"])
    assert (r.row.cell, r.row.where.kind, r.mode) == (OLD, "image", "raw")
    native_only = t.model_copy(update={"rows": [r for r in t.rows if r.where.kind == "native"]})
    assert recommend.recommend(native_only, ["xtts"]).row.cell == NEW


def test_recommend_falls_back_to_compat_and_filters(repo: Path) -> None:  # noqa: F811
    t = table(repo)
    r = recommend.recommend(t, ["xtts", "demucs", "diffrhythm"], gpu_arch="sm_120")
    assert (r.row.cell, r.mode) == (NEW, "compat")
    assert "No matching row passes them all raw" in r.explanation
    assert (
        "On sm_120: native, predicted from the wheel's compiled code (libtorch_cuda.so: sm_120 "
        "SASS in its 1 container)" in r.explanation
    )

    r = recommend.recommend(t, ["xtts"], gpu_arch="sm_120", python="3.11", os="linux")
    assert r.row.cell == NEW

    none = recommend.recommend(t, ["xtts"], python="3.13")
    assert none.row is None and "no tested cell matches with Python 3.13" in none.explanation

    only_broken = t.model_copy(update={"rows": [r for r in t.rows if r.cell == BROKEN]})
    none = recommend.recommend(only_broken, ["xtts"])
    assert none.row is None and "xtts, xtts_service never passes" in none.explanation

    bad = recommend.recommend(t, ["karaoke"])
    assert bad.row is None and "unknown workload 'karaoke'" in bad.explanation


def test_recommend_never_names_a_run_measured_elsewhere(repo: Path) -> None:  # noqa: F811
    t = table(repo)
    [apart] = t.apart  # BROKEN measured without its FFmpeg: every check passed there
    assert apart.cell == BROKEN and apart.checks["xtts"].raw.status == "pass"
    only_broken = t.model_copy(update={"rows": [r for r in t.rows if r.cell == BROKEN]})
    assert recommend.recommend(only_broken, ["xtts"]).row is None


def test_recommend_for_a_gpu_uses_the_measured_kernels(repo: Path) -> None:  # noqa: F811
    t = table(repo)
    # OLD (torch 2.5.1+cu124) passes everything raw, but its wheel has no sm_120 code.
    old = next(r for r in t.rows if r.cell == OLD)
    assert old.gpu["sm_120"].verdict == "no-kernel-image" and old.gpu["sm_90"].verdict == "native"
    r = recommend.recommend(t, ["xtts", "demucs", "diffrhythm"], gpu_arch="sm_120")
    assert r.row is not None and r.row.cell != OLD
    assert (
        recommend.recommend(t, ["xtts", "demucs", "diffrhythm"], gpu_arch="sm_90").row.cell == OLD
    )
    # A run on a real sm_120 GPU is observed, not predicted; a row measured nothing never counts.
    results.write(
        repo / "results",
        run_result(
            NEW,
            ALL_PASS | {"accelerator": "pass"},
            run="20261127T000000Z",
            compute_capability="sm_120",
        ),
    )
    r = recommend.recommend(table(repo), ["xtts"], gpu_arch="sm_120")
    assert "observed on NVIDIA test GPU (sm_120)" in r.explanation
    unmeasured = run_result(NEW, ALL_PASS, run="20261128T000000Z", gpu_arch={"error": "x"})
    results.write(repo / "results", unmeasured)
    rows = [r for r in table(repo).rows if r.cell == NEW and not r.host.compute_capability]
    assert rows[0].gpu == {} and not constraints.runs_on(rows[0], "sm_90")


def test_recommend_steps_filter_rank_and_say_apart(repo: Path) -> None:  # noqa: F811
    """Each step of recommend alone: the constraints, the choice raw before compat, the words."""
    t = table(repo)
    assert recommend.matching(t.rows, Constraints()) == t.rows
    fit = recommend.matching(t.rows, Constraints(python="3.11", gpu_arch="sm_120", os="linux"))
    assert {r.cell for r in fit} == {NEW, BROKEN}  # OLD's wheel has no sm_120 kernels
    assert recommend.matching(t.rows, Constraints(python="3.12")) == []
    assert recommend.matching(t.rows, Constraints(installer="conda")) == []
    said = Constraints(python="3.11", gpu_arch="sm_120", os="linux", installer="uv").said()
    assert said == ["Python 3.11", "OS linux", "GPU sm_120", "installer uv"]
    assert Constraints().said() == []
    checks = ["xtts", "demucs", "diffrhythm_write"]
    choice = recommend.choose(t.rows, checks, None)
    assert choice is not None and (choice.row.cell, choice.mode) == (OLD, "raw")
    assert choice.passing == len(recommend.qualifying(t.rows, checks, "raw"))
    broken = [r for r in t.rows if r.cell == BROKEN]
    assert recommend.choose(broken, ["xtts"], None) is None
    assert recommend.none_passes(broken, ["xtts"], "").endswith("xtts never passes")
