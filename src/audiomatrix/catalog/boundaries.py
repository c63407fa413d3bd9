"""Where a catalogued failure starts, searched over the index's real releases: the release that
works and the adjacent one that fails. This module is the pure part (versions, the search, a
probe run's verdict); audiomatrix.catalog.probe_runs installs and runs the probes.

A range in `affects` is copied from threads. The search starts at the range's edge (the last
release outside it and the first inside), gallops outwards when a verdict contradicts the
range, then bisects until the two releases are adjacent. A probe's exit 0 works, the entry's
own pattern in its output fails, and anything else decides nothing: the search stops with one
line rather than record an edge that a broken install or another error put there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from packaging.specifiers import Specifier
from packaging.version import InvalidVersion, Version

from audiomatrix.catalog.probes import Probe
from audiomatrix.catalog.signatures import Boundary
from audiomatrix.core.errors import AudiomatrixError

Verdict = Literal["works", "fails"]
MAX_PROBES = 8
"""Verdicts one edge may take: two when the range is right, a few more to find a moved edge."""


class NoVerdict(AudiomatrixError):
    """A probe run that decided nothing: one line saying what happened instead."""


class EdgeNotFound(AudiomatrixError):
    """No adjacent works/fails pair where the search looked: one line saying why."""


@dataclass(frozen=True)
class Found:
    good: Version
    bad: Version
    probed: tuple[tuple[Version, Verdict], ...]
    """Every verdict taken, in version order (the evidence shown next to the result)."""


def parse_versions(text: str) -> list[Version]:
    """The final releases in `pip index versions` output, ascending. Pre-, dev and local
    releases (a +cpu build) are left out: a boundary is between releases users get."""
    match = re.search(r"^Available versions: (.*)$", text, re.M)
    if match is None:
        raise ValueError("no `Available versions:` line in pip's output")
    found = set()
    for word in match.group(1).split(","):
        try:
            version = Version(word.strip())
        except InvalidVersion:
            continue
        if not (version.is_prerelease or version.is_devrelease or version.local):
            found.add(version)
    return sorted(found)


def oriented(versions: Sequence[Version], clause: Specifier) -> list[Version]:
    """The releases in the order the failure spreads (ascending for >= and >, descending for
    <= and <), so that in the result failing releases come after working ones."""
    return sorted(versions, reverse=clause.operator in ("<", "<="))


def start(versions: Sequence[Version], clause: Specifier) -> tuple[int, int]:
    """In oriented `versions`: the last release outside `clause` and the first inside it."""
    inside = [i for i, v in enumerate(versions) if clause.contains(v, prereleases=True)]
    if not inside:
        raise EdgeNotFound(f"no release on the index is inside {clause}")
    if inside[0] == 0:
        raise EdgeNotFound(f"every release on the index is inside {clause}")
    return inside[0] - 1, inside[0]


def search(
    versions: Sequence[Version],
    verdict: Callable[[Version], Verdict],
    good: int,
    bad: int,
    budget: int = MAX_PROBES,
) -> Found:
    """Adjacent (works, fails) releases in oriented `versions`, starting from the guess
    (`good`, `bad`): gallop later while `bad` works, earlier while `good` fails, then bisect.
    Each release is probed at most once; needing more than `budget` verdicts is EdgeNotFound,
    and a NoVerdict from `verdict` ends the search."""
    seen: dict[int, Verdict] = {}

    def ask(i: int) -> Verdict:
        if i not in seen:
            if len(seen) == budget:
                raise EdgeNotFound(f"no edge within {budget} probes")
            seen[i] = verdict(versions[i])
        return seen[i]

    step = 1
    while ask(bad) == "works":
        if bad == len(versions) - 1:
            raise EdgeNotFound(f"the last release probed, {versions[bad]}, works too")
        good, bad, step = bad, min(bad + step, len(versions) - 1), step * 2
    step = 1
    while ask(good) == "fails":
        if good == 0:
            raise EdgeNotFound(f"the first release probed, {versions[good]}, fails too")
        good, bad, step = max(good - step, 0), good, step * 2
    while bad - good > 1:
        middle = (good + bad) // 2
        if ask(middle) == "works":
            good = middle
        else:
            bad = middle
    probed = tuple(sorted((versions[i], seen[i]) for i in seen))
    return Found(good=versions[good], bad=versions[bad], probed=probed)


def fits(found: Found, clause: Specifier) -> bool:
    """Whether the measured edge is the catalogued one: good outside the clause, bad inside."""
    inside = clause.contains
    return not inside(found.good, prereleases=True) and inside(found.bad, prereleases=True)


def read_verdict(returncode: int, output: str, fails: Callable[[str], bool]) -> Verdict:
    """Exit 0 works; output that `fails` recognises (the entry's pattern) fails; anything
    else is NoVerdict, naming the last line of the output."""
    if returncode == 0:
        return "works"
    if fails(output):
        return "fails"
    last = next((ln.strip() for ln in reversed(output.splitlines()) if ln.strip()), "")
    raise NoVerdict(f"exited {returncode} with another error: {last[:300] or 'no output'}")


def measured(probe: Probe, clause: Specifier, found: Found, today: date) -> Boundary:
    """The catalog's record of `found`, with what it was measured with."""
    return Boundary(
        package=probe.package,
        bound=str(clause),
        good=str(found.good),
        bad=str(found.bad),
        pins=dict(probe.pins),
        probe=probe.id,
        python=probe.python,
        date=today,
    )
