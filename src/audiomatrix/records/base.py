"""What every record shares: one base model, and the entry that lists a file no stage could
use."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Record(BaseModel):
    """A file's shape, exactly: a field no model names is an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Damaged(Record):
    """A file a stage could not use, and why: listed, never silently dropped."""

    path: str
    reason: str

    @classmethod
    def of(cls, shown: str, exc: Exception) -> Damaged:
        """The file as the table names it, and the error's reason without its file name."""
        return cls(path=shown, reason=str(exc).split(": ", 1)[-1])
