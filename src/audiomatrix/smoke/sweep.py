"""environments/ -> images -> results/: each Linux cell built and smoke-tested in its own image.

Resumable by construction: a cell whose newest image run used exactly the image it would
build now (the same content tag, so the same lock, interpreter, FFmpeg, suite and compat) is
neither built nor run again, even when that image was removed to save disk. Cells go in an
order that lets each build reuse the layers of the one before (CUDA line, then Python, then
torch), and without `keep_images` an image is removed once the next one is built, so at most
two images and the layers they share are on disk.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import docker.errors

from audiomatrix.core.errors import CellError
from audiomatrix.core.versions import version_key
from audiomatrix.image import build as imagebuild
from audiomatrix.image.engine import client, engine_call
from audiomatrix.lock.cell_lock import CellLock
from audiomatrix.records.run import RunResult
from audiomatrix.smoke import container, results
from audiomatrix.suite.schema import MODES

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Step:
    """What happened to one cell."""

    cell: str
    status: str
    """smoked, smoke unchanged, or why the image could not be had (base unavailable, python
    unavailable, failed)."""
    detail: str = ""
    tag: str | None = None
    result: RunResult | None = None
    seconds: float = 0.0
    layers: tuple[tuple[str, int], ...] = ()
    """The built image's layers, bottom first: (the step's id, bytes it adds)."""


def image_layers(tag: str) -> tuple[tuple[str, int], ...]:
    """What an image is made of, for the disk it takes alone and shared with others."""
    with engine_call(f"reading the history of {tag}"):
        history = client().api.history(tag)
    return tuple((str(s["Id"]), int(s["Size"])) for s in reversed(history))


def sweep_order(locks: Iterable[CellLock]) -> list[CellLock]:
    """Neighbours share the most layers: CUDA line, then Python, then torch, then stack."""

    def key(cell: CellLock) -> tuple:
        data = cell.record.cell
        return (data.variant, version_key(data.python), version_key(data.torch), data.stack,
                cell.cell)  # fmt: skip

    return sorted(locks, key=key)


def current_run(
    results_root: Path, prepared: imagebuild.Prepared, modes: Sequence[str]
) -> RunResult | None:
    """The newest image run of the cell if it ran this very image (content tag) and lock in
    every mode asked: then there is nothing new to learn from running it again."""
    latest = results.latest(results_root, prepared.cell.cell, kind="image")
    if (
        latest is not None
        and latest.where.image == prepared.tag
        and latest.lock_sha256 == prepared.cell.lock_sha256
        and set(modes) <= set(latest.modes)
    ):
        return latest
    return None


@contextlib.contextmanager
def peak_disk(every_s: float = 5.0) -> Iterator[Callable[[], int]]:
    """Samples the Docker Engine's disk while the block runs: yields a function that gives
    the peak use above the start, in bytes (what a sweep's record keeps)."""
    with engine_call("reading where the engine keeps its images"):
        root = client().info().get("DockerRootDir") or "/"
    start = shutil.disk_usage(root).used
    peak = [start]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every_s):
            peak[0] = max(peak[0], shutil.disk_usage(root).used)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lambda: max(peak[0], shutil.disk_usage(root).used) - start
    finally:
        stop.set()
        thread.join()


def remove_image(tag: str) -> None:
    """Untag a cell image the sweep no longer needs: its own layers go, shared ones stay."""
    with engine_call(f"removing {tag}"), contextlib.suppress(docker.errors.ImageNotFound):
        client().images.remove(tag, noprune=False)


def run_cell(
    cell: CellLock,
    results_root: Path,
    *,
    modes: Sequence[str],
    checks: Sequence[str],
    suites: Sequence[Path],
    ca_bundle: Path | None,
    echo: Echo,
    progress: Echo,
) -> Step:
    """One cell: skipped when its newest image run is of this very image, else built and
    smoke-tested (with the checks of `suites` too). Only a vanished engine raises."""
    started = time.monotonic()

    def step(status: str, detail: str = "", tag: str | None = None, result=None) -> Step:
        seconds = time.monotonic() - started
        layers = image_layers(tag) if status == "smoked" and tag else ()
        return Step(cell.cell, status, detail, tag, result, seconds, layers)

    ready = imagebuild.prepare(cell, echo)
    if isinstance(ready, imagebuild.BuildResult):
        return step(ready.status, ready.detail)
    done = None if checks or suites else current_run(results_root, ready, modes)
    if done is not None:
        return step("smoke unchanged", f"image {ready.tag}", ready.tag, done)
    built = imagebuild.build(cell, prepared=ready, ca_bundle=ca_bundle, echo=echo,
                             progress=progress)  # fmt: skip
    if not built.ok or built.tag is None:
        return step(built.status, built.detail)
    progress(f"{cell.cell}: smoke in {built.tag}")
    try:
        result = container.smoke_in_image(
            built.tag, cell, results_root, modes=modes, checks=checks, suites=suites,
            echo=progress,
        )  # fmt: skip
    except CellError as exc:
        return step("failed", str(exc))
    return step("smoked", "", built.tag, result)


def image_runs(
    locks: Iterable[CellLock],
    results_root: Path,
    *,
    modes: Sequence[str] = MODES,
    checks: Sequence[str] = (),
    suites: Sequence[Path] = (),
    ca_bundle: Path | None = None,
    keep_images: bool = True,
    echo: Echo = print,
    progress: Echo = lambda _: None,
) -> Iterator[Step]:
    """run_cell for each cell, one Step as each finishes; without keep_images, each image is
    removed once the next one is built (it lent that one its shared layers)."""
    previous: str | None = None
    for cell in locks:
        step = run_cell(cell, results_root, modes=modes, checks=checks, suites=suites,
                        ca_bundle=ca_bundle, echo=echo, progress=progress)  # fmt: skip
        if step.status == "smoked" and not keep_images:
            if previous and previous != step.tag:
                remove_image(previous)
            previous = step.tag
        yield step
    if not keep_images and previous:
        remove_image(previous)
