"""The suite run in a person's own interpreter, raw and with compat, as in a cell, without
changing their environment: the runner of `smoke --native` (smoke/runner.py) with the
audiomatrix package on PYTHONPATH, bytecode written to the machine cache instead of beside
their modules, the suite's own harness (pytest, pytest-timeout) put beside the environment
where it lacks them, and the outputs in the machine cache (the last check of each interpreter,
kept for reading its logs). A throwaway venv (uv, from requirements or a lock) or conda
environment (the solver conda cells use) is checked the same way and removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from audiomatrix.check.errors import CheckError, CheckInputError
from audiomatrix.core.errors import CellError
from audiomatrix.core.files import cache_dir
from audiomatrix.image import interpreters
from audiomatrix.lock import uvtool
from audiomatrix.lock.installers import conda, uv
from audiomatrix.smoke import runner
from audiomatrix.suite import schema

HARNESS = ("pytest", "pytest-timeout", "numpy", "soundfile", "einops", "tokenizers")
"""What the suite needs beside a stack (matrix.yaml's smoke_requirements, which a cell's lock
adds to its stack): its runner, and what its checks build their tiny models and files with."""
SOLVER_TIMEOUT_S = 1800


@dataclass(frozen=True)
class EnvironmentRun:
    """What the suite measured and ran in one interpreter; `broken` says why it could not."""

    python: Path
    out: Path
    environment: schema.Environment | None = None
    modes: dict[str, schema.ModeRecord] | None = None
    split: schema.RemedySplit | None = None
    broken: str | None = None


def interpreter(path: Path) -> Path:
    """The interpreter at `path`, or a venv's (or conda environment's) when it is a folder."""
    if path.is_dir():
        inside = [path / "bin" / "python", path / "Scripts" / "python.exe", path / "python.exe"]
        found = next((p for p in inside if p.is_file()), None)
        if found is None:
            raise CheckInputError(f"{path}: no bin/python in it: give the interpreter itself")
        return found
    if not path.is_file():
        raise CheckInputError(f"{path}: no such interpreter")
    return path


def check_folder(key: str) -> Path:
    """Where the last check of one interpreter (or input file) keeps its outputs and logs."""
    return cache_dir() / "check" / hashlib.sha256(key.encode()).hexdigest()[:16]


def check_environment() -> dict[str, str]:
    """The suite's environment (runner.suite_environment) writing its bytecode to the cache,
    Python's and numba's (librosa's cached jits otherwise write beside their sources)."""
    folder = cache_dir() / "check"
    return {
        **runner.suite_environment(),
        "PYTHONPYCACHEPREFIX": str(folder / "pycache"),
        "NUMBA_CACHE_DIR": str(folder / "numba"),
    }


def harness(python: Path, measured: schema.Environment) -> Path | None:
    """A folder with what the environment lacks of the suite's needs (HARNESS), for its
    PYTHONPATH, or None where it lacks nothing. uv installs them there (`--target`) with every
    distribution of the environment as a constraint, so what they depend on is the version
    the environment has; made once per Python and environment, in the cache."""
    installed = measured.facts.installed
    missing = [name for name in HARNESS if name not in installed]
    if not missing:
        return None
    constraints = "".join(f"{name}=={version}\n" for name, version in installed.items())
    key = hashlib.sha256(f"{python.absolute()}\n{missing}\n{constraints}".encode()).hexdigest()
    folder = cache_dir() / "check" / f"harness-py{measured.facts.python}-{key[:12]}"
    if (folder / ".complete").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / ".constraints.txt").write_text(constraints)
    step = [uvtool.uv_binary(), "pip", "install", "--quiet", "--no-config", "--target",
            str(folder), "--python", str(python), "--constraint",
            str(folder / ".constraints.txt"), *missing]  # fmt: skip
    try:
        runner.run_uv([step], f"the suite's needs ({', '.join(missing)}) beside the environment")
    except CellError as exc:
        raise CheckError(str(exc)) from None
    (folder / ".complete").touch()
    return folder


def measure(python: Path, env: dict[str, str] | None = None) -> schema.Environment:
    """The suite's environment probe in `python` (runner.measure); CellError where it fails."""
    try:
        return runner.measure(python, env or check_environment())
    except OSError as exc:
        raise CheckInputError(f"{python}: cannot run it: {exc.strerror or exc}") from None


def run_checks(
    python: Path, checks: Iterable[str], echo: Callable[[str], None], key: str | None = None
) -> EnvironmentRun:
    """The environment probe, then the suite raw and with compat (and the remedy split) in
    `python`, its outputs in the folder of `key` (default: the interpreter's path); a probe
    or runner that fails is the run's `broken`, not an exception."""
    python = interpreter(python)
    out = check_folder(key or str(python.absolute()))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = check_environment()
    try:
        measured = measure(python, env)
    except CellError as exc:
        return EnvironmentRun(python, out, broken=str(exc))
    tools = harness(python, measured)
    if tools is not None:
        env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(tools)])
    code = runner.run_suite(python, out, schema.MODES, checks, env, echo)
    try:
        environment, modes = runner.read_runner_output(out)
        split = runner.read_remedy_split(out)
    except CellError as exc:
        return EnvironmentRun(python, out, measured, broken=f"{exc} (runner exit code {code})")
    return EnvironmentRun(python, out, environment, modes, split)


@contextlib.contextmanager
def throwaway_venv(lock_text: str, python_version: str) -> Iterator[Path]:
    """A venv holding exactly `lock_text` (hash-pinned, as a cell's lock is), made with the
    commands `smoke --native` makes a cell's with, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="audiomatrix-check-venv-") as scratch:
        lock = Path(scratch) / uv.LOCK_FILE
        lock.write_text(lock_text)
        found = interpreters.find(python_version)
        python = str(found.executable) if found else python_version
        venv = Path(scratch) / "venv"
        steps = uv.venv_commands(lock, venv, python, None, uv=uvtool.uv_binary())
        try:
            runner.run_uv(steps, "the throwaway venv")
        except CellError as exc:
            raise CheckError(str(exc)) from None
        yield venv / "bin" / "python"


def solver_command(solver: str, prefix: Path, file: Path) -> list[str]:
    """conda reads an environment.yml with `conda env create`; micromamba and mamba with
    `create`."""
    create = ["env", "create"] if Path(solver).stem == "conda" else ["create", "--yes"]
    return [solver, *create, "--quiet", "--prefix", str(prefix), "--file", str(file)]


@contextlib.contextmanager
def throwaway_conda(file: Path) -> Iterator[Path]:
    """A conda environment made from `file` by the solver conda cells lock with, removed
    afterwards; one line naming what is missing where there is none."""
    solver = conda.solver()
    if solver is None:
        raise CheckError(
            f"{file}: making its environment needs a conda solver ({', '.join(conda.SOLVERS)}) "
            "on PATH, and none is; `--versions-only` reads its pins without one"
        )
    with tempfile.TemporaryDirectory(prefix="audiomatrix-check-conda-") as scratch:
        prefix = Path(scratch) / "env"
        proc = subprocess.run(
            solver_command(solver, prefix, file.resolve()),
            capture_output=True, text=True, timeout=SOLVER_TIMEOUT_S,
        )  # fmt: skip
        if proc.returncode != 0:
            why = uvtool.one_line(proc.stderr or proc.stdout)
            raise CheckError(f"{file}: {Path(solver).name} cannot make it: {why}")
        yield runner.conda_interpreter(prefix, "win-64" if sys.platform == "win32" else "")
