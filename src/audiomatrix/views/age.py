"""How old the table is, in words for the page and COMPATIBILITY.md: the days its rows' locks
were resolved as of and, where the index was checked (environments/index.json), how long
after that and which newer releases of the stacks' packages it found. Only dates in the
table: never the clock at report time, so the same inputs give the same text."""

from __future__ import annotations

from collections import Counter
from datetime import date

from audiomatrix.records.compatibility import Compatibility


def _days(first: date, then: date) -> str:
    days = (then - first).days
    return f"{days} day{'s' if days != 1 else ''}"


def age_text(table: Compatibility) -> str:
    """One paragraph: as of which days, relative to the index check, and what is newer."""
    days: Counter[date] = Counter(r.as_of for r in table.rows if r.as_of is not None)
    if not days:
        return "No row's lock records the day it was resolved as of."
    oldest, newest = min(days), max(days)
    text = (
        f"Locks resolved as of {oldest}"
        if oldest == newest
        else (
            f"Locks resolved as of {oldest} to {newest} ({days[newest]} of {len(table.rows)} rows "
            f"as of {newest})"
        )
    )
    undated = len(table.rows) - sum(days.values())
    text += f"; {undated} rows with no day (conda locks)" if undated else ""
    checked = table.index_checked
    if checked is None:
        return text + "; newer releases not checked (`audiomatrix report --check-index`)."
    text += f". The index was checked on {checked}, {_days(oldest, checked)} after {oldest}"
    newer = Counter(f"{name} {version}" for r in table.rows for name, version in r.newer.items())
    if not newer:
        return text + ": no stack package has a newer release a refresh could take."
    rows = sum(1 for r in table.rows if r.newer)
    found = ", ".join(f"{release} (on {n} rows)" for release, n in sorted(newer.items()))
    return (
        f"{text}: {rows} of {len(table.rows)} rows have newer releases of their stack's "
        f"packages that a refresh (`audiomatrix refresh`) could take: {found}."
    )
