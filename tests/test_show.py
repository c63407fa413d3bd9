"""`audiomatrix show` (the grid in the terminal) and `report --previous`, through the real
command line, over tables the report stage built from real result files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from audiomatrix.cli.app import app
from audiomatrix.records import compatibility
from audiomatrix.smoke import results
from audiomatrix.table import report
from audiomatrix.views import grid
from audiomatrix.views import grid_text as gridtext
from support import run_result
from test_report import ALL_PASS, BROKEN, NEW, OLD, repo, table  # noqa: F401

SMALL = Path(__file__).parent / "matrices" / "small.yaml"


def _table_file(repo: Path) -> Path:  # noqa: F811
    path = repo / "compatibility.json"
    path.write_text(report.table_json(table(repo)))
    return path


def _show(*args: str, columns: int = 200) -> tuple[int, str, str]:
    outcome = CliRunner().invoke(app, ["show", *args], env={"COLUMNS": str(columns)})
    return outcome.exit_code, outcome.stdout, outcome.stderr


def test_show_draws_a_grid_per_workload(repo: Path) -> None:  # noqa: F811
    code, out, err = _show("--table", str(_table_file(repo)))
    assert (code, err) == (0, "")
    headings = [line for line in out.splitlines() if line.startswith(("XTTS", "Demucs", "Diff"))]
    not_run = "2 declared cells not run: 1 index unreachable, 1 not run yet"
    assert headings == [
        "XTTS (xtts + xtts_service + xtts_api + xtts_stream): 3 of 4 rows pass as installed, 3 "
        f"with compat, 3 with a proven fix; {not_run}",
        "Demucs (demucs + demucs_file + demucs_mp3): 3 of 4 rows pass as installed, 4 with "
        f"compat, 3 with a proven fix; {not_run}",
        "DiffRhythm (diffrhythm_write): 3 of 4 rows pass as installed, 4 with compat, "
        f"3 with a proven fix; {not_run}",
    ]
    demucs = out.split("Demucs (demucs + demucs_file + demucs_mp3)")[1].split("DiffRhythm")[0]
    lines = [x.split("│")[1:-1] for x in demucs.splitlines() if x.startswith("│")]
    at = next(i for i, x in enumerate(lines) if x[0].strip() == "2.9.1")
    assert [c.strip() for c in lines[at]] == [
        "2.9.1", "", "✗→✓ cu128 legacy-pinned native", "· 1 not run"
    ]  # fmt: skip
    assert [c.strip() for c in lines[at + 1]][2] == "✓ cu128 maintained"
    assert "accelerator (accelerator): skipped on all 4 rows;" in out
    said = " ".join(out.split())
    assert "not run: declared cells with no run in their declared environment yet" in said


def test_show_one_workload_as_json(repo: Path) -> None:  # noqa: F811
    code, out, _ = _show("--table", str(_table_file(repo)), "--workload", "xtts", "--json")
    assert code == 0
    data = json.loads(out)
    assert list(data) == ["xtts"]
    assert data["xtts"] == grid.grids(table(repo))["xtts"].model_dump(mode="json")
    square = data["xtts"]["squares"]["2.9.1"]["3.11"]
    assert [(m["cell"], m["raw"]["status"]) for m in square["marks"]] == [
        (NEW, "pass"),
        (BROKEN, "crash"),
    ]


def test_show_errors_are_one_line_and_exit_2(repo: Path, tmp_path: Path) -> None:  # noqa: F811
    path = _table_file(repo)
    code, out, err = _show("--table", str(path), "--workload", "karaoke")
    assert (code, out) == (2, "")
    assert err == (
        "--workload karaoke: choose from xtts, demucs, diffrhythm, xtts_concurrent, "
        "torchaudio_io, torch_load, accelerator\n"
    )
    code, _, err = _show("--table", str(tmp_path / "nope.json"))
    assert (code, err) == (2, f"{tmp_path / 'nope.json'}: cannot read: No such file or directory\n")
    path.write_text(path.read_text()[:200])
    code, _, err = _show("--table", str(path))
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"{path}: not a compatibility.json: not valid JSON")


def test_report_shows_what_changed_since_a_previous_table(repo: Path, tmp_path: Path) -> None:  # noqa: F811
    shutil.copy(SMALL, repo / "matrix.yaml")
    previous = tmp_path / "previous.json"
    previous.write_text(report.table_json(table(repo)))
    broke = run_result(OLD, ALL_PASS | {"xtts": "fail"}, ALL_PASS, run="20261125T180000Z")
    results.write(repo / "results", broke)
    args = ["report", "--matrix", str(repo / "matrix.yaml")]
    outcome = CliRunner().invoke(app, [*args, "--previous", str(previous)])
    assert outcome.exit_code == 0, outcome.output
    page = (repo / "site" / "index.html").read_text()
    embedded = page.split('<script type="application/json" id="changes-data">')[1]
    changes = json.loads(embedded.split("</script>")[0])
    assert [(c["cell"], c["where"], c["check"], c["mode"], c["regression"]) for c in changes] == [
        (OLD, "native", "xtts", "raw", True)
    ]
    assert "Since the previous table: 1 change, 1 regression" in page
    # The report's own output is never the previous table.
    outcome = CliRunner().invoke(app, [*args, "--previous", str(repo / "compatibility.json")])
    assert outcome.exit_code == 2 and outcome.stdout == ""
    assert outcome.stderr.startswith(
        f"--previous {repo / 'compatibility.json'}: that is the table this report writes"
    )
    assert len(outcome.stderr.splitlines()) == 1


COMMITTED = Path(__file__).resolve().parents[1] / "compatibility.json"
BOX = "│┌┐└┘├┤┬┴┼─"


def _grid_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("│")]


def _fits_and_shows_every_outcome(text: str, width: int, grids: list[grid.Grid]) -> None:
    """Every line within `width`, nothing cut (no ellipsis), and every row's steps drawn: one
    arrow per step after the first (the compat and the fixed outcome) in the grid lines."""
    from rich.cells import cell_len

    assert max(cell_len(line) for line in text.splitlines()) <= width
    assert "…" not in text
    ran = [m for g in grids for s in g.squares.values() for q in s.values() for m in q.marks
           if m.row is not None]  # fmt: skip
    assert sum(len(grid.steps(m)) - 1 for m in ran) > 0
    assert "".join(_grid_lines(text)).count("→") == sum(len(grid.steps(m)) - 1 for m in ran)


def test_show_fits_80_100_and_160_columns_piped() -> None:
    table = compatibility.load(COMMITTED)
    for width in (80, 100, 160):
        for workload in ("xtts", "diffrhythm", "demucs"):
            code, out, err = _show("--table", str(COMMITTED), "--workload", workload, columns=width)
            assert (code, err) == (0, "")
            _fits_and_shows_every_outcome(out, width, [grid.grids(table)[workload]])
    # The XTTS grid names the proven change where it makes a failing row pass.
    _, out, _ = _show("--table", str(COMMITTED), "--workload", "xtts", columns=160)
    assert "✗→✓ cu124 maintained [+six]" in out and "9 with a proven fix (+six)" in out
    # Too narrow for full names: codes, and what they stand for below the grid.
    _, out, _ = _show("--table", str(COMMITTED), "--workload", "diffrhythm", columns=80)
    assert "≠→✓ cu128 m [ts]" in out
    assert "m=maintained" in out and "ts=torchaudio_save" in out
    # Every torch x Python square that holds a row is drawn, in one table or several.
    squares = [(t, p) for t, s in grid.grids(table)["diffrhythm"].squares.items() for p in s]
    assert len({t for t, _ in squares}) <= sum(
        1 for line in _grid_lines(out) if line.split("│")[1].strip()
    )


def test_show_fits_a_real_terminal_of_each_width() -> None:
    import io
    import re

    from rich.console import Console

    found = grid.grids(compatibility.load(COMMITTED))
    for width in (80, 100, 160):
        drawn = io.StringIO()
        console = Console(file=drawn, width=width, force_terminal=True, color_system="truecolor")
        for name in ("xtts", "diffrhythm", "accelerator"):
            console.print(gridtext.table(found[name], console.width))
        text = drawn.getvalue()
        assert "\x1b[" in text  # coloured, as in a terminal
        _fits_and_shows_every_outcome(
            re.sub(r"\x1b\[[0-9;]*m", "", text), width,
            [found[n] for n in ("xtts", "diffrhythm", "accelerator")],
        )  # fmt: skip
        assert "skipped on all 40 rows (no GPU)" in " ".join(text.split())


def test_show_filters_and_plain(repo: Path) -> None:  # noqa: F811
    code, out, _ = _show("--table", str(COMMITTED), "--workload", "xtts", "--stack",
                         "maintained-six", "--plain", columns=80)  # fmt: skip
    assert code == 0
    assert " ".join(out.split("\ntorch ")[0].split()) == (
        "XTTS (xtts + xtts_service + xtts_api + xtts_stream): 2 of 2 rows pass as installed, "
        "2 with compat, 2 with a proven fix"
    )
    assert [line for line in out.splitlines() if line.startswith("torch ")] == [
        "torch 2.6.0 py3.11  ✓ cu124 maintained-six",
        "torch 2.10.0 py3.12  ✓ cu128 maintained-six",
    ]
    assert not set(BOX) & set(out) and "\x1b[" not in out
    code, out, _ = _show("--table", str(COMMITTED), "--workload", "xtts", "--accelerator",
                         "cu124", "--plain", columns=100)  # fmt: skip
    rows = [
        line for line in out.splitlines() if line.startswith("torch ") and "not run" not in line
    ]
    assert rows and all(" cu124 " in line for line in rows)
    assert "torch 2.6.0 py3.11  ✗→✓ cu124 maintained [+six]" in rows
    code, out, err = _show("--table", str(COMMITTED), "--stack", "nope")
    assert (code, out) == (2, "") and err.startswith("--stack nope: choose from legacy, ")
    code, _, err = _show("--table", str(_table_file(repo)), "--accelerator", "rocm")
    assert (code, err) == (2, "--accelerator rocm: choose from cpu, cu124, cu128, cu130\n")
