"""cells -> environments/<cell>/: one hash-pinned lock per cell, resolved by uv (a conda
cell's by conda-lock: audiomatrix.lock.conda, which builds on this module's records).

Each cell is resolved for its own target (uv's --python-platform and --python-version),
so a macOS or Windows lock is made here as well as a Linux one. The lock is a
requirements file with hashes (`uv pip compile --generate-hashes`): pip, uv, tox and a
Dockerfile install it alike, and it names no index address, so it works for a user
behind another mirror. Nothing of this machine's pip or uv configuration reaches uv:
config files are ignored and UV_*/PIP_* variables are dropped.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol

from packaging.specifiers import SpecifierSet
from packaging.version import Version
from pydantic import BaseModel, ConfigDict, Field

from audiomatrix.core.errors import AudiomatrixError
from audiomatrix.core.files import (
    describe_error,
    json_text,
    read_text,
    sha256_file,
    sha256_json,
    write_atomic,
    write_json,
)
from audiomatrix.lock.uvtool import UNREACHABLE, clean_environment, one_line, uv_binary
from audiomatrix.spec.cells import Cell
from audiomatrix.spec.matrix import Matrix

LOCK_FILE = "requirements.txt"
INPUT_FILE = "requirements.in"
CELL_FILE = "cell.json"
MANIFEST_FILE = "cells.json"
SCHEMA = 1
UV_TIMEOUT_S = 900
PROBE_TIMEOUT_S = 5.0

# uv failing on this machine (a full disk, a read-only folder): says nothing about the cell.
_LOCAL_FAILURE = re.compile(
    r"No space left on device|Disk quota exceeded|Read-only file system|Permission denied"
)


class Status(StrEnum):
    LOCKED = "locked"
    UNCHANGED = "unchanged"
    NOT_BUILDABLE = "not buildable"
    INDEX_UNREACHABLE = "index unreachable"
    CHANNEL_UNREACHABLE = "channel unreachable"
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

    @property
    def lock_file(self) -> str:
        return LOCK_FILE


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
    """A uv cell's plan (conda.plan_for makes a conda cell's)."""
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


@functools.cache
def url_problem(probe: str, name: str) -> str | None:
    """None when `probe` answers (a client error still means a server there); otherwise why
    not, in a few words about `name`."""
    try:
        with urllib.request.urlopen(probe, timeout=PROBE_TIMEOUT_S):
            return None
    except urllib.error.HTTPError as exc:
        return None if exc.code < 500 else f"{name} answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{name} does not answer ({reason})"


def index_problem(url: str) -> str | None:
    """None when the index answers; otherwise why not, in a few words."""
    return url_problem(url.rstrip("/") + "/torch/", url)


def write_manifest(matrix: Matrix, root: Path) -> Path:
    """environments/cells.json: every cell the matrix declares, with why it cannot be built,
    so that the report accounts for cells that never get a folder of their own."""
    path = root / MANIFEST_FILE
    cells = sorted((c.to_dict() for c in matrix.cells), key=lambda c: c["id"])
    text = json_text({"schema": 1, "cells": cells, "reference": list(matrix.file.reference)})
    if not path.exists() or path.read_text() != text:
        write_atomic(path, text)
    return path


class RecordError(AudiomatrixError):
    """A damaged or foreign cell.json or cells.json, with the one line that says where."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RemedyOf(_Record):
    """A remedy cell's parent cell and the change between them."""

    cell: str
    change: list[str]


class CellData(_Record):
    """A resolved cell as `Cell.to_dict` writes it."""

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


class CellRecord(_Record):
    """environments/<cell>/cell.json."""

    schema_: int = Field(alias="schema")
    cell: CellData
    status: str
    reason: str | None
    lock: str | None
    lock_sha256: str | None
    input_sha256: str
    inputs: dict[str, Any]


class Manifest(_Record):
    """environments/cells.json."""

    schema_: int = Field(alias="schema")
    cells: list[CellData]
    reference: list[str] = []
    """matrix.yaml's reference cells, for the report's golden comparison."""


def _validated(path: Path, model: type[_Record], fix: str) -> dict[str, Any]:
    try:
        return model.model_validate_json(read_text(path)).model_dump(by_alias=True)
    except ValueError as exc:
        raise RecordError(f"{path}: {describe_error(exc)}; {fix}") from None


def read_manifest(root: Path) -> dict[str, Any]:
    """environments/cells.json (no cells when there is none yet); RecordError when it is
    damaged."""
    path = root / MANIFEST_FILE
    if not path.exists():
        return {"schema": 1, "cells": [], "reference": []}
    return _validated(path, Manifest, "rerun `audiomatrix lock` to rewrite it")


def read_record(folder: Path) -> dict[str, Any] | None:
    """A cell folder's cell.json, validated, or None when there is none: the one reader of
    this stage's record, for the later stages too. RecordError names a damaged one."""
    path = folder / CELL_FILE
    if not path.exists():
        return None
    return _validated(path, CellRecord, f"rerun `audiomatrix lock --select {folder.name}`")


def _own_record(folder: Path) -> dict[str, Any] | None:
    """This stage's previous record of a cell; a damaged one is simply relocked."""
    try:
        return read_record(folder)
    except RecordError:
        return None


def locked_record(folder: Path) -> dict[str, Any]:
    """The previous record if it holds an intact lock ({} otherwise)."""
    record = _own_record(folder)
    if record is None or record["status"] != Status.LOCKED or not record["lock"]:
        return {}
    lock = folder / record["lock"]
    return record if lock.is_file() and record["lock_sha256"] == sha256_file(lock) else {}


class Plan(Protocol):
    """What a cell's record needs of its lock plan, whichever installer locks it."""

    @property
    def cell(self) -> Cell: ...
    @property
    def inputs(self) -> dict[str, Any]: ...
    @property
    def input_sha256(self) -> str: ...
    @property
    def lock_file(self) -> str: ...


def new_record(plan: Plan, status: Status, reason: str | None, lock_sha: str | None) -> dict:
    return {
        "schema": SCHEMA,
        "cell": plan.cell.to_dict(),
        "status": str(status),
        "reason": reason,
        "lock": plan.lock_file if lock_sha else None,
        "lock_sha256": lock_sha,
        "input_sha256": plan.input_sha256,
        "inputs": plan.inputs,
    }


def write_finding(plan: Plan, folder: Path, status: Status, reason: str) -> LockResult:
    """Record that the cell, as declared now, has no lock (unresolvable, or no index)."""
    write_json(folder / CELL_FILE, new_record(plan, status, reason, None))
    (folder / plan.lock_file).unlink(missing_ok=True)
    return LockResult(plan.cell.id, status, reason)


def unreachable(
    plan: Plan, folder: Path, reason: str, kept: bool, status: Status = Status.INDEX_UNREACHABLE
) -> LockResult:
    """The index (or channel) did not answer: a previous lock stays as it was (the outage
    says nothing about the cell); with none, the cell records why it has no lock."""
    if kept:
        return LockResult(plan.cell.id, status, f"{reason}; kept the previous lock")
    return write_finding(plan, folder, status, reason)


def unchanged(plan: Plan, folder: Path, previous: dict[str, Any]) -> LockResult:
    """The lock stands; the record follows the cell's attributes (a reason, a runner), and
    is left untouched when they are the same (the record as read has its defaults filled)."""
    if previous["cell"] != CellData.model_validate(plan.cell.to_dict()).model_dump():
        write_json(folder / CELL_FILE, {**previous, "cell": plan.cell.to_dict()})
    return LockResult(plan.cell.id, Status.UNCHANGED)


class Stopped(Exception):
    """The run is being interrupted: a worker records nothing more."""


@dataclass
class Stopper:
    """What lets an interruption reach the uv processes the worker threads wait on: the main
    thread sets `stopping` and terminates them; a worker then records nothing."""

    stopping: bool = False
    running: set[subprocess.Popen] = field(default_factory=set)

    def stop(self) -> None:
        """Terminate every tool's process group: conda-lock's solver is a child of its own."""
        self.stopping = True
        for proc in list(self.running):
            with contextlib.suppress(OSError):
                if hasattr(os, "killpg"):
                    os.killpg(proc.pid, signal.SIGTERM)  # start_new_session made it a leader
                else:
                    proc.terminate()

    def run(self, args: list[str], cwd: Path, timeout: float) -> tuple[int, str]:
        """Run a locking tool to completion (returncode, stderr); Stopped once stopping."""
        if self.stopping:
            raise Stopped
        with subprocess.Popen(
            args, cwd=cwd, env=clean_environment(os.environ), text=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        ) as proc:  # fmt: skip
            self.running.add(proc)
            try:
                _, stderr = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise
            finally:
                self.running.discard(proc)
        if self.stopping:
            raise Stopped
        return proc.returncode, stderr


def lock_cell(plan: LockPlan, folder: Path, uv: str, stopper: Stopper | None = None) -> LockResult:
    """Lock one cell into `folder`; every outcome is a result, never an exception, except
    Stopped. The new lock is resolved in a scratch folder and moved in only when uv
    succeeded, so an interruption or a tool failure leaves the previous files byte-identical;
    only a real finding (unresolvable, no index and no previous lock) replaces them."""
    cell = plan.cell
    stopper = stopper or Stopper()
    if not cell.buildable:
        return LockResult(cell.id, Status.NOT_BUILDABLE, cell.unbuildable or "")
    previous = locked_record(folder)
    if previous and previous["input_sha256"] == plan.input_sha256:
        return unchanged(plan, folder, previous)
    if plan.index and (problem := index_problem(plan.index)):
        return unreachable(plan, folder, problem, kept=bool(previous))
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".lock-", dir=folder) as scratch:
        work = Path(scratch)
        write_atomic(work / INPUT_FILE, "\n".join(plan.requirements) + "\n")
        try:
            code, stderr = stopper.run([uv, *uv_compile_args(plan, LOCK_FILE)], work, UV_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return LockResult(
                cell.id, Status.ERROR, f"uv took over {UV_TIMEOUT_S} s; nothing changed"
            )
        if code < 0:
            reason = f"uv was killed by signal {-code}; nothing changed"
            return LockResult(cell.id, Status.ERROR, reason)
        if code != 0:
            reason = one_line(stderr) or f"uv exited with {code}"
            if local := _LOCAL_FAILURE.search(stderr):
                reason = f"{folder}: uv could not write the lock: {local.group(0)}"
                return LockResult(cell.id, Status.ERROR, f"{reason}; nothing changed")
            if UNREACHABLE.search(stderr):
                return unreachable(plan, folder, reason, kept=bool(previous))
            return write_finding(plan, folder, Status.UNRESOLVABLE, reason)
        lock_sha = sha256_file(work / LOCK_FILE)
        write_json(work / CELL_FILE, new_record(plan, Status.LOCKED, None, lock_sha))
        move_in(work, folder, (INPUT_FILE, LOCK_FILE, CELL_FILE))
    return LockResult(cell.id, Status.LOCKED, f"{_count_pins(folder / LOCK_FILE)} packages")


def move_in(scratch: Path, folder: Path, names: Iterable[str]) -> None:
    """Move finished files from the scratch folder over the cell's: each is synced first, and
    renames need no space, so a disk that fills while a lock is written leaves the previous
    files, all of them, as they were (the record moves last)."""
    for name in names:
        with (scratch / name).open("rb") as written:
            os.fsync(written.fileno())
    for name in names:
        os.replace(scratch / name, folder / name)


def _count_pins(lock: Path) -> int:
    return sum(1 for line in lock.read_text().splitlines() if re.match(r"^[A-Za-z0-9]", line))


def lock_cells(
    cells: Iterable[Cell],
    matrix: Matrix,
    root: Path,
    on_done: Callable[[LockResult], None] = lambda _: None,
    workers: int = 2,
) -> list[LockResult]:
    """Lock cells side by side; one cell's failure never stops the others. An interruption
    (any BaseException: the CLI raises one for SIGINT and SIGTERM) stops the uv processes, records
    nothing for the cells in flight and propagates."""
    from audiomatrix.lock import conda  # it builds on this module

    write_manifest(matrix, root)
    uv = uv_binary()
    plans: list[Plan] = [
        conda.plan_for(c, matrix) if c.installer == "conda" else plan_for(c, matrix) for c in cells
    ]
    stopper = Stopper()

    def work(plan: Plan) -> LockResult:
        try:
            folder = root / plan.cell.id
            if isinstance(plan, LockPlan):
                result = lock_cell(plan, folder, uv, stopper)
            else:
                result = conda.lock_cell(plan, folder, stopper)
        except OSError as exc:
            result = LockResult(plan.cell.id, Status.ERROR, f"{exc.filename}: {exc.strerror}")
        on_done(result)
        return result

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = [pool.submit(work, plan) for plan in plans]
        return [future.result() for future in futures]
    except BaseException:
        stopper.stop()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
