"""environments/<cell>/ -> results/<cell>/<run>.json: run the smoke suite for a cell.

The suite itself (tests/smoke/, with its runner run.py) runs inside the cell's environment;
this module prepares that environment, starts the runner, and turns what it wrote into a
RunResult: failures classified against the signature catalog, logs kept beside the result.
Natively, the environment is a venv made by uv from the cell's lock; uv's cache makes each
torch wheel a single download per machine, and its hard links a single copy on disk.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from audiomatrix import lock, results, signatures
from audiomatrix.files import cache_dir

MODES = ("raw", "compat")
LOCK_MARKER = ".audiomatrix-lock-sha256"


class SmokeError(Exception):
    """A cell that cannot be smoke-tested here, with the one line that says why."""


@dataclass(frozen=True)
class CellLock:
    """What the lock stage recorded for a cell: the only input this stage reads."""

    cell: str
    folder: Path
    record: Mapping[str, Any]

    @property
    def requirements(self) -> Path:
        return self.folder / lock.LOCK_FILE

    @property
    def python(self) -> str:
        return str(self.record["cell"]["python"])

    @property
    def index(self) -> str | None:
        return self.record["inputs"]["index"]

    @property
    def lock_sha256(self) -> str:
        return str(self.record["lock_sha256"])


def read_lock(environments: Path, cell: str) -> CellLock:
    folder = environments / cell
    record = lock.read_record(folder)
    if record is None:
        raise SmokeError(f"{cell}: no {folder / lock.CELL_FILE}: run `audiomatrix lock` first")
    if record.get("status") != lock.Status.LOCKED or not (folder / lock.LOCK_FILE).is_file():
        reason = record.get("reason") or "no lock file"
        raise SmokeError(f"{cell}: not locked ({record.get('status')}: {reason})")
    return CellLock(cell, folder, record)


def classify_check(raw: Mapping[str, Any], log: str | None) -> results.CheckResult:
    """One check as the runner reported it, with a signature when it failed."""
    status = raw["status"]
    signature = None
    if status in results.FAILED:
        text = "\n".join(t for t in (raw.get("first_error"), raw.get("error_text")) if t)
        signature = signatures.classify(text)
    return results.CheckResult(
        check=raw["check"],
        status=status,
        duration_s=raw["duration_s"],
        signature=signature,
        first_error=raw.get("first_error"),
        log=log,
    )


def assemble(
    cell: CellLock,
    run: str,
    environment: Mapping[str, Any],
    modes: Mapping[str, Mapping[str, Any]],
    where: Mapping[str, Any],
    logs: Callable[[str, Mapping[str, Any]], str | None],
) -> results.RunResult:
    """The RunResult for what the runner wrote (pure, given where the logs went)."""
    host = environment["host"]
    started = min(m["started"] for m in modes.values())
    finished = max(m["finished"] for m in modes.values())
    return results.RunResult(
        cell=cell.cell,
        run=run,
        started=datetime.fromtimestamp(started, UTC),
        finished=datetime.fromtimestamp(finished, UTC),
        where=results.Where(
            **where,
            os=host["os"],
            machine=host["machine"],
            cpu=host["cpu"],
            gpu=host.get("gpu"),
            compute_capability=host.get("compute_capability"),
            driver=host.get("driver"),
            cuda=host.get("cuda"),
        ),
        lock_sha256=cell.lock_sha256,
        versions=environment["versions"],
        modes={
            mode: [classify_check(c, logs(mode, c)) for c in data["checks"]]
            for mode, data in modes.items()
        },
    )


def collect(
    cell: CellLock, out: Path, results_root: Path, where: Mapping[str, Any], started: datetime
) -> results.RunResult:
    """Read the runner's files from `out`, keep the logs, write the result atomically."""
    run = results.run_id(started)
    environment = json.loads((out / "environment.json").read_text())
    modes = {
        m: json.loads((out / f"{m}.json").read_text())
        for m in MODES
        if (out / f"{m}.json").exists()
    }
    if not modes:
        raise SmokeError(f"{cell.cell}: the smoke runner wrote no results (see its output above)")
    log_root = results_root / cell.cell / "logs" / run

    def keep_log(mode: str, check: Mapping[str, Any]) -> str | None:
        source = out / str(check.get("log", ""))
        if not check.get("log") or not source.is_file():
            return None
        target = log_root / mode / f"{check['check']}.log"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return str(target.relative_to(results_root / cell.cell))

    result = assemble(cell, run, environment, modes, where, keep_log)
    results.write(results_root, result)
    return result


def venv_root() -> Path:
    """Native venvs live in the machine's cache, keyed by cell and checked against the lock's
    hash, so every checkout on a machine (CI's fresh clones too) reuses them."""
    return cache_dir() / "venvs"


@functools.cache
def runner(suite: Path) -> ModuleType:
    """The suite's own runner (run.py, standard library only) as a module, so that the host
    asks it which checks exist and what the CPU is called instead of keeping twins."""
    spec = importlib.util.spec_from_file_location("audiomatrix_smoke_runner", suite / "run.py")
    if spec is None or spec.loader is None:
        raise SmokeError(f"no smoke runner at {suite / 'run.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def uv_environment() -> dict[str, str]:
    """uv for venvs: this machine's index settings dropped, never a Python download."""
    return {**lock.clean_environment(os.environ), "UV_PYTHON_DOWNLOADS": "never"}


def install_steps(
    cell: CellLock, venv: Path, python: str, uv: str, relative: bool = False
) -> list[list[str]]:
    """uv venv + uv pip sync of the cell's lock with its hashes: what `smoke --native` runs,
    and what `audiomatrix pull` prints (`relative`: the lock as environments/<cell>/...)."""
    requirements = (
        Path("environments", cell.cell, cell.requirements.name) if relative else cell.requirements
    )
    return [
        [uv, "venv", "--quiet", "--clear", "--python", python, str(venv)],
        [
            uv, "pip", "sync", "--quiet", "--require-hashes", "--python", str(venv),
            *(["--extra-index-url", cell.index] if cell.index else []),
            str(requirements),
        ],
    ]  # fmt: skip


def ensure_venv(cell: CellLock, venv: Path, python: str | None) -> Path:
    """A venv holding exactly the cell's lock; rebuilt only when the lock changed."""
    interpreter = venv / "bin" / "python"
    marker = venv / LOCK_MARKER
    if interpreter.exists() and marker.exists() and marker.read_text() == cell.lock_sha256:
        return interpreter
    for step in install_steps(cell, venv, python or cell.python, uv=lock.uv_binary()):
        proc = subprocess.run(step, capture_output=True, text=True, env=uv_environment())
        if proc.returncode != 0:
            raise SmokeError(
                f"{cell.cell}: {' '.join(step[1:3])} failed: {lock.one_line(proc.stderr)}"
            )
    marker.write_text(cell.lock_sha256)
    return interpreter


def run_suite(
    python: Path,
    suite: Path,
    out: Path,
    modes: Iterable[str],
    checks: Iterable[str],
    env: Mapping[str, str],
    echo: Callable[[str], None],
) -> int:
    """Start the runner with the cell's Python and pass its progress lines on."""
    command = [str(python), str(suite / "run.py"), "--out", str(out)]
    command += [arg for m in modes for arg in ("--mode", m)]
    command += [arg for c in checks for arg in ("--check", c)]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(env)
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            echo(line.rstrip())
    return proc.returncode


def compat_path() -> str:
    """The folder that holds audiomatrix.compat, put on the suite's PYTHONPATH (the package's
    __init__ imports nothing, so only torch and soundfile are needed there)."""
    return str(Path(__file__).resolve().parent.parent)


def suite_environment() -> dict[str, str]:
    """The suite's environment: compat importable, every hub offline, no index settings."""
    return {
        **lock.clean_environment(os.environ),
        "PYTHONPATH": compat_path(),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "COQUI_TOS_AGREED": "1",
    }


def smoke_native(
    cell: CellLock,
    suite: Path,
    results_root: Path,
    venvs: Path,
    *,
    python: str | None = None,
    modes: Iterable[str] = MODES,
    checks: Iterable[str] = (),
    echo: Callable[[str], None] = print,
) -> results.RunResult:
    """Run the suite in a venv made from the cell's lock and write its result."""
    interpreter = ensure_venv(cell, venvs / cell.cell, python)
    env = suite_environment()
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix=f"smoke-{cell.cell}-") as tmp:
        out = Path(tmp)
        code = run_suite(interpreter, suite, out, modes, checks, env, echo)
        if code != 0 and not (out / "environment.json").exists():
            raise SmokeError(f"{cell.cell}: the smoke runner failed with exit code {code}")
        return collect(cell, out, results_root, {"kind": "native"}, started)
