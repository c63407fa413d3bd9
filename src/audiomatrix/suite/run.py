"""Run the smoke suite inside a cell's environment: each check in its own process.

Standard library only, because it runs with whatever Python the cell has (an image or a
native venv). A check that outlives its timeout is a `hang`, one killed by a signal a
`crash` (the kernel's OOM killer named as such); either way the other checks still run.
Writes <out>/environment.json once, <out>/<mode>.json per mode and each check's full output
to <out>/logs/<mode>/<check>.log. After both modes, each check that failed raw and passed with
compat is run again with smaller sets of compat's remedies (split.py's search), each set in
its own process, into <out>/remedies.json and <out>/logs/remedies/<set>/<check>.log. Stopped
by SIGTERM or SIGINT, it stops its checks too.

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

from audiomatrix.suite import probe, schema, split

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


def run_check(
    check: str, path: Path, mode: str, out: Path, timeout: float, compat: str | None = None
) -> dict:
    """The check's CheckOutcome (as a dict) in `mode`, its logs under logs/<mode>/; `compat`
    is the AUDIOMATRIX_COMPAT it runs with (by default, all remedies in the compat mode)."""
    log = out / "logs" / mode / f"{check}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    report = out / "reports" / mode / f"{check}.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "AUDIOMATRIX_SMOKE_REPORT": str(report),
        "AUDIOMATRIX_COMPAT": compat or ("1" if mode == "compat" else "0"),
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


APPLICABLE = "import json; from audiomatrix import compat; print(json.dumps(compat.applicable()))"


def applicable_remedies(timeout: float) -> list[str] | str:
    """compat.applicable() as this environment answers it in a process of its own (the
    runner never imports torch), or the one line that says why it could not."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", APPLICABLE], capture_output=True, text=True,
            cwd=tempfile.gettempdir(), timeout=timeout,
        )  # fmt: skip
        found = json.loads(proc.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        return "asking compat which remedies apply timed out"
    except (IndexError, ValueError):
        tail = [ln for ln in proc.stderr.splitlines() if ln.strip()][-1:] or ["no output"]
        return f"asking compat which remedies apply failed: {scrub(tail[0])[:300]}"
    return [str(name) for name in found]


def split_candidates(
    chosen: list[tuple[str, Path]], raw: schema.ModeRecord, compat: schema.ModeRecord
) -> list[tuple[str, Path]]:
    """The checks that failed raw and passed with every remedy: those to split."""
    before = {c["check"]: c["status"] for c in raw.checks}
    after = {c["check"]: c["status"] for c in compat.checks}
    return [
        (name, path)
        for name, path in chosen
        if before.get(name) in schema.FAILED and after.get(name) == "pass"
    ]


def subset_outcome(subset: split.Subset, result: dict) -> schema.SubsetOutcome:
    """A check's outcome under a subset of the remedies, from run_check's."""
    return schema.SubsetOutcome(
        check=result["check"], remedies=list(subset), status=result["status"],
        duration_s=result["duration_s"], first_error=result.get("first_error"),
        log=result.get("log"),
    )  # fmt: skip


def split_remedies(
    candidates: list[tuple[str, Path]], out: Path, timeout: float, jobs: int
) -> schema.RemedySplit | None:
    """Each candidate run with the subsets of the applicable remedies, size by size (every
    candidate's subsets of one size at once), until one passes or none is left; None when
    there is nothing to split."""
    if not candidates:
        return None
    started = time.time()
    applicable = applicable_remedies(timeout)
    if isinstance(applicable, str):
        print(f"remedies: not split: {applicable}", file=sys.stderr, flush=True)
        return None

    def run(item: tuple[str, Path, split.Subset]) -> schema.SubsetOutcome:
        name, path, subset = item
        mode = f"remedies/{split.label(subset)}"
        return subset_outcome(subset, run_check(name, path, mode, out, timeout, ",".join(subset)))

    tried: dict[str, dict[split.Subset, str]] = {name: {} for name, _ in candidates}
    records: list[schema.SubsetOutcome] = []
    while batch := [
        (name, path, subset)
        for name, path in candidates
        for subset in split.next_subsets(applicable, tried[name])
    ]:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            done = list(pool.map(run, batch))
        for record in done:
            tried[record.check][tuple(record.remedies)] = record.status
            print(
                f"only   {record.check:18} {record.status:8} {record.duration_s:7.1f}s "
                f"{split.label(tuple(record.remedies))}"[:200],
                flush=True,
            )
        records += done
    return schema.RemedySplit(
        schema=schema.SCHEMA, started=started, finished=time.time(), applicable=applicable,
        checks=records,
    )  # fmt: skip


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
    records = {}
    for mode in args.mode or schema.MODES:
        records[mode] = run_mode(mode, chosen, args.out, args.timeout, args.jobs)
        write_json(args.out / f"{mode}.json", records[mode])
    if set(records) == set(schema.MODES):
        candidates = split_candidates(chosen, records["raw"], records["compat"])
        found = split_remedies(candidates, args.out, args.timeout, args.jobs)
        if found is not None:
            write_json(args.out / "remedies.json", found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
