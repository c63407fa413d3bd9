"""--select: which cells a list of terms names.

A term is a cell-id glob, an `axis=value` filter (globs allowed) or a named selection from the
matrix file; terms on the same axis (and ids and selections) are alternatives, different axes
must all hold. A term that matches nothing, or terms that together match nothing, are an error
that says how to write them.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from audiomatrix.core.errors import AudiomatrixError
from audiomatrix.spec.cells import AXES, Cell
from audiomatrix.spec.yamlpos import shown


class SelectError(AudiomatrixError):
    """A --select term that names no axis or matches no cell: the user's input, so exit 2."""

    exit_code = 2


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


_ID_GROUP = "id"


def _glob(pattern: str) -> Any:
    """fnmatchcase's test, compiled once: a term is tried against every cell."""
    return re.compile(fnmatch.translate(pattern)).match


def _term_matcher(term: str, selections: Mapping[str, Sequence[str]]) -> tuple[str, Any]:
    """A term's group (an axis, or `id`) and a predicate over cells."""
    if term in selections:
        named = [_term_matcher(t, {}) for t in selections[term]]
        return _ID_GROUP, lambda cell: _matches_all(cell, named)
    if "=" in term:
        axis, _, pattern = term.partition("=")
        axis = axis.strip()
        if axis not in AXES:
            hint = did_you_mean(axis, AXES)
            raise SelectError(f"--select {shown(term)}: unknown axis {shown(axis)}{hint}")
        match = _glob(pattern.strip())
        return axis, lambda cell: match(cell.axis(axis))
    if not re.fullmatch(r"[A-Za-z0-9._*?\[\]!-]+", term):
        raise SelectError(
            f"--select {shown(term)}: not a cell id glob, an axis=value or a selection"
        )
    match = _glob(term)
    return _ID_GROUP, lambda cell: match(cell.id)


def _matches_all(cell: Cell, matchers: Sequence[tuple[str, Any]]) -> bool:
    groups: dict[str, list[Any]] = {}
    for group, predicate in matchers:
        groups.setdefault(group, []).append(predicate)
    return all(any(p(cell) for p in predicates) for predicates in groups.values())


def _no_match_hint(term: str, cells: Sequence[Cell]) -> str:
    """How to write a term that matches no cell: one '=', a value that exists, an id."""
    axis, equals, pattern = term.partition("=")
    if not equals:
        return "; `audiomatrix cells` lists the cell ids"
    if pattern.startswith("="):
        return f"; write one '=': {shown(axis + '=' + pattern.lstrip('='))}"
    values = list(dict.fromkeys(c.axis(axis.strip()) for c in cells))
    listed = ", ".join(values[:8]) + (", ..." if len(values) > 8 else "")
    return f"; {axis.strip()} is one of {listed}"


def select(
    cells: Sequence[Cell], terms: Sequence[str], selections: Mapping[str, Sequence[str]]
) -> list[Cell]:
    """Cells that every group of terms admits: terms on the same axis (or cell ids and named
    selections) are alternatives, different axes must all hold. No term: every cell. A term
    that matches no cell, or terms that together match none, are a SelectError."""
    matchers = [_term_matcher(t, selections) for t in terms]
    for term, matcher in zip(terms, matchers, strict=True):
        if not any(matcher[1](c) for c in cells):
            hint = _no_match_hint(term, cells)
            raise SelectError(f"--select {shown(term)} matches no cell{hint}")
    chosen = [c for c in cells if _matches_all(c, matchers)]
    if terms and not chosen:
        raise SelectError(
            f"--select {' '.join(shown(t) for t in terms)}: each matches a cell, but no cell"
            " matches them all (terms on different axes must all hold); drop one"
        )
    return chosen
