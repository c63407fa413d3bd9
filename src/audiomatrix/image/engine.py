"""The Docker Engine every image stage talks to: a client, an engine that answers (started here
as root when none runs), and one-line errors when it is missing or goes away mid-run, so a
stage stops with what to do instead of a traceback.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from audiomatrix.core.errors import AudiomatrixError
from audiomatrix.core.files import cache_dir

LABEL = "org.audiomatrix"
"""The prefix of the labels on the images and containers audiomatrix makes."""
DOCKERD_PIDFILE = Path("/var/run/docker.pid")


class EngineError(AudiomatrixError):
    """No Docker Engine answers, or it went away: one line saying what to do."""


def client(timeout: int = 600) -> docker.DockerClient:
    """The engine from DOCKER_HOST or the default socket, API version negotiated once per
    engine address and process (a stage makes a client per step; asking the version each
    time was most of a no-op run)."""
    where = os.environ.get("DOCKER_HOST", "")
    try:
        made = docker.from_env(version=_API_VERSIONS.get(where, "auto"), timeout=timeout)
    except docker.errors.DockerException as exc:
        raise EngineError(_engine_hint(exc)) from None
    _API_VERSIONS[where] = made.api.api_version
    return made


_API_VERSIONS: dict[str, str] = {}
"""The API version each engine address answered with, by DOCKER_HOST ("" for the default)."""


def _engine_hint(exc: BaseException) -> str:
    where = os.environ.get("DOCKER_HOST", "the default socket")
    first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return (
        f"no Docker Engine answers at {where} ({first}): run `audiomatrix engine` as root, "
        "or start Docker (`sudo systemctl start docker`) or set DOCKER_HOST"
    )


def engine_version() -> str | None:
    try:
        return str(client(timeout=10).version()["Version"])
    except (EngineError, docker.errors.DockerException, requests.exceptions.RequestException):
        return None


def ensure_engine(wait_s: float = 60) -> str:
    """A Docker Engine that answers, and its version. As root with none running and no
    DOCKER_HOST, start dockerd in the background (once, even if called concurrently)."""
    version = engine_version()
    if version:
        return version
    if os.environ.get("DOCKER_HOST"):
        raise EngineError(f"no Docker Engine answers at DOCKER_HOST={os.environ['DOCKER_HOST']}")
    if os.geteuid() != 0:
        raise EngineError(
            "no Docker Engine answers: start it (`sudo systemctl start docker`, or "
            "`sudo audiomatrix engine`), or set DOCKER_HOST"
        )
    dockerd = shutil.which("dockerd")
    if not dockerd:
        raise EngineError(
            "no Docker Engine answers and dockerd is not installed: "
            "`apt-get install docker.io` (as root), then `audiomatrix engine`"
        )
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "dockerd.log"
    with (folder / "dockerd.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        version = engine_version()
        if version:
            return version
        deadline = time.monotonic() + wait_s
        while stopping_dockerd() and time.monotonic() < deadline:
            time.sleep(0.2)
        with log.open("ab") as sink:
            proc = subprocess.Popen(
                [dockerd], stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            version = engine_version()
            if version:
                return version
            if proc.poll() is not None:
                break
            time.sleep(0.5)
    tail = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:]
    raise EngineError(f"dockerd did not start (see {log}): {tail[0][:300] if tail else '?'}")


def stopping_dockerd(pidfile: Path = DOCKERD_PIDFILE) -> int | None:
    """The pid of a dockerd that no longer answers but still runs (shutting down): a new
    one refuses to start while its pid file names a live process."""
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def engine_call(what: str) -> contextlib.AbstractContextManager[None]:
    """Turn a vanished engine into EngineError, so the caller stops with one line."""

    @contextlib.contextmanager
    def guard() -> Iterator[None]:
        try:
            yield
        except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
            if isinstance(exc, docker.errors.APIError) or engine_version():
                raise
            hint = _engine_hint(exc)
            raise EngineError(
                f"the Docker Engine went away during {what}, nothing recorded for it "
                f"(start it and rerun to resume): {hint}"
            ) from None

    return guard()


def find_image(api: docker.DockerClient, ref: str) -> Any | None:
    try:
        return api.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def first_line(exc: BaseException) -> str:
    """An engine error (or any other) as one line: its explanation, else its text."""
    text = getattr(exc, "explanation", None) or str(exc)
    return str(text).strip().splitlines()[0][:300] if str(text).strip() else type(exc).__name__
