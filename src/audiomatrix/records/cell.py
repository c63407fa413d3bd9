"""environments/<cell>/cell.json and environments/cells.json: what the lock stage resolved
for each cell, read back by every later stage through the one validating reader here."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import ConfigDict, Field

from audiomatrix.core.errors import AudiomatrixError
from audiomatrix.core.files import describe_error, read_text
from audiomatrix.records.base import Record

CELL_FILE = "cell.json"
MANIFEST_FILE = "cells.json"
SCHEMA = 1
MANIFEST_SCHEMA = 1


class RecordError(AudiomatrixError):
    """A damaged or foreign cell.json or cells.json, with the one line that says where."""


class _Strict(Record):
    """cell.json is written by this program only: a value of another type is damage."""

    model_config = ConfigDict(strict=True)


class RemedyOf(_Strict):
    """A remedy cell's parent cell and the change between them."""

    cell: str
    change: list[str]


class CellData(_Strict):
    """A resolved cell as `lock.installers.cell_data` writes it."""

    id: str
    os: str
    python: str
    torch: str
    accelerator: str
    stack: str
    family: str
    platform: str
    base: str | None
    runner: str
    torchaudio: str
    torchcodec: str | None
    ffmpeg: bool
    ffmpeg_major: str | None = None
    ffmpeg_packages: list[str] = []
    device: str
    variant: str
    gpu_arch: list[str]
    packages: list[str]
    buildable: bool
    reason: str | None
    installer: Literal["uv", "conda"] = "uv"
    channels: list[str] = []
    conda: list[str] = []
    remedy_of: RemedyOf | None = None


class CellRecord(_Strict):
    """environments/<cell>/cell.json."""

    schema_: int = Field(alias="schema")
    cell: CellData
    status: str
    reason: str | None
    lock: str | None
    lock_sha256: str | None
    input_sha256: str
    inputs: dict[str, Any]
    """The lock plan's inputs, whose hash decides whether to relock (each installer's own)."""


class Manifest(_Strict):
    """environments/cells.json."""

    schema_: int = Field(alias="schema")
    cells: list[CellData]
    reference: list[str] = []
    """matrix.yaml's reference cells, for the report's golden comparison."""

    @classmethod
    def empty(cls) -> Manifest:
        """No cells declared: before the first lock, or in place of a damaged file."""
        return cls(schema=MANIFEST_SCHEMA, cells=[])


M = TypeVar("M", bound=_Strict)


def _validated(path: Path, model: type[M], fix: str) -> M:
    try:
        return model.model_validate_json(read_text(path))
    except ValueError as exc:
        raise RecordError(f"{path}: {describe_error(exc)}; {fix}") from None


def read_manifest(root: Path) -> Manifest:
    """environments/cells.json (no cells when there is none yet); RecordError when it is
    damaged."""
    path = root / MANIFEST_FILE
    if not path.exists():
        return Manifest.empty()
    return _validated(path, Manifest, "rerun `audiomatrix lock` to rewrite it")


def read_record(folder: Path) -> CellRecord | None:
    """A cell folder's cell.json, validated, or None when there is none: the one reader of
    this stage's record, for the later stages too. RecordError names a damaged one."""
    path = folder / CELL_FILE
    if not path.exists():
        return None
    return _validated(path, CellRecord, f"rerun `audiomatrix lock --select {folder.name}`")
