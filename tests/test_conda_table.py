"""Conda cells in the later stages: the same table with their installer (a filter in the site
and in recommend), their CUDA judged as conda chooses it, tox leaving them out, and pull
printing conda-lock's install of their lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audiomatrix.lock import cell_lock
from audiomatrix.publish import registry as publish
from audiomatrix.publish import tox
from audiomatrix.records import compatibility
from audiomatrix.records.cell import CellRecord
from audiomatrix.smoke import evidence, results
from audiomatrix.table import report
from audiomatrix.views import page as page_view
from audiomatrix.views import recommend
from support import LOCK, cell_record, environment, record_model, run_result, write_cell_json
from test_site import _open, browser  # noqa: F401 (browser: the fixture)

UV = "bookworm-py3.11-torch2.9.1-cu128-maintained"
CONDA = "bookworm-py3.11-torch2.9.1-cu128-maintained-conda"
ALL_PASS = {c: "pass" for c in report.CHECKS} | {"accelerator": "skip"}


def conda_record(cell: str = CONDA, status: str = "locked") -> dict:
    """A conda cell's cell.json as the lock stage writes it."""
    record = cell_record(cell, status)
    record["cell"].update(installer="conda", channels=["conda-forge"], conda=[])
    record["lock"] = "conda-lock.yml" if status == "locked" else None
    return record


def write_conda(envs: Path, cell: str = CONDA, status: str = "locked") -> Path:
    folder = envs / cell
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cell.json").write_text(json.dumps(conda_record(cell, status)))
    return folder


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A uv cell and its conda twin, both passing natively (the conda one built for CUDA
    12.6, which a 12.8 driver runs), and a conda cell whose channel did not answer."""
    envs, root = tmp_path / "environments", tmp_path / "results"
    write_cell_json(envs, UV)
    write_conda(envs)
    write_conda(envs, "bookworm-py3.11-torch2.9.1-cpu-maintained-conda", "channel unreachable")
    results.write(root, run_result(UV, ALL_PASS))
    results.write(root, run_result(CONDA, ALL_PASS, run="20261125T170000Z", cuda="12.6"))
    return tmp_path


def table(repo: Path) -> compatibility.Compatibility:
    return report.build(repo / "results", repo / "environments", repo / "publications")


def test_rows_and_missing_cells_carry_their_installer(repo: Path) -> None:
    t = table(repo)
    assert [(r.cell, r.installer) for r in t.rows] == [(UV, "uv"), (CONDA, "conda")]
    assert not t.apart
    [missing] = t.missing
    assert (missing.installer, missing.status) == ("conda", "channel unreachable")
    page = page_view.html(t)
    assert '<select name="installer" data-axis="installer">' in page
    assert 'data-installer="conda"' in page and 'data-installer="uv"' in page


def test_recommend_filters_by_installer(repo: Path) -> None:
    t = table(repo)
    conda = recommend.recommend(t, ["xtts"], installer="conda")
    assert conda.row is not None and conda.row.cell == CONDA
    assert "installer conda" in conda.explanation
    uv = recommend.recommend(t, ["xtts"], installer="uv")
    assert uv.row is not None and uv.row.cell == UV
    none = recommend.recommend(t, ["xtts"], installer="pixi")
    assert none.row is None and none.explanation == "no tested cell matches with installer pixi"


@pytest.mark.parametrize(
    ("measured", "stands"),
    [("12.8", True), ("12.6", True), ("12.9", False), ("11.8", False), (None, False)],
)
def test_a_conda_cell_runs_any_cuda_build_of_its_major_up_to_its_own(
    measured: str | None, stands: bool
) -> None:
    """conda chooses the build through __cuda: the driver's CUDA bounds it from above."""
    declared = evidence.declaration(CellRecord.model_validate(conda_record()))
    env = environment(cuda=measured)
    found = evidence.differences(declared, env.facts, env.host, LOCK)
    assert (found == []) is stands
    if not stands:
        said = measured or "none"
        assert found == [
            f"accelerator build: declared CUDA up to 12.8, torch.version.cuda is {said}"
        ]
    # A wheel cell's CUDA is exact.
    wheel = evidence.declaration(record_model(UV))
    assert (evidence.differences(wheel, env.facts, env.host, LOCK) == []) is (measured == "12.8")


def test_tox_leaves_conda_cells_out(tmp_path: Path) -> None:
    envs = tmp_path / "environments"
    write_cell_json(envs, UV)
    write_conda(envs)
    assert tox.locked_cells(envs) == [(UV, "3.11")]


def test_pull_prints_conda_locks_install_for_a_conda_cell(tmp_path: Path) -> None:
    folder = write_conda(tmp_path)
    for name in ("conda-linux-64.lock", "pip-linux-64.txt"):
        (folder / name).write_text("# rendered\n")
    cell = cell_lock.read_lock(tmp_path, CONDA)
    assert publish.native_install(cell, venv=".conda-env") == [
        f"conda-lock install --prefix .conda-env environments/{CONDA}/conda-lock.yml"
    ]


def test_recommend_refuses_an_unknown_installer_in_one_line() -> None:
    from typer.testing import CliRunner

    from audiomatrix.cli.app import app

    table = Path(__file__).resolve().parents[1] / compatibility.JSON_FILE
    outcome = CliRunner().invoke(app, ["recommend", "--table", str(table), "--installer", "pixi"])
    assert outcome.exit_code == 2
    assert outcome.output == "--installer pixi: choose uv or conda\n"


@pytest.mark.site
def test_the_page_filters_rows_by_installer(browser, repo: Path) -> None:  # noqa: F811
    site = repo / "index.html"
    site.write_text(page_view.html(table(repo)))
    problems: list[str] = []
    page = _open(browser, site, problems)
    page.click("#tab-list")

    def shown() -> list[str | None]:
        rows = page.query_selector_all("#results tbody tr.row")
        return [r.get_attribute("data-installer") for r in rows if r.is_visible()]

    assert shown() == ["uv", "conda"]
    page.select_option('select[name="installer"]', "conda")
    assert shown() == ["conda"] and page.text_content("#count") == "1 of 2 rows"
    page.select_option('select[name="installer"]', "uv")
    assert shown() == ["uv"]
    assert problems == []
