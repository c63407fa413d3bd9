"""After a refresh, the sweep reruns only the cells whose locks moved: the decision
(smoke.sweep.current_run over the image's content tag) on two committed cells of one CUDA group,
their real locks and their real newest runs, before and after one of them moves a package."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from audiomatrix.core.files import sha256_file, write_json
from audiomatrix.image import build as imagebuild
from audiomatrix.image import plan as imageplan
from audiomatrix.lock import cell_lock
from audiomatrix.lock.installers import uv
from audiomatrix.smoke import results
from audiomatrix.smoke.sweep import current_run
from audiomatrix.suite.schema import MODES

ROOT = Path(__file__).parents[1]
MOVES = "bookworm-py3.11-torch2.9.1-cu128-maintained"
STAYS = "bookworm-py3.11-torch2.9.1-cu128-legacy"
BASE = "debian:bookworm-slim"


def _prepared(environments: Path, cell: str) -> imagebuild.Prepared:
    """What `prepare` decides the image from, but for the engine's ids (fixed here: only the
    cell's files may change the tag between the two sweeps)."""
    found = cell_lock.read_lock(environments, cell)
    made = imageplan.Plan(
        parts=imageplan.parts_for(found),
        python=imageplan.Python(source=f"the python3 of {BASE}"),
        debs=(),
    )
    digest = imagebuild.content_hash(found, "base-image-id", "uv-image-id", made)
    return imagebuild.Prepared(found, BASE, "uv", made, imagebuild.cell_tag(cell, digest))


def _new_sweep() -> None:
    """A sweep is a process of its own: the group's locks are read anew."""
    imageplan.group_locks.cache_clear()
    imageplan.group_cuda.cache_clear()


def _committed(tmp_path: Path) -> tuple[Path, Path]:
    """The two cells' committed locks and newest image runs, each run recorded as of the image
    these very locks make."""
    environments, runs = tmp_path / "environments", tmp_path / "results"
    for cell in (MOVES, STAYS):
        shutil.copytree(ROOT / "environments" / cell, environments / cell)
    _new_sweep()
    for cell in (MOVES, STAYS):
        newest = results.latest(ROOT / "results", cell, kind="image")
        assert newest is not None
        data = json.loads((ROOT / "results" / cell / f"{newest.run}.json").read_text())
        data["where"]["image"] = _prepared(environments, cell).tag
        write_json(runs / cell / f"{newest.run}.json", data)
    return environments, runs


def _move(folder: Path, package: str, version: str) -> None:
    """What a refresh writes for a cell whose lock moved: the new pin, the record's new sha."""
    lock = folder / uv.LOCK_FILE
    text, count = re.subn(rf"(?m)^{package}==\S+", f"{package}=={version}", lock.read_text())
    assert count == 1
    lock.write_text(text)
    record = json.loads((folder / "cell.json").read_text())
    record["lock_sha256"] = sha256_file(lock)
    write_json(folder / "cell.json", record)


def test_only_the_cell_whose_lock_moved_runs_again(tmp_path):
    environments, runs = _committed(tmp_path)
    for cell in (MOVES, STAYS):
        assert current_run(runs, _prepared(environments, cell), MODES) is not None, cell

    stays_tag = _prepared(environments, STAYS).tag
    _move(environments / MOVES, "transformers", "5.0.0")  # a pin it has never had
    _new_sweep()
    assert current_run(runs, _prepared(environments, MOVES), MODES) is None
    unchanged = _prepared(environments, STAYS)
    assert unchanged.tag == stays_tag  # the group's shared CUDA layer did not move
    assert current_run(runs, unchanged, MODES) is not None
