"""The base image a cell is built on: an existing local one, else a pull, else the suite
bootstrapped from the distribution's packages with debootstrap and imported, the way official
Debian images are made, so a machine without registry access still builds.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.errors

from audiomatrix.core.errors import AudiomatrixError
from audiomatrix.core.files import cache_dir, sha256_bytes, write_atomic
from audiomatrix.image.engine import LABEL, client, find_image, first_line

BASE_REPO = "audiomatrix/base"


class BaseUnavailable(AudiomatrixError):
    """The cell's base image can be neither pulled nor bootstrapped here, with why."""


@dataclass(frozen=True)
class BaseSpec:
    """A base image as debootstrap makes it: distribution, suite and the packages added."""

    distro: str
    suite: str
    variant: str = "minbase"
    include: tuple[str, ...] = ("python3",)

    @property
    def tag(self) -> str:
        digest = sha256_bytes(
            json.dumps([self.distro, self.suite, self.variant, self.include]).encode()
        )
        return f"{BASE_REPO}:{self.suite}-{digest[:12]}"


def base_spec(base: str) -> BaseSpec:
    """`debian:bookworm-slim` -> debian bookworm (the suite is the tag's first word)."""
    name, _, tag = base.partition(":")
    return BaseSpec(distro=name.rsplit("/", 1)[-1], suite=re.split(r"[-.]", tag or "latest")[0])


def apt_mirror(suite: str, sources: Path = Path("/etc/apt")) -> str | None:
    """The first archive this machine's apt sources use for `suite` (deb822 or one-line)."""
    files = [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*"))]
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.MULTILINE))
                if (
                    "deb" in fields.get("Types", "").split()
                    and suite in fields.get("Suites", "").split()
                ):
                    return fields["URIs"].split()[0]
        for line in text.splitlines():
            words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                return words[1]
    return None


def dpkg_status(image: Any) -> Path:
    """The base image's /var/lib/dpkg/status, copied once into the machine cache: apt plans
    the packages an image needs against it, as if it ran inside the image."""
    path = cache_dir() / "debs" / "status" / image.id.removeprefix("sha256:")[:16]
    if path.exists():
        return path
    container = client().containers.create(image.id, command=["true"])
    try:
        stream, _ = container.get_archive("/var/lib/dpkg/status")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.extractfile("status")
            assert member is not None, "the archive of one file holds it"
            write_atomic(path, member.read())
    finally:
        container.remove(force=True)
    return path


def image_python(image: Any) -> str | None:
    """The base image's python3 as `3.11`, recorded as a label when it was bootstrapped."""
    return (image.labels or {}).get(f"{LABEL}.python")


def ensure_base(base: str, echo: Callable[[str], None] = print) -> tuple[str, Any]:
    """The tag of a local base image for `base` (e.g. debian:bookworm-slim) and the image: an
    existing bootstrap, else a pull, else a debootstrap build. Raises BaseUnavailable with
    why."""
    if base in _BASE_FAILURES:
        raise BaseUnavailable(_BASE_FAILURES[base])
    api = client()
    spec = base_spec(base)
    for ref in (spec.tag, base):
        found = find_image(api, ref)
        if found:
            return ref, found
    try:
        return base, api.images.pull(base)
    except docker.errors.APIError as exc:
        pulled = f"pull failed: {first_line(exc)}"
    echo(f"{base}: {pulled}; bootstrapping from packages")
    try:
        tag = bootstrap_base(spec, echo)
        return tag, api.images.get(tag)
    except BaseUnavailable as exc:
        _BASE_FAILURES[base] = f"{base}: {pulled}; {exc}"
        raise BaseUnavailable(_BASE_FAILURES[base]) from None


_BASE_FAILURES: dict[str, str] = {}
"""Bases that failed in this process, so N cells on one base try once."""


def bootstrap_base(spec: BaseSpec, echo: Callable[[str], None] = print) -> str:
    """debootstrap the suite into a folder, tar it and `docker import` it as spec.tag."""
    debootstrap = shutil.which("debootstrap")
    if not debootstrap:
        raise BaseUnavailable("debootstrap is not installed (`apt-get install debootstrap`)")
    scripts = Path(debootstrap).resolve().parent.parent / "share" / "debootstrap" / "scripts"
    if scripts.is_dir() and not (scripts / spec.suite).exists():
        raise BaseUnavailable(f"this debootstrap has no script for {spec.suite}")
    if os.geteuid() != 0:
        raise BaseUnavailable("debootstrap needs root")
    mirror = os.environ.get(f"AUDIOMATRIX_MIRROR_{spec.suite.upper()}") or apt_mirror(spec.suite)
    work = cache_dir() / "base"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix=f"{spec.suite}-") as tmp:
        root = Path(tmp) / "rootfs"
        command = [
            debootstrap, f"--variant={spec.variant}", f"--include={','.join(spec.include)}",
            spec.suite, str(root), *([mirror] if mirror else []),
        ]  # fmt: skip
        echo(f"debootstrap {spec.suite} from {mirror or 'its default mirror'}")
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
            raise BaseUnavailable(f"debootstrap {spec.suite} failed: {lines[-1] if lines else '?'}")
        _tidy_rootfs(root)
        python = _rootfs_python(root)
        archive = Path(tmp) / "rootfs.tar"
        subprocess.run(
            ["tar", "-C", str(root), "--numeric-owner", "-cf", str(archive), "."], check=True
        )
        repository, _, tag = spec.tag.partition(":")
        changes = [
            f'LABEL {LABEL}.python="{python}" {LABEL}.suite="{spec.suite}"',
            "ENV LANG=C.UTF-8",
            'CMD ["bash"]',
        ]
        client().api.import_image_from_file(
            str(archive), repository=repository, tag=tag, changes=changes
        )
    return spec.tag


def _tidy_rootfs(root: Path) -> None:
    """What official images drop: downloaded packages and lists; recommends stay off."""
    for folder in (root / "var/cache/apt/archives", root / "var/lib/apt/lists"):
        for entry in folder.glob("*"):
            if entry.is_file():
                entry.unlink()
    (root / "etc/apt/apt.conf.d/90audiomatrix").write_text(
        'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n'
    )


def _rootfs_python(root: Path) -> str:
    found = sorted(p.name for p in (root / "usr/bin").glob("python3.*") if p.name[8:].isdigit())
    return found[-1].removeprefix("python") if found else ""
