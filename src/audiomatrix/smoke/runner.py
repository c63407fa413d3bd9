"""environments/<cell>/ -> results/<cell>/<run>.json: run the smoke suite for a cell.

The suite (audiomatrix.suite, run by `python -m audiomatrix.suite.run`) runs inside the cell's
environment; this module prepares that environment, starts the runner, and turns what it wrote
into a RunResult, logs kept beside it. Natively, the environment is a venv made by uv from the
cell's lock plus the system libraries the cell declares; uv's cache makes each torch wheel a
single download per machine, and its hard links a single copy on disk. A conda cell's is a
conda environment: rattler links the lock's conda packages for this platform (no conda binary
needed), then the environment's own pip installs the lock's pip part with its hashes. A native
run whose measured environment is not the declared one records nothing.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from audiomatrix.core.errors import CellError
from audiomatrix.core.files import cache_dir, current_umask, describe_error
from audiomatrix.image import debs, interpreters
from audiomatrix.lock import uvtool
from audiomatrix.lock.cell_lock import CellLock
from audiomatrix.lock.installers import conda, installer, uv
from audiomatrix.records.run import RunResult, Where
from audiomatrix.smoke import evidence, results
from audiomatrix.suite import schema
from audiomatrix.suite.split import label

LOCK_MARKER = ".audiomatrix-lock-sha256"


def read_runner_output(out: Path) -> tuple[schema.Environment, dict[str, schema.ModeRecord]]:
    """The runner's files, validated against the suite's own schema."""
    try:
        environment = _ENVIRONMENT.validate_json((out / "environment.json").read_bytes())
        modes = {
            m: _MODE.validate_json((out / f"{m}.json").read_bytes())
            for m in schema.MODES
            if (out / f"{m}.json").exists()
        }
    except (OSError, ValueError) as exc:
        raise CellError(f"the smoke runner's output is unusable: {describe_error(exc)}") from None
    return environment, modes


def read_remedy_split(out: Path) -> schema.RemedySplit | None:
    """The runner's remedies.json (the runs that prove each check's minimal remedy set), or
    None where it split nothing."""
    path = out / "remedies.json"
    if not path.exists():
        return None
    try:
        return _SPLIT.validate_json(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CellError(f"the smoke runner's output is unusable: {describe_error(exc)}") from None


_ENVIRONMENT = TypeAdapter(schema.Environment)
_MODE = TypeAdapter(schema.ModeRecord)
_SPLIT = TypeAdapter(schema.RemedySplit)


def _subset_folder(check: schema.SubsetOutcome) -> str:
    """Where a check's run with a subset of the remedies keeps its log, below the run's."""
    return f"remedies/{label(tuple(check.remedies))}"


def assemble(
    cell: CellLock,
    run: str,
    environment: schema.Environment,
    modes: Mapping[str, schema.ModeRecord],
    where: Mapping[str, Any],
    logs: Callable[[str, schema.CheckOutcome | schema.SubsetOutcome], str | None],
    split: schema.RemedySplit | None = None,
) -> RunResult:
    """The RunResult for what the runner wrote (pure, given where the logs went)."""
    if split is not None:
        kept = [replace(c, log=logs(_subset_folder(c), c)) for c in split.checks]
        split = replace(split, checks=kept)
    return RunResult(
        cell=cell.cell,
        run=run,
        started=datetime.fromtimestamp(min(m.started for m in modes.values()), UTC),
        finished=datetime.fromtimestamp(max(m.finished for m in modes.values()), UTC),
        where=Where(**where),
        lock_sha256=cell.lock_sha256,
        environment=environment,
        modes={
            mode: [replace(c, log=logs(mode, c)) for c in record.checks]
            for mode, record in modes.items()
        },
        remedy_split=split,
    )


def collect(
    cell: CellLock, out: Path, results_root: Path, where: Mapping[str, Any], started: datetime
) -> RunResult:
    """Read the runner's files from `out`, keep the logs, write the result atomically. The
    logs are gathered in a scratch folder and moved in with the result: an interruption or a
    full disk on the way leaves neither, so what is recorded is always a whole run."""
    run = results.run_id(started)
    environment, modes = read_runner_output(out)
    split = read_remedy_split(out)
    if not modes:
        raise CellError(f"{cell.cell}: the smoke runner wrote no results (see its output above)")
    logs = results_root / cell.cell / "logs"
    try:
        logs.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{run}-", dir=logs) as scratch:

            def keep_log(
                mode: str, check: schema.CheckOutcome | schema.SubsetOutcome
            ) -> str | None:
                source = out / str(check.log or "")
                if not check.log or not source.is_file():
                    return None
                Path(scratch, mode).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, Path(scratch, mode, f"{check.check}.log"))
                return f"logs/{run}/{mode}/{check.check}.log"

            result = assemble(cell, run, environment, modes, where, keep_log, split)
            _record_with_logs(results_root, result, Path(scratch), logs / run)
    except OSError as exc:
        raise CellError(
            f"{results_root / cell.cell}: cannot record the run: {exc.strerror}; nothing "
            "recorded: free space (or make it writable) and rerun"
        ) from None
    return result


def _record_with_logs(results_root: Path, result: RunResult, scratch: Path, logs: Path) -> None:
    """Move the logs in, then write the result; the logs go again unless the result is
    there, so a run is recorded with its logs or not at all (the scratch folder's cleanup
    finds it moved, and lets it be)."""
    recorded = results.path_for(results_root, result.cell, result.run)
    try:
        scratch.chmod(0o777 & ~current_umask())
        scratch.rename(logs)
        results.write(results_root, result)
    except BaseException:
        if not recorded.exists():
            shutil.rmtree(logs, ignore_errors=True)
        raise


def venv_root() -> Path:
    """Native venvs live in the machine's cache, keyed by cell and checked against the lock's
    hash, so every checkout on a machine (CI's fresh clones too) reuses them."""
    return cache_dir() / "venvs"


def uv_environment() -> dict[str, str]:
    """uv for venvs: this machine's index settings dropped, never a Python download."""
    return {**uvtool.clean_environment(os.environ), "UV_PYTHON_DOWNLOADS": "never"}


def interpreter_for(cell: CellLock) -> str:
    """This machine's CPython of the cell's version (found where pyenv keeps its builds too,
    whose shims uv cannot use), else the version for uv to find."""
    found = interpreters.find(cell.python)
    return str(found.executable) if found else cell.python


def ensure_venv(cell: CellLock, venv: Path) -> Path:
    """A venv holding exactly the cell's lock; rebuilt only when the lock changed."""
    interpreter = venv / "bin" / "python"
    marker = venv / LOCK_MARKER
    if interpreter.exists() and marker.exists() and marker.read_text() == cell.lock_sha256:
        return interpreter
    steps = uv.venv_commands(
        cell.requirements, venv, interpreter_for(cell), cell.index, uv=uvtool.uv_binary()
    )
    run_uv(steps, cell.cell)
    marker.write_text(cell.lock_sha256)
    return interpreter


def run_uv(steps: Iterable[list[str]], what: str) -> None:
    """uv's venv steps in order; CellError naming `what` and the step that failed."""
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True, env=uv_environment())
        if proc.returncode != 0:
            raise CellError(f"{what}: {' '.join(step[1:3])} failed: {uvtool.one_line(proc.stderr)}")


def conda_interpreter(prefix: Path, platform: str) -> Path:
    """The Python of a conda environment on its platform."""
    return prefix / "python.exe" if platform.startswith("win-") else prefix / "bin" / "python"


def conda_records(lock_path: Path, platform: str) -> list[Any]:
    """The lock's conda packages for one platform as rattler's records (rattler reads
    conda-lock.yml itself): what an install links, with their URLs and hashes."""
    from rattler import LockFile

    env = LockFile.from_path(lock_path).default_environment()
    owned = [p for p in env.platforms() if p.name == platform] if env else []
    found = env.conda_repodata_records_for_platform(owned[0]) if env and owned else None
    if not found:
        raise ValueError(f"{lock_path} holds no conda packages for {platform}")
    return list(found)


def ensure_conda_environment(cell: CellLock, prefix: Path) -> Path:
    """A conda environment holding exactly the cell's lock for its platform, rebuilt only
    when the lock changed: rattler links the conda part (its records read from conda-lock.yml,
    downloads checked against their hashes), the environment's pip the pip part."""
    import rattler

    python = conda_interpreter(prefix, cell.subdir)
    marker = prefix / LOCK_MARKER
    if python.exists() and marker.exists() and marker.read_text() == cell.lock_sha256:
        return python
    shutil.rmtree(prefix, ignore_errors=True)
    try:
        records = conda_records(cell.folder / conda.LOCK_FILE, cell.subdir)
        asyncio.run(rattler.install(records, prefix, show_progress=False))
    except Exception as exc:  # rattler raises its own exception types, all of them Exception
        raise CellError(f"{cell.cell}: installing the conda packages failed: {exc}") from None
    _, pip_part = cell.lock_files
    if any(line and not line.startswith("#") for line in pip_part.read_text().splitlines()):
        step = [str(python), "-m", "pip", "install", "--quiet", "--no-cache-dir",
                "--require-hashes", "--no-deps", "-r", str(pip_part)]  # fmt: skip
        proc = subprocess.run(step, capture_output=True, text=True, env=uv_environment())
        if proc.returncode != 0:
            raise CellError(f"{cell.cell}: pip install failed: {uvtool.one_line(proc.stderr)}")
    marker.write_text(cell.lock_sha256)
    return python


ENVIRONMENTS: dict[str, Callable[[CellLock, Path], Path]] = {
    "venv": ensure_venv,
    "conda": ensure_conda_environment,
}
"""What makes each kind of native environment an installer declares (NativeSteps)."""


def runner_args(
    out: str, modes: Iterable[str], checks: Iterable[str], suites: Iterable[str] = ()
) -> list[str]:
    """The suite runner's command line after the interpreter, in a venv or an image."""
    args = ["-m", "audiomatrix.suite.run", "--out", out]
    args += [arg for m in modes for arg in ("--mode", m)]
    args += [arg for c in checks for arg in ("--check", c)]
    return args + [arg for s in suites for arg in ("--suite", s)]


def run_suite(
    python: Path,
    out: Path,
    modes: Iterable[str],
    checks: Iterable[str],
    env: Mapping[str, str],
    echo: Callable[[str], None],
    suites: Iterable[Path] = (),
) -> int:
    """Start the suite's runner with the cell's Python and pass its progress lines on. An
    interruption stops the runner (it stops its checks) before it propagates."""
    command = [str(python), *runner_args(str(out), modes, checks, map(str, suites))]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(env)
    ) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                echo(line.rstrip())
        except BaseException:
            proc.terminate()
            raise
    return proc.returncode


def package_path() -> str:
    """The folder that holds the audiomatrix package, put on the suite's PYTHONPATH: the
    suite and compat import nothing else of it, so the cell needs none of its dependencies."""
    return str(Path(__file__).resolve().parents[2])


def suite_environment(libraries: Iterable[Path] = ()) -> dict[str, str]:
    """The suite's environment: the suite and compat importable, every hub offline, no index
    settings, and the system libraries provided for the cell (FFmpeg) first on the path."""
    env = {
        **uvtool.clean_environment(os.environ),
        "PYTHONPATH": package_path(),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "COQUI_TOS_AGREED": "1",
    }
    paths = [str(p) for p in libraries]
    if paths:
        env["LD_LIBRARY_PATH"] = os.pathsep.join([*paths, env.get("LD_LIBRARY_PATH", "")])
    return env


def measure(python: Path, env: Mapping[str, str]) -> schema.Environment:
    """The environment as the suite will see it, before anything runs in it."""
    proc = subprocess.run(
        [str(python), "-m", "audiomatrix.suite.probe"],
        capture_output=True, text=True, env=dict(env), timeout=600,
    )  # fmt: skip
    try:
        return _ENVIRONMENT.validate_json(proc.stdout)
    except ValueError:
        raise CellError(f"the environment probe failed: {uvtool.one_line(proc.stderr)}") from None


def refuse_other_environment(cell: CellLock, measured: schema.Environment) -> None:
    """Record nothing for a cell whose declared environment this machine does not give."""
    found = evidence.differences(
        evidence.declaration(cell.record), measured.facts, measured.host, cell.lock_sha256
    )
    if found:
        raise CellError(
            f"{cell.cell}: this machine cannot give the environment the cell declares "
            f"({'; '.join(found)}): nothing recorded; run it in its image instead"
        )


def smoke_native(
    cell: CellLock,
    results_root: Path,
    venvs: Path,
    *,
    modes: Iterable[str] = schema.MODES,
    checks: Iterable[str] = (),
    suites: Iterable[Path] = (),
    echo: Callable[[str], None] = print,
) -> RunResult:
    """Run the suite (and the checks of the `suites` folders) in a venv made from the cell's
    lock (a conda cell: an environment from its conda lock), with the system libraries the cell
    declares, and write its result; CellError when this machine cannot give the cell's
    declared environment (the result would not stand for the cell)."""
    make = ENVIRONMENTS[installer(cell.installer).NATIVE.environment]
    interpreter = make(cell, venvs / cell.cell)
    env = suite_environment(native_libraries(cell, echo))
    refuse_other_environment(cell, measure(interpreter, env))
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix=f"smoke-{cell.cell}-") as tmp:
        out = Path(tmp)
        code = run_suite(interpreter, out, modes, checks, env, echo, suites)
        if code != 0 and not (out / "environment.json").exists():
            raise CellError(f"{cell.cell}: the smoke runner failed with exit code {code}")
        return collect(cell, out, results_root, {"kind": "native"}, started)


def native_libraries(cell: CellLock, echo: Callable[[str], None]) -> list[Path]:
    """The library folders that give a native run the FFmpeg its cell declares: Debian's
    packages for the host's own distribution, unpacked into the machine cache; none where
    the cell's environment brings its own (a conda cell's, from its channel)."""
    packages = cell.record.cell.ffmpeg_packages
    if not packages or installer(cell.installer).NATIVE.own_ffmpeg:
        return []
    try:
        return debs.unpacked(packages, echo=echo)
    except debs.DebError as exc:
        raise CellError(f"{cell.cell}: cannot provide FFmpeg natively: {exc}") from None
