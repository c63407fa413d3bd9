"""The search for a check's minimal set of compat remedies, as pure functions.

Standard library only: the runner inside a cell plans its runs with it, and the report reads
their outcomes with it. Subsets are tried by increasing size, every subset of one size before
any larger one, and the search stops at the first size at which some subset passes: the
passing subsets of that size are then minimal, each proven by its own run, and the failing
runs of every smaller size are the proof that nothing less works.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations

Subset = tuple[str, ...]


def next_subsets(applicable: Sequence[str], tried: Mapping[Subset, str]) -> list[Subset]:
    """The subsets to run next, given the status of each one run so far: every subset of the
    next size, or none once a subset passed or every size was tried."""
    if "pass" in tried.values():
        return []
    size = 1 + max((len(s) for s in tried), default=0)
    return [tuple(c) for c in combinations(sorted(applicable), size)]


def minimal_sets(tried: Iterable[tuple[Subset, str]]) -> list[Subset]:
    """The passing subsets of the smallest size at which any passed, sorted; [] when none
    passed."""
    passing = sorted({tuple(sorted(s)) for s, status in tried if status == "pass"})
    smallest = min((len(s) for s in passing), default=0)
    return [s for s in passing if len(s) == smallest]


def label(subset: Subset) -> str:
    """A subset as a folder name and in progress lines: `checkpoint_globals+torchaudio_save`."""
    return "+".join(subset)
