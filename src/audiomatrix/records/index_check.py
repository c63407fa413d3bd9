"""environments/index.json: the newest release of each stack's packages on the index, asked
on one day (`audiomatrix report --check-index`) and committed, so that a plain `report` says
which rows have newer releases without asking the index: its output stays a function of the
repository's files, never of the day it runs.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from audiomatrix.core.files import describe_error, read_text
from audiomatrix.records.base import Damaged, Record

INDEX_FILE = "index.json"


class Newest(Record):
    """The newest release of each package that installs on one Python and platform."""

    python: str
    platform: str
    versions: dict[str, str]
    """By package name as the stack declares it (a package with no release for this Python
    and platform is left out)."""


class IndexCheck(Record):
    schema_version: Literal[1] = 1
    checked: date
    """The day (UTC) the index was asked."""
    source: str
    """How it was asked."""
    newest: list[Newest]

    def newest_for(self, python: str, platform: str) -> dict[str, str]:
        for found in self.newest:
            if (found.python, found.platform) == (python, platform):
                return found.versions
        return {}


def read(environments: Path) -> tuple[IndexCheck | None, list[Damaged]]:
    """The committed check (None without one); a damaged file is listed, not used."""
    path = environments / INDEX_FILE
    if not path.is_file():
        return None, []
    try:
        return IndexCheck.model_validate_json(read_text(path)), []
    except (OSError, ValueError) as exc:
        reason = describe_error(exc) if isinstance(exc, ValueError) else str(exc)
        return None, [Damaged(path=f"{environments.name}/{INDEX_FILE}", reason=reason)]
