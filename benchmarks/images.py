"""Images side by side, in one run, written to benchmarks/results/images.json:

- disk: from the sweep's record (`audiomatrix sweep --record`), the union of the images'
  layers (each step's id counted once: the classic builder gives a cached step the same id in
  every image built through it) against the sum of each image's full size, which is what
  naive per-cell images (no shared layers) would take. For a representative set (at least six
  cells over three torch versions of one CUDA line, plus one cell of another line) and for the
  whole sweep.
- disk floor: the same set's packages, each distinct wheel counted once (its files
  unpacked), against each cell counting all of its own. No layer order can share more than
  identical files, so this is the least any layout could reach.
- cold build: one cell rebuilt with the layer cache off, against a raw `uv venv` + `uv pip
  sync --compile-bytecode` of the same lock into a fresh venv with an empty uv cache, both
  from the same local wheelhouse (the downloads are shared and happen once per machine, so the
  ratio is the cost of an image, not of the network). With it, the build's slowest steps,
  and the engine's floor: the raw venv stored as one layer (`docker import` of its tar; every
  way of making an image, a commit, an import or a load, writes each file into the layer
  store once more and hashes it), raw sync plus that import against raw sync.
- no-op: `audiomatrix sweep` over the representative cells again, and `make matrix` on the CI
  selection, each as a fresh process with nothing changed (the median of three, after a run
  that leaves the report's stamp and Python's bytecode).

Usage: python benchmarks/images.py [--record PATH] [--cold CELL] [--no-cold]
Targets: disk <= 0.35x naive (representative set), cold build <= 2x a raw sync, no-op < 1 s.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from audiomatrix.core.files import cache_dir, write_json
from audiomatrix.core.versions import version_key
from audiomatrix.image import build as imagebuild
from audiomatrix.image import engine
from audiomatrix.image.wheelhouse import fill_wheelhouse
from audiomatrix.lock import cell_lock, uvtool
from audiomatrix.records.sweep import SweepEntry
from audiomatrix.records.sweep import read as read_sweep
from audiomatrix.smoke import runner as smoke
from audiomatrix.table import report

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "results" / "sweep.json"
OUT = ROOT / "benchmarks" / "results" / "images.json"


def disk(cells: list[SweepEntry]) -> dict[str, float]:
    """Shared (the union of the images' layers) against naive (each image whole), in GB."""
    union: dict[str, int] = {}
    naive = 0
    for cell in cells:
        for layer_id, size in cell.layers:
            naive += size
            union[layer_id] = size
    shared = sum(union.values())
    return {
        "images": len(cells),
        "shared_gb": round(shared / 1e9, 2),
        "naive_gb": round(naive / 1e9, 2),
        "ratio": round(shared / naive, 3) if naive else 0.0,
    }


def representative(cells: list[SweepEntry]) -> list[SweepEntry] | None:
    """Two cells of each of three torch versions of the CUDA line with the most torch
    versions, and one cell of another line; None when the record holds no such set."""
    by_line: dict[str, dict[str, list[SweepEntry]]] = defaultdict(lambda: defaultdict(list))
    for cell in cells:
        axes = report.axes_from_id(cell.cell)
        by_line[axes.accelerator][axes.torch].append(cell)
    line = max(by_line, key=lambda name: (len(by_line[name]), name))
    torches = sorted(by_line[line], key=version_key)[-3:]
    chosen = [c for t in torches for c in sorted(by_line[line][t], key=lambda c: c.cell)[:2]]
    other = next((c for name in sorted(by_line) if name != line
                  for t in sorted(by_line[name]) for c in by_line[name][t]), None)  # fmt: skip
    if len(chosen) < 6 or other is None:
        return None
    return [*chosen, other]


def unpacked_bytes(wheel: Path) -> int:
    """What a wheel's files take once installed (bytecode aside)."""
    with zipfile.ZipFile(wheel) as archive:
        return sum(info.file_size for info in archive.infolist())


def disk_floor(cells: list[SweepEntry], wheelhouse: Path) -> dict[str, Any] | str:
    """Each distinct wheel of the cells' locks once against every cell's own, from the
    wheelhouse's record of the files each lock installs (written when its image was built)."""
    sizes: dict[str, int] = {}
    per_cell = 0
    for entry in cells:
        cell = cell_lock.read_lock(ROOT / "environments", entry.cell)
        names = wheelhouse / ".locks" / cell.lock_sha256
        if not names.is_file():
            return f"not measured: the wheelhouse has no record of {entry.cell}'s files"
        for name in names.read_text().split():
            if name.endswith(".whl"):
                size = sizes.setdefault(name, unpacked_bytes(wheelhouse / name))
                per_cell += size
    shared = sum(sizes.values())
    return {
        "distinct_gb": round(shared / 1e9, 2),
        "per_cell_gb": round(per_cell / 1e9, 2),
        "ratio": round(shared / per_cell, 3) if per_cell else 0.0,
    }


def engine_import(folder: Path) -> float:
    """Seconds the engine takes to store `folder` as one layer (its tar through `docker
    import`); the image goes again."""
    api = engine.client()
    tar = subprocess.Popen(["tar", "-C", str(folder), "-cf", "-", "."], stdout=subprocess.PIPE)
    assert tar.stdout is not None
    start = time.perf_counter()
    answer = api.api.import_image_from_stream(tar.stdout, repository="audiomatrix/bench-import")
    seconds = time.perf_counter() - start
    if tar.wait() != 0:
        raise RuntimeError(f"tar of {folder} failed")
    image = json.loads(str(answer).strip().splitlines()[-1])["status"]
    api.images.remove(image, force=True)
    return seconds


def raw_sync(cell: cell_lock.CellLock, wheelhouse: Path) -> tuple[float, float]:
    """uv venv + uv pip sync of the cell's lock from the wheelhouse, as a user would, and
    then the seconds the engine takes to import that venv (engine_import)."""
    with tempfile.TemporaryDirectory() as tmp:
        uv = uvtool.uv_binary()
        env = {**smoke.uv_environment(), "UV_NO_CACHE": "1", "UV_LINK_MODE": "hardlink"}
        venv = Path(tmp) / "venv"
        python = smoke.interpreter_for(cell)
        start = time.perf_counter()
        subprocess.run([uv, "venv", "-q", "--python", python, str(venv)], check=True, env=env)
        subprocess.run(
            [uv, "pip", "sync", "-q", "--require-hashes", "--compile-bytecode", "--no-index",
             "--find-links", str(wheelhouse), "--python", str(venv / "bin/python"),
             str(cell.requirements)],
            check=True, env=env,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        return seconds, engine_import(venv)


def cold_build(cell_id: str) -> dict[str, float]:
    """The cell built with the layer cache off, against a raw sync of its lock; the image
    the results were made with keeps its tag, and the cold copy goes."""
    cell = cell_lock.read_lock(ROOT / "environments", cell_id)
    wheelhouse = cache_dir() / "wheelhouse"
    fill_wheelhouse(cell, wheelhouse, echo=lambda _: None)
    raw, imported = raw_sync(cell, wheelhouse)
    api = engine.client()
    ready = imagebuild.prepare(cell, echo=lambda _: None)
    assert isinstance(ready, imagebuild.Prepared), ready
    kept = imagebuild.find_image(api, ready.tag)
    steps: list[tuple[float, str]] = []
    started = time.perf_counter()

    def step(line: str) -> None:
        if line.startswith("Step ") or line.startswith("Successfully built"):
            steps.append((time.perf_counter() - started, re.sub(r"\s+", " ", line)))

    built = imagebuild.build(cell, prepared=ready, echo=lambda _: None, force=True, progress=step)
    assert built.ok, built.detail
    if kept is not None:
        cold = api.images.get(ready.tag).id
        repository, name = ready.tag.rsplit(":", 1)
        kept.tag(repository, tag=name)
        if cold != kept.id:
            api.images.remove(cold, force=True)
    else:
        api.images.remove(ready.tag)
    return {
        "cold_build_s": round(built.seconds, 1),
        "raw_sync_s": round(raw, 1),
        "cold_build_ratio": round(built.seconds / raw, 2),
        "cold_build_slowest": slowest(steps),
        "engine_import_s": round(imported, 1),
        "engine_floor_ratio": round((raw + imported) / raw, 2),
    }


def slowest(steps: list[tuple[float, str]], shown: int = 5) -> dict[str, float]:
    """The build's slowest steps (each until the next began: its run and its commit)."""
    spans = [(after[0] - before[0], before[1][:100]) for before, after in itertools.pairwise(steps)]
    return {text: round(seconds, 1) for seconds, text in sorted(spans, reverse=True)[:shown]}


def fresh_process(*command: str, runs: int = 3) -> float:
    """The median wall time of `command` as a fresh process with nothing changed: after one
    run that leaves what any first run leaves (the report's stamp, Python's bytecode, which
    PYTHONDONTWRITEBYTECODE would otherwise have every run compile again)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, env=env)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--record", type=Path, default=RECORD)
    parser.add_argument("--cold", default="bookworm-py3.11-torch2.9.1-cu128-maintained")
    parser.add_argument("--no-cold", action="store_true")
    args = parser.parse_args()
    sweep = read_sweep(args.record)
    if sweep is None:
        raise SystemExit(f"{args.record}: no sweep record; run `audiomatrix sweep --record`")
    built = [c for c in sweep.per_cell if c.layers]
    chosen = representative(built)
    unmeasured = (
        f"not measured: the record holds {len(built)} built cells, not two of each of three "
        "torch versions of one CUDA line plus one of another; rerun the sweep with --record "
        "over such a set"
    )
    figures: dict[str, Any] = {
        "representative": [c.cell for c in chosen or ()],
        "disk": disk(chosen) if chosen else unmeasured,
        "disk_sweep": disk(built) if chosen else unmeasured,
        "sweep_wall_s": sweep.wall_s,
        "sweep_peak_disk_gb": sweep.peak_disk_gb,
        "sweep_cells": sweep.cells,
        "sweep_statuses": sweep.statuses,
    }
    figures["disk_ratio"] = figures["disk"]["ratio"] if chosen else None
    figures["disk_floor"] = disk_floor(chosen, cache_dir() / "wheelhouse") if chosen else unmeasured
    if not args.no_cold:
        figures |= cold_build(args.cold)
    selection = [a for c in chosen or built for a in ("--select", c.cell)]
    figures["noop_s"] = fresh_process(str(ROOT / ".venv/bin/audiomatrix"), "sweep", *selection)
    figures["make_matrix_noop_s"] = fresh_process("make", "matrix")
    write_json(OUT, figures)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
