"""Images side by side, in one run, written to benchmarks/results/images.json:

- disk: from the sweep's record (`audiomatrix sweep --record`), the union of the images'
  layers (each step's id counted once: the classic builder gives a cached step the same id in
  every image built through it) against the sum of each image's full size, which is what
  naive per-cell images (no shared layers) would take. For a representative set (at least six
  cells over three torch versions of one CUDA line, plus one cell of another line) and for the
  whole sweep.
- cold build: one cell rebuilt with the layer cache off, against a raw `uv venv` + `uv pip
  sync --compile-bytecode` of the same lock into a fresh venv with an empty uv cache, both
  from the same local wheelhouse (the downloads are shared and happen once per machine, so the
  ratio is the cost of an image, not of the network).
- no-op: `audiomatrix sweep` over the representative cells again, and `make matrix` on the CI
  selection, each as a fresh process with nothing changed.

Usage: python benchmarks/images.py [--record PATH] [--cold CELL] [--no-cold]
Targets: disk <= 0.35x naive (representative set), cold build <= 2x a raw sync, no-op < 1 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from audiomatrix import engine, imagebuild, report, smoke, uvtool
from audiomatrix.files import cache_dir, write_json
from audiomatrix.wheelhouse import fill_wheelhouse

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "results" / "sweep.json"
OUT = ROOT / "benchmarks" / "results" / "images.json"


def disk(cells: list[dict[str, Any]]) -> dict[str, float]:
    """Shared (the union of the images' layers) against naive (each image whole), in GB."""
    union: dict[str, int] = {}
    naive = 0
    for cell in cells:
        for layer_id, size in cell["layers"]:
            naive += size
            union[layer_id] = size
    shared = sum(union.values())
    return {
        "images": len(cells),
        "shared_gb": round(shared / 1e9, 2),
        "naive_gb": round(naive / 1e9, 2),
        "ratio": round(shared / naive, 3) if naive else 0.0,
    }


def representative(cells: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Two cells of each of three torch versions of the CUDA line with the most torch
    versions, and one cell of another line; None when the record holds no such set."""
    by_line: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for cell in cells:
        axes = report.axes_from_id(cell["cell"])
        by_line[axes.accelerator][axes.torch].append(cell)
    line = max(by_line, key=lambda name: (len(by_line[name]), name))
    torches = sorted(by_line[line], key=report.version_key)[-3:]
    chosen = [c for t in torches for c in sorted(by_line[line][t], key=lambda c: c["cell"])[:2]]
    other = next((c for name in sorted(by_line) if name != line
                  for t in sorted(by_line[name]) for c in by_line[name][t]), None)  # fmt: skip
    if len(chosen) < 6 or other is None:
        return None
    return [*chosen, other]


def raw_sync(cell: smoke.CellLock, wheelhouse: Path) -> float:
    """uv venv + uv pip sync of the cell's lock from the wheelhouse, as a user would."""
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
        return time.perf_counter() - start


def cold_build(cell_id: str) -> dict[str, float]:
    """The cell built with the layer cache off, against a raw sync of its lock; the image
    the results were made with keeps its tag, and the cold copy goes."""
    cell = smoke.read_lock(ROOT / "environments", cell_id)
    wheelhouse = cache_dir() / "wheelhouse"
    fill_wheelhouse(cell, wheelhouse, echo=lambda _: None)
    raw = raw_sync(cell, wheelhouse)
    api = engine.client()
    ready = imagebuild.prepare(cell, echo=lambda _: None)
    assert isinstance(ready, imagebuild.Prepared), ready
    kept = imagebuild.find_image(api, ready.tag)
    built = imagebuild.build(cell, prepared=ready, echo=lambda _: None, force=True)
    assert built.ok, built.detail
    if kept is not None:
        cold = api.images.get(ready.tag).id
        repository, name = ready.tag.rsplit(":", 1)
        kept.tag(repository, tag=name)
        if cold != kept.id:
            api.images.remove(cold, force=True)
    else:
        api.images.remove(ready.tag)
    return {"cold_build_s": round(built.seconds, 1), "raw_sync_s": round(raw, 1),
            "cold_build_ratio": round(built.seconds / raw, 2)}  # fmt: skip


def fresh_process(*command: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return round(time.perf_counter() - start, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--record", type=Path, default=RECORD)
    parser.add_argument("--cold", default="bookworm-py3.11-torch2.9.1-cu128-maintained")
    parser.add_argument("--no-cold", action="store_true")
    args = parser.parse_args()
    sweep = json.loads(args.record.read_text())
    built = [c for c in sweep["per_cell"] if c.get("layers")]
    chosen = representative(built)
    unmeasured = (
        f"not measured: the record holds {len(built)} built cells, not two of each of three "
        "torch versions of one CUDA line plus one of another; rerun the sweep with --record "
        "over such a set"
    )
    figures: dict[str, Any] = {
        "representative": [c["cell"] for c in chosen or ()],
        "disk": disk(chosen) if chosen else unmeasured,
        "disk_sweep": disk(built) if chosen else unmeasured,
        "sweep_wall_s": sweep["wall_s"],
        "sweep_peak_disk_gb": sweep["peak_disk_gb"],
        "sweep_cells": sweep["cells"],
        "sweep_statuses": sweep["statuses"],
    }
    figures["disk_ratio"] = figures["disk"]["ratio"] if chosen else None
    if not args.no_cold:
        figures |= cold_build(args.cold)
    selection = [a for c in chosen or built for a in ("--select", c["cell"])]
    figures["noop_s"] = fresh_process(str(ROOT / ".venv/bin/audiomatrix"), "sweep", *selection)
    figures["make_matrix_noop_s"] = fresh_process("make", "matrix")
    write_json(OUT, figures)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
