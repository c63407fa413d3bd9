"""Time the smoke suite for one cell, per check, and the runner's parallelism side by side.

Runs the raw suite once with one job and once with two, in the same venv, and prints each
check's time, both wall times and their ratio (target: a whole cell under 45 s on 2 cores).

Usage: python benchmarks/smoke.py [CELL]   (default: the torch 2.9.1 CI cell)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from audiomatrix.lock import cell_lock
from audiomatrix.smoke import runner as smoke

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CELL = "bookworm-py3.11-torch2.9.1-cu128-maintained"


def run(python: Path, jobs: int) -> tuple[float, list[dict]]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run(
            [str(python), "-m", "audiomatrix.suite.run", "--out", tmp, "--mode", "raw",
             "--jobs", str(jobs)],
            check=True, capture_output=True, env={**smoke.suite_environment()},
        )  # fmt: skip
        wall = time.perf_counter() - start
        return wall, json.loads((Path(tmp) / "raw.json").read_text())["checks"]


def main() -> None:
    cell_id = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_CELL
    cell = cell_lock.read_lock(ROOT / "environments", cell_id)
    python = smoke.ensure_venv(cell, smoke.venv_root() / cell_id)
    serial_wall, checks = run(python, jobs=1)
    parallel_wall, _ = run(python, jobs=2)
    print(f"{cell_id}: raw suite, one process per check")
    for check in sorted(checks, key=lambda c: -c["duration_s"]):
        print(f"  {check['check']:18} {check['status']:8} {check['duration_s']:6.1f} s")
    print(f"  wall, 1 job : {serial_wall:6.1f} s")
    print(
        f"  wall, 2 jobs: {parallel_wall:6.1f} s  ({parallel_wall / serial_wall:.2f}x of 1 job; "
        f"target < 45 s)"
    )


if __name__ == "__main__":
    main()
