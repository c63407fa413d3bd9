"""Images side by side, in one run: disk with the shared torch layer vs naive images, a cold
build vs a raw `uv pip sync` of the same lock, and the warm no-op rerun.

- disk: the union of the cells' layers (each counted once) vs the sum of each image's full
  size, which is what N unrelated images (no shared layers) would take. Printed beside it, the
  floor no layout can beat: each distinct base + torch part stored once and everything else
  free, over the same naive sum (about 0.5x for four cells over two torch versions).
- cold build: the first cell rebuilt with the layer cache off (`nocache`), against a raw
  `uv pip sync --compile-bytecode` of the same lock into a fresh venv with an empty uv cache,
  both installing from the same local wheelhouse: the downloads are shared by both and happen
  once per machine, so the ratio is the cost of building an image, not of the network. The
  slowest build steps are printed with their times (from the build's output stream).
- no-op: `build()` of every cell again when every tag exists.

Usage: python benchmarks/images.py [--no-cold] [CELL ...]
(--no-cold skips the cold rebuild, which needs disk for a second copy of the torch layers)
(default: two cells each of torch 2.9.1 and 2.5.1; targets 0.4x, 1.3x, 2 s)
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from audiomatrix import engine, imagebuild, imageplan, lock, smoke
from audiomatrix.files import cache_dir
from audiomatrix.wheelhouse import fill_wheelhouse

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
    api = engine.client().api
    seen: dict[str, int] = {}
    naive = 0
    for tag in tags:
        naive += api.inspect_image(tag)["Size"]
        for i, step in enumerate(api.history(tag)):
            key = step["Id"] if step["Id"] != "<missing>" else f"{tag}#{i}"
            seen[key] = step["Size"]
    return sum(seen.values()), naive


def torch_parts(locks: list[smoke.CellLock], tags: list[str]) -> dict[str, tuple[str, int]]:
    """Per image: (what its torch layer is made of, the bytes from the base up to and including
    the torch install step). The same key means the same layer is possible."""
    api = engine.client().api
    parts = {}
    for cell, tag in zip(locks, tags, strict=True):
        steps = list(reversed(api.history(tag)))
        last = next(
            i
            for i, s in enumerate(steps)
            if "install.sh" in (by := s["CreatedBy"]) and "torch.txt" in by
        )
        torch = imageplan.parts_for(cell).torch
        key = "|".join((cell.record["cell"]["base"], cell.python, torch))
        parts[tag] = (
            hashlib.sha256(key.encode()).hexdigest()[:12] + " " + steps[last]["Id"],
            sum(s["Size"] for s in steps[: last + 1]),
        )
    return parts


def raw_sync(cell: smoke.CellLock, wheelhouse: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        uv = lock.uv_binary()
        # The Dockerfile's uv settings: no cache, files hardlinked from uv's temporary unpack.
        env = {**smoke.uv_environment(), "UV_NO_CACHE": "1", "UV_LINK_MODE": "hardlink"}
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
    engine.ensure_engine()
    locks = [smoke.read_lock(ROOT / "environments", c) for c in cells]
    built, built_locks = [], []
    for cell in locks:
        result = imagebuild.build(cell, echo=lambda _: None)
        print(f"{cell.cell:55} {result.status:10} {result.seconds:7.1f}s {result.detail}")
        if result.ok and result.tag:
            built.append(result.tag)
            built_locks.append(cell)
    union, naive = layer_union(built)
    parts = torch_parts(built_locks, built)
    for tag, (key, size) in parts.items():
        print(f"  {tag.split(':', 1)[1]:68} torch part {key[:12]}, layer {key[20:32]}, "
              f"{size / 1e9:.2f} GB up to it")  # fmt: skip
    distinct = {key.split()[0]: size for key, size in parts.values()}
    floor = sum(distinct.values())
    print(f"disk: {union / 1e9:.2f} GB shared vs {naive / 1e9:.2f} GB naive "
          f"for {len(built)} images = {union / naive:.2f}x (target <= 0.4x; floor with "
          f"{len(distinct)} distinct base+torch parts stored once and the rest free: "
          f"{floor / 1e9:.2f} GB = {floor / naive:.2f}x)")  # fmt: skip

    first = locks[0]
    wheelhouse = cache_dir() / "wheelhouse"
    fill_wheelhouse(first, wheelhouse, echo=lambda _: None)
    raw = raw_sync(first, wheelhouse)
    if cold:
        steps: list[tuple[float, str]] = []

        def step(line: str) -> None:
            if line.startswith("Step "):
                steps.append((time.perf_counter(), line))

        api = engine.client()
        tag = next(t for t in built if t.startswith(f"{imagebuild.CELL_REPO}:{first.cell}-"))
        tested = api.images.get(tag)
        rebuilt = imagebuild.build(first, echo=lambda _: None, progress=step, force=True)
        ended = time.perf_counter()
        # Put the tag back on the image the results were made with, and drop the cold copy
        # with its layers: else the next `make matrix` sees a new image and reruns its suite,
        # and the classic builder, which follows the newest of two identical chains, would
        # stop finding the torch layers the other cells were built on.
        cold_copy = api.images.get(tag).id
        repository, name = tag.rsplit(":", 1)
        tested.tag(repository, tag=name)
        if cold_copy != tested.id:
            api.images.remove(cold_copy, force=True)
        print(f"cold build: {rebuilt.seconds:.1f} s vs raw uv pip sync {raw:.1f} s = "
              f"{rebuilt.seconds / raw:.2f}x (target <= 1.3x; {rebuilt.status})")  # fmt: skip
        took = [(b[0] - a[0], a[1]) for a, b in zip(steps, [*steps[1:], (ended, "")], strict=True)]
        for seconds, line in sorted(took, reverse=True)[:6]:
            print(f"  {seconds:6.1f} s  {line[:110]}")
    else:
        print(f"raw uv pip sync of {first.cell}: {raw:.1f} s (cold build skipped)")

    start = time.perf_counter()
    again = [imagebuild.build(c, echo=lambda _: None) for c in locks]
    noop = time.perf_counter() - start
    cli = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c",
         "from pathlib import Path; from audiomatrix import imagebuild, smoke;"
         f"[imagebuild.build(smoke.read_lock(Path({str(ROOT / 'environments')!r}), c), "
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
