"""Whether a run stands for its cell: its measured environment against the cell's declaration.

A row of the table may only say what was measured in the environment its cell declares. The
declaration is environments/<cell>/cell.json (what the lock stage resolved from matrix.yaml);
the measurement is what the suite read from inside the environment. Anything that differs is
named, and the report shows such a run apart instead of as the cell's row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from packaging.version import Version

from audiomatrix.lock.installers import installer
from audiomatrix.records.cell import CellRecord
from audiomatrix.spec.declared import comparable_distribution, cuda_of_variant, distribution_of_base
from audiomatrix.suite.probe import normalise
from audiomatrix.suite.schema import Facts, Host


@dataclass(frozen=True)
class Declaration:
    """What a cell promises about its environment, from its cell.json."""

    family: str
    distribution: str | None
    """`debian bookworm`: the base image's distribution and codename (Linux cells)."""
    python: str
    ffmpeg: bool
    ffmpeg_major: str | None
    torchcodec: str | None
    cuda: str | None
    lock_sha256: str | None
    installer: str = "uv"


def declaration(record: CellRecord) -> Declaration:
    """The declaration in a cell.json record."""
    cell = record.cell
    return Declaration(
        family=cell.family,
        distribution=distribution_of_base(cell.base),
        python=cell.python,
        ffmpeg=cell.ffmpeg,
        ffmpeg_major=cell.ffmpeg_major,
        torchcodec=cell.torchcodec,
        cuda=cuda_of_variant(cell.variant),
        lock_sha256=record.lock_sha256,
        installer=cell.installer,
    )


def cuda_matches(declared: Declaration, measured: str | None) -> bool:
    """A cell's torch is the build for its CUDA exactly, unless its installer says a build for
    that major up to it serves (CUDA_UP_TO: a conda lock targets a driver that offers it)."""
    if not _up_to(declared) or declared.cuda is None or measured is None:
        return measured == declared.cuda
    same_major = measured.split(".")[0] == declared.cuda.split(".")[0]
    return same_major and Version(measured) <= Version(declared.cuda)


def _up_to(declared: Declaration) -> bool:
    return installer(declared.installer).CUDA_UP_TO


def lock_drift(pins: Mapping[str, str], installed: Mapping[str, str]) -> list[str]:
    """How the installed distributions depart from the lock's pins: pins missing or at
    another version (a local tag such as +cu128 satisfies a pin without one, as pip agrees),
    then distributions the lock does not have. Names are normalised by the caller's probe."""
    wrong = []
    for name, version in sorted(pins.items()):
        have = installed.get(normalise(name))
        if have is None or Version(have).public != Version(version).public:
            wrong.append(f"{name} {have or 'missing'} (lock {version})")
    extra = sorted(set(installed) - {normalise(n) for n in pins})
    found = []
    if wrong:
        shown = ", ".join(wrong[:4]) + (f" and {len(wrong) - 4} more" if len(wrong) > 4 else "")
        found.append(f"{len(wrong)} of {len(pins)} pins not as locked: {shown}")
    if extra:
        shown = ", ".join(extra[:4]) + (f" and {len(extra) - 4} more" if len(extra) > 4 else "")
        found.append(f"{len(extra)} distributions beyond the lock: {shown}")
    return found


def differences(
    declared: Declaration,
    facts: Facts,
    host: Host,
    lock_sha256: str,
    pins: Mapping[str, str] | None = None,
) -> list[str]:
    """Every way the measured environment departs from the declaration, in words; [] when
    the run stands for the cell. With the lock's pins, the installed distributions (where
    the run measured them) are checked against them too."""
    found = []
    if declared.family == "linux":
        measured = comparable_distribution(host.distribution)
        if measured != declared.distribution:
            found.append(f"OS: declared {declared.distribution}, measured {measured or 'unknown'}")
    elif host.distribution and not host.distribution.startswith(declared.family):
        found.append(f"OS: declared {declared.family}, measured {host.distribution}")
    python = ".".join(facts.python.split(".")[:2])
    if python != declared.python:
        found.append(f"Python: declared {declared.python}, measured {python or 'unknown'}")
    declared_ffmpeg = _ffmpeg(declared.ffmpeg, declared.ffmpeg_major)
    measured_ffmpeg = _ffmpeg(facts.ffmpeg is not None, facts.ffmpeg)
    wrong_major = declared.ffmpeg_major is not None and facts.ffmpeg != declared.ffmpeg_major
    if declared.ffmpeg != (facts.ffmpeg is not None) or (declared.ffmpeg and wrong_major):
        found.append(f"FFmpeg: declared {declared_ffmpeg}, measured {measured_ffmpeg}")
    if facts.torchcodec != declared.torchcodec:
        found.append(
            f"TorchCodec: declared {declared.torchcodec or 'none'}, "
            f"measured {facts.torchcodec or 'none'}"
        )
    if not cuda_matches(declared, facts.cuda):
        upto = "up to " if _up_to(declared) and declared.cuda else ""
        found.append(
            f"accelerator build: declared CUDA {upto}{declared.cuda or 'none'}, "
            f"torch.version.cuda is {facts.cuda or 'none'}"
        )
    if declared.lock_sha256 and lock_sha256 != declared.lock_sha256:
        found.append(
            f"lock: ran {lock_sha256[:12]}, the cell's lock is {declared.lock_sha256[:12]}"
        )
    if pins and facts.installed:
        found += [f"packages: {d}" for d in lock_drift(pins, facts.installed)]
    return found


def _ffmpeg(present: bool, major: str | None) -> str:
    return f"FFmpeg {major}" if present and major else "FFmpeg" if present else "none"
