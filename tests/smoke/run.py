"""Run the smoke suite inside a cell's environment: each check in its own process.

Standard library only, because it runs with whatever Python the cell has (an image or a
native venv). A check that outlives its timeout is a `hang`, one killed by a signal a
`crash`; either way the remaining checks still run. Writes <out>/<mode>.json per mode and
each check's full output to <out>/logs/<mode>/<check>.log.

    python run.py --out DIR [--mode raw --mode compat] [--check xtts ...] [--timeout 300]
"""

from __future__ import annotations

import argparse
import ctypes.util
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCHEMA = 1
PACKAGES = (
    "torch", "torchaudio", "torchcodec", "TTS", "coqui-tts", "transformers", "demucs",
    "numpy", "soundfile", "tokenizers",
)  # fmt: skip
TIMEOUT_BANNER = "+++++ Timeout +++++"
_PROBE = """
import json, torch
info = {"cuda": torch.version.cuda, "gpu": None, "compute_capability": None}
if torch.cuda.is_available():
    major, minor = torch.cuda.get_device_capability(0)
    info.update(gpu=torch.cuda.get_device_name(0), compute_capability=f"sm_{major}{minor}")
elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
    info.update(gpu="Apple MPS")
print(json.dumps(info))
"""


def discover(names: list[str]) -> list[tuple[str, str]]:
    """(check, node id) for every `test_<check>` function in the suite's test files."""
    found = []
    for path in sorted(HERE.glob("test_*.py")):
        for match in re.finditer(r"^def test_(\w+)\(", path.read_text(), re.MULTILINE):
            check = match.group(1)
            if not names or check in names:
                found.append((check, f"{path.name}::test_{check}"))
    return found


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["ffmpeg"] = ffmpeg_version()
    return out


def ffmpeg_version() -> str | None:
    """FFmpeg's major version from the libavutil the dynamic linker would load."""
    lib = ctypes.util.find_library("avutil")
    if not lib:
        return None
    try:
        avutil = ctypes.CDLL(lib)
        code = avutil.avutil_version()
    except (OSError, AttributeError):
        return None
    major = code >> 16
    # libavutil 56 -> FFmpeg 4, 57 -> 5, 58 -> 6, 59 -> 7, 60 -> 8.
    return f"{major - 52} (libavutil {major}.{(code >> 8) & 0xFF}.{code & 0xFF})"


def host() -> dict[str, str | None]:
    info: dict[str, str | None] = {
        "os": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "driver": _nvidia_driver(),
    }
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120
        )
        info.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        info.update(cuda=None, gpu=None, compute_capability=None)
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _nvidia_driver() -> str | None:
    try:
        proc = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip().splitlines()[0] if proc.returncode == 0 and proc.stdout else None


def _machine_paths() -> list[tuple[str, str]]:
    """Absolute paths of this machine that tracebacks mention, longest first, with the
    placeholders results use instead: results are shared and committed."""
    pairs = [
        (str(Path(sys.prefix).resolve()), "<venv>"),
        (sys.prefix, "<venv>"),
        (str(HERE.parents[1]), "<repo>"),
        (tempfile.gettempdir(), "<tmp>"),
        (str(Path.home()), "<home>"),
    ]
    return sorted({p for p in pairs if len(p[0]) > 1}, key=lambda p: -len(p[0]))


def scrub(text: str) -> str:
    for path, placeholder in _machine_paths():
        text = text.replace(path, placeholder)
    return text


def classify_exit(returncode: int | None, output: str, outcome: dict | None) -> tuple[str, str]:
    """A check's status from how its process ended, when the process could not say."""
    if returncode is None or TIMEOUT_BANNER in output:
        return "hang", "the check did not finish within its timeout"
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else ""
        return "crash", f"killed by signal {-returncode} {name}".strip()
    tail = [ln for ln in output.strip().splitlines() if ln.strip()][-1:] or ["no output"]
    return "crash", f"exited with {returncode} before reporting: {tail[0][:300]}"


def run_check(check: str, node: str, mode: str, out: Path, timeout: float) -> dict:
    log = out / "logs" / mode / f"{check}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    report = Path(tempfile.mkdtemp(prefix="smoke-")) / "outcome.json"
    env = {
        **os.environ,
        "AUDIOMATRIX_SMOKE_REPORT": str(report),
        "AUDIOMATRIX_COMPAT": "1" if mode == "compat" else "0",
        "PYTHONFAULTHANDLER": "1",
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        sys.executable, "-m", "pytest", node, "-q", "-p", "no:cacheprovider",
        "--rootdir", str(HERE), "-o", "addopts=", f"--timeout={timeout}",
        "-o", "timeout_method=thread",
    ]  # fmt: skip
    started = time.monotonic()
    with log.open("w") as sink:
        proc = subprocess.Popen(
            command, cwd=HERE, env=env, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            returncode: int | None = proc.wait(timeout=timeout + 60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            returncode = None
    duration = round(time.monotonic() - started, 3)
    output = scrub(log.read_text(errors="replace"))
    log.write_text(output)
    outcome = _read_outcome(report, check)
    if outcome is not None:
        outcome = {k: scrub(v) if isinstance(v, str) else v for k, v in outcome.items()}
    result = {"check": check, "duration_s": duration, "log": str(log.relative_to(out))}
    if outcome is not None and returncode in (0, 1):
        return {**result, **outcome, "duration_s": duration}
    status, message = classify_exit(returncode, output, outcome)
    return {**result, "status": status, "first_error": message, "error_text": output[-20000:]}


def _read_outcome(report: Path, check: str) -> dict | None:
    try:
        outcomes = json.loads(report.read_text())
    except (OSError, ValueError):
        return None
    finally:
        report.unlink(missing_ok=True)
        report.parent.rmdir()
    return next((o for o in outcomes if o["check"] == check), None)


def run_mode(
    mode: str, checks: list[tuple[str, str]], out: Path, timeout: float, jobs: int
) -> dict:
    started = time.time()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda c: run_check(c[0], c[1], mode, out, timeout), checks))
    for result in results:
        print(
            f"{mode:6} {result['check']:18} {result['status']:8} {result['duration_s']:7.1f}s "
            f"{result.get('first_error') or ''}"[:200],
            flush=True,
        )
    return {
        "schema": SCHEMA,
        "mode": mode,
        "started": started,
        "finished": time.time(),
        "checks": results,
    }


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--mode", action="append", choices=["raw", "compat"])
    parser.add_argument("--check", action="append", default=[])
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    checks = discover(args.check)
    if not checks:
        print(f"no check named {args.check}", file=sys.stderr)
        return 2
    write_json(
        args.out / "environment.json", {"schema": SCHEMA, "versions": versions(), "host": host()}
    )
    for mode in args.mode or ["raw", "compat"]:
        write_json(
            args.out / f"{mode}.json", run_mode(mode, checks, args.out, args.timeout, args.jobs)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
