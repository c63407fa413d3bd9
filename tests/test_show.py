"""`audiomatrix show` (the grid in the terminal) and `report --previous`, through the real
command line, over tables the report stage built from real result files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from audiomatrix.cli.app import app
from audiomatrix.smoke import results
from audiomatrix.table import report
from audiomatrix.views import grid
from support import run_result
from test_report import ALL_PASS, BROKEN, NEW, OLD, repo, table  # noqa: F401

SMALL = Path(__file__).parent / "matrices" / "small.yaml"


def _table_file(repo: Path) -> Path:  # noqa: F811
    path = repo / "compatibility.json"
    path.write_text(report.table_json(table(repo)))
    return path


def _show(*args: str) -> tuple[int, str, str]:
    outcome = CliRunner().invoke(app, ["show", *args])
    return outcome.exit_code, outcome.stdout, outcome.stderr


def test_show_draws_a_grid_per_workload(repo: Path) -> None:  # noqa: F811
    code, out, err = _show("--table", str(_table_file(repo)))
    assert (code, err) == (0, "")
    headings = [line for line in out.splitlines() if line.startswith(("XTTS", "Demucs", "Diff"))]
    assert headings == [
        "XTTS (xtts + xtts_service + xtts_api + xtts_stream): 3 of 4 rows pass as installed, 3 "
        "with compat; 2 declared cells not run",
        "Demucs (demucs + demucs_file + demucs_mp3): 3 of 4 rows pass as installed, 4 with "
        "compat; 2 declared cells not run",
        "DiffRhythm (diffrhythm_write): 3 of 4 rows pass as installed, 4 with compat; "
        "2 declared cells not run",
    ]
    demucs = out.split("Demucs (demucs + demucs_file + demucs_mp3)")[1].split("DiffRhythm")[0]
    line = next(x for x in demucs.splitlines() if x.startswith("│ 2.9.1"))
    assert line.split("│")[1:-1] == [
        " 2.9.1          ", "               ", "  ✓  1 pass      ", "  ·  1 not run "
    ]  # fmt: skip
    assert "✗  1 fail→pass" in demucs
    assert "accelerator (accelerator): 0 of 4 rows pass as installed" in out
    assert "not run: a declared cell with no run in its declared environment yet" in out


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
