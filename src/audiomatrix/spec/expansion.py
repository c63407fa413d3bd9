"""GitHub Actions' matrix expansion: axes, exclude and include -> combinations of values.

Pure and generic (any hashable values, any axes): spec's checker feeds it matrix.yaml's
`matrix:` block and resolves each combination into a cell.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Combination:
    """One expanded combination and where it came from (None: the product; i: include[i])."""

    values: dict[str, Any]
    include: int | None = None


def _projection(values: Mapping[str, Any], keys: Sequence[str]) -> tuple[Any, ...]:
    return tuple(values[k] for k in keys)


def expand(
    axes: Mapping[str, Sequence[Any]],
    include: Sequence[Mapping[str, Any]] = (),
    exclude: Sequence[Mapping[str, Any]] = (),
) -> list[Combination]:
    """GitHub Actions' matrix expansion, exactly (values must be hashable).

    The product of the axes (first axis slowest); then every exclude removes the
    combinations it partially matches; then each include extends every original
    combination whose original values it does not contradict (overwriting only values
    earlier includes added) and, when it extends none, becomes a combination of its own.
    Entries are looked up by the axes they name, so thousands of them cost no more than the
    product's size times the number of distinct sets of axes they name.
    """
    names = list(axes)
    product = [dict(zip(names, v, strict=True)) for v in itertools.product(*axes.values())]
    # An exclude naming a key no combination has matches nothing.
    excluded: dict[tuple[str, ...], set[tuple[Any, ...]]] = {}
    for entry in exclude:
        if all(k in axes for k in entry):
            keys = tuple(k for k in names if k in entry)
            excluded.setdefault(keys, set()).add(_projection(entry, keys))
    kept = [
        c for c in product if names and not any(_projection(c, k) in v for k, v in excluded.items())
    ]
    by_keys: dict[tuple[str, ...], dict[tuple[Any, ...], list[dict[str, Any]]]] = {}
    added: list[Combination] = []
    for i, entry in enumerate(include):
        keys = tuple(k for k in names if k in entry)
        if keys not in by_keys:
            by_keys[keys] = {}
            for combo in kept:
                by_keys[keys].setdefault(_projection(combo, keys), []).append(combo)
        matched = by_keys[keys].get(_projection(entry, keys), [])
        extension = {k: v for k, v in entry.items() if k not in axes}
        for combo in matched:
            combo.update(extension)
        if not matched:
            added.append(Combination(dict(entry), i))
    return [Combination(c) for c in kept] + added
