"""cells -> environments/<cell>/: what every installer's lock of a cell shares (each installer
in audiomatrix.lock.installers): the outcome of locking it, the record it leaves in cell.json
and the stopper that lets an interruption reach the locking tools."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from audiomatrix.core.files import sha256_file, write_json
from audiomatrix.lock.uvtool import clean_environment
from audiomatrix.records.cell import (
    CELL_FILE,
    SCHEMA,
    CellData,
    CellRecord,
    RecordError,
    read_record,
)
from audiomatrix.spec.cells import Cell

PROBE_TIMEOUT_S = 5.0


class Status(StrEnum):
    LOCKED = "locked"
    UNCHANGED = "unchanged"
    NOT_BUILDABLE = "not buildable"
    INDEX_UNREACHABLE = "index unreachable"
    CHANNEL_UNREACHABLE = "channel unreachable"
    UNRESOLVABLE = "unresolvable"
    ERROR = "error"


@dataclass(frozen=True)
class LockResult:
    cell: str
    status: Status
    detail: str = ""

    @property
    def failed(self) -> bool:
        """A tool failure, as opposed to a finding about the cell (unresolvable, no index)."""
        return self.status is Status.ERROR


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


def _own_record(folder: Path) -> CellRecord | None:
    """This stage's previous record of a cell; a damaged one is simply relocked."""
    try:
        return read_record(folder)
    except RecordError:
        return None


def locked_record(folder: Path) -> CellRecord | None:
    """The previous record if it holds an intact lock (None otherwise)."""
    record = _own_record(folder)
    if record is None or record.status != Status.LOCKED or not record.lock:
        return None
    lock = folder / record.lock
    return record if lock.is_file() and record.lock_sha256 == sha256_file(lock) else None


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
    @property
    def cell_data(self) -> dict[str, Any]:
        """The resolved cell as its record holds it (its installer's additions in)."""
        ...


def new_record(plan: Plan, status: Status, reason: str | None, lock_sha: str | None) -> dict:
    return {
        "schema": SCHEMA,
        "cell": plan.cell_data,
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


def unchanged(plan: Plan, folder: Path, previous: CellRecord) -> LockResult:
    """The lock stands; the record follows the cell's attributes (a reason, a runner), and
    is left untouched when they are the same (the record as read has its defaults filled)."""
    if previous.cell != CellData.model_validate(plan.cell_data):
        record = {**previous.model_dump(by_alias=True), "cell": plan.cell_data}
        write_json(folder / CELL_FILE, record)
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


def move_in(scratch: Path, folder: Path, names: Iterable[str]) -> None:
    """Move finished files from the scratch folder over the cell's: each is synced first, and
    renames need no space, so a disk that fills while a lock is written leaves the previous
    files, all of them, as they were (the record moves last)."""
    for name in names:
        with (scratch / name).open("rb") as written:
            os.fsync(written.fileno())
    for name in names:
        os.replace(scratch / name, folder / name)
