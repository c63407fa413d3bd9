"""What `recommend` is asked to hold to, as people write it: versions as `2.9.1`, `2.10` (every
2.10.x) or a range (`>=2.9`, `>=3.11,<3.13`), GPU architectures in any common spelling, and
which of them the answer may set aside when nothing tested meets them all."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from itertools import combinations

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from audiomatrix.records.compatibility import Axes, Missing, Row
from audiomatrix.table import gpu_data

_ARCH = re.compile(r"^(?:sm|compute)?_?(\d{1,2})(?:\.(\d)|(\d))$", re.IGNORECASE)
"""sm_120, sm120, SM_75, compute_86, 12.0, 8.9, 75, 120."""

SET_ASIDE = ("os", "installer", "accelerator", "python", "torch", "gpu_arch")
"""What the answer sets aside first when nothing fits: where it runs before what it runs, and
the GPU a person owns last."""


def gpu_arch(text: str) -> str:
    """`sm_XY` for any common spelling of an architecture CUDA lists (the table's columns,
    table/gpu_architectures.yaml); ValueError naming what it accepts."""
    found = _ARCH.match(text.strip())
    if found is None:
        raise ValueError("not a GPU architecture (write it as sm_120, sm120, 12.0 or 120)")
    major, minor = found.group(1), found.group(2) or found.group(3)
    arch = f"sm_{major}{minor}"
    listed = gpu_data.arch_names()
    if arch not in listed:
        raise ValueError(
            f"{arch}: not an architecture CUDA 12.9 or 13.5 lists (the table's: "
            f"{', '.join(listed)})"
        )
    return arch


def version_filter(text: str) -> str:
    """The text as given when it is a version, a version's start or a range; ValueError else."""
    try:
        if text[:1] in "<>=!~":
            SpecifierSet(text)
        else:
            Version(text)
    except (InvalidSpecifier, InvalidVersion):
        raise ValueError("not a version or range (e.g. 2.9.1, 2.10 or '>=2.9')") from None
    return text


def split_build(torch: str) -> tuple[str, str | None]:
    """A torch version as `torch.__version__` says it, into the version and the accelerator
    its local tag names (`2.10.0+cu130` -> 2.10.0, cu130); a range stays whole."""
    if torch[:1] in "<>=!~" or "+" not in torch:
        return torch, None
    version, _, build = torch.partition("+")
    return version, build


def admits(wanted: str | None, value: str) -> bool:
    """`value` meets `wanted`: a range, or the same leading release numbers (2.10 admits
    2.10.0)."""
    if not wanted:
        return True
    try:
        if wanted[:1] in "<>=!~":
            return Version(value) in SpecifierSet(wanted)
        want, have = Version(wanted).release, Version(value).release
    except (InvalidSpecifier, InvalidVersion):
        return False
    return have[: len(want)] == want


def runs_on(row: Row, arch: str) -> bool:
    """The row's wheel has kernels for the GPU (native, through the PTX JIT, or in its main
    library with another lacking them: partial), as measured; a row without a measurement
    never qualifies."""
    kernels = row.gpu.get(arch)
    return kernels is not None and kernels.verdict != "no-kernel-image"


@dataclass(frozen=True)
class Constraints:
    python: str | None = None
    torch: str | None = None
    accelerator: str | None = None
    os: str | None = None
    gpu_arch: str | None = None
    installer: str | None = None

    def said(self) -> list[str]:
        """The given constraints in the words the answer names them with, in this order."""
        words = {"python": "Python", "os": "OS", "gpu_arch": "GPU"}
        return [
            f"{words.get(f.name, f.name)} {value}"
            for f in fields(self)
            if (value := getattr(self, f.name))
        ]

    def given(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name)]

    def _axes(self, axes: Axes, family: str | None, installer: str) -> bool:
        return (
            admits(self.python, axes.python)
            and admits(self.torch, axes.torch)
            and (not self.accelerator or self.accelerator == axes.accelerator
                 or (self.accelerator == "cuda" and axes.accelerator.startswith("cu")))
            and (not self.os or self.os in (axes.os, family))
            and (not self.installer or self.installer == installer)
        )  # fmt: skip

    def admits_row(self, row: Row) -> bool:
        return self._axes(row.axes, row.family, row.installer) and (
            not self.gpu_arch or runs_on(row, self.gpu_arch)
        )

    def admits_declared(self, cell: Missing, families: dict[str, str]) -> bool:
        """A declared cell without a run meets the constraints it can be judged on: a GPU only
        needs a CUDA build, its kernels never measured; `families` names each os's family,
        from the rows."""
        cuda = cell.axes.accelerator.startswith("cu")
        return self._axes(cell.axes, families.get(cell.axes.os), cell.installer) and (
            not self.gpu_arch or cuda
        )

    def without(self, names: tuple[str, ...]) -> Constraints:
        return replace(self, **dict.fromkeys(names))

    def only(self, name: str) -> Constraints:
        return Constraints(**{name: getattr(self, name)})

    def relaxations(self) -> list[tuple[str, ...]]:
        """Every set of given constraints to set aside, fewest first, then in SET_ASIDE's
        order."""
        given = sorted(self.given(), key=SET_ASIDE.index)
        return [c for n in range(1, len(given) + 1) for c in combinations(given, n)]
