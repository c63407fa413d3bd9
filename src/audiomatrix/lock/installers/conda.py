"""Conda cells: the cell -> environment.yml -> conda-lock.yml, rendered for the cell's platform.

A conda cell takes Python, torch, torchaudio, FFmpeg and libsndfile from its channels
(conda-forge, never `defaults`) and from PyPI only what the channels lack, never torch. Its
environment.yml is generated from the cell, and conda-lock solves it for every platform its
accelerator exists on, each with the virtual packages of its target: __cuda above all, without
which conda-lock assumes an old CUDA and picks the builds for it. The solve needs conda-lock's
solver (micromamba, mamba or conda on PATH) and the channels; where a channel does not answer,
the cell records `channel unreachable` with its environment.yml, as a uv cell does for its
index. A conda-lock.yml made elsewhere (CI) whose content hash is the environment's is current
(conda-lock's own `--check-input-hash` test) and is adopted without a solve.

Beside the lock go the two files an install reads, rendered for the cell's own platform: the
explicit list of conda packages (`conda-lock render --kind explicit` without its pip lines,
which micromamba would hand to pip or drop) and the pip part as hash-pinned direct URLs, which
the environment's own pip installs with --require-hashes --no-deps. conda-lock is imported
only where it is needed: its import alone takes seconds.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from audiomatrix.core.files import sha256_file, sha256_json, write_atomic, write_json
from audiomatrix.lock import stage as lock
from audiomatrix.lock import uvtool
from audiomatrix.lock.installers.steps import ImageSteps, NativeSteps
from audiomatrix.lock.resolved import resolved_cell
from audiomatrix.records.cell import CELL_FILE, SCHEMA, CellRecord
from audiomatrix.spec.cells import Cell
from audiomatrix.spec.declared import cuda_of_variant
from audiomatrix.spec.matrix import Matrix

ENVIRONMENT_FILE = "environment.yml"
VIRTUAL_PACKAGES_FILE = "virtual-packages.yml"
LOCK_FILE = "conda-lock.yml"
CONDA_LOCK_TIMEOUT_S = 1800
SOLVERS = ("micromamba", "mamba", "conda")
"""What conda-lock can solve with, in the order `solver` looks for them."""

IMAGE = ImageSteps(
    dockerfile="docker/conda.Dockerfile",
    install_script="docker/conda-install.sh",
    tool="micromamba",
    tool_arg="MICROMAMBA_IMAGE",
    lock_args=("CONDA_LOCK", "PIP_LOCK"),
)
NATIVE = NativeSteps(environment="conda", own_ffmpeg=True, tox=False)
CUDA_UP_TO = True
"""The lock targets a driver that offers the cell's CUDA (__cuda), so a torch built for that
major up to it serves as well as one built for it exactly."""
LOCKED_IN_CI = True
"""CI locks its cells in their own jobs (GitHub's runners reach the channels, with micromamba
set up to solve and install) and carries each lock back with its results."""

LOCK_PLATFORMS = {"linux": "linux-64", "macos": "osx-arm64", "windows": "win-64"}
"""The platform each OS family's lock targets besides the cell's own (and what uv's platform
aliases `linux`, `macos`, `windows` stand for)."""

_SYSTEMS = (("linux", "linux"), ("darwin", "osx"), ("windows", "win"))

_PIP_MAPPING = {"pip": {"conda_name": "pip", "conda_forge": "pip", "pypi_name": "pip"}}
"""conda-lock looks `pip` up in its PyPI-to-conda name mapping (a download) while it reads an
environment.yml with a pip section; this one entry is all that lookup needs, offline."""

_NETWORK_FAILURE = re.compile(
    r"Could not resolve host|Failed to connect|Connection refused|Connection reset|timed out|"
    r"Timeout was reached|CONNECTION FAILED|CondaHTTPError|Download error|ConnectionError|"
    r"Max retries exceeded|Name or service not known",
    re.IGNORECASE,
)
_NO_SOLUTION = re.compile(
    r"Could not solve|could not be solved|nothing provides|does not exist|cannot be installed|"
    r"unsatisfiable|conflict|PackagesNotFoundError|ResolvePackageNotFound|SolverProblemError|"
    r"No matching distribution|Unable to find",
    re.IGNORECASE,
)


def explicit_file(subdir: str) -> str:
    """The rendered explicit list, named as conda-lock names it."""
    return f"conda-{subdir}.lock"


def pip_file(subdir: str) -> str:
    return f"pip-{subdir}.txt"


def subdir(platform: str) -> str | None:
    """uv's --python-platform target as a conda platform: x86_64-manylinux_2_36 -> linux-64,
    aarch64-apple-darwin -> osx-arm64; None for one conda has no name for."""
    if platform in LOCK_PLATFORMS:
        return LOCK_PLATFORMS[platform]
    arch, _, rest = platform.partition("-")
    system = next((conda for word, conda in _SYSTEMS if word in rest), None)
    if system is None or arch not in ("x86_64", "aarch64"):
        return None
    if arch == "x86_64":
        return f"{system}-64"
    return f"{system}-{'aarch64' if system == 'linux' else 'arm64'}"


def lock_files(platform: str) -> tuple[str, ...]:
    """What an install reads on the cell's platform: the lock's two renders for it."""
    own = subdir(platform) or ""
    return explicit_file(own), pip_file(own)


def install_commands(folder: Path, record: CellRecord, env: Path) -> list[list[str]]:
    """conda-lock's own install of the lock in `folder` into `env` (its pip part too)."""
    return [["conda-lock", "install", "--prefix", str(env), str(folder / str(record.lock))]]


def record_additions(cell: Cell) -> dict[str, Any]:
    """Its channels and specs; FFmpeg comes from the channel on every OS, its major known
    once locked."""
    stack = cell.stack_value
    return {
        "installer": "conda",
        "channels": list(stack.channels),
        "conda": list(stack.conda),
        "ffmpeg": stack.ffmpeg,
        "ffmpeg_major": None,
    }


def cuda(cell: Cell) -> str | None:
    """The CUDA a conda cell's lock targets (its accelerator's, cu128 -> 12.8), or None."""
    acc = cell.accelerator_value
    return cuda_of_variant(acc.variant) if acc.device == "cuda" else None


def lock_platforms(cell: Cell, own: str) -> tuple[str, ...]:
    """The cell's own platform and each OS family's where its accelerator exists (by its facts'
    os_family), so that one lock gives the same environment on every OS."""
    facts = cell.accelerator_value.requires
    admitted = {
        sub
        for family, sub in LOCK_PLATFORMS.items()
        if all(f.os_family is None or family in f.os_family for f in facts)
    }
    return tuple(sorted({own, *admitted}))


def virtual_packages(cell: Cell, platforms: Iterable[str], own: str) -> dict[str, Any]:
    """conda-lock's --virtual-package-spec: what each target offers the solver. __cuda is the
    cell's CUDA on Linux and Windows (a CPU cell offers none, so no CUDA build can be chosen);
    the cell's own Linux platform has its base's glibc, the others conda-lock's default."""
    version = cuda(cell)
    glibc = re.search(r"manylinux_(\d+)_(\d+)", cell.os_value.platform)
    subdirs = {}
    for sub in platforms:
        system, _, arch = sub.partition("-")
        packages = {"__unix": "0"} if system in ("linux", "osx") else {"__win": "0"}
        if system == "linux":
            packages["__linux"] = "5.10"
            packages["__glibc"] = f"{glibc[1]}.{glibc[2]}" if sub == own and glibc else "2.28"
        if system == "osx":
            packages["__osx"] = "11.0"
        packages["__archspec"] = "1 " + {"64": "x86_64"}.get(arch, arch)
        if version and system in ("linux", "win"):
            packages["__cuda"] = version
        subdirs[sub] = {"packages": packages}
    return {"subdirs": subdirs}


def environment(cell: Cell, smoke: Sequence[str], platforms: Sequence[str]) -> dict[str, Any]:
    """The cell's environment.yml as data: its channels then nodefaults, Python, pytorch with
    the build selector of its accelerator (cuda* or cpu*) and, for CUDA, the cuda-version the
    lock targets, torchaudio and TorchCodec as torch pairs them, FFmpeg and libsndfile, the
    stack's and the suite's conda packages; a pip section only for what the channels lack."""
    stack = cell.stack_value
    version = cuda(cell)
    specs = [f"python {cell.python}.*", f"pytorch =={cell.torch} {'cuda*' if version else 'cpu*'}"]
    if version:
        specs.append(f"cuda-version {version}.*")
    specs.append(f"torchaudio =={cell.torch_value.torchaudio}")
    if cell.torchcodec:
        specs.append(f"torchcodec =={cell.torchcodec}")
    if stack.ffmpeg:
        specs.append("ffmpeg")
    specs += ["libsndfile", *stack.conda, *smoke]
    dependencies: list[Any] = list(specs)
    if stack.packages:
        dependencies += ["pip", {"pip": list(stack.packages)}]
    return {
        "name": cell.id,
        "channels": [*stack.channels, "nodefaults"],
        "platforms": list(platforms),
        "dependencies": dependencies,
    }


def _yaml(header: str, data: dict[str, Any]) -> str:
    return header + yaml.safe_dump(data, sort_keys=False, width=1 << 16)


@dataclass(frozen=True)
class CondaPlan:
    """Everything a conda cell's lock depends on: its environment and virtual packages."""

    cell: Cell
    environment: dict[str, Any]
    virtual_packages: dict[str, Any]
    subdir: str | None
    """The cell's own platform (None: conda names none for it)."""

    @property
    def platforms(self) -> list[str]:
        return list(self.environment["platforms"])

    @property
    def inputs(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "installer": "conda",
            "environment": self.environment,
            "virtual_packages": self.virtual_packages,
        }

    @cached_property
    def input_sha256(self) -> str:
        return sha256_json(self.inputs)

    @property
    def cell_data(self) -> dict[str, Any]:
        return resolved_cell(self.cell, record_additions(self.cell))

    @property
    def lock_file(self) -> str:
        return LOCK_FILE

    @property
    def environment_text(self) -> str:
        return _yaml(
            "# generated by `audiomatrix lock` from the matrix: edit the matrix, not this file.\n"
            "# By hand, with micromamba on PATH: conda-lock lock --file environment.yml\n"
            "#   --virtual-package-spec virtual-packages.yml --lockfile conda-lock.yml\n",
            self.environment,
        )

    @property
    def virtual_packages_text(self) -> str:
        return _yaml(
            "# generated by `audiomatrix lock`: the targets conda-lock solves for\n",
            self.virtual_packages,
        )


def plan_for(cell: Cell, matrix: Matrix) -> CondaPlan:
    own = subdir(cell.os_value.platform)
    platforms = lock_platforms(cell, own) if own else ()
    return CondaPlan(
        cell=cell,
        environment=environment(cell, matrix.file.smoke_requirements_conda, platforms),
        virtual_packages=virtual_packages(cell, platforms, own or ""),
        subdir=own,
    )


# --------------------------------------------------------------------------- conda-lock


@contextlib.contextmanager
def lock_spec(plan: CondaPlan) -> Iterator[tuple[Any, Any]]:
    """conda-lock's own reading of the plan, offline: the LockSpecification of its
    environment.yml and the virtual package repository of its virtual packages, as
    `conda-lock lock` builds them from the files."""
    from conda_lock.src_parser import make_lock_spec
    from conda_lock.virtual_package import virtual_package_repo_from_specification

    with tempfile.TemporaryDirectory(prefix="audiomatrix-conda-") as tmp:
        work = Path(tmp)
        _write_inputs(plan, work)
        mapping = work / "pypi-mapping.json"
        write_json(mapping, _PIP_MAPPING)
        spec = make_lock_spec(src_files=[work / ENVIRONMENT_FILE], mapping_url=str(mapping))
        yield spec, virtual_package_repo_from_specification(work / VIRTUAL_PACKAGES_FILE)


def is_current(plan: CondaPlan, lock_path: Path) -> bool:
    """conda-lock's own freshness test (what `--check-input-hash` does): the lock covers the
    plan's platforms and, for each, its content hash is this environment's and these virtual
    packages'. A missing or unreadable lock is not current."""
    if not lock_path.is_file():
        return False
    from conda_lock.content_hash import backwards_compatible_content_hashes
    from conda_lock.lockfile import parse_conda_lock_file

    try:
        lockfile = parse_conda_lock_file(lock_path)
    except (OSError, ValueError, yaml.YAMLError):
        return False
    if sorted(lockfile.metadata.platforms) != sorted(plan.platforms):
        return False
    with lock_spec(plan) as (spec, repo):
        return all(
            lockfile.metadata.content_hash.get(platform)
            in backwards_compatible_content_hashes(spec, repo, platform)
            for platform in plan.platforms
        )


def render(lock_path: Path, platform: str) -> tuple[str, str]:
    """(explicit list, pip part) of a conda-lock.yml for one platform: the explicit file
    `conda-lock render --kind explicit` writes, less its `# pip` lines, and the pip packages as
    `name @ url --hash=sha256:...` lines, sorted (installed with --no-deps, order is moot)."""
    from conda_lock.conda_lock import render_lockfile_for_platform
    from conda_lock.lockfile import parse_conda_lock_file

    lockfile = parse_conda_lock_file(lock_path)
    conda_only = lockfile.model_copy(
        update={"package": [p for p in lockfile.package if p.manager == "conda"]}
    )
    explicit = render_lockfile_for_platform(
        lockfile=conda_only,
        include_dev_dependencies=False,
        extras=None,
        kind="explicit",
        platform=platform,
    )
    pip = [
        f"{p.name} @ {p.source.url if p.source else p.url}"
        + (f" --hash=sha256:{p.hash.sha256}" if p.hash.sha256 else "")
        for p in sorted(lockfile.package, key=lambda p: p.name)
        if p.manager == "pip" and p.platform == platform
    ]
    header = (
        f"# generated by `audiomatrix lock` from {LOCK_FILE}: its PyPI packages for {platform},\n"
        "# for `uv pip install --require-hashes --no-deps` into the conda environment\n"
    )
    return "\n".join(explicit) + "\n", header + "".join(f"{line}\n" for line in pip)


def micromamba() -> str | None:
    """micromamba on PATH, else where its installer says it put it (MAMBA_EXE)."""
    found = shutil.which("micromamba") or os.environ.get("MAMBA_EXE")
    return found if found and Path(found).is_file() else None


def solver() -> str | None:
    """The micromamba, mamba or conda conda-lock solves with (never one it downloads)."""
    return micromamba() or shutil.which("mamba") or shutil.which("conda")


def conda_lock_args(solver_path: str) -> list[str]:
    """`conda-lock lock` in the cell's scratch folder: the generated environment.yml (its
    platforms), the virtual packages, one unified lock file, no timestamps."""
    return [
        sys.executable, "-m", "conda_lock", "lock",
        "--conda", solver_path,
        "--file", ENVIRONMENT_FILE,
        "--virtual-package-spec", VIRTUAL_PACKAGES_FILE,
        "--lockfile", LOCK_FILE,
        "--kind", "lock",
    ]  # fmt: skip


def channel_problem(plan: CondaPlan) -> str | None:
    """Why a channel of the cell does not answer (None when all do): a name resolves by the
    tools' default channel alias (rattler's), a URL is probed as written."""
    from rattler import Channel

    for name in plan.cell.stack_value.channels:
        probe = Channel(name).base_url.rstrip("/") + "/noarch/repodata.json"
        if problem := lock.url_problem(probe, f"channel {name}"):
            return problem
    return None


def _failure_line(stderr: str) -> str:
    """conda-lock's last words (an exception's message comes last), in one line."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return uvtool.one_line("\n".join(lines[-3:]))


def _failed(plan: CondaPlan, folder: Path, code: int, stderr: str, kept: bool) -> lock.LockResult:
    """What a failed conda-lock run means: a silent channel, no solution (both findings), or
    a tool failure that changes nothing (a signal, anything unrecognised)."""
    reason = _failure_line(stderr) or f"conda-lock exited with {code}"
    if code > 0 and _NETWORK_FAILURE.search(stderr):
        status = lock.Status.CHANNEL_UNREACHABLE
        if kept:
            return lock.unreachable(plan, folder, reason, kept=True, status=status)
        return _finding(plan, folder, status, reason)
    if code > 0 and _NO_SOLUTION.search(stderr):
        return _finding(plan, folder, lock.Status.UNRESOLVABLE, reason)
    why = f"signal {-code}" if code < 0 else f"exit code {code}"
    message = f"conda-lock failed ({why}): {reason}; nothing changed"
    return lock.LockResult(plan.cell.id, lock.Status.ERROR, message)


# --------------------------------------------------------------------------- the stage


def _write_inputs(plan: CondaPlan, folder: Path) -> None:
    write_atomic(folder / ENVIRONMENT_FILE, plan.environment_text)
    write_atomic(folder / VIRTUAL_PACKAGES_FILE, plan.virtual_packages_text)


def _finding(plan: CondaPlan, folder: Path, status: lock.Status, reason: str) -> lock.LockResult:
    """The cell, as declared now, has no lock: its inputs stay for the record, its lock and
    the files rendered from it go."""
    _write_inputs(plan, folder)
    if plan.subdir:
        for name in (explicit_file(plan.subdir), pip_file(plan.subdir)):
            (folder / name).unlink(missing_ok=True)
    return lock.write_finding(plan, folder, status, reason)


def _record_lock(plan: CondaPlan, folder: Path, made: Path, how: str) -> lock.LockResult:
    """Move a current lock in with its inputs and renders, the record last."""
    assert plan.subdir is not None
    explicit, pip = render(made, plan.subdir)
    data = made.read_bytes()
    _write_inputs(plan, folder)
    write_atomic(folder / LOCK_FILE, data)
    write_atomic(folder / explicit_file(plan.subdir), explicit)
    write_atomic(folder / pip_file(plan.subdir), pip)
    record = lock.new_record(plan, lock.Status.LOCKED, None, sha256_file(folder / LOCK_FILE))
    write_json(folder / CELL_FILE, record)
    conda_count = sum(1 for line in explicit.splitlines() if "://" in line)
    pip_count = sum(1 for line in pip.splitlines() if not line.startswith("#"))
    return lock.LockResult(
        plan.cell.id,
        lock.Status.LOCKED,
        f"{how}: {conda_count} conda and {pip_count} pip packages for {plan.subdir}",
    )


def lock_cell(plan: CondaPlan, folder: Path, stopper: lock.Stopper) -> lock.LockResult:
    """Lock one conda cell into `folder`, with the uv cells' rules: every outcome is a result
    (Stopped aside); the lock is made in a scratch folder and moved in only when conda-lock
    succeeded with a current lock, so an interruption or a tool failure changes nothing; a
    finding (unresolvable, or a silent channel and no previous lock) replaces the lock."""
    cell = plan.cell
    if not cell.buildable:
        return lock.LockResult(cell.id, lock.Status.NOT_BUILDABLE, cell.unbuildable or "")
    if plan.subdir is None:
        reason = f"conda has no platform for {cell.os_value.platform}"
        return _finding(plan, folder, lock.Status.UNRESOLVABLE, reason)
    previous = lock.locked_record(folder)
    current = is_current(plan, folder / LOCK_FILE)
    if current and previous and previous.input_sha256 == plan.input_sha256:
        return lock.unchanged(plan, folder, previous)
    if current:
        return _record_lock(plan, folder, folder / LOCK_FILE, "adopted, current by content hash")
    if problem := channel_problem(plan):
        if previous:
            status = lock.Status.CHANNEL_UNREACHABLE
            return lock.unreachable(plan, folder, problem, kept=True, status=status)
        return _finding(plan, folder, lock.Status.CHANNEL_UNREACHABLE, problem)
    found = solver()
    if found is None:
        reason = f"no {', '.join(SOLVERS)} on PATH for conda-lock to solve with; nothing changed"
        return lock.LockResult(cell.id, lock.Status.ERROR, reason)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".lock-", dir=folder) as scratch:
        work = Path(scratch)
        _write_inputs(plan, work)
        try:
            code, stderr = stopper.run(conda_lock_args(found), work, CONDA_LOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            reason = f"conda-lock took over {CONDA_LOCK_TIMEOUT_S} s; nothing changed"
            return lock.LockResult(cell.id, lock.Status.ERROR, reason)
        if code != 0:
            return _failed(plan, folder, code, stderr, kept=bool(previous))
        if not is_current(plan, work / LOCK_FILE):
            reason = "conda-lock wrote a lock whose content hash is not this environment's"
            return lock.LockResult(cell.id, lock.Status.ERROR, f"{reason}; nothing changed")
        return _record_lock(plan, folder, work / LOCK_FILE, "locked")


def locker() -> Callable[[CondaPlan, Path, lock.Stopper], lock.LockResult]:
    """lock_cell as it is: conda-lock and its solver are found per cell."""
    return lock_cell
