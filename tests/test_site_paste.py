"""The page's error search and its "paste your error" box, in a real browser (marked `site`,
as test_site.py): the box must answer as `audiomatrix check --log` does for the same text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from audiomatrix.catalog import matching, signatures
from audiomatrix.check import report
from audiomatrix.records import compatibility
from test_check import CAPTURED, WINDOWS_TRACEBACK, as_pasted, outcomes_with_signatures
from test_site import FIRST_SCREEN, _committed_site, _in_view, browser  # noqa: F401

pytestmark = pytest.mark.site

ANSWERS = """lis => lis.map(li => ({signature: li.dataset.signature,
    whole: li.dataset.whole === "true", in_warning: li.dataset.inWarning === "true",
    line: li.querySelector("dd.line").innerText,
    reproduced: Array.from(li.querySelectorAll(".row-link"), b => b.innerText)}))"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[compatibility.Compatibility, Path]:
    return _committed_site(tmp_path_factory.mktemp("site"))


@pytest.fixture
def page(browser, site) -> Any:  # noqa: F811
    problems: list[str] = []
    opened = browser.new_page(viewport=FIRST_SCREEN)
    opened.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    opened.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    opened.goto(site[1].as_uri())
    yield opened
    opened.close()
    assert problems == []


def _expected(text: str, t: compatibility.Compatibility) -> list[dict[str, Any]]:
    """What `check --log` answers for `text`, as the box shows it."""
    return [
        {
            "signature": m["signature"],
            "whole": m["whole"],
            "in_warning": m["in_warning"],
            "line": m["line"] + (" (inside a warning)" if m["in_warning"] else ""),
            "reproduced": [f"{s['cell']} {s['check']} ({s['mode']})" for s in m["reproduced"]],
        }
        for m in report.for_log(text, t).matches
    ]


def _paste(page, text: str) -> list[dict[str, Any]]:
    page.fill("#pasted", text)
    return page.locator("#answers > ol > li").evaluate_all(ANSWERS)


def _error_rows(t: compatibility.Compatibility, word: str, checks: list[str]) -> set[int]:
    """The rows whose first error (in `checks`) has `word`."""
    return {
        i
        for i, row in enumerate(t.rows)
        for c in checks
        if c in row.checks
        for o in (row.checks[c].raw, row.checks[c].compat)
        if o and word in (o.first_error or "").lower()
    }


def test_search_matches_first_errors_and_patterns(page, site) -> None:
    t = site[0]
    page.fill("#search", "save_with_torchcodec")
    expected = _error_rows(t, "save_with_torchcodec", t.checks)
    assert expected, "the committed results have rows failing in save_with_torchcodec"
    shown = "ms => ms.filter(m => !m.hidden).map(m => Number(m.dataset.row))"
    # The grid: each workload's marks whose own checks failed so.
    for workload, checks in t.workloads.items():
        marks = page.locator(f".glance[data-workload={workload}] .mark[data-row]")
        assert set(marks.evaluate_all(shown)) == _error_rows(t, "save_with_torchcodec", checks)
    page.click("#tab-list")
    rows = "rs => rs.filter(r => !r.hidden).map(r => Number(r.dataset.index))"
    assert set(page.locator("#results tr.row").evaluate_all(rows)) == expected
    assert page.locator("#count").inner_text() == f"{len(expected)} of {len(t.rows)} rows"
    # A signature's pattern: its rows, though no first error has the pattern's text.
    page.fill("#search", "(load|save)_with_torchcodec")
    missing = {
        i
        for i, row in enumerate(t.rows)
        for c in row.checks.values()
        if "torchcodec-missing" in (c.raw and c.raw.signature, c.compat and c.compat.signature)
    }
    assert missing and set(page.locator("#results tr.row").evaluate_all(rows)) == missing


def test_every_catalog_pattern_compiles_in_the_browser(page) -> None:
    failing = page.evaluate("""() => JSON.parse(document.getElementById("catalog-data")
        .textContent).entries.flatMap(e => [e.pattern, e.first_part].filter(p => p !== null)
        .flatMap(p => { try { new RegExp(p, "u"); return []; } catch (err) {
            return [e.id + ": " + err.message]; } }))""")
    assert failing == []
    ids = page.evaluate("""() => JSON.parse(document.getElementById("catalog-data")
        .textContent).entries.map(e => e.id)""")
    assert ids == [s.id for s in signatures.catalog()]


def test_the_ranking_agrees_with_matching_on_every_committed_failure(page) -> None:
    """matching.js against catalog.matching on every failed check of the committed results:
    its first error line alone, and with its whole log."""
    found = outcomes_with_signatures()
    texts = sorted({e for _, e, _ in found} | {f"{e}\n{log}" for _, e, log in found})
    ranked = page.evaluate(
        """texts => {
        const c = catalogMatching.prepare(
            JSON.parse(document.getElementById("catalog-data").textContent));
        return texts.map(t => catalogMatching.matches(c, t)
            .map(m => [m.entry.id, m.whole, m.line, m.in_warning]));
    }""",
        texts,
    )
    for text, got in zip(texts, ranked, strict=True):
        expected = [[m.signature.id, m.whole, m.line, m.in_warning] for m in matching.matches(text)]
        assert got == expected, text[:200]


@pytest.mark.parametrize("path", CAPTURED, ids=[p.stem for p in CAPTURED])
def test_pasting_a_captured_error_answers_as_check_log(page, site, path: Path) -> None:
    """Each file of tests/data/errors/, as captured and as a Windows user pastes it (their
    paths, CRLF, colours, warnings around): its signature first, the whole answer as
    `check --log` gives it, with the rows that reproduced each match."""
    page.click("#paste summary")
    for text in (path.read_text(), as_pasted(path.read_text())):
        found = _paste(page, text)
        assert found[0]["signature"] == path.stem.split("--")[0]
        assert found == _expected(text, site[0])


def test_a_windows_traceback_and_its_rows(page, site) -> None:
    page.click("#paste summary")
    found = _paste(page, WINDOWS_TRACEBACK)
    assert found == _expected(WINDOWS_TRACEBACK, site[0])
    assert [f["signature"] for f in found] == ["coqui-tts-six-undeclared"]
    assert found[0]["line"] == "ModuleNotFoundError: No module named 'six'"
    answer = page.locator("#answers li").first
    remedy = signatures.by_id("coqui-tts-six-undeclared").remedy
    assert " ".join(remedy.split()) in " ".join(answer.inner_text().split())
    assert found[0]["reproduced"], "the committed results reproduce it"
    answer.locator(".row-link").first.click()
    cell = found[0]["reproduced"][0].split()[0]
    assert page.locator("#detail h2").inner_text() == cell
    page.keyboard.press("Escape")
    _paste(page, "ZeroDivisionError: division by zero\n")
    assert page.locator("#answers").inner_text() == "no catalog entry matches this text"
    page.fill("#pasted", "")
    assert page.locator("#answers").inner_text() == ""


def test_the_box_waits_collapsed_beside_the_search(page) -> None:
    """Closed, it is one line beside the search: the grid starts where it did."""
    assert _in_view(page, "#paste summary") == ["paste your error"]
    assert page.locator("#pasted").is_hidden()
    top = page.locator("#filters").evaluate("f => f.getBoundingClientRect().height")
    page.locator("#paste").evaluate("d => { d.remove(); }")
    assert page.locator("#filters").evaluate("f => f.getBoundingClientRect().height") == top
