"""The smoke suite in a container of a cell's image: no network, the image's non-root user, a
read-only root filesystem; results come back through a bind-mounted folder, and a container
that cannot start or dies without results is recorded as `crash` with the reason.
"""

from __future__ import annotations

import contextlib
import platform
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from audiomatrix.image.engine import (
    LABEL,
    EngineError,
    client,
    engine_call,
    engine_version,
    first_line,
)
from audiomatrix.lock.cell_lock import CellLock
from audiomatrix.records.run import RunResult, Where
from audiomatrix.smoke import results
from audiomatrix.smoke.runner import collect, runner_args
from audiomatrix.suite import probe, schema
from audiomatrix.suite.schema import MODES

STOPPED_EXIT = 143
"""A smoke container's exit code after SIGTERM (its init passes the signal on): the engine
shutting down or `docker stop`, never the runner's own doing (the OOM killer gives 137)."""


def checks_in_suite(names: Sequence[str] = ()) -> list[str]:
    """The suite's check names (only the named ones, when names are given)."""
    return [c.name for c in schema.CHECKS if not names or c.name in names]


def unmeasured_environment() -> schema.Environment:
    """For a run whose container never reported: the host as seen from outside, and no fact
    about the image's environment (so the report shows the run apart from its cell)."""
    return schema.Environment(
        schema=schema.SCHEMA,
        versions={},
        host=schema.Host(os=platform.platform(), machine=platform.machine(), cpu=probe.cpu_name()),
        facts=schema.Facts(python="", libpython=False),
        provenance=probe.provenance(),
    )


def crash_result(
    cell: CellLock,
    reason: str,
    where: Mapping[str, Any],
    started: datetime,
    results_root: Path,
    modes: Sequence[str] = MODES,
    checks: Sequence[str] = (),
) -> RunResult:
    """Every check `crash` with the one-line reason, written like any other result."""
    finished = datetime.now(UTC)
    crashed = [
        schema.CheckOutcome(check=c, status="crash", duration_s=0.0, first_error=reason[:500])
        for c in checks_in_suite(checks)
    ]
    result = RunResult(
        cell=cell.cell,
        run=results.run_id(started),
        started=started,
        finished=finished,
        where=Where(**where),
        lock_sha256=cell.lock_sha256,
        environment=unmeasured_environment(),
        modes={m: crashed for m in modes},  # type: ignore[misc]
    )
    results.write(results_root, result)
    return result


def has_nvidia_runtime(api: docker.DockerClient) -> bool:
    return "nvidia" in (api.info().get("Runtimes") or {})


def suite_mounts(suites: Sequence[Path]) -> dict[str, str]:
    """Where each folder of extra checks appears in a smoke container (read-only)."""
    return {str(folder.resolve()): f"/checks/{i}" for i, folder in enumerate(suites)}


def container_options(
    out: Path, mem_limit: str = "8g", gpu: bool = False, suites: Sequence[Path] = ()
) -> dict[str, Any]:
    """How smoke containers run: no network, the image's non-root user, read-only root,
    writable only /tmp (tmpfs) and /out (the host folder `out`), the folders of extra checks
    read-only, no capabilities. An init process passes SIGTERM on to the runner, so a stopped
    container exits 143."""
    extra = {host: {"bind": inside, "mode": "ro"} for host, inside in suite_mounts(suites).items()}
    return {
        "init": True,
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {"/tmp": "rw,exec,nosuid,size=4g"},
        "mem_limit": mem_limit,
        "volumes": {str(out): {"bind": "/out", "mode": "rw"}, **extra},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": 4096,
        "device_requests": [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
        if gpu
        else None,
    }


def remove_leftovers(api: docker.DockerClient, cell: str) -> None:
    """Remove the cell's stopped smoke containers: what a run the engine's stop interrupted
    could not clean up (running ones belong to another run and stay)."""
    for old in api.containers.list(all=True, filters={"label": f"{LABEL}.cell={cell}"}):
        if old.status != "running":
            with contextlib.suppress(docker.errors.APIError):
                old.remove(force=True)


def smoke_in_image(
    image_tag: str,
    cell: CellLock,
    results_root: Path,
    *,
    modes: Sequence[str] = MODES,
    checks: Sequence[str] = (),
    suites: Sequence[Path] = (),
    mem_limit: str = "8g",
    timeout_s: float = 3 * 3600,
    echo: Callable[[str], None] = print,
) -> RunResult:
    """Run the suite in a container of the cell's image and write results/<cell>/<run>.json.

    No network, the image's non-root user, a read-only root filesystem (tmpfs /tmp), a memory
    limit; the runner writes into a bind-mounted folder that is read back here. `suites` are
    folders of your own test_*.py checks, mounted read-only and run like the suite's. A
    container that cannot start or dies without results gives every check `crash` with the
    reason.
    """
    started = datetime.now(UTC)
    with engine_call(f"the smoke run of {cell.cell}"):
        api = client()
        image = api.images.get(image_tag)
        where = {"kind": "image", "image": image_tag, "image_digest": image.id}
        remove_leftovers(api, cell.cell)
        command = ["python", *runner_args("/out", modes, checks, suite_mounts(suites).values())]
        gpu = cell.record.cell.device == "cuda" and has_nvidia_runtime(api)
        with tempfile.TemporaryDirectory(prefix=f"smoke-{cell.cell}-") as tmp:
            out = Path(tmp) / "out"
            out.mkdir()
            out.chmod(0o777)  # the image's user writes here; the folder is private to tmp
            container = None
            try:
                options = container_options(out, mem_limit, gpu=gpu, suites=suites)
                options["labels"] = {f"{LABEL}.cell": cell.cell}
                container = api.containers.run(image_tag, command, detach=True, **options)
                for line in container.logs(stream=True, follow=True):
                    echo(line.decode(errors="replace").rstrip())
                status = container.wait(timeout=timeout_s)
            except docker.errors.APIError as exc:
                return crash_result(
                    cell, f"the container did not start: {first_line(exc)}", where, started,
                    results_root, modes, checks,
                )  # fmt: skip
            except requests.exceptions.ReadTimeout:
                status = {"StatusCode": None, "Error": {"Message": f"over {timeout_s:.0f} s"}}
            finally:
                if container is not None:
                    with contextlib.suppress(docker.errors.DockerException):
                        container.remove(force=True)
            if status.get("StatusCode") == STOPPED_EXIT or not engine_version():
                raise EngineError(
                    f"the smoke run of {cell.cell} was stopped from outside (the engine shut "
                    "down, or `docker stop`): nothing recorded for it; rerun to resume"
                )
            if not (out / "environment.json").exists():
                code = status.get("StatusCode")
                why = (status.get("Error") or {}).get("Message") or f"exit code {code}"
                if code == 137:
                    why = f"killed (exit 137: out of memory at {mem_limit}, or a hang)"
                return crash_result(
                    cell, f"the smoke runner wrote nothing: {why}", where, started,
                    results_root, modes, checks,
                )  # fmt: skip
            return collect(cell, out, results_root, where, started)
