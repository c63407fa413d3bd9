"""cells -> environments/<cell>/: one hash-pinned lock per cell, resolved by uv.

Each cell is resolved for its own target (uv's --python-platform and --python-version),
so a macOS or Windows lock is made here as well as a Linux one. The lock is a
requirements file with hashes (`uv pip compile --generate-hashes`): pip, uv, tox and a
Dockerfile install it alike, and it names no index address, so it works for a user
behind another mirror. Nothing of this machine's pip or uv configuration reaches uv:
config files are ignored and UV_*/PIP_* variables are dropped.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from audiomatrix.files import json_text, sha256_file, sha256_json, write_atomic, write_json
from audiomatrix.spec import Cell, Matrix

LOCK_FILE = "requirements.txt"
INPUT_FILE = "requirements.in"
CELL_FILE = "cell.json"
MANIFEST_FILE = "cells.json"
SCHEMA = 1
UV_TIMEOUT_S = 900
PROBE_TIMEOUT_S = 5.0

# Variables through which a machine's own index, mirror or find-links would reach uv.
_KEPT_UV_VARIABLES = {"UV_CACHE_DIR", "UV_NO_PROGRESS", "UV_CONCURRENT_DOWNLOADS"}
_NETWORK_FAILURE = re.compile(
    r"Failed to fetch|error sending request|dns error|Could not connect|tcp connect error|"
    r"Connection refused|timed out",
    re.IGNORECASE,
)


class Status(StrEnum):
    LOCKED = "locked"
    UNCHANGED = "unchanged"
    NOT_BUILDABLE = "not buildable"
    INDEX_UNREACHABLE = "index unreachable"
    UNRESOLVABLE = "unresolvable"
    ERROR = "error"


@dataclass(frozen=True)
class LockPlan:
    """Everything a cell's lock depends on; its hash decides whether to relock."""

    cell: Cell
    requirements: tuple[str, ...]
    index: str | None
    exclude_newer: str | None

    @property
    def inputs(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "requirements": list(self.requirements),
            "index": self.index,
            "python": self.cell.python,
            "platform": self.cell.os_value.platform,
            "exclude_newer": self.exclude_newer,
        }

    @property
    def input_sha256(self) -> str:
        return sha256_json(self.inputs)


@dataclass(frozen=True)
class LockResult:
    cell: str
    status: Status
    detail: str = ""

    @property
    def failed(self) -> bool:
        """A tool failure, as opposed to a finding about the cell (unresolvable, no index)."""
        return self.status is Status.ERROR


def requirements_for(cell: Cell, smoke_requirements: Iterable[str]) -> tuple[str, ...]:
    """torch and its pairs pinned exactly, then the stack, then what the smoke suite needs."""
    pins = [f"torch=={cell.torch}", f"torchaudio=={cell.torch_value.torchaudio}"]
    if cell.torchcodec:
        pins.append(f"torchcodec=={cell.torchcodec}")
    return (*pins, *cell.stack_value.packages, *smoke_requirements)


def index_for(cell: Cell) -> str | None:
    """The accelerator's index, or None where the default index serves this very build."""
    served = cell.accelerator_value.pypi.get(cell.os_value.family)
    if served is not None and Version(cell.torch) in SpecifierSet(served):
        return None
    return cell.accelerator_value.index


def plan_for(cell: Cell, matrix: Matrix) -> LockPlan:
    return LockPlan(
        cell=cell,
        requirements=requirements_for(cell, matrix.file.smoke_requirements),
        index=index_for(cell),
        exclude_newer=matrix.exclude_newer,
    )


def uv_compile_args(plan: LockPlan, output: str) -> list[str]:
    """The `uv pip compile` arguments for a plan, run inside the cell's folder."""
    args = [
        "pip", "compile", INPUT_FILE,
        "--output-file", output,
        "--generate-hashes",
        "--no-config",
        "--python-version", plan.cell.python,
        "--python-platform", plan.cell.os_value.platform,
        "--custom-compile-command", f"audiomatrix lock --select {plan.cell.id}",
        "--quiet",
    ]  # fmt: skip
    if plan.exclude_newer:
        args += ["--exclude-newer", plan.exclude_newer]
    if plan.index:
        args += ["--extra-index-url", plan.index]
    return args


def clean_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The environment for uv without this machine's index settings."""
    return {
        k: v
        for k, v in env.items()
        if not k.startswith("PIP_") and (not k.startswith("UV_") or k in _KEPT_UV_VARIABLES)
    }


def one_line(stderr: str, limit: int = 400) -> str:
    """uv's explanation in one line: its `error:`/`cause:` chain joined, hints dropped."""
    kept = []
    for raw in stderr.splitlines():
        line = re.sub(r"^\s*(error|cause|warning):\s*", "", raw.strip())
        if line.startswith("hint:"):
            break
        if line and line != "No solution found when resolving dependencies":
            kept.append(line)
    folded = re.sub(r"\s+", " ", " ".join(kept)).strip()
    return folded if len(folded) <= limit else folded[: limit - 1] + "…"


@functools.cache
def index_problem(url: str) -> str | None:
    """None when the index answers; otherwise why not, in a few words."""
    probe = url.rstrip("/") + "/torch/"
    try:
        with urllib.request.urlopen(probe, timeout=PROBE_TIMEOUT_S):
            return None
    except urllib.error.HTTPError as exc:
        return None if exc.code < 500 else f"{url} answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{url} does not answer ({reason})"


def uv_binary() -> str:
    """The uv this project depends on, so every machine locks with the same resolver."""
    from uv import find_uv_bin

    return find_uv_bin()


def uv_version() -> str:
    out = subprocess.run([uv_binary(), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.split()[1]


def write_manifest(matrix: Matrix, root: Path) -> Path:
    """environments/cells.json: every cell the matrix declares, with why it cannot be built,
    so that the report accounts for cells that never get a folder of their own."""
    path = root / MANIFEST_FILE
    cells = sorted((c.to_dict() for c in matrix.cells), key=lambda c: c["id"])
    text = json_text({"schema": 1, "cells": cells})
    if not path.exists() or path.read_text() != text:
        write_atomic(path, text)
    return path


def read_manifest(root: Path) -> list[dict[str, Any]]:
    """The cells of environments/cells.json ([] when absent or damaged)."""
    try:
        cells = json.loads((root / MANIFEST_FILE).read_text()).get("cells")
    except (OSError, ValueError, AttributeError):
        return []
    return (
        [c for c in cells if isinstance(c, dict) and "id" in c] if isinstance(cells, list) else []
    )


def read_record(folder: Path) -> dict[str, Any] | None:
    """A cell folder's cell.json, or None when it is missing or not a JSON object: the one
    reader of this stage's record, for the later stages too."""
    try:
        record = json.loads((folder / CELL_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def is_current(plan: LockPlan, folder: Path) -> bool:
    """A lock exists for exactly these inputs and has not been edited since."""
    record = read_record(folder)
    lock = folder / LOCK_FILE
    return (
        record is not None
        and record.get("status") == Status.LOCKED
        and record.get("input_sha256") == plan.input_sha256
        and lock.is_file()
        and record.get("lock_sha256") == sha256_file(lock)
    )


def _record(plan: LockPlan, status: Status, reason: str | None, lock_sha: str | None) -> dict:
    return {
        "schema": SCHEMA,
        "cell": plan.cell.to_dict(),
        "status": str(status),
        "reason": reason,
        "lock": LOCK_FILE if lock_sha else None,
        "lock_sha256": lock_sha,
        "input_sha256": plan.input_sha256,
        "inputs": plan.inputs,
    }


def _write_failure(plan: LockPlan, folder: Path, status: Status, reason: str) -> LockResult:
    (folder / LOCK_FILE).unlink(missing_ok=True)
    write_json(folder / CELL_FILE, _record(plan, status, reason, None))
    return LockResult(plan.cell.id, status, reason)


def lock_cell(plan: LockPlan, folder: Path, uv: str) -> LockResult:
    """Lock one cell into `folder`; every outcome is a result, never an exception."""
    cell = plan.cell
    if not cell.buildable:
        return LockResult(cell.id, Status.NOT_BUILDABLE, cell.unbuildable or "")
    if is_current(plan, folder):
        record = read_record(folder) or {}
        if record.get("cell") != cell.to_dict():
            write_json(folder / CELL_FILE, {**record, "cell": cell.to_dict()})
        return LockResult(cell.id, Status.UNCHANGED)
    if plan.index and (problem := index_problem(plan.index)):
        return _write_failure(plan, folder, Status.INDEX_UNREACHABLE, problem)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / INPUT_FILE, "\n".join(plan.requirements) + "\n")
    partial = f".{LOCK_FILE}.partial"
    try:
        proc = subprocess.run(
            [uv, *uv_compile_args(plan, partial)],
            cwd=folder,
            env=clean_environment(os.environ),
            capture_output=True,
            text=True,
            timeout=UV_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        (folder / partial).unlink(missing_ok=True)
        return _write_failure(plan, folder, Status.ERROR, f"uv took over {UV_TIMEOUT_S} s")
    if proc.returncode != 0:
        (folder / partial).unlink(missing_ok=True)
        reason = one_line(proc.stderr) or f"uv exited with {proc.returncode}"
        network = _NETWORK_FAILURE.search(proc.stderr)
        status = Status.INDEX_UNREACHABLE if network else Status.UNRESOLVABLE
        return _write_failure(plan, folder, status, reason)
    os.replace(folder / partial, folder / LOCK_FILE)
    write_json(
        folder / CELL_FILE, _record(plan, Status.LOCKED, None, sha256_file(folder / LOCK_FILE))
    )
    return LockResult(cell.id, Status.LOCKED, f"{_count_pins(folder / LOCK_FILE)} packages")


def _count_pins(lock: Path) -> int:
    return sum(1 for line in lock.read_text().splitlines() if re.match(r"^[A-Za-z0-9]", line))


def lock_cells(
    cells: Iterable[Cell],
    matrix: Matrix,
    root: Path,
    on_done: Callable[[LockResult], None] = lambda _: None,
    workers: int = 2,
) -> list[LockResult]:
    """Lock cells side by side; one cell's failure never stops the others."""
    write_manifest(matrix, root)
    uv = uv_binary()
    plans = [plan_for(c, matrix) for c in cells]

    def work(plan: LockPlan) -> LockResult:
        try:
            result = lock_cell(plan, root / plan.cell.id, uv)
        except OSError as exc:
            result = LockResult(plan.cell.id, Status.ERROR, f"{exc.filename}: {exc.strerror}")
        on_done(result)
        return result

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(work, plans))
