"""grid.py: the table at a glance, over tables the report stage built from real result files."""

from __future__ import annotations

import json
from pathlib import Path

from audiomatrix.records import compatibility
from audiomatrix.smoke import results
from audiomatrix.views import diff, fixes, grid
from audiomatrix.views import page as page_view
from support import run_result
from test_report import ALL_PASS, BROKEN, NEW, OLD, repo, table  # noqa: F401

UNRUN = "bookworm-py3.10-torch2.6.0-cpu-legacy"
UNREACHABLE = "bookworm-py3.12-torch2.9.1-cu130-maintained"


def _cells(square: grid.Square) -> list[tuple[str, str | None, str, str]]:
    return [(m.cell, m.where, m.raw.status, m.compat.status) for m in square.marks]


def test_a_grid_per_workload_then_per_other_check(repo: Path) -> None:  # noqa: F811
    grids = grid.grids(table(repo))
    assert list(grids) == [
        "xtts", "demucs", "diffrhythm", "xtts_concurrent", "torchaudio_io", "torch_load",
        "accelerator",
    ]  # fmt: skip
    assert [g.title for g in grids.values()][:3] == ["XTTS", "Demucs", "DiffRhythm"]
    assert grids["xtts"].checks == ["xtts", "xtts_service", "xtts_api", "xtts_stream"]
    xtts = grids["xtts"]
    assert xtts.torch == ["2.5.1", "2.6.0", "2.9.1"]
    assert xtts.python == ["3.10", "3.11", "3.12"]
    assert {t: sorted(p) for t, p in xtts.squares.items()} == {
        "2.5.1": ["3.11"],
        "2.6.0": ["3.10"],
        "2.9.1": ["3.11", "3.12"],
    }


def test_a_square_holds_every_row_in_it_in_a_fixed_order(repo: Path) -> None:  # noqa: F811
    t = table(repo)
    xtts = grid.grids(t)["xtts"]
    old = xtts.squares["2.5.1"]["3.11"]
    assert _cells(old) == [(OLD, "image", "pass", "pass"), (OLD, "native", "pass", "pass")]
    assert [m.row for m in old.marks] == [0, 1]
    newer = xtts.squares["2.9.1"]["3.11"]
    # legacy-pinned before maintained; BROKEN's xtts hangs and its service crashes: the worst.
    assert _cells(newer) == [(NEW, "native", "pass", "pass"), (BROKEN, "image", "crash", "crash")]
    assert (newer.raw, newer.compat) == ("crash", "crash")
    assert newer.marks[1].raw.signatures == ["unclassified"]
    demucs = grid.grids(t)["demucs"].squares["2.9.1"]["3.11"]
    assert _cells(demucs)[0] == (NEW, "native", "fail", "pass")
    assert demucs.marks[0].raw.signatures == ["weights-only-demucs"]
    assert demucs.marks[0].compat.signatures == []
    # Each mark is the row it names.
    for g in grid.grids(t).values():
        for by_python in g.squares.values():
            for square in by_python.values():
                for mark in square.marks:
                    if mark.row is not None:
                        assert t.rows[mark.row].cell == mark.cell


def test_declared_cells_without_a_row_are_not_run_and_apart_runs_are_absent(repo: Path) -> None:  # noqa: F811
    t = table(repo)
    assert [r.cell for r in t.apart] == [BROKEN]
    xtts = grid.grids(t)["xtts"]
    marks = [m for s in xtts.squares.values() for sq in s.values() for m in sq.marks]
    assert [(m.cell, m.where) for m in marks if m.cell == BROKEN] == [(BROKEN, "image")]
    [unrun] = xtts.squares["2.6.0"]["3.10"].marks
    assert (unrun.cell, unrun.row, unrun.where, unrun.raw.status) == (UNRUN, None, None, "not run")
    assert unrun.reason == "not run: locked, but no run in its declared environment yet"
    [unreachable] = xtts.squares["2.9.1"]["3.12"].marks
    assert unreachable.reason == (
        "index unreachable, so not run: https://download.pytorch.org/whl/cu130 does not answer"
    )
    why = {"index unreachable": 1, "not run": 1}
    assert xtts.tally == grid.Tally(
        rows=4, raw_pass=3, compat_pass=3, fixed=3, not_run=2, not_run_why=why
    )
    assert grid.grids(t)["demucs"].tally == grid.Tally(
        rows=4, raw_pass=3, compat_pass=4, fixed=3, not_run=2, not_run_why=why
    )
    accelerator = grid.grids(t)["accelerator"].tally
    assert accelerator.raw_pass == 0  # skipped on a CPU: not a pass
    assert (accelerator.skipped, accelerator.fixed) == (4, 0)
    assert grid.passing_text(accelerator) == "skipped on all 4 rows"
    assert grid.not_run_text(xtts.tally) == (
        "2 declared cells not run: 1 index unreachable, 1 not run yet"
    )


def test_changes_since_a_previous_table_are_marked_and_counted(repo: Path) -> None:  # noqa: F811
    old = table(repo)
    broke = run_result(OLD, ALL_PASS | {"xtts": "fail"}, ALL_PASS, run="20261125T180000Z")
    results.write(repo / "results", broke)
    new = table(repo)
    grids = grid.grids(new, diff.diff(old, new))
    xtts = grids["xtts"]
    assert (xtts.tally.red, xtts.tally.green) == (1, 0)
    native = xtts.squares["2.5.1"]["3.11"].marks[1]
    assert (native.where, native.raw.status, native.compat.status) == ("native", "fail", "pass")
    assert native.changes == ["xtts raw: pass → fail"]
    assert xtts.squares["2.5.1"]["3.11"].marks[0].changes == []
    assert all(g.tally.red == g.tally.green == 0 for n, g in grids.items() if n != "xtts")
    assert "since the previous table 1 went red, 0 went green" in grid.tally_text(xtts.tally)


def test_statuses_rank_worst_first_and_an_unknown_one_is_generic(repo: Path) -> None:  # noqa: F811
    assert grid.worst(["pass", "skip", "fail", "hang"]) == "hang"
    assert grid.worst(["corrupt", "crash"]) == "corrupt"
    assert grid.worst(["pass", "not run"]) == "not run"
    assert grid.worst(["weird", "pass"]) == "weird" and grid.worst(["weird", "fail"]) == "fail"
    assert grid.worst([]) == "not run"
    assert (grid.tone("drift"), grid.tone("weird")) == ("drift", "other")
    assert grid.colour("weird") == grid.OTHER_COLOUR != grid.colour("fail")
    assert grid.glyph("weird") == grid.OTHER_GLYPH
    row = table(repo).rows[0]
    drifted = compatibility.Outcome.model_construct(status="drift", signature=None)
    checks = {
        **row.checks,
        "xtts": compatibility.CheckRow(raw=drifted, compat=row.checks["xtts"].compat),
    }
    odd = row.model_copy(update={"checks": checks})
    assert grid.verdict(odd, ["xtts", "xtts_service"], "raw").status == "drift"
    assert grid.verdict(odd, ["xtts", "xtts_service"], "compat").status == "pass"
    # A check the row lacks is not run: the workload is not shown to pass.
    lacking = row.model_copy(update={"checks": {"xtts": row.checks["xtts"]}})
    assert grid.verdict(lacking, ["xtts", "xtts_service"], "raw").status == "not run"


def test_the_installer_is_uv_unless_the_row_names_one(repo: Path) -> None:  # noqa: F811
    t = table(repo)
    assert {grid.installer_of(r) for r in t.rows} == {"uv"}
    conda = t.missing[0].model_copy(update={"installer": "conda"})
    assert grid.installer_of(conda) == "conda"
    assert grid.missing_mark(conda).installer == "conda"


def test_the_page_draws_the_grid_and_embeds_the_changes(repo: Path) -> None:  # noqa: F811
    t = table(repo)
    page = page_view.html(t)
    embedded = page.split('<script type="application/json" id="changes-data">')[1]
    assert json.loads(embedded.split("</script>")[0]) is None
    marks = page.count('class="mark s-')
    assert marks == len(grid.grids(t)) * (len(t.rows) + 2)
    assert page.count("<button type=button") == len(grid.grids(t)) * len(t.rows)
    assert '<option value="uv">uv</option>' in page
    changes = diff.diff(t.model_copy(update={"rows": t.rows[1:]}), t)
    page = page_view.html(t, changes)
    embedded = page.split('<script type="application/json" id="changes-data">')[1]
    assert json.loads(embedded.split("</script>")[0]) == page_view.change_records(changes)
    assert f"Since the previous table: {len(changes)} changes, 0 regressions" in page
    assert page.count(' changed"') == len(grid.grids(t))  # OLD's image row, in every grid


def test_grids_are_deterministic_json(repo: Path) -> None:  # noqa: F811
    first = json.dumps({n: g.model_dump(mode="json") for n, g in grid.grids(table(repo)).items()})
    again = json.dumps({n: g.model_dump(mode="json") for n, g in grid.grids(table(repo)).items()})
    assert first == again
    assert json.loads(first)["xtts"]["squares"]["2.5.1"]["3.11"]["marks"][0]["row"] == 0


def _mark(g: grid.Grid, row: int) -> grid.Mark:
    return next(m for s in g.squares.values() for q in s.values() for m in q.marks if m.row == row)


def test_a_proven_fix_comes_only_from_runs_that_prove_it(repo: Path) -> None:  # noqa: F811
    t = table(repo)
    assert [_mark(g, 2).fix for g in grid.grids(t).values()] == [None] * len(grid.grids(t))
    # The split proved that checkpoint_globals alone makes NEW's failing demucs check pass.
    new = t.rows[2]
    proof = compatibility.RemedyProof(
        applicable=["checkpoint_globals", "torchaudio_save"],
        minimal=[compatibility.ProvenSet(remedies=["checkpoint_globals"])],
        tried=2,
    )
    proven = new.checks["demucs"].model_copy(update={"remedies": proof})
    rows = [*t.rows[:2], new.model_copy(update={"checks": {**new.checks, "demucs": proven}})]
    split = t.model_copy(update={"rows": [*rows, t.rows[3]]})
    demucs = grid.grids(split)["demucs"]
    mark = _mark(demucs, 2)
    assert mark.fix == fixes.Fix(changes=["checkpoint_globals"], by=fixes.COMPAT)
    assert grid.steps(mark) == [("fail", None), ("pass", "checkpoint_globals")]
    assert (demucs.tally.fixed, demucs.tally.fixes) == (4, ["checkpoint_globals"])
    assert "4 with a proven fix (checkpoint_globals)" in grid.tally_text(demucs.tally)
    # A remedy cell's run beside BROKEN's image fixes both its failing XTTS checks: +six.
    remedy = compatibility.Remedy(
        cell=f"{BROKEN}-six", repairs=BROKEN, change=["+six"], where="image",
        fixes=["xtts", "xtts_service"], still_fails=[], breaks=[], minimal=True, runs=[],
    )  # fmt: skip
    xtts = grid.grids(t.model_copy(update={"remedies": [remedy]}))["xtts"]
    assert _mark(xtts, 3).fix == fixes.Fix(changes=["+six"], by=f"{BROKEN}-six")
    assert grid.steps(_mark(xtts, 3)) == [("crash", None), ("pass", "+six")]
    assert (xtts.tally.fixed, xtts.tally.fixes) == (4, ["+six"])
    # Nothing less than every failing check, a run elsewhere, or a check broken proves it.
    for update in (
        {"fixes": ["xtts"], "still_fails": ["xtts_service"]},
        {"where": "native"},
        {"breaks": ["xtts_api"]},
    ):
        partial = remedy.model_copy(update=update)
        xtts = grid.grids(t.model_copy(update={"remedies": [partial]}))["xtts"]
        assert _mark(xtts, 3).fix is None and xtts.tally.fixes == [], update


def test_the_committed_table_shows_where_one_change_makes_xtts_pass() -> None:
    t = compatibility.load(Path(__file__).resolve().parents[1] / "compatibility.json")
    xtts = grid.grids(t)["xtts"]
    assert (xtts.tally.raw_pass, xtts.tally.compat_pass, xtts.tally.fixed) == (7, 7, 9)
    assert xtts.tally.fixes == ["+six"]
    fixed = [(t, p, grid.mark_label(m)) for t, s in xtts.squares.items() for p, q in s.items()
             for m in q.marks if m.fix]  # fmt: skip
    assert fixed == [("2.6.0", "3.11", "cu124 maintained"), ("2.10.0", "3.12", "cu128 maintained")]
    accelerator = grid.grids(t)["accelerator"].tally
    assert grid.passing_text(accelerator) == "skipped on all 40 rows (no GPU)"
