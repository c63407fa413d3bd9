"""What goes into a cell's image besides its lock's packages, decided before the build: the
lock split into shared layers, the CPython the cell declares, and its FFmpeg packages.

Every choice follows the cell's declaration or the build is refused with the reason (a row
may only say what was measured in the environment its cell declares): another Python than
declared is never substituted, and a copied interpreter must be built for the base's own
distribution and be a shared build (TorchCodec links to libpython).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiomatrix.core.errors import AudiomatrixError
from audiomatrix.image import debs, interpreters, layers
from audiomatrix.image.base import dpkg_status, image_python
from audiomatrix.lock import stage as lock
from audiomatrix.lock.cell_lock import CellLock
from audiomatrix.lock.installers import uv
from audiomatrix.records.cell import RecordError, read_record
from audiomatrix.spec import declared
from audiomatrix.suite import probe


class PlanError(AudiomatrixError):
    """A cell whose declared environment cannot be built here: a status and the reason."""

    def __init__(self, status: str, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass(frozen=True)
class Python:
    """The interpreter of a cell's venv: the base's python3, or a copied build."""

    source: str
    """How it came to be there, for the image's label."""
    archive: Path | None = None
    """A copied build's tar (python/ in the context), None for the base's own."""


@dataclass(frozen=True)
class Plan:
    parts: layers.Parts
    python: Python
    debs: tuple[Path, ...]


@functools.cache
def group_locks(environments: Path, key: tuple[str, str]) -> tuple[str, ...]:
    """The lock texts of every locked Linux cell in the same CUDA group (one read per run)."""
    texts = []
    for folder in sorted(environments.iterdir()):
        try:
            record = read_record(folder) if folder.is_dir() else None
        except RecordError:
            continue
        if record and record.status == lock.Status.LOCKED and layers.group_key(record) == key:
            texts.append((folder / uv.LOCK_FILE).read_text())
    return tuple(texts)


@functools.cache
def group_cuda(locks: tuple[str, ...]) -> frozenset[layers.Entry]:
    """A group's shared CUDA pins, parsed once per run however many of its cells build."""
    return layers.shared_cuda(locks)


def parts_for(cell: CellLock) -> layers.Parts:
    """The cell's lock split by how widely each part is shared in its CUDA group."""
    locks = group_locks(cell.folder.parent, layers.group_key(cell.record))
    own = cell.requirements.read_text()
    return layers.split(own, group_cuda(locks or (own,)))


def python_for(cell: CellLock, base: str, base_python: str | None) -> Python:
    """The base's python3 when it is the declared version, else this machine's CPython of
    that version if it was built for the base's distribution; PlanError otherwise."""
    if base_python in (None, cell.python):
        return Python(source=f"the python3 of {base}")
    found = interpreters.find(cell.python)
    wanted = declared.distribution_of_base(cell.record.cell.base)
    host = declared.comparable_distribution(probe.distribution())
    if found is None:
        raise PlanError(
            "python unavailable",
            f"{base} has Python {base_python}, the cell needs {cell.python}, and this machine "
            f"has no CPython {cell.python} to copy (no Python downloads here)",
        )
    if host != wanted:
        raise PlanError(
            "python unavailable",
            f"this machine's CPython {found.version} is built for {host}, the cell's base is "
            f"{wanted}: a copy would not be the declared environment",
        )
    if not found.shared:
        raise PlanError(
            "python unavailable",
            f"this machine's CPython {found.version} has no shared libpython, which TorchCodec "
            "links to: build it with --enable-shared",
        )
    return Python(
        source=f"CPython {found.version} built for {host}, copied from the build machine",
        archive=interpreters.archive(found),
    )


def debs_for(
    cell: CellLock, base_image: Any, python: Python, echo: Callable[[str], None]
) -> tuple[Path, ...]:
    """The Debian packages the cell's FFmpeg needs on its base (with the distribution's
    libpython when the venv uses the base's python3), from the machine's package cache."""
    packages = list(cell.record.cell.ffmpeg_packages)
    if not packages:
        return ()
    if python.archive is None:
        packages.append(f"libpython{cell.python}")
    try:
        return tuple(debs.download(packages, dpkg_status(base_image), echo))
    except debs.DebError as exc:
        raise PlanError("failed", f"FFmpeg's packages: {exc}") from None


def plan(cell: CellLock, base: str, base_image: Any, echo: Callable[[str], None] = print) -> Plan:
    """Everything the cell's image is made of besides the Dockerfile and the suite."""
    python = python_for(cell, base, image_python(base_image))
    return Plan(parts_for(cell), python, debs_for(cell, base_image, python, echo))
