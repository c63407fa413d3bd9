"""`audiomatrix report --check-index`: ask the index, today, for the newest release of each
stack's packages that installs on each locked cell's Python and platform, and keep the answer
in environments/index.json (records.index_check), which every later report reads instead of
the index.

uv answers, as it resolves a lock (its own cache, no configuration of this machine), with
`--no-deps` and no date: the newest release of each named package alone, for that target.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from audiomatrix.core.errors import AudiomatrixError
from audiomatrix.core.files import json_text, write_atomic
from audiomatrix.lock.installers import uv
from audiomatrix.lock.stage import Status
from audiomatrix.lock.uvtool import clean_environment, one_line, uv_binary
from audiomatrix.records.cell import CellRecord, RecordError, read_record
from audiomatrix.records.index_check import INDEX_FILE, IndexCheck, Newest

SOURCE = (
    "uv pip compile --no-deps, no exclude-newer, per Python and platform of the locked uv cells"
)
TIMEOUT_S = 300


class IndexCheckError(AudiomatrixError):
    """The index did not answer the check: nothing was written."""


def requirements(packages: Iterable[str]) -> list[Requirement]:
    """A stack's packages as requirements; what is not one (a URL, a path) is left out."""
    found = []
    for text in packages:
        try:
            found.append(Requirement(text))
        except InvalidRequirement:
            continue
    return found


def package_names(packages: Iterable[str]) -> list[str]:
    """A stack's requirements by name (`demucs==4.1.0` -> demucs)."""
    return sorted({r.name for r in requirements(packages)}, key=str.lower)


def _targets(records: Iterable[CellRecord]) -> dict[tuple[str, str], list[str]]:
    """Per (Python, platform) of the locked uv cells, their stacks' package names."""
    targets: dict[tuple[str, str], set[str]] = {}
    for record in records:
        if record.status != Status.LOCKED or record.cell.installer != "uv":
            continue
        key = (record.cell.python, record.cell.platform)
        targets.setdefault(key, set()).update(package_names(record.cell.packages))
    return {k: sorted(v, key=str.lower) for k, v in sorted(targets.items()) if v}


def newest(names: list[str], python: str, platform: str) -> dict[str, str]:
    """The newest release of each name for the target, one uv run; a name with none for it
    (its Python range) is asked alone and left out."""
    args = [
        uv_binary(), "pip", "compile", "-", "--no-deps", "--no-config", "--no-header",
        "--no-annotate", "--quiet", "--python-version", python, "--python-platform", platform,
    ]  # fmt: skip
    proc = subprocess.run(
        args, input="\n".join(names) + "\n", capture_output=True, text=True,
        env=clean_environment(os.environ), timeout=TIMEOUT_S,
    )  # fmt: skip
    if proc.returncode == 0:
        pinned = {k.lower(): v for k, v in uv.pins(proc.stdout).items()}
        return {n: pinned[n.lower()] for n in names if n.lower() in pinned}
    if len(names) > 1:
        found: dict[str, str] = {}
        for name in names:
            found |= newest([name], python, platform)
        return found
    if "No solution found" in proc.stderr:
        return {}
    raise IndexCheckError(f"asking the index for {names[0]}: {one_line(proc.stderr)}")


def _records(environments: Path) -> list[CellRecord]:
    """Every readable cell record (a damaged one is the report's to list)."""
    found = []
    for folder in sorted(p for p in environments.iterdir() if p.is_dir()):
        try:
            record = read_record(folder)
        except RecordError:
            continue
        if record is not None:
            found.append(record)
    return found


def check(environments: Path, today: dt.date) -> IndexCheck:
    """Ask the index for the locked uv cells' stacks and write environments/index.json
    (atomically)."""
    records = _records(environments)
    newest = [
        Newest(python=python, platform=platform, versions=newest(names, python, platform))
        for (python, platform), names in _targets(records).items()
    ]
    found = IndexCheck(checked=today, source=SOURCE, newest=newest)
    write_atomic(environments / INDEX_FILE, json_text(found.model_dump(mode="json")))
    return found
