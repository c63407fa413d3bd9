"""What this machine can do for the pipeline: each check is a short probe, never a failure."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from audiomatrix.check import gpu
from audiomatrix.lock import uvtool
from audiomatrix.lock.installers import uv


@dataclass(frozen=True)
class Check:
    what: str
    ok: bool
    detail: str


def _uv() -> Check:
    try:
        return Check("uv", True, f"{uvtool.uv_version()} ({uvtool.uv_binary()})")
    except (OSError, subprocess.CalledProcessError, ImportError) as exc:
        return Check("uv", False, f"not usable: {exc}; run `make setup`")


def _docker() -> Check:
    import docker
    from docker.errors import DockerException

    try:
        version = docker.from_env(timeout=5).version()
    except DockerException as exc:
        where = os.environ.get("DOCKER_HOST", "the default socket")
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Check("Docker Engine", False, f"none answers at {where}: {first}")
    return Check("Docker Engine", True, f"{version['Version']} (API {version['ApiVersion']})")


def _debootstrap() -> Check:
    path = shutil.which("debootstrap")
    if path:
        return Check("debootstrap", True, path)
    return Check(
        "debootstrap",
        False,
        "missing: base images cannot be built offline (apt-get install debootstrap)",
    )


def _gpu() -> Check:
    found = gpu.local_gpus()
    if isinstance(found, str):
        return Check(
            "GPU", False, f"{found}: GPU checks will skip" if found == gpu.NO_SMI else found
        )
    return Check("GPU", True, "; ".join(g.label for g in found))


def _default_index() -> Check:
    """Ask uv itself, so the check uses the same index, proxy and CA settings as a lock."""
    try:
        proc = subprocess.run(
            [uvtool.uv_binary(), "pip", "compile", "-", "--no-config", "--no-cache", "--quiet"],
            input="packaging\n",
            env=uvtool.clean_environment(os.environ),
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired, ImportError) as exc:
        return Check("default package index", False, str(exc))
    if proc.returncode == 0:
        return Check("default package index", True, "answers (uv's default)")
    return Check("default package index", False, uvtool.one_line(proc.stderr))


def checks(indexes: Iterable[str]) -> list[Check]:
    found = [_uv(), _docker(), _debootstrap(), _gpu(), _default_index()]
    for url in indexes:
        problem = uv.index_problem(url)
        found.append(Check(f"index {url}", problem is None, problem or "answers"))
    return found
