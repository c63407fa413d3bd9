"""site/index.html in a real browser: Debian's chromium driven by playwright (no download).

Marked `site`: needs the `chromium` Debian package (/usr/bin/chromium, or $CHROMIUM) and the
playwright Python package; playwright's own browser download is never used. Screenshots go to
the test's tmp folder and, when $SITE_SCREENSHOTS names a folder, there too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audiomatrix.catalog import signatures
from audiomatrix.publish import registry
from audiomatrix.records import compatibility, publication
from audiomatrix.smoke import results
from audiomatrix.table import report
from audiomatrix.views import constraints, diff, grid, writers
from support import run_result
from test_report import ALL_PASS, BROKEN, NEW, OLD, repo, table  # noqa: F401

pytestmark = pytest.mark.site
LAPTOP = 1366
REPO = Path(__file__).resolve().parents[1]
"""The width the list must fit without horizontal scrolling."""
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no {CHROMIUM}: install Debian's chromium package")
    with sync_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


def _shoot(page, tmp_path: Path, name: str) -> Path:
    """A full-page screenshot, checked to be a non-empty PNG as wide as the viewport."""
    path = tmp_path / f"site-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if out := os.environ.get("SITE_SCREENSHOTS"):
        Path(out).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(out) / path.name)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height > 100, len(data) > 5000) == (page.viewport_size["width"], True, True)
    return path


def _open(browser, site: Path, problems: list[str], width: int = 1600, fragment: str = ""):
    page = browser.new_page(viewport={"width": width, "height": 1000})
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in (
        "error", "warning") else None)  # fmt: skip
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.goto(site.as_uri() + fragment)
    return page


def _rgb(colour: str) -> str:
    """#1a7f37 as the browser computes it: rgb(26, 127, 55)."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


MARKS = """ms => ms.map(m => ({workload: m.dataset.workload, row: m.dataset.row ?? null,
    cell: m.dataset.cell, status: m.dataset.status, title: m.title,
    colour: getComputedStyle(m).backgroundColor}))"""


def _embedded(page) -> Any:
    return json.loads(page.evaluate("document.getElementById('data').textContent"))


def _colours_agree(page, t: compatibility.Compatibility) -> list[dict[str, Any]]:
    """Every row has one mark per grid, coloured by its raw outcome there; the declared cells
    without a row are grey; nothing else is in the grid. Returns the marks."""
    marks = page.eval_on_selector_all(".glance .mark", MARKS)
    views = grid.views(t)
    placed = {(m["workload"], int(m["row"])): m for m in marks if m["row"] is not None}
    assert sorted(placed) == sorted((w, i) for w in views for i in range(len(t.rows)))
    for (workload, index), mark in placed.items():
        row = t.rows[index]
        raw = grid.verdict(row, views[workload], "raw").status
        compat = grid.verdict(row, views[workload], "compat")
        seen = (mark["cell"], mark["status"], mark["colour"])
        assert seen == (row.cell, raw, _rgb(grid.colour(raw))), (workload, index, mark)
        assert f"with compat: {compat.status}" in mark["title"], mark
        assert all(sig in mark["title"] for sig in compat.signatures), mark
    pending = [m for m in marks if m["row"] is None]
    assert sorted(m["cell"] for m in pending) == sorted(
        c.cell for c in grid.not_run(t) for _ in views
    )
    assert {m["colour"] for m in pending} <= {_rgb(grid.PALETTE[grid.NOT_RUN])}
    return marks


def test_the_grid_is_coloured_as_the_table_says(browser, repo: Path, tmp_path: Path) -> None:  # noqa: F811
    t = table(repo)
    site = writers.write_all(t, tmp_path / "out")[2]
    problems: list[str] = []
    page = _open(browser, site, problems, LAPTOP)
    shot = _shoot(page, tmp_path, "grid")
    assert page.locator("#grid-view").is_visible() and page.locator("#list-view").is_hidden()
    assert compatibility.Compatibility.model_validate(_embedded(page)) == t, shot
    marks = _colours_agree(page, t)
    # The run measured elsewhere (BROKEN, natively) is not in the grid; its image row is.
    assert {m["title"].split("\n")[0] for m in marks if m["cell"] == BROKEN} == {
        f"{BROKEN} (image)"
    }
    xtts = page.locator(".glance[data-workload=xtts]")
    assert xtts.locator(".tally").inner_text() == (
        "3 of 4 rows pass as installed, 3 with compat, 3 with a proven fix; 2 not run"
    )
    demucs = page.locator(".glance[data-workload=demucs] .mark[data-row='2']")
    assert "raw: fail (weights-only-demucs)" in demucs.get_attribute("title")
    assert "state-compat" in demucs.get_attribute("class")  # compat makes it pass: →✓
    assert demucs.locator(".then").inner_text() == "→✓"
    demucs.click()
    detail = page.locator("#detail")
    shots = [shot, _shoot(page, tmp_path, "grid-detail")]
    assert detail.is_visible() and NEW in detail.locator("h2").inner_text(), shots
    remedy = signatures.by_id("weights-only-demucs").remedy
    assert " ".join(remedy.split()) in " ".join(detail.inner_text().split()), shots
    page.keyboard.press("Escape")
    assert detail.is_hidden()

    page.select_option("select[data-axis=accelerator]", "cu124")
    shots.append(_shoot(page, tmp_path, "grid-cu124"))
    assert xtts.locator(".tally").inner_text() == (
        "2 of 2 rows pass as installed, 2 with compat, 2 with a proven fix; 0 not run"
    ), shots
    assert xtts.locator("tbody tr:visible").count() == 1, shots
    assert xtts.locator("thead th:visible").all_inner_texts() == ["torch ╲ Python", "3.11"]
    page.select_option("select[data-axis=accelerator]", "cu130")
    shown = "ms => ms.filter(m => !m.hidden).length"
    assert xtts.locator(".mark").evaluate_all(shown) == 1  # the unreachable cell, not run
    assert xtts.locator("details.waiting:visible").all_inner_texts() == ["1 not run"]
    page.select_option("select[data-axis=installer]", "uv")
    page.select_option("select[data-axis=accelerator]", "")
    assert xtts.locator(".mark").evaluate_all(shown) == 6
    assert problems == [], f"{problems} {shots}"
    page.close()


def test_an_unknown_status_is_drawn_generically(browser, repo: Path, tmp_path: Path) -> None:  # noqa: F811
    """A status a newer suite adds (drift, or one not known at all) still gets a colour."""
    t = table(repo)

    def with_status(row: compatibility.Row, check: str, status: str) -> compatibility.Row:
        outcome = compatibility.Outcome.model_construct(status=status, signature=None)
        checks = {**row.checks, check: compatibility.CheckRow(raw=outcome, compat=outcome)}
        return row.model_copy(update={"checks": checks})

    rows = [with_status(t.rows[0], "demucs", "drift"), with_status(t.rows[1], "xtts", "weird")]
    odd = t.model_copy(update={"rows": rows + t.rows[2:]})
    site = writers.write_all(odd, tmp_path / "out")[2]
    problems: list[str] = []
    page = _open(browser, site, problems)
    assert _embedded(page) == odd.model_dump(mode="json")
    marks = _colours_agree(page, odd)
    weird = next(m for m in marks if m["workload"] == "xtts" and m["row"] == "1")
    assert weird["colour"] == _rgb(grid.OTHER_COLOUR)
    page.locator(".glance[data-workload=xtts] .mark[data-row='1']").click()
    badge = page.locator("#detail .s", has_text="weird").first
    assert "s-other" in badge.get_attribute("class")
    assert problems == [], problems
    page.close()


def test_the_list_fits_a_laptop_and_explains(browser, repo: Path, tmp_path: Path) -> None:  # noqa: F811
    site = writers.write_all(table(repo), tmp_path / "out")[2]
    problems: list[str] = []
    page = _open(browser, site, problems, LAPTOP)
    page.click("#tab-list")
    shots = [_shoot(page, tmp_path, "list")]
    assert page.locator("#list-view").is_visible() and page.locator("#grid-view").is_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP, shots
    edges = page.eval_on_selector_all(
        "#results th", "ths => ths.map(t => t.getBoundingClientRect().right)"
    )
    assert len(edges) == len(report.CHECKS) + 1 and max(edges) <= LAPTOP, shots
    heads = page.locator("#results th").all_inner_texts()
    assert heads == ["cell", *report.CHECKS], "the cell leads"
    visible = page.locator("#results tbody tr.row:visible")
    assert visible.count() == 4, shots
    assert page.locator("#count").inner_text() == "4 of 4 rows"
    assert page.locator("#results .s-fail").count() > 0

    page.select_option("select[data-axis=torch]", "2.9.1")
    assert visible.count() == 2, f"torch=2.9.1 should leave 2 rows {shots}"
    assert page.locator("#count").inner_text() == "2 of 4 rows"
    page.select_option("select[data-axis=where]", "image")
    assert visible.count() == 1, shots
    page.select_option("select[data-axis=where]", "")
    page.select_option("select[data-axis=torch]", "")

    page.fill("#search", "maintained hang")
    shots.append(_shoot(page, tmp_path, "search"))
    assert visible.count() == 1, f"search 'maintained hang' {shots}"
    assert "cu128-maintained" in visible.first.inner_text()
    page.fill("#search", "")
    assert visible.count() == 4

    assert page.locator("#detail").is_hidden()
    page.locator("#results tr.row", has_text="cu128-legacy-pinned").click()
    detail = page.locator("#detail")
    shots.append(_shoot(page, tmp_path, "detail"))
    assert detail.is_visible(), shots
    text = detail.inner_text()
    remedy = signatures.by_id("weights-only-demucs").remedy
    assert " ".join(remedy.split()) in " ".join(text.split()), f"remedy missing {shots}"
    assert "Weights only load failed" in text
    assert "lock sha256" in text and "results/" in text  # the provenance moved here
    assert detail.locator("a[href='https://github.com/pytorch/audio/issues/4182']").count() == 1
    page.locator("#detail .close").click()
    assert detail.is_hidden()
    assert problems == [], f"{problems} {shots}"
    page.close()
    # The list view has an address of its own.
    page = _open(browser, site, problems, LAPTOP, "#list")
    assert page.locator("#list-view").is_visible() and page.locator("#grid-view").is_hidden()
    page.goto(site.as_uri() + "#grid")
    assert page.locator("#grid-view").is_visible() and problems == []
    page.close()


def test_what_changed_since_a_previous_table(browser, repo: Path, tmp_path: Path) -> None:  # noqa: F811
    old = table(repo)
    broke = run_result(OLD, ALL_PASS | {"xtts": "fail"}, ALL_PASS, run="20261125T180000Z")
    results.write(repo / "results", broke)
    new = table(repo)
    changes = diff.diff(old, new)
    site = writers.write_all(new, tmp_path / "out", changes)[2]
    problems: list[str] = []
    page = _open(browser, site, problems, LAPTOP)
    summary = page.locator("#changes summary").inner_text()
    assert summary == "Since the previous table: 1 change, 1 regression"
    changed = page.locator(".glance .mark.changed")
    assert changed.count() == 1
    assert "since the previous table: xtts raw: pass → fail" in changed.get_attribute("title")
    assert changed.evaluate("m => getComputedStyle(m).outlineStyle") == "dashed"
    xtts = page.locator("#summary tr[data-workload=xtts]").inner_text()
    assert " ".join(xtts.split()) == "XTTS 2 3 2 1 red, 0 green"  # raw, compat, proven fix
    page.click("#changes summary")
    shot = _shoot(page, tmp_path, "changes")
    assert page.locator("#changes li.red").inner_text().startswith("RED"), shot
    assert problems == [], f"{problems} {shot}"
    page.close()


def test_page_of_the_committed_results(browser, tmp_path: Path) -> None:
    """The real results/ (when this checkout has some) render without a console error, the
    list fitting a laptop screen."""
    root = Path(__file__).resolve().parents[1]
    if not any((root / "results").glob("*/*.json")):
        pytest.skip("no results/ in this checkout")
    t = report.build(root / "results", root / "environments", root / publication.FOLDER)
    site = writers.write_all(t, tmp_path / "out")[2]
    problems: list[str] = []
    page = _open(browser, site, problems, LAPTOP)
    shots = [_shoot(page, tmp_path, "committed")]
    _colours_agree(page, t)
    page.click("#tab-list")
    page.locator("#list-view details").evaluate_all("ds => ds.forEach(d => { d.open = true; })")
    shots.append(_shoot(page, tmp_path, "committed-list"))
    assert page.locator("#results tbody tr.row:visible").count() == len(t.rows), shots
    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP, shots
    assert problems == [], f"{problems} {shots}"
    page.close()


def test_detail_panel_names_the_published_image(browser, repo: Path, tmp_path: Path) -> None:  # noqa: F811
    row = next(r for r in table(repo).rows if r.where.kind == "image")
    digest = "sha256:" + "cd" * 32
    published = publication.Published(
        cell=row.cell,
        reference=f"127.0.0.1:5000/audiomatrix/cell@{digest}",
        tags=[f"127.0.0.1:5000/audiomatrix/cell:{row.cell}"],
        digest=digest,
        image_id=row.where.image_digest or "",
        pushed=row.finished,
        sbom=publication.Sbom(
            path=f"sboms/{row.cell}.cdx.json", reference="r", digest=digest, components=3
        ),
    )
    registry.write_publication(repo / publication.FOLDER, published)
    site = writers.write_all(table(repo), tmp_path)[2]
    problems: list[str] = []
    page = _open(browser, site, problems)
    page.click("#tab-list")
    page.select_option("select[data-axis=where]", "image")
    page.locator("#results tr.row:visible").first.click()
    text = page.locator("#detail").inner_text()
    shot = _shoot(page, tmp_path, "published")
    assert f"docker pull {published.reference}" in text, shot
    assert f"CycloneDX 1.6 sboms/{row.cell}.cdx.json" in text, shot
    assert problems == [], f"{problems} {shot}"
    page.close()


FIRST_SCREEN = {"width": LAPTOP, "height": 900}
EVIDENCE = Path(__file__).resolve().parents[1] / "evidence" / "page"


def _committed_site(tmp_path: Path) -> tuple[compatibility.Compatibility, Path]:
    root = Path(__file__).resolve().parents[1]
    if not any((root / "results").glob("*/*.json")):
        pytest.skip("no results/ in this checkout")
    t = report.build(root / "results", root / "environments", root / publication.FOLDER)
    return t, writers.write_all(t, tmp_path / "out")[2]


def _in_view(page, selector: str) -> list[str]:
    """The text of each element matching `selector` that is drawn inside the first screen."""
    return page.eval_on_selector_all(
        selector,
        """ns => ns.filter(n => {
        const r = n.getBoundingClientRect();
        return r.width > 0 && r.height > 0 && r.top >= 0 && r.bottom <= innerHeight;
    }).map(n => n.innerText)""",
    )


def test_the_first_screen_reads_right(browser, tmp_path: Path) -> None:
    """At 1366x900, before any scroll or hover: the three states (as installed, with compat,
    with a proven fix) in the summary and the legend, XTTS marks of the first and the third,
    a label on every mark, no bare `0 → 0`, the cells not run collapsed, no sideways scroll."""
    t, site = _committed_site(tmp_path)
    problems: list[str] = []
    page = browser.new_page(viewport=FIRST_SCREEN)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(site.as_uri())
    shot = tmp_path / "first-screen.png"
    page.screenshot(path=str(shot))
    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP, shot
    heads = _in_view(page, "#summary thead th")
    assert heads[1:4] == ["pass as installed", "with compat", "with a proven fix"], shot
    assert len(_in_view(page, ".legend .state")) == 3, shot
    body = page.inner_text("body")
    assert not re.search(r"\b0 (→|->) 0\b", body), shot
    skipped = page.locator("#summary tr[data-workload=accelerator]").inner_text()
    assert " ".join(skipped.split()) == "accelerator skipped on all 40 rows (no GPU)"
    xtts = page.locator("#summary tr[data-workload=xtts]").inner_text()
    assert " ".join(xtts.split()) == "XTTS 7 7 9 +six", shot
    raw = _in_view(page, ".glance[data-workload=xtts] .mark[data-state=raw]")
    proven = _in_view(page, ".glance[data-workload=xtts] .mark[data-state=proven]")
    assert raw and proven, shot
    assert proven[0].split() == ["✗", "→✓", "cu124", "maintained", "+six"], shot
    views = grid.grids(t)
    labels = page.eval_on_selector_all(
        ".glance .mark[data-row]",
        "ms => ms.map(m => [m.dataset.workload, m.dataset.row, m.querySelector('.lbl').innerText])",
    )
    expected = {
        (name, str(m.row)): grid.mark_label(m)
        for name, g in views.items() for s in g.squares.values() for q in s.values()
        for m in q.marks if m.row is not None
    }  # fmt: skip
    assert {(w, r): label for w, r, label in labels} == expected
    assert page.locator(".glance .mark.pending:visible").count() == 0  # collapsed
    waiting = page.locator(".glance[data-workload=xtts] details.waiting").first
    waiting.locator("summary").click()
    why = waiting.locator(".mark.pending .why").all_inner_texts()
    assert why and set(why) <= {m.status for m in t.missing}
    # The details of a row fit their panel: no sideways scroll there either.
    page.locator(".glance[data-workload=xtts] .mark[data-state=proven]").first.click()
    detail = page.locator("#detail")
    assert "passes with +six" in detail.inner_text()
    assert detail.evaluate("d => d.scrollWidth <= d.clientWidth"), shot
    assert problems == [], problems
    page.close()


def test_evidence_screenshots(browser, tmp_path: Path) -> None:
    """Regenerates evidence/page/: the first screen at 1366x900 and the XTTS grid."""
    _, site = _committed_site(tmp_path)
    page = browser.new_page(viewport=FIRST_SCREEN)
    page.goto(site.as_uri())
    EVIDENCE.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(EVIDENCE / "first-screen-1366x900.png"))
    page.locator(".glance[data-workload=xtts]").screenshot(path=str(EVIDENCE / "xtts-grid.png"))
    for name in ("first-screen-1366x900.png", "xtts-grid.png"):
        data = (EVIDENCE / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    width, height = struct.unpack(
        ">II", (EVIDENCE / "first-screen-1366x900.png").read_bytes()[16:24]
    )
    assert (width, height) == (LAPTOP, 900)
    page.close()


def test_the_gpu_filter_and_table_say_what_recommend_says(browser, tmp_path: Path) -> None:
    """On the committed table: the GPU filter keeps the rows recommend --gpu-arch admits (its
    options grouped by generation), and the GPU table shows each build by generation with
    each verdict's evidence in its title."""
    t = compatibility.load(REPO / compatibility.JSON_FILE)
    site = writers.write_all(t, tmp_path / "out")[2]
    problems: list[str] = []
    page = _open(browser, site, problems, LAPTOP)
    groups = page.locator("#gpu optgroup").evaluate_all("gs => gs.map(g => g.label)")
    assert groups == ["Maxwell", "Pascal", "Volta", "Turing", "Ampere", "Ada", "Hopper",
                      "Blackwell"]  # fmt: skip
    shown = "trs => trs.filter(tr => !tr.hidden).map(tr => Number(tr.dataset.index))"
    for arch in ("sm_61", "sm_70", "sm_75", "sm_121", "sm_110"):
        page.select_option("#gpu", arch)
        rows = page.locator("#results tr.row").evaluate_all(shown)
        expected = [i for i, r in enumerate(t.rows) if constraints.runs_on(r, arch)]
        assert rows == expected, arch
        assert page.locator("#count").inner_text() == f"{len(expected)} of {len(t.rows)} rows"
    assert page.locator("#results tr.row").evaluate_all(shown) == []  # sm_110: no build
    page.select_option("#gpu", "")
    assert len(page.locator("#results tr.row").evaluate_all(shown)) == len(t.rows)
    heads = page.locator("#gpu-table th.generation").all_inner_texts()
    assert heads == groups
    builds = page.locator("#gpu-table tbody th").all_inner_texts()
    assert builds[0] == "torch 2.5.1 cu124" and builds[-1] == "torch 2.11.0 cu130"
    t4 = page.locator("#gpu-table tbody tr").last.locator("td[data-arch=sm_75]")
    assert t4.inner_text() == "◐"
    assert "sm_75: partial (predicted): " in t4.get_attribute("title")
    assert "libtorch_cuda_linalg.so: no kernel for sm_75 in all 99 containers" in (
        t4.get_attribute("title")
    )
    drops = page.locator("#gpu-drops li").all_inner_texts()
    assert any(d.startswith("cu130 builds of torch 2.11.0: no kernel image for Maxwell, Pascal, "
                            "Volta and sm_110") for d in drops), drops  # fmt: skip
    assert problems == []
    page.close()
