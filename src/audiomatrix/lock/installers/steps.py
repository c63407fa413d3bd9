"""What an installer declares, as data, for the stages that build and run its cells: how its
image is made (image/) and how its native environment is (smoke/). The engine and subprocess
work stays with those stages; they look it up by the keys declared here, never by the
installer's name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def repository_path(cell: str, name: str) -> str:
    """A lock file's path in the repository (and in a build context that mirrors it)."""
    return f"environments/{cell}/{name}"


@dataclass(frozen=True)
class ImageSteps:
    """How an installer's cell becomes an image."""

    dockerfile: str
    install_script: str
    """The script the Dockerfile runs for each install step, copied into the context."""
    tool: str
    """The tool the Dockerfile copies from its one-file image (image.build.TOOL_IMAGES), and
    that image's key in the content hash an image is tagged by."""
    tool_arg: str
    """The build arg that names the tool's image."""
    lock_args: tuple[str, ...] = ()
    """The build args that name, one each in order, the lock files (lock_files) the build
    context holds as in the repository. None: the host prepares the image instead (the lock
    split into parts, the interpreter, FFmpeg's packages, all served from the wheelhouse)."""

    @property
    def prepared_by_host(self) -> bool:
        return not self.lock_args

    def lock_build_args(self, cell: str, names: Iterable[str]) -> dict[str, str]:
        """The build args naming the cell's lock files (`names`) as the repository has them;
        none where the host prepares the image."""
        if self.prepared_by_host:
            return {}
        paths = (repository_path(cell, name) for name in names)
        return dict(zip(self.lock_args, paths, strict=True))


@dataclass(frozen=True)
class NativeSteps:
    """How an installer's cell gets its environment natively, on the host."""

    environment: str
    """What smoke --native makes (smoke.runner.ENVIRONMENTS): `venv` or `conda`."""
    own_ffmpeg: bool
    """The environment brings its own FFmpeg, so a native run adds no system libraries."""
    tox: bool
    """tox-uv can install its lock (a requirements file), so `audiomatrix tox` gives the
    cell an env."""
