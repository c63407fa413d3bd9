"""matrix.yaml -> validated matrix -> expanded cells.

The first stage of the pipeline. It reads only matrix.yaml and answers three questions
without touching the network: which cells exist (GitHub Actions' include/exclude
semantics), what each one means (the attributes of its axis values), and whether it can
be built at all (the facts, each citing its source). Every mistake in the file comes back
as one `matrix.yaml:LINE:COL: message` line: yamlpos keeps each node's position.

Here: the checks that need the whole file at once (values that exist, pairs, sizes,
selections) and `parse`/`load`. The schema is in specschema, GitHub Actions' expansion in
expansion, what a cell is in cells.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import ValidationError

from audiomatrix.spec import conda_checks as condacheck
from audiomatrix.spec.cells import AXES, Cell, stack_change, unbuildable_reason
from audiomatrix.spec.expansion import expand
from audiomatrix.spec.pydantic_errors import pydantic_error, type_hint
from audiomatrix.spec.schema import Fact, MatrixFile
from audiomatrix.spec.selection import SelectError, did_you_mean, select
from audiomatrix.spec.yamlpos import Positions, YamlFileError, load_yaml, read_text, shown

MAX_CELLS = 10_000
"""The most cells a matrix may expand to unless the caller allows more (--max-cells): the
product is sized before it is built, so a typo cannot make a million cells."""

MAX_SELECTION_TERMS = 256
"""The most terms all named selections may list: each is tried against every cell, and a
selection is a few globs, not a list of ids."""


@dataclass(frozen=True)
class Matrix:
    """A validated matrix.yaml and its expanded cells."""

    file: MatrixFile
    cells: tuple[Cell, ...]
    path: str

    def select(self, terms: Sequence[str]) -> list[Cell]:
        return select(self.cells, terms, self.file.selections)

    @property
    def exclude_newer(self) -> str | None:
        """The resolution cut-off as RFC 3339, so that a relock picks the same versions."""
        day = self.file.exclude_newer
        return None if day is None else f"{day.isoformat()}T00:00:00Z"


class _Checker:
    """The semantic checks pydantic cannot express, each failing at a position."""

    def __init__(self, doc: MatrixFile, pos: Positions, file: str):
        self.doc, self.pos, self.file = doc, pos, file
        # Mappings, so that checking thousands of include values stays linear.
        self.defined: dict[str, Mapping[str, Any]] = {
            "os": doc.os,
            "python": dict.fromkeys(doc.python),
            "torch": doc.torch,
            "accelerator": doc.accelerator,
            "stack": doc.stack,
        }

    def fail(self, path: tuple[Any, ...], message: str, *, key: bool = False) -> YamlFileError:
        return YamlFileError(self.file, *self.pos.of(path, key=key), message)

    def run(self) -> None:
        for axis, values in self.defined.items():
            if not values:
                raise self.fail((axis,), f"{axis} defines no values", key=True)
        self._check_duplicates(("python",), self.doc.python)
        self._check_pairs()
        self._check_specifiers()
        self._check_requirements()
        self._check_remedies()
        condacheck.check(self.doc, self.fail)
        product = self.doc.matrix
        for axis in AXES:
            values = getattr(product, axis)
            if values is None:
                continue
            if not values:
                raise self.fail(("matrix", axis), f"matrix.{axis} is empty", key=True)
            self._check_duplicates(("matrix", axis), values)
            for i, value in enumerate(values):
                self._check_value(("matrix", axis, i), axis, value)
        for block in ("exclude", "include"):
            for i, entry in enumerate(getattr(product, block)):
                if not entry:
                    raise self.fail(("matrix", block, i), f"matrix.{block}[{i}] is empty")
                for axis, value in entry.items():
                    path = ("matrix", block, i, axis)
                    if axis not in AXES:
                        raise self.fail(
                            path,
                            f"unknown axis {shown(axis)} in {block}{did_you_mean(axis, AXES)}",
                            key=True,
                        )
                    self._check_value(path, axis, value)

    def _check_duplicates(self, path: tuple[Any, ...], values: Sequence[str]) -> None:
        seen: set[str] = set()
        for i, value in enumerate(values):
            if value in seen:
                raise self.fail((*path, i), f"duplicate value '{value}' in {'.'.join(path)}")
            seen.add(value)

    def _check_value(self, path: tuple[Any, ...], axis: str, value: Any) -> None:
        if not isinstance(value, str):
            raise self.fail(
                path, f"{axis} value must be a string, got {shown(value)}{type_hint(value)}"
            )
        if value not in self.defined[axis]:
            hint = did_you_mean(value, self.defined[axis])
            raise self.fail(path, f"unknown {axis} {shown(value)}{hint}")

    def _check_pairs(self) -> None:
        for version, value in self.doc.torch.items():
            if Version(value.torchaudio).release[:2] != Version(version).release[:2]:
                raise self.fail(
                    ("torch", version, "torchaudio"),
                    f"torchaudio {value.torchaudio} does not pair with torch {version}: "
                    "a torchaudio release ships with the torch of the same major.minor",
                )
            if value.torchcodec is not None:
                try:
                    Version(value.torchcodec)
                except InvalidVersion:
                    raise self.fail(
                        ("torch", version, "torchcodec"),
                        f"torchcodec {shown(value.torchcodec)} is not a version",
                    ) from None

    def _facts(self) -> Iterable[tuple[tuple[Any, ...], Fact]]:
        for axis in ("os", "torch", "accelerator", "stack"):
            for name, value in getattr(self.doc, axis).items():
                for i, fact in enumerate(value.requires):
                    yield (axis, name, "requires", i), fact

    def _check_specifiers(self) -> None:
        specs = [
            ((*path, axis), getattr(fact, axis))
            for path, fact in self._facts()
            for axis in ("python", "torch")
        ]
        specs += [
            (("accelerator", name, "pypi", family), spec)
            for name, value in self.doc.accelerator.items()
            for family, spec in value.pypi.items()
        ]
        for path, spec in specs:
            if spec is None:
                continue
            try:
                SpecifierSet(spec)
            except InvalidSpecifier:
                raise self.fail(
                    path, f"{shown(spec)} is not a version specifier (e.g. '>=2.7')"
                ) from None
        for path, fact in self._facts():
            for axis in ("accelerator", "stack"):
                for i, name in enumerate(getattr(fact, axis) or ()):
                    self._check_value((*path, axis, i), axis, name)

    def _check_requirements(self) -> None:
        lists = [(("smoke_requirements",), self.doc.smoke_requirements)]
        lists += [(("stack", n, "packages"), v.packages) for n, v in self.doc.stack.items()]
        for path, requirements in lists:
            for i, text in enumerate(requirements):
                try:
                    Requirement(text)
                except InvalidRequirement as exc:
                    reason = str(exc).splitlines()[0]  # one line; packaging adds a caret
                    message = f"{shown(text)} is not a requirement: {reason}"
                    raise self.fail((*path, i), message) from None

    def _check_remedies(self) -> None:
        stacks = self.doc.stack
        for name, value in stacks.items():
            parent = value.remedy_of
            if parent is None:
                continue
            path = ("stack", name, "remedy_of")
            self._check_value(path, "stack", parent)
            if parent == name:
                raise self.fail(
                    path,
                    f"stack {shown(name)} cannot be a remedy of itself; "
                    "name the stack whose packages it changes",
                )
            grand = stacks[parent].remedy_of
            if grand is not None:
                message = (
                    f"stack {shown(parent)} is itself a remedy of {shown(grand)}; name "
                    f"{shown(grand)} and declare the whole change in {shown(name)}"
                )
                raise self.fail(path, message)
            if stacks[parent].installer != value.installer:
                message = (
                    f"stack {shown(name)} installs with {value.installer} but "
                    f"{shown(parent)} with {stacks[parent].installer}; a remedy changes "
                    "packages, not the installer"
                )
                raise self.fail(path, message)
            if not stack_change(stacks[parent], value):
                message = (
                    f"stack {shown(name)} declares the same packages, TorchCodec and "
                    f"FFmpeg as {shown(parent)}: add the change it proves"
                )
                raise self.fail(path, message)

    def _check_size(self, axes: Mapping[str, Sequence[str]], max_cells: int) -> None:
        """Size the matrix before building it: its product, and at most one cell per include."""
        product = math.prod(len(v) for v in axes.values()) if axes else 0
        includes = len(self.doc.matrix.include)
        if product + includes > max_cells:
            sizes = " x ".join(f"{len(v)} {a}" for a, v in axes.items())
            message = (
                f"the matrix makes up to {product + includes} cells ({sizes or 'no axis'},"
                f" plus {includes} include), over the limit of {max_cells}; drop axis values,"
                " or allow more with --max-cells or AUDIOMATRIX_MAX_CELLS"
            )
            raise self.fail(("matrix",), message, key=True)

    def cells(self, max_cells: int) -> tuple[Cell, ...]:
        product = self.doc.matrix
        axes = {a: getattr(product, a) for a in AXES if getattr(product, a) is not None}
        self._check_size(axes, max_cells)
        combos = expand(axes, product.include, product.exclude)
        cells: dict[str, Cell] = {}
        for combo in combos:
            where = ("matrix",) if combo.include is None else ("matrix", "include", combo.include)
            missing = [a for a in AXES if a not in combo.values]
            if missing:
                raise self.fail(
                    where,
                    f"a cell lacks {', '.join(missing)}: every cell needs {', '.join(AXES)}",
                    key=combo.include is None,
                )
            values = {a: str(combo.values[a]) for a in AXES}
            cell = self._cell(values)
            if cell.id in cells:
                raise self.fail(where, f"duplicate cell id '{cell.id}'")
            cells[cell.id] = cell
        if not cells:
            raise self.fail(("matrix",), "the matrix expands to no cell", key=True)
        return tuple(cells.values())

    def _cell(self, values: Mapping[str, str]) -> Cell:
        doc = self.doc
        chosen = (
            doc.os[values["os"]],
            doc.torch[values["torch"]],
            doc.accelerator[values["accelerator"]],
            doc.stack[values["stack"]],
        )
        return Cell(
            **values,
            os_value=chosen[0],
            torch_value=chosen[1],
            accelerator_value=chosen[2],
            stack_value=chosen[3],
            unbuildable=unbuildable_reason(values, *chosen),
            parent_stack=doc.stack.get(chosen[3].remedy_of or ""),
        )

    def check_selections(self, cells: Sequence[Cell]) -> None:
        """Each selection's terms each match a cell, and together match one too."""
        count = sum(len(terms) for terms in self.doc.selections.values())
        if count > MAX_SELECTION_TERMS:
            message = (
                f"selections list {count} terms in all, over the limit of {MAX_SELECTION_TERMS};"
                " match cell ids with globs (bookworm-*-cu128-*) instead of listing them"
            )
            raise self.fail(("selections",), message, key=True)
        for name, terms in self.doc.selections.items():
            if not terms:
                message = f"selections.{name} is empty; list cell-id globs or axis=value terms"
                raise self.fail(("selections", name), message, key=True)
            for i, term in enumerate(terms):
                if term in self.doc.selections:
                    message = (
                        f"selections.{name}: {shown(term)} is a selection, and selections"
                        " cannot nest; list its terms here instead"
                    )
                    raise self.fail(("selections", name, i), message)
                self._check_terms(("selections", name, i), [term], cells)
            self._check_terms(("selections", name), terms, cells)

    def check_references(self, cells: Sequence[Cell]) -> None:
        """Each reference names a cell of this matrix, once."""
        ids = {c.id for c in cells}
        self._check_duplicates(("reference",), self.doc.reference)
        for i, cell in enumerate(self.doc.reference):
            if cell not in ids:
                message = (
                    f"reference: {shown(cell)} is not a cell of this matrix"
                    f"{did_you_mean(cell, sorted(ids))}; name a cell id that"
                    " `audiomatrix cells` lists"
                )
                raise self.fail(("reference", i), message)

    def _check_terms(
        self, path: tuple[Any, ...], terms: Sequence[str], cells: Sequence[Cell]
    ) -> None:
        """A term fails at itself; terms that only together match nothing, at their key."""
        try:
            select(cells, terms, {})
        except SelectError as exc:
            message = f"selections.{path[1]}: {str(exc).removeprefix('--select ')}"
            raise self.fail(path, message, key=len(path) == 2) from None


def parse(text: str, file: str = "matrix.yaml", max_cells: int = MAX_CELLS) -> Matrix:
    """Validate matrix.yaml's text and expand it; raise YamlFileError at the first mistake."""
    data, pos = load_yaml(text, file)
    if not isinstance(data, dict):
        message = f"the top level must be a mapping of keys, got {shown(data)}"
        raise YamlFileError(file, *pos.of(()), message)
    try:
        doc = MatrixFile.model_validate(data)
    except ValidationError as exc:
        raise pydantic_error(exc, data, pos, file, MatrixFile) from None
    checker = _Checker(doc, pos, file)
    checker.run()
    cells = checker.cells(max_cells)
    checker.check_selections(cells)
    checker.check_references(cells)
    return Matrix(file=doc, cells=cells, path=file)


def load(path: Path, max_cells: int = MAX_CELLS) -> Matrix:
    """Read and parse a matrix file; a missing or undecodable file is a YamlFileError too."""
    return parse(read_text(path), str(path), max_cells)
