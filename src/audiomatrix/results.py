"""results/<cell>/<run>.json: what one smoke run of one cell found, raw and with compat.

A versioned schema, so a report can read results written by older audiomatrix versions
and on other machines (macOS and Windows runners write the same files).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from audiomatrix.files import write_atomic

SCHEMA_VERSION = 1
Status = Literal["pass", "fail", "corrupt", "hang", "crash", "skip"]
Mode = Literal["raw", "compat"]
FAILED: frozenset[str] = frozenset({"fail", "corrupt", "hang", "crash"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckResult(_Model):
    check: str
    status: Status
    duration_s: float
    signature: str | None = None
    """A known failure's id, `unclassified` for an unknown one, None when nothing failed."""
    first_error: str | None = None
    log: str | None = None
    """The check's full output, relative to the cell's results folder."""


class Where(_Model):
    """Where the run happened: an image (with its digest) or a native venv, and the host."""

    kind: Literal["image", "native"]
    image: str | None = None
    image_digest: str | None = None
    os: str
    machine: str
    cpu: str
    gpu: str | None = None
    compute_capability: str | None = None
    driver: str | None = None
    cuda: str | None = None


class RunResult(_Model):
    schema_version: Literal[1] = SCHEMA_VERSION
    cell: str
    run: str
    started: datetime
    finished: datetime
    where: Where
    lock_sha256: str
    versions: dict[str, str | None]
    modes: dict[Mode, list[CheckResult]]

    def status(self, mode: Mode, check: str) -> CheckResult | None:
        return next((c for c in self.modes.get(mode, []) if c.check == check), None)


def run_id(started: datetime) -> str:
    """Sortable and filesystem-safe: 20261125T160102Z."""
    return started.strftime("%Y%m%dT%H%M%SZ")


def path_for(root: Path, cell: str, run: str) -> Path:
    return root / cell / f"{run}.json"


def write(root: Path, result: RunResult) -> Path:
    path = path_for(root, result.cell, result.run)
    write_atomic(path, result.model_dump_json(indent=2) + "\n")
    return path


def read(path: Path) -> RunResult:
    return RunResult.model_validate_json(path.read_text())


def latest(root: Path, cell: str, kind: str | None = None) -> RunResult | None:
    """The newest readable run of a cell, of one kind (image, native) if asked; a damaged
    file is skipped, not fatal."""
    for path in sorted((root / cell).glob("*.json"), reverse=True):
        try:
            run = read(path)
        except (OSError, ValidationError):
            continue
        if kind is None or run.where.kind == kind:
            return run
    return None
