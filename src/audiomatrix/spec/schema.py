"""The schema of matrix.yaml: what each key may hold, as strict pydantic models.

pydantic checks the shape and the formats (names, versions, URLs, dates); what needs the
whole file at once (values that exist, pairs that match, sizes) is spec's checker, and how
pydantic's errors read is specerrors'.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from audiomatrix.spec.yamlpos import shown

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
"""Axis value names: lowercase so that ids are the same folder on case-insensitive disks,
and only characters a Docker tag allows."""

Name = Annotated[str, StringConstraints(strict=True, pattern=NAME_PATTERN)]
PythonVersion = Annotated[str, StringConstraints(strict=True, pattern=r"^3\.\d+$")]
TorchVersion = Annotated[str, StringConstraints(strict=True, pattern=r"^\d+\.\d+\.\d+$")]
Family = Literal["linux", "macos", "windows"]
Channel = Annotated[
    str, StringConstraints(strict=True, pattern=r"^([a-z0-9][a-z0-9_.-]*|(https?|file)://\S+)$")
]
"""A conda channel: a name the solver resolves by its own channel alias, or a URL."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Fact(_Strict):
    """A constraint on the other axes that a value needs, with why and where it is written."""

    python: str | None = None
    torch: str | None = None
    os_family: list[Family] | None = None
    accelerator: list[Name] | None = None
    stack: list[Name] | None = None
    reason: str
    source: Annotated[str, StringConstraints(strict=True, pattern=r"^https://\S+$")]

    @model_validator(mode="after")
    def _constrains_something(self) -> Fact:
        if all(
            getattr(self, a) is None
            for a in ("python", "torch", "os_family", "accelerator", "stack")
        ):
            raise ValueError(
                "a fact needs at least one of python, torch, os_family, accelerator, stack"
            )
        return self


class Ffmpeg(_Strict):
    """The FFmpeg a Linux distribution ships: its major version and the packages of its
    shared libraries (what a cell that declares FFmpeg gets, in its image or natively)."""

    major: Annotated[str, StringConstraints(strict=True, pattern=r"^\d+$")]
    packages: list[Name]


class OsValue(_Strict):
    """An operating system: Linux values run as images from `base`, the others natively."""

    family: Family
    platform: str = Field(description="uv's --python-platform target for locks")
    runner: str = Field(description="CI runner label")
    base: str | None = None
    ffmpeg: Ffmpeg | None = None
    requires: list[Fact] = []

    @property
    def native(self) -> bool:
        return self.family != "linux"

    @model_validator(mode="after")
    def _linux_has_base(self) -> OsValue:
        if self.family == "linux" and not self.base:
            raise ValueError("a linux os needs `base`, the image its cells build on")
        if self.family != "linux" and self.base:
            raise ValueError(f"a {self.family} os runs natively and takes no `base`")
        if self.family != "linux" and self.ffmpeg:
            raise ValueError(f"a {self.family} os takes no `ffmpeg`: only images get packages")
        return self


class TorchValue(_Strict):
    torchaudio: TorchVersion
    torchcodec: str | None = None
    requires: list[Fact] = []


class AcceleratorValue(_Strict):
    """A torch build: its wheel variant, its PyTorch index, the GPUs it must run on."""

    device: Literal["cpu", "cuda", "mps"]
    variant: Name
    index: Annotated[str, StringConstraints(strict=True, pattern=r"^https://\S+$")]
    gpu_arch: list[Annotated[str, StringConstraints(strict=True, pattern=r"^sm_\d+$")]] = []
    pypi: dict[Family, str] = Field(
        default={}, description="torch versions for which the default index serves this build"
    )
    requires: list[Fact] = []


class StackValue(_Strict):
    """The audio stack on top of torch: the TTS and Demucs packages and the I/O backends.
    A conda stack (`installer: conda`) takes torch and the libraries from its `channels`, and
    `packages` from PyPI only for what the channels lack."""

    packages: list[str]
    torchcodec: bool
    ffmpeg: bool
    requires: list[Fact] = []
    remedy_of: str | None = None
    """The stack this one repairs: the same stack with a declared change (a pin, a missing
    package), so that its cells prove which change fixes which of the parent's failures."""
    # ---- conda cells (checked by audiomatrix.spec.conda_checks)
    installer: Literal["uv", "conda"] = "uv"
    channels: list[Channel] = []
    conda: list[str] = Field(default=[], description="conda match specs beside the torch set")

    @model_validator(mode="after")
    def _conda_keys_need_conda(self) -> StackValue:
        if self.installer == "uv" and (self.channels or self.conda):
            raise ValueError(
                "channels and conda are for stacks with `installer: conda` (and a name ending"
                " in '-conda'); add it or drop them"
            )
        if self.installer == "conda" and not self.channels:
            raise ValueError("a conda stack needs `channels`, e.g. [conda-forge]")
        return self


Scalar = str | int | float | bool


def _iso_date(value: Any) -> Any:
    """YYYY-MM-DD, quoted or not (yamlpos keeps dates as text), as a date."""
    if not isinstance(value, str):
        return value  # strict validation refuses it with its type
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError(f"{shown(value)} is not a date; write it as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{shown(value)} is not a date: {exc}; write a real date") from None


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


class Product(_Strict):
    """The `matrix:` block: axes to multiply, then exclude and include as in GitHub Actions."""

    os: list[Name] | None = None
    python: list[PythonVersion] | None = None
    torch: list[TorchVersion] | None = None
    accelerator: list[Name] | None = None
    stack: list[Name] | None = None
    exclude: list[dict[str, Scalar]] = []
    include: list[dict[str, Scalar]] = []


class MatrixFile(_Strict):
    version: Literal[1]
    exclude_newer: IsoDate | None = None
    smoke_requirements: list[str]
    smoke_requirements_conda: list[str] = []
    """What the smoke suite needs in a conda cell, as conda match specs."""
    os: dict[Name, OsValue]
    python: list[PythonVersion]
    torch: dict[TorchVersion, TorchValue]
    accelerator: dict[Name, AcceleratorValue]
    stack: dict[Name, StackValue]
    matrix: Product
    selections: dict[Name, list[str]] = {}
    reference: list[str] = []
    """Cells whose outputs the others' are compared with (golden outputs), in order of
    preference: per check, the first whose run of it passed."""
