"""Images side by side, in one run: disk with the shared torch layer vs naive images, a cold
build vs a raw `uv pip sync` of the same lock, and the warm no-op rerun.

- disk: the union of the cells' layers (each counted once) vs the sum of each image's full
  size, which is what N unrelated images (no shared layers) would take.
- cold build: the first cell rebuilt with the layer cache off (`nocache`), against a raw
  `uv pip sync --compile-bytecode` of the same lock into a fresh venv with an empty uv cache,
  both installing from the same local wheelhouse: the downloads are shared by both and happen
  once per machine, so the ratio is the cost of building an image, not of the network.
- no-op: `build()` of every cell again when every tag exists.

Usage: python benchmarks/images.py [--no-cold] [CELL ...]
(--no-cold skips the cold rebuild, which needs disk for a second copy of the torch layers)
(default: two cells each of torch 2.9.1 and 2.5.1; targets 0.4x, 1.3x, 2 s)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from audiomatrix import image, lock, smoke

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CELLS = (
    "bookworm-py3.11-torch2.9.1-cu128-maintained",
    "bookworm-py3.11-torch2.9.1-cu128-maintained-nocodec",
    "bookworm-py3.11-torch2.5.1-cu124-legacy",
    "bookworm-py3.11-torch2.5.1-cu124-legacy-pinned",
)


def layer_union(tags: list[str]) -> tuple[int, int]:
    """(bytes of the union of the images' layers, sum of the images' sizes). A step's local
    image id names its layer, so two images built through the same step share it."""
    api = image.client().api
    seen: dict[str, int] = {}
    naive = 0
    for tag in tags:
        naive += api.inspect_image(tag)["Size"]
        for i, step in enumerate(api.history(tag)):
            key = step["Id"] if step["Id"] != "<missing>" else f"{tag}#{i}"
            seen[key] = step["Size"]
    return sum(seen.values()), naive


def raw_sync(cell: smoke.CellLock, wheelhouse: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        uv = lock.uv_binary()
        env = {**smoke.uv_environment(), "UV_NO_CACHE": "1", "UV_LINK_MODE": "copy"}
        venv = Path(tmp) / "venv"
        start = time.perf_counter()
        subprocess.run([uv, "venv", "-q", "--python", cell.python, str(venv)], check=True, env=env)
        subprocess.run(
            [uv, "pip", "sync", "-q", "--require-hashes", "--compile-bytecode", "--no-index",
             "--find-links", str(wheelhouse), "--python", str(venv / "bin/python"),
             str(cell.requirements)],
            check=True, env=env,
        )  # fmt: skip
        return time.perf_counter() - start


def main(cells: list[str], cold: bool = True) -> int:
    image.ensure_engine()
    locks = [smoke.read_lock(ROOT / "environments", c) for c in cells]
    built = []
    for cell in locks:
        result = image.build(cell, echo=lambda _: None)
        print(f"{cell.cell:55} {result.status:10} {result.seconds:7.1f}s {result.detail}")
        if result.ok and result.tag:
            built.append(result.tag)
    union, naive = layer_union(built)
    print(f"disk: {union / 1e9:.2f} GB shared vs {naive / 1e9:.2f} GB naive "
          f"for {len(built)} images = {union / naive:.2f}x (target <= 0.4x)")  # fmt: skip

    first = locks[0]
    wheelhouse = image.cache_dir() / "wheelhouse"
    image.fill_wheelhouse(first, wheelhouse, echo=lambda _: None)
    raw = raw_sync(first, wheelhouse)
    if cold:
        rebuilt = image.build(first, echo=lambda _: None, force=True)
        print(f"cold build: {rebuilt.seconds:.1f} s vs raw uv pip sync {raw:.1f} s = "
              f"{rebuilt.seconds / raw:.2f}x (target <= 1.3x; {rebuilt.status})")  # fmt: skip
    else:
        print(f"raw uv pip sync of {first.cell}: {raw:.1f} s (cold build skipped)")

    start = time.perf_counter()
    again = [image.build(c, echo=lambda _: None) for c in locks]
    noop = time.perf_counter() - start
    cli = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "from pathlib import Path; from audiomatrix import image, smoke;"
         f"[image.build(smoke.read_lock(Path({str(ROOT / 'environments')!r}), c), "
         f"echo=lambda _: None) for c in {cells!r}]"],
        check=True, env=dict(os.environ),
    )  # fmt: skip
    process = time.perf_counter() - cli
    statuses = sorted({r.status for r in again})
    print(f"no-op rerun of {len(locks)} cells: {noop:.2f} s in process, {process:.2f} s as a "
          f"fresh process (target < 2 s; {', '.join(statuses)})")  # fmt: skip
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    cold = "--no-cold" not in args
    sys.exit(main([a for a in args if a != "--no-cold"] or list(DEFAULT_CELLS), cold))
