"""Time `audiomatrix refresh --dry-run` over a selection (default: every bookworm cell), as a
fresh process after one warm-up run that leaves uv's cache warm, and write what it took to
benchmarks/results/refresh.json: the wall time, the CPU time of uv and the CLI together, this
machine's cores and the command's own summary line. Target: under 2 minutes.

Usage: python benchmarks/refresh.py [--as-of DAY] [--select TERM ...] [--jobs N] [--no-warm-up]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "refresh.json"
TARGET_S = 120


def refresh(as_of: str, select: list[str], jobs: int) -> tuple[float, float, str]:
    """One dry run: its wall time, the CPU time it and its children took, its summary line."""
    args = [sys.executable, "-m", "audiomatrix", "refresh", "--dry-run", "--as-of", as_of,
            "--jobs", str(jobs), *(f"--select={term}" for term in select)]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = next(ln for ln in proc.stdout.splitlines() if ln.startswith("refresh as of "))
    return wall, cpu, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--as-of", default="today")
    parser.add_argument("--select", action="append", default=None)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--no-warm-up", dest="warm_up", action="store_false")
    args = parser.parse_args()
    select = args.select or ["os=bookworm"]
    if args.warm_up:
        refresh(args.as_of, select, args.jobs)
    load = os.getloadavg()[0]
    wall, cpu, summary = refresh(args.as_of, select, args.jobs)
    record = {
        "measured": dt.datetime.now(dt.UTC).date().isoformat(),
        "command": f"audiomatrix refresh --dry-run --as-of {args.as_of} --jobs {args.jobs} "
        + " ".join(f"--select {term}" for term in select),
        "summary": summary,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "cores": os.cpu_count(),
        "load_before": round(load, 1),
        "target_s": TARGET_S,
    }
    RESULT.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(f"{summary}\nwall {wall:.1f} s (target < {TARGET_S} s), CPU {cpu:.1f} s on "
          f"{os.cpu_count()} cores")  # fmt: skip


if __name__ == "__main__":
    main()
