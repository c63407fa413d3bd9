"""Run the smoke suite inside a cell's environment: each check in its own process.

Standard library only, because it runs with whatever Python the cell has (an image or a
native venv). A check that outlives its timeout is a `hang`, one killed by a signal a
`crash` (the kernel's OOM killer named as such); either way the other checks still run.
Writes <out>/environment.json once, <out>/<mode>.json per mode and each check's full output
to <out>/logs/<mode>/<check>.log. Stopped by SIGTERM or SIGINT, it stops its checks too.

    python -m audiomatrix.suite.run --out DIR [--mode raw] [--check xtts] [--suite DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from audiomatrix.suite import probe, schema

TIMEOUT_BANNER = "+++++ Timeout +++++"
CGROUP = Path("/sys/fs/cgroup")


def checks(names: list[str], extra: list[Path]) -> list[tuple[str, Path]]:
    """(check, test file) for the suite's checks, then every `test_<name>` function of the
    extra folders' test files; only the named ones when names are given."""
    found = [(c.name, probe.SUITE_DIR / f"{c.module}.py") for c in schema.CHECKS]
    for folder in extra:
        for path in sorted(folder.glob("test_*.py")):
            for match in re.finditer(r"^def test_(\w+)\(", path.read_text(), re.MULTILINE):
                found.append((match.group(1), path))
    return [(name, path) for name, path in found if not names or name in names]


def _machine_paths() -> list[tuple[str, str]]:
    """Absolute paths of this machine that tracebacks mention, longest first, with the
    placeholders results use instead: results are shared and committed."""
    pairs = [
        (str(Path(sys.prefix).resolve()), "<venv>"),
        (sys.prefix, "<venv>"),
        (str(probe.SUITE_DIR.parents[1]), "<src>"),
        (tempfile.gettempdir(), "<tmp>"),
        (str(Path.home()), "<home>"),
    ]
    return sorted({p for p in pairs if len(p[0]) > 1}, key=lambda p: -len(p[0]))


def scrub(text: str) -> str:
    for path, placeholder in _machine_paths():
        text = text.replace(path, placeholder)
    return text


def oom_kills() -> int | None:
    """The OOM killer's count for this container's memory cgroup (v2, else v1), if any."""
    for path in (CGROUP / "memory.events", CGROUP / "memory" / "memory.oom_control"):
        try:
            found = re.search(r"^oom_kill (\d+)$", path.read_text(), re.MULTILINE)
        except OSError:
            continue
        if found:
            return int(found.group(1))
    return None


def memory_limit() -> str:
    """This container's memory limit in bytes (cgroup v2, else v1), as the cgroup says it."""
    for path in (CGROUP / "memory.max", CGROUP / "memory" / "memory.limit_in_bytes"):
        try:
            return path.read_text().strip()
        except OSError:
            continue
    return "unknown"


def classify_exit(returncode: int | None, output: str, oom: bool) -> tuple[str, str]:
    """A check's status from how its process ended, when the process could not say."""
    if returncode is None or TIMEOUT_BANNER in output:
        return "hang", "the check did not finish within its timeout"
    if oom:
        return "crash", f"killed by the kernel's OOM killer (memory limit {memory_limit()} bytes)"
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else ""
        return "crash", f"killed by signal {-returncode} {name}".strip()
    tail = [ln for ln in output.strip().splitlines() if ln.strip()][-1:] or ["no output"]
    return "crash", f"exited with {returncode} before reporting: {tail[0][:300]}"


RUNNING: set[int] = set()
"""The checks running now, each the leader of its own process group."""


def stop(signum: int, frame: object) -> None:
    """SIGTERM or SIGINT: stop the running checks with the runner, so an interrupted run
    leaves no check behind, and exit as the signal would have (143 for SIGTERM)."""
    for group in list(RUNNING):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    os._exit(128 + signum)


def run_check(check: str, path: Path, mode: str, out: Path, timeout: float) -> dict:
    log = out / "logs" / mode / f"{check}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    report = out / "reports" / mode / f"{check}.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "AUDIOMATRIX_SMOKE_REPORT": str(report),
        "AUDIOMATRIX_COMPAT": "1" if mode == "compat" else "0",
        "PYTHONFAULTHANDLER": "1",
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        sys.executable, "-m", "pytest", f"{path}::test_{check}", "-q",
        "-p", "no:cacheprovider", "-p", "audiomatrix.suite.plugin",
        "--rootdir", str(path.parent), "-o", "addopts=", f"--timeout={timeout}",
        "-o", "timeout_method=thread",
    ]  # fmt: skip
    oom_before = oom_kills()
    started = time.monotonic()
    with log.open("w") as sink:
        proc = subprocess.Popen(
            command, cwd=tempfile.gettempdir(), env=env, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        RUNNING.add(proc.pid)
        try:
            returncode: int | None = proc.wait(timeout=timeout + 60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            returncode = None
        finally:
            RUNNING.discard(proc.pid)
    duration = round(time.monotonic() - started, 3)
    output = scrub(log.read_text(errors="replace"))
    log.write_text(output)
    outcome = _read_outcome(report, check)
    base = {"check": check, "duration_s": duration, "log": str(log.relative_to(out))}
    if outcome is not None and returncode in (0, 1):
        first_error = outcome.get("first_error")
        return asdict(
            schema.CheckOutcome(
                **{**base, "status": outcome["status"]},
                first_error=scrub(first_error) if first_error else None,
                fingerprints=outcome.get("fingerprints") or {},
            )
        )
    oom = oom_before is not None and (oom_kills() or 0) > oom_before
    status, message = classify_exit(returncode, output, oom)
    return asdict(schema.CheckOutcome(**{**base, "status": status}, first_error=message))


def _read_outcome(report: Path, check: str) -> dict | None:
    try:
        outcomes = json.loads(report.read_text())
    except (OSError, ValueError):
        return None
    finally:
        report.unlink(missing_ok=True)
    return next((o for o in outcomes if o["check"] == check), None)


def run_mode(mode: str, chosen: list[tuple[str, Path]], out: Path, timeout: float, jobs: int):
    started = time.time()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda c: run_check(c[0], c[1], mode, out, timeout), chosen))
    for result in results:
        print(
            f"{mode:6} {result['check']:18} {result['status']:8} {result['duration_s']:7.1f}s "
            f"{result.get('first_error') or ''}"[:200],
            flush=True,
        )
    return schema.ModeRecord(
        schema=schema.SCHEMA, mode=mode, started=started, finished=time.time(), checks=results
    )


def write_json(path: Path, data: object) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(asdict(data), indent=2))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--mode", action="append", choices=list(schema.MODES))
    parser.add_argument("--check", action="append", default=[])
    parser.add_argument(
        "--suite",
        action="append",
        type=Path,
        default=[],
        help="a folder of extra test_*.py checks, run like the suite's own",
    )
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    args.out.mkdir(parents=True, exist_ok=True)
    chosen = checks(args.check, args.suite)
    if not chosen:
        print(f"no check named {args.check}", file=sys.stderr)
        return 2
    write_json(args.out / "environment.json", probe.measure())
    for mode in args.mode or schema.MODES:
        write_json(args.out / f"{mode}.json", run_mode(mode, chosen, args.out, args.timeout,
                                                      args.jobs))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
