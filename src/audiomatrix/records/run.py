"""results/<cell>/<run>.json: what one smoke run of one cell measured, raw and with compat.

A versioned schema built from the suite's own outcome contract (audiomatrix.suite.schema),
so the runner, this collector and the report agree on one shape. A result records facts, not
judgements: the environment as measured and each check's outcome. Which known failure a check
hit, and whether the run stands for its cell, is decided by the report, so a catalog fix or a
corrected declaration reclassifies old runs.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from audiomatrix.core.errors import AudiomatrixError
from audiomatrix.core.files import describe_error, read_text
from audiomatrix.records.base import Record
from audiomatrix.suite.schema import CheckOutcome, Environment, Mode, RemedySplit

SCHEMA_VERSION = 2


class ResultError(AudiomatrixError):
    """A results file that cannot be used, with the one line that says which and why."""


class Where(Record):
    """Where the run happened: an image (its content tag and local id) or a native venv."""

    kind: Literal["image", "native"]
    image: str | None = None
    image_digest: str | None = None


class RunResult(Record):
    schema_version: Literal[2] = SCHEMA_VERSION
    cell: str
    run: str
    started: datetime
    finished: datetime
    where: Where
    lock_sha256: str
    environment: Environment
    modes: dict[Mode, list[CheckOutcome]]
    remedy_split: RemedySplit | None = None
    """The runs with fewer of compat's remedies, where some check failed raw and passed with
    compat (none in runs from before the split, or with one mode only)."""

    def status(self, mode: Mode, check: str) -> CheckOutcome | None:
        return next((c for c in self.modes.get(mode, []) if c.check == check), None)


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 result (before measured facts and provenance) in schema 2's shape: what it
    recorded is kept, what it never measured stays unknown, so the report shows it apart."""
    where = dict(data.get("where") or {})
    versions = dict(data.get("versions") or {})
    ffmpeg = versions.pop("ffmpeg", None)
    host = {k: where.pop(k, None) for k in ("os", "machine", "cpu", "gpu", "compute_capability",
                                            "driver")}  # fmt: skip
    cuda = where.pop("cuda", None)
    return {
        **{k: v for k, v in data.items() if k not in ("versions", "where", "modes")},
        "schema_version": 2,
        "where": where,
        "environment": {
            "schema": 1,
            "versions": versions,
            "host": host,
            "facts": {
                "python": versions.get("python") or "",
                "libpython": False,
                "torch": versions.get("torch"),
                "cuda": cuda,
                "torchcodec": versions.get("torchcodec"),
                "ffmpeg": ffmpeg.split()[0] if ffmpeg else None,
            },
            "provenance": {"suite_sha256": "", "compat_sha256": ""},
        },
        "modes": {
            mode: [{k: v for k, v in c.items() if k != "signature"} for c in checks]
            for mode, checks in (data.get("modes") or {}).items()
        },
    }


def parse(text: str) -> RunResult:
    """A result file's text, of either schema; ValueError or ValidationError when malformed."""
    data = json.loads(text)
    if isinstance(data, dict) and data.get("schema_version") == 1:
        data = upgrade_v1(data)
    return RunResult.model_validate(data)


def read(path: Path, cell: str | None = None) -> RunResult:
    """A result file; ResultError naming the file and what is wrong when it cannot be used,
    including a run that names another cell than the folder it lies in."""
    try:
        result = parse(read_text(path))
    except OSError as exc:
        raise ResultError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise ResultError(f"{path}: {describe_error(exc)}") from None
    expected = cell if cell is not None else path.parent.name
    if result.cell != expected:
        raise ResultError(
            f"{path}: names cell '{result.cell}' but lies in results/{expected}/: "
            "a run file belongs to the folder of its cell"
        )
    return result
