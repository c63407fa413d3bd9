"""A uv cell's lock: requirements -> requirements.txt, hash-pinned by `uv pip compile`.

Each cell is resolved for its own target (uv's --python-platform and --python-version),
so a macOS or Windows lock is made here as well as a Linux one. The lock is a
requirements file with hashes (`uv pip compile --generate-hashes`): pip, uv, tox and a
Dockerfile install it alike, and it names no index address, so it works for a user
behind another mirror. Nothing of this machine's pip or uv configuration reaches uv:
config files are ignored (the one uv reads is audiomatrix's own: sdist_metadata's entries) and
UV_*/PIP_* variables are dropped.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from audiomatrix.core.files import sha256_file, sha256_json, write_atomic, write_json
from audiomatrix.lock import sdist_metadata
from audiomatrix.lock.installers.steps import ImageSteps, NativeSteps
from audiomatrix.lock.resolved import resolved_cell
from audiomatrix.lock.stage import (
    LockResult,
    Status,
    Stopper,
    locked_record,
    move_in,
    new_record,
    unchanged,
    unreachable,
    url_problem,
    write_finding,
)
from audiomatrix.lock.uvtool import UNREACHABLE, one_line, uv_binary
from audiomatrix.records.cell import CELL_FILE, SCHEMA, CellRecord
from audiomatrix.spec.cells import Cell
from audiomatrix.spec.matrix import Matrix

LOCK_FILE = "requirements.txt"
INPUT_FILE = "requirements.in"
UV_TIMEOUT_S = 900

IMAGE = ImageSteps(
    dockerfile="docker/Dockerfile",
    install_script="docker/install.sh",
    tool="uv",
    tool_arg="UV_IMAGE",
)
NATIVE = NativeSteps(environment="venv", own_ffmpeg=False, tox=True)
CUDA_UP_TO = False
"""A cell's torch is the wheel built for its CUDA exactly."""
LOCKED_IN_CI = False
"""Its cells are locked where the matrix is edited and committed with it."""

PIN = sdist_metadata.PIN
"""A lock's requirement line: its name and pinned version."""

# uv failing on this machine (a full disk, a read-only folder): says nothing about the cell.
_LOCAL_FAILURE = re.compile(
    r"No space left on device|Disk quota exceeded|Read-only file system|Permission denied"
)


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

    @property
    def cell_data(self) -> dict[str, Any]:
        return resolved_cell(self.cell, record_additions(self.cell))


def record_additions(cell: Cell) -> dict[str, Any]:
    """Nothing: a uv cell's record is the installer-less one it always was (no `installer`
    key, which reads as uv)."""
    return {}


def lock_files(platform: str) -> tuple[str, ...]:
    """What an install reads, on every platform: the hash-pinned requirements."""
    return (LOCK_FILE,)


def venv_commands(
    requirements: Path, venv: Path, python: str, index: str | None, uv: str
) -> list[list[str]]:
    """uv venv + uv pip sync of the lock with its hashes, compiled to bytecode as in the
    images (else each first import compiles TTS anew): what `smoke --native` runs, and what
    `audiomatrix pull` prints."""
    return [
        [uv, "venv", "--quiet", "--clear", "--python", python, str(venv)],
        [
            uv, "pip", "sync", "--quiet", "--require-hashes", "--compile-bytecode",
            "--python", str(venv), *(["--extra-index-url", index] if index else []),
            str(requirements),
        ],
    ]  # fmt: skip


def install_commands(folder: Path, record: CellRecord, env: Path) -> list[list[str]]:
    """The commands that make the cell's venv `env` from its lock in `folder`."""
    python, index = record.cell.python, record.inputs["index"]
    return venv_commands(folder / LOCK_FILE, env, python, index, uv="uv")


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


def as_resolved(plan: LockPlan, previous: CellRecord) -> LockPlan:
    """The plan as of the date the previous lock was resolved, where that is earlier than the
    plan's: only `audiomatrix refresh` moves a lock's date, so a lock a partial refresh left
    behind stands (its record says as of when) while its other inputs are the plan's."""
    then = previous.inputs.get("exclude_newer")
    if then and plan.exclude_newer and then < plan.exclude_newer:
        return dataclasses.replace(plan, exclude_newer=then)
    return plan


def _day(stamp: str | None) -> str:
    return (stamp or "").removesuffix("T00:00:00Z")


def uv_compile_args(plan: LockPlan, output: str) -> list[str]:
    """The `uv pip compile` arguments for a plan, run inside the cell's folder."""
    return [
        "pip", "compile", INPUT_FILE,
        "--output-file", output,
        "--generate-hashes",
        "--custom-compile-command", f"audiomatrix lock --select {plan.cell.id}",
        "--quiet",
        *_target_args(plan),
        *_source_args(plan),
    ]  # fmt: skip


def _target_args(plan: LockPlan) -> list[str]:
    """What the resolution is for: the cell's Python and platform."""
    return ["--python-version", plan.cell.python, "--python-platform", plan.cell.os_value.platform]


def _source_args(plan: LockPlan) -> list[str]:
    """Where and as of when packages come from; no configuration of this machine, and no
    Python downloaded: the lock is for the cell's Python, and an sdist is built with the
    interpreter found here (a download host that does not answer costs seconds of retries)."""
    args = ["--no-config", "--no-python-downloads"]
    if plan.exclude_newer:
        args += ["--exclude-newer", plan.exclude_newer]
    if plan.index:
        args += ["--extra-index-url", plan.index]
    return args


def _resolve(plan: LockPlan, work: Path, stopper: Stopper, uv: str) -> tuple[int, str]:
    """uv pip compile into `work`, given the metadata known for the sdists this cell pinned
    last time (sdist_metadata); resolved again without every entry the new lock does not bear
    out, and without any where uv fails with them. Afterwards the sdists it newly pins are
    learnt for next time."""

    def run(args: list[str]) -> tuple[int, str]:
        return stopper.run([uv, *args], work, UV_TIMEOUT_S)

    key = sdist_metadata.resolution_key(plan.inputs)
    entries = sdist_metadata.offered(key)
    while True:
        (work / LOCK_FILE).unlink(missing_ok=True)  # uv would prefer an earlier try's pins
        args = uv_compile_args(plan, LOCK_FILE)
        if entries:
            toml = sdist_metadata.dependency_metadata_toml(entries.values())
            write_atomic(work / sdist_metadata.CONFIG_FILE, toml)
            args += ["--config-file", sdist_metadata.CONFIG_FILE]
        code, stderr = run(args)
        if not entries:
            break
        pins = sdist_metadata.hashed_pins((work / LOCK_FILE).read_text()) if code == 0 else {}
        kept = {h: e for h, e in entries.items() if sdist_metadata.borne_out(e, h, pins)}
        if kept == entries:
            break
        entries = kept if code == 0 else {}
    if code == 0:
        lock = (work / LOCK_FILE).read_text()
        target, source = _target_args(plan), _source_args(plan)
        sdist_metadata.learn(lock, key, work, run, target=target, source=source)
    return code, stderr


def index_problem(url: str) -> str | None:
    """None when the index answers; otherwise why not, in a few words."""
    return url_problem(url.rstrip("/") + "/torch/", url)


def locker() -> functools.partial[LockResult]:
    """lock_cell with the uv this project depends on, found once per run."""
    return functools.partial(lock_cell, uv=uv_binary())


def lock_cell(
    plan: LockPlan, folder: Path, stopper: Stopper | None = None, *, uv: str
) -> LockResult:
    """Lock one cell into `folder`; every outcome is a result, never an exception, except
    Stopped. The new lock is resolved in a scratch folder and moved in only when uv
    succeeded, so an interruption or a tool failure leaves the previous files byte-identical;
    only a real finding (unresolvable, no index and no previous lock) replaces them."""
    cell = plan.cell
    stopper = stopper or Stopper()
    if not cell.buildable:
        return LockResult(cell.id, Status.NOT_BUILDABLE, cell.unbuildable or "")
    previous = locked_record(folder)
    standing = as_resolved(plan, previous) if previous else plan
    if previous and previous.input_sha256 == standing.input_sha256:
        kept = unchanged(standing, folder, previous)
        if standing is plan:
            return kept
        behind = (
            f"as of {_day(standing.exclude_newer)}, before the matrix's {_day(plan.exclude_newer)}"
        )
        return dataclasses.replace(kept, detail=f"{behind}: `audiomatrix refresh` moves it")
    if plan.index and (problem := index_problem(plan.index)):
        return unreachable(plan, folder, problem, kept=bool(previous))
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".lock-", dir=folder) as scratch:
        work = Path(scratch)
        write_atomic(work / INPUT_FILE, "\n".join(plan.requirements) + "\n")
        try:
            code, stderr = _resolve(plan, work, stopper, uv)
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


def pins(lock: str) -> dict[str, str]:
    """A lock's text as {name: version}: its requirement lines only."""
    return dict(PIN.findall(lock))


def _count_pins(lock: Path) -> int:
    return sum(1 for line in lock.read_text().splitlines() if re.match(r"^[A-Za-z0-9]", line))
