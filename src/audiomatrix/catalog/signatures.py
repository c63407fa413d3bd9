"""The catalog of known failures: which error text means which known problem, and its remedy.

The catalog is data (signatures.yaml beside this file) so that adding a failure met while
running the matrix is one entry, with the upstream references that document it. Each edge of
an entry's `affects` ranges carries what was measured there (`measured`: the release that
works and the adjacent one that fails; see audiomatrix.catalog.boundaries), so a range copied from a
thread is checked against the real wheels.
"""

from __future__ import annotations

import datetime
import functools
import re
from importlib import resources
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, Specifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from audiomatrix.core.errors import AudiomatrixError
from audiomatrix.spec.pydantic_errors import pydantic_error
from audiomatrix.spec.yamlpos import Positions, YamlFileError, load_yaml

UNCLASSIFIED = "unclassified"
CATALOG_FILE = "signatures.yaml"
RANGE_OPERATORS = (">=", ">", "<=", "<")
"""The operators that make an edge; a pin (==) names one release, not where a failure starts."""
_MEASURED_FIELDS = ("good", "bad", "probe", "python", "date")


class CatalogError(AudiomatrixError, ValueError):
    """A malformed catalog: one line naming the file, the place, what is wrong and the fix.
    A ValueError too, as catalog.edit's refusals are: a rewrite that would not parse is one
    of them. Exit 2, as for the matrix."""

    exit_code = 2


def _version(value: str | None) -> str | None:
    if value is not None:
        try:
            Version(value)
        except InvalidVersion:
            raise ValueError(f"{value!r} is not a version like '2.6.0'") from None
    return value


class Boundary(BaseModel):
    """One edge of an `affects` range as measured on `date`: `good` works and `bad` fails,
    adjacent releases of `package`, each installed with `pins` on CPython `python` and run
    through `probe`. Where this kind of machine cannot decide it, `unmeasured` says why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    package: str
    bound: str
    good: str | None = None
    bad: str | None = None
    pins: dict[str, str] = {}
    probe: str | None = None
    python: str | None = None
    date: datetime.date | None = None
    unmeasured: str | None = None

    _versions = field_validator("good", "bad")(_version)

    @field_validator("bound")
    @classmethod
    def _edge(cls, value: str) -> str:
        try:
            clause = Specifier(value)
        except InvalidSpecifier:
            raise ValueError(f"{value!r} is not an edge like '>=2.9' or '<2.6'") from None
        if clause.operator not in RANGE_OPERATORS:
            raise ValueError(f"{value!r} is not an edge (one of {', '.join(RANGE_OPERATORS)})")
        return value

    @model_validator(mode="after")
    def _measured_or_why_not(self) -> Boundary:
        given = [f for f in _MEASURED_FIELDS if getattr(self, f) is not None]
        if self.unmeasured is not None and given:
            raise ValueError(f"has both `unmeasured` and {', '.join(given)}: keep one")
        if self.unmeasured is None and len(given) < len(_MEASURED_FIELDS):
            missing = [f for f in _MEASURED_FIELDS if f not in given]
            raise ValueError(f"lacks {', '.join(missing)} (or `unmeasured: why`)")
        return self

    def edge(self) -> tuple[str, Specifier]:
        return self.package, Specifier(self.bound)

    def misplaced(self, spec: str) -> str | None:
        """Why this measurement is not of an edge of `spec` (its package's range), or None."""
        clause = Specifier(self.bound)
        edges = range_clauses(spec)
        if clause not in edges:
            shown = ", ".join(str(c) for c in edges) or "none"
            return f"{self.package} {self.bound} is no edge of affects (its edges: {shown})"
        if self.good is not None and clause.contains(self.good, prereleases=True):
            return f"good {self.good} is inside {self.bound}, the side that fails"
        if self.bad is not None and not clause.contains(self.bad, prereleases=True):
            return f"bad {self.bad} is outside {self.bound}, the side that works"
        return None


def range_clauses(spec: str) -> list[Specifier]:
    """The clauses of `spec` that are an edge of the range (>=, >, <=, <)."""
    return [s for s in SpecifierSet(spec) if s.operator in RANGE_OPERATORS]


class Signature(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str
    pattern: str
    affects: dict[str, str]
    unversioned: str | None = None
    """Why no package's version moves the failure (hardware, memory, how a model is served):
    the entry's explicit answer where `affects` is empty."""
    measured: list[Boundary] = []
    remedy: str
    sources: list[str]

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        re.compile(value)
        return value

    @field_validator("affects")
    @classmethod
    def _ranges(cls, value: dict[str, str]) -> dict[str, str]:
        for package, spec in value.items():
            try:
                SpecifierSet(spec)
            except InvalidSpecifier:
                raise ValueError(f"{package}: {spec!r} is not a range like '>=2.6'") from None
            if not range_clauses(spec):
                raise ValueError(
                    f"{package}: {spec!r} has no edge: give the releases the failure spans "
                    "(>=, >, <=, <) and measure them"
                )
        return value

    @model_validator(mode="after")
    def _versioned_or_why_not(self) -> Signature:
        if self.affects and self.unversioned is not None:
            raise ValueError("has both `affects` and `unversioned`: keep one")
        if not self.affects and self.unversioned is None:
            raise ValueError(
                "affects is empty: name each package whose version moves the failure, or say "
                "why none does with `unversioned: why`"
            )
        return self

    def matches(self, text: str) -> bool:
        return re.search(self.pattern, text) is not None

    def edges(self) -> list[tuple[str, Specifier]]:
        """(package, clause) of every edge of every range in `affects`, in file order."""
        return [(p, c) for p, spec in self.affects.items() for c in range_clauses(spec)]


def _entry_positions(pos: Positions, index: int) -> Positions:
    """The positions inside entry `index`, keyed from the entry (as pydantic's loc is)."""
    return Positions(
        keys={k[1:]: v for k, v in pos.keys.items() if k[:1] == (index,)},
        values={k[1:]: v for k, v in pos.values.items() if k[:1] == (index,)},
    )


def _misplaced(entry: Signature) -> tuple[int, str] | None:
    """The first measurement that is no edge of the entry's ranges, or measured twice."""
    seen = set()
    for j, boundary in enumerate(entry.measured):
        if boundary.edge() in seen:
            return j, f"{boundary.package} {boundary.bound} is measured twice"
        seen.add(boundary.edge())
        why = boundary.misplaced(entry.affects.get(boundary.package, ""))
        if why is not None:
            return j, why
    return None


def parse(text: str, file: str) -> tuple[Signature, ...]:
    """The catalog in `text`; a malformed entry is a CatalogError of one positioned line."""
    try:
        data, pos = load_yaml(text, file)
    except YamlFileError as exc:
        raise CatalogError(str(exc)) from None
    if not isinstance(data, list):
        raise CatalogError(f"{file}:1:1: the catalog is a list of entries (`- id: ...`)")
    entries: list[Signature] = []
    for i, item in enumerate(data):
        name = item.get("id") if isinstance(item, dict) else None
        fix = f"; fix it, or remeasure: audiomatrix boundaries --entry {name or 'ID'} --write"
        try:
            entry = Signature.model_validate(item)
        except ValidationError as exc:
            e = pydantic_error(exc, item, _entry_positions(pos, i), file, Signature)
            hint = fix if e.message.startswith("measured") else ""
            where = f"{file}:{e.line}:{e.col}: entry {name or i!r}"
            raise CatalogError(f"{where}: {e.message}{hint}") from None
        misplaced = _misplaced(entry)
        if misplaced is not None:
            j, why = misplaced
            line, col = pos.of((i, "measured", j), key=True)
            raise CatalogError(f"{file}:{line}:{col}: entry {name!r}: measured.{j}: {why}{fix}")
        if any(e.id == entry.id for e in entries):
            line, col = pos.of((i, "id"))
            raise CatalogError(f"{file}:{line}:{col}: duplicate id {entry.id!r}; rename one")
        entries.append(entry)
    return tuple(entries)


def catalog_path() -> Path:
    return Path(str(resources.files("audiomatrix.catalog").joinpath(CATALOG_FILE)))


def load(path: Path) -> tuple[Signature, ...]:
    return parse(path.read_text(encoding="utf-8"), str(path))


@functools.cache
def catalog() -> tuple[Signature, ...]:
    return load(catalog_path())


def classify(text: str) -> str:
    """The id of the first signature whose pattern is in `text`, else `unclassified`."""
    return next((s.id for s in catalog() if s.matches(text)), UNCLASSIFIED)


def by_id(signature_id: str) -> Signature | None:
    return next((s for s in catalog() if s.id == signature_id), None)


def dump_boundary(boundary: Boundary) -> dict[str, Any]:
    """The fields of `boundary` as signatures.yaml holds them (unset ones left out)."""
    return boundary.model_dump(exclude_defaults=True, mode="json")
