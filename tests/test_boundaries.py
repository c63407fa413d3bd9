"""The boundary search with verdicts given as data, and what it reads from pip and from a
probe run: no installs, no network."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from packaging.specifiers import Specifier
from packaging.version import Version

from audiomatrix.catalog import probe_runs, probes, signatures
from audiomatrix.catalog.boundaries import (
    MAX_PROBES,
    EdgeNotFound,
    NoVerdict,
    Verdict,
    fits,
    oriented,
    parse_versions,
    read_verdict,
    search,
    start,
)

RELEASES = [Version(v) for v in ("2.4.0", "2.5.0", "2.5.1", "2.6.0", "2.7.0", "2.7.1", "2.8.0")]
RELEASES += [Version(v) for v in ("2.9.0", "2.9.1", "2.10.0", "2.11.0", "2.12.0")]


def fails_from(first_bad: str, calls: list[Version]) -> Callable[[Version], Verdict]:
    """A verdict function as data: releases from `first_bad` on fail; each call is recorded."""

    def verdict(version: Version) -> Verdict:
        calls.append(version)
        return "fails" if version >= Version(first_bad) else "works"

    return verdict


def run_search(clause: str, first_bad: str) -> tuple[tuple[str, str], list[Version]]:
    spec = Specifier(clause)
    versions = oriented(RELEASES, spec)
    calls: list[Version] = []
    found = search(versions, fails_from(first_bad, calls), *start(versions, spec))
    return (str(found.good), str(found.bad)), calls


def test_the_edge_where_the_range_says_takes_two_verdicts():
    pair, calls = run_search(">=2.6", "2.6.0")
    assert pair == ("2.5.1", "2.6.0")
    assert calls == [Version("2.6.0"), Version("2.5.1")]


def test_an_edge_later_than_catalogued_is_found_by_galloping_then_bisecting():
    pair, calls = run_search(">=2.6", "2.9.1")
    assert pair == ("2.9.0", "2.9.1")
    assert len(calls) == len(set(calls)) <= MAX_PROBES


def test_an_edge_earlier_than_catalogued_is_found():
    pair, calls = run_search(">=2.9", "2.5.0")
    assert pair == ("2.4.0", "2.5.0")
    assert len(calls) == len(set(calls)) <= MAX_PROBES


def test_an_upper_bound_searches_downwards():
    versions = oriented(RELEASES, Specifier("<2.6"))
    good, bad = start(versions, Specifier("<2.6"))
    assert (versions[good], versions[bad]) == (Version("2.6.0"), Version("2.5.1"))

    def verdict(version: Version) -> Verdict:
        return "fails" if version < Version("2.6") else "works"

    found = search(versions, verdict, good, bad)
    assert (str(found.good), str(found.bad)) == ("2.6.0", "2.5.1")
    assert fits(found, Specifier("<2.6")) and not fits(found, Specifier("<2.5"))


def test_a_no_verdict_stops_the_search_at_once():
    calls: list[Version] = []

    def verdict(version: Version) -> Verdict:
        calls.append(version)
        raise NoVerdict("installing torch 2.6.0 failed: no space left on device")

    versions = oriented(RELEASES, Specifier(">=2.6"))
    with pytest.raises(NoVerdict, match=r"^installing torch 2.6.0 failed: no space left"):
        search(versions, verdict, *start(versions, Specifier(">=2.6")))
    assert calls == [Version("2.6.0")]


def test_the_probe_budget_is_respected():
    calls: list[Version] = []
    versions = oriented(RELEASES, Specifier(">=2.5"))
    with pytest.raises(EdgeNotFound, match=r"^no edge within 3 probes$"):
        search(versions, fails_from("2.12.0", calls), *start(versions, Specifier(">=2.5")), 3)
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(EdgeNotFound, match=r"^the last release probed, 2.12.0, works too$"):
        search(versions, fails_from("9", calls), *start(versions, Specifier(">=2.5")))
    assert len(calls) <= MAX_PROBES


def test_a_range_the_index_cannot_bound_is_one_line():
    with pytest.raises(EdgeNotFound, match=r"^no release on the index is inside >=3$"):
        start(RELEASES, Specifier(">=3"))
    with pytest.raises(EdgeNotFound, match=r"^every release on the index is inside >=2$"):
        start(RELEASES, Specifier(">=2"))


def test_available_versions_are_final_releases_ascending():
    text = (
        "torch (2.9.1)\n"
        "Available versions: 2.9.1, 2.9.0, 2.10.0rc1, 2.8.0+cpu, 2.8.0, 2.7.1.dev0, 1.13.1, 0.4.1.post2\n"  # noqa: E501
        "  INSTALLED: 2.8.0\n  LATEST:    2.9.1\n"
    )
    assert [str(v) for v in parse_versions(text)] == [
        "0.4.1.post2",
        "1.13.1",
        "2.8.0",
        "2.9.0",
        "2.9.1",
    ]
    with pytest.raises(ValueError, match="no `Available versions:` line"):
        parse_versions("WARNING: pip index is currently an experimental command.\n")


def test_a_probe_run_decides_by_exit_code_and_the_entry_pattern():
    entry = signatures.by_id("coqui-tts-six-undeclared")
    assert read_verdict(0, "", entry.matches) == "works"
    trace = "Traceback (most recent call last):\nModuleNotFoundError: No module named 'six'\n"
    assert read_verdict(1, trace, entry.matches) == "fails"
    other = "Traceback (most recent call last):\nImportError: libcudart.so.12: cannot open\n"
    with pytest.raises(NoVerdict, match=r"^exited 1 with another error: ImportError: libcudart"):
        read_verdict(1, other, entry.matches)


def test_every_edge_of_the_catalog_has_a_probe_and_every_probe_an_edge():
    edges = {(e.id, p) for e in signatures.catalog() for p, _ in e.edges()}
    assert edges == {(p.entry, p.package) for p in probes.PROBES}
    assert len({p.id for p in probes.PROBES}) == len(probes.PROBES)


def test_every_edge_of_the_catalog_is_measured_or_says_why_not():
    for entry in signatures.catalog():
        recorded = {b.edge() for b in entry.measured}
        for package, clause in entry.edges():
            assert (package, clause) in recorded, f"{entry.id}: {package} {clause}"
        for b in entry.measured:
            if b.unmeasured is None:
                assert any(p.id == b.probe for p in probes.PROBES), b.probe


def test_every_entry_bounds_each_package_it_depends_on_or_says_why_none():
    for entry in signatures.catalog():
        assert bool(entry.affects) != bool(entry.unversioned), entry.id
        for package, spec in entry.affects.items():
            edges = signatures.range_clauses(spec)
            assert edges, f"{entry.id}: {package} {spec} has no range"
            measured = {b.bound for b in entry.measured if b.package == package}
            assert measured == {str(c) for c in edges}, f"{entry.id}: {package}"


def test_too_little_disk_stops_before_anything_is_installed():
    venvs = probe_runs.ProbeVenvs(min_free_bytes=10**18)
    probe = probes.probe_for("setuptools-pkg-resources-removed", "setuptools")
    entry = signatures.by_id("setuptools-pkg-resources-removed")
    with pytest.raises(probe_runs.DiskLow, match=r"GB free where .*under the 1000000000 GB"):
        venvs.verdict(probe, entry, Version("81.0.0"))


def test_a_python_this_machine_lacks_is_unmeasurable():
    with pytest.raises(
        probe_runs.Unmeasurable, match=r"^no CPython 3.99 on the measuring machine$"
    ):
        probe_runs.ProbeVenvs().interpreter("3.99")
