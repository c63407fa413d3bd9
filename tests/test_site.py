"""site/index.html in a real browser: Debian's chromium driven by playwright (no download).

Marked `site`: needs the `chromium` Debian package (/usr/bin/chromium, or $CHROMIUM) and the
playwright Python package; playwright's own browser download is never used. Screenshots go to
the test's tmp folder and, when $SITE_SCREENSHOTS names a folder, there too.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from audiomatrix import publish, report, signatures
from test_report import repo, table  # noqa: F401  (the fixture and helper)

pytestmark = pytest.mark.site
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
    path = tmp_path / f"site-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if out := os.environ.get("SITE_SCREENSHOTS"):
        Path(out).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(out) / path.name)
    return path


def _open(browser, site: Path, problems: list[str]):
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in (
        "error", "warning") else None)  # fmt: skip
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.goto(site.as_uri())
    return page


def test_page_renders_filters_searches_and_explains(browser, repo: Path, tmp_path: Path) -> None:  # noqa: F811
    site = report.write_all(table(repo), tmp_path / "out")[2]
    problems: list[str] = []
    page = _open(browser, site, problems)
    visible = page.locator("#results tbody tr.row:visible")
    shots = [_shoot(page, tmp_path, "all")]
    where = f"(screenshots: {', '.join(map(str, shots))})"
    assert visible.count() == 4, where
    assert page.locator("#count").inner_text() == "4 of 4 rows", where
    assert page.locator("#results .s-fail").count() > 0, where

    page.select_option("select[data-axis=torch]", "2.9.1")
    shots.append(_shoot(page, tmp_path, "torch-2.9.1"))
    assert visible.count() == 2, f"torch=2.9.1 should leave 2 rows {shots}"
    assert page.locator("#count").inner_text() == "2 of 4 rows"
    page.select_option("select[data-axis=where]", "image")
    assert visible.count() == 0, f"no torch 2.9.1 image rows {shots}"
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
    assert detail.locator("a[href='https://github.com/pytorch/audio/issues/4182']").count() == 1
    assert problems == [], f"{problems} {shots}"
    page.close()


def test_page_of_the_committed_results(browser, tmp_path: Path) -> None:
    """The real results/ (when this checkout has some) render without a console error."""
    root = Path(__file__).resolve().parents[1]
    if not any((root / "results").glob("*/*.json")):
        pytest.skip("no results/ in this checkout")
    t = report.build(root / "results", root / "environments")
    site = report.write_all(t, tmp_path / "out")[2]
    problems: list[str] = []
    page = _open(browser, site, problems)
    shot = _shoot(page, tmp_path, "committed")
    assert page.locator("#results tbody tr.row:visible").count() == len(t.rows), shot
    assert problems == [], f"{problems} {shot}"
    page.close()


def test_detail_panel_names_the_published_image(browser, repo: Path, tmp_path: Path) -> None:  # noqa: F811
    t = table(repo)
    row = next(r for r in t.rows if r.where.kind == "image")
    digest = "sha256:" + "cd" * 32
    published = report.Published(
        reference=f"127.0.0.1:5000/audiomatrix/cell@{digest}",
        tags=[f"127.0.0.1:5000/audiomatrix/cell:{row.cell}"],
        digest=digest,
        image_id=row.where.image_digest or "",
        pushed=row.finished,
        sbom=report.Sbom(
            path=f"sboms/{row.cell}.cdx.json", reference="r", digest=digest, components=3
        ),
    )
    site = report.write_all(publish.with_publications(t, {row.cell: published}), tmp_path)[2]
    problems: list[str] = []
    page = _open(browser, site, problems)
    page.select_option("select[data-axis=where]", "image")
    page.locator("#results tr.row:visible").first.click()
    text = page.locator("#detail").inner_text()
    shot = _shoot(page, tmp_path, "published")
    assert f"docker pull {published.reference}" in text, shot
    assert f"CycloneDX 1.6 sboms/{row.cell}.cdx.json" in text, shot
    assert problems == [], f"{problems} {shot}"
    page.close()
