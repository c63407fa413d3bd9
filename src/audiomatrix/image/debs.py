"""A host-side cache of Debian packages: system libraries (FFmpeg) for images and native runs.

A cell that declares FFmpeg gets its distribution's own FFmpeg shared libraries, downloaded
once per machine by the host's apt (its configured archive, a private state folder, so no
root and no change to the host's apt) and reused by every build and native run. The packages
to fetch are the closure of what was asked minus what a given dpkg status file (the host's,
or a base image's) already has, exactly as apt would install them there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from audiomatrix.core.errors import AudiomatrixError
from audiomatrix.core.files import cache_dir, sha256_file, write_atomic

HOST_STATUS = Path("/var/lib/dpkg/status")
LISTS_MAX_AGE_S = 24 * 3600
APT_TIMEOUT_S = 1800
LIBRARY_DIRS = ("lib/*-linux-gnu", "usr/lib/*-linux-gnu")
Echo = Callable[[str], None]


class DebError(AudiomatrixError):
    """Debian packages that cannot be had here, with the one line that says why."""


def deb_cache() -> Path:
    return cache_dir() / "debs"


def apt_options(cache: Path, status: Path) -> list[str]:
    """apt with its own lists, archive folder and dpkg status: the host's sources, but no
    lock, no root and nothing of the host's package state touched."""
    return [
        "-o", f"Dir::State::Lists={cache / 'lists'}",
        "-o", f"Dir::Cache::Archives={cache / 'archives'}",
        "-o", f"Dir::Cache={cache / 'apt-cache'}",
        "-o", f"Dir::State::status={status}",
        "-o", "Debug::NoLocking=1",
        "-o", "APT::Install-Recommends=false",
        "-q",
    ]  # fmt: skip


def _apt(args: Sequence[str], echo: Echo) -> str:
    if not shutil.which("apt-get"):
        raise DebError("this machine has no apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    try:
        proc = subprocess.run(
            ["apt-get", *args], capture_output=True, text=True, env=env, timeout=APT_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise DebError(f"apt-get {args[-1]} took over {APT_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(("E:", "W:"))]
        raise DebError(f"apt-get failed: {(lines or [proc.stderr.strip() or '?'])[0]}")
    return proc.stdout


def refresh_lists(cache: Path, echo: Echo) -> None:
    """The package lists, fetched at most once a day into the private state folder."""
    marker = cache / "lists" / ".updated"
    if marker.exists() and time.time() - marker.stat().st_mtime < LISTS_MAX_AGE_S:
        return
    for folder in ("lists/partial", "archives/partial", "apt-cache"):
        (cache / folder).mkdir(parents=True, exist_ok=True)
    echo("apt: fetching the package lists")
    _apt([*apt_options(cache, HOST_STATUS), "update"], echo)
    marker.touch()


def planned(simulation: str) -> list[tuple[str, str, str]]:
    """(package, version, architecture) of each `Inst` line of `apt-get install -s`."""
    return re.findall(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) .*?\[(\S+)\]\)", simulation, re.M)


def archive_name(package: str, version: str, arch: str) -> str:
    """The file name apt gives a downloaded package (an epoch's ':' is escaped)."""
    return f"{package}_{version.replace(':', '%3a')}_{arch}.deb"


def download(packages: Sequence[str], status: Path, echo: Echo = print) -> list[Path]:
    """The .deb files that install `packages` on a system with this dpkg status, downloaded
    into the machine's cache (once); [] when that system already has them all. apt's plan is
    kept for the same packages, status and package lists, so an unchanged image's rebuild
    check runs no apt at all."""
    cache = deb_cache()
    refresh_lists(cache, echo)
    updated = (cache / "lists" / ".updated").stat().st_mtime
    inputs = [sorted(packages), sha256_file(status), updated]
    key = hashlib.sha256(json.dumps(inputs).encode()).hexdigest()[:24]
    remembered = cache / "plans" / f"{key}.json"
    if remembered.exists():
        files = [cache / "archives" / name for name in json.loads(remembered.read_text())]
        if all(f.exists() for f in files):
            return files
    options = apt_options(cache, status)
    plan = planned(_apt([*options, "install", "-s", "-y", *packages], echo))
    files = [cache / "archives" / archive_name(*entry) for entry in plan]
    if any(not f.exists() for f in files):
        echo(f"apt: downloading {len(plan)} packages for {' '.join(packages)}")
        _apt([*options, "install", "--download-only", "-y", *packages], echo)
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise DebError(f"apt did not download {missing[0]}")
    write_atomic(remembered, json.dumps([f.name for f in files]))
    return files


def unpacked(packages: Sequence[str], echo: Echo = print) -> list[Path]:
    """The library folders of `packages` unpacked for this host (what it lacks of their
    closure), to put first on a native run's library path; [] when the host has them all."""
    files = download(packages, HOST_STATUS, echo)
    if not files:
        return []
    key = hashlib.sha256("\n".join(sorted(f.name for f in files)).encode()).hexdigest()[:16]
    root = deb_cache() / "roots" / key
    if not (root / ".complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        for deb in files:
            proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], capture_output=True)
            if proc.returncode != 0:
                raise DebError(f"{deb.name} does not unpack: {proc.stderr.decode()[:200]}")
        (root / ".complete").touch()
    return library_dirs(root)


def library_dirs(root: Path) -> list[Path]:
    """The multiarch library folders under an unpacked root, and their subfolders holding
    shared libraries (blas/, lapack/: the targets that update-alternatives would link)."""
    found = []
    for top in sorted(p for pattern in LIBRARY_DIRS for p in root.glob(pattern) if p.is_dir()):
        found.append(top)
        found += sorted(d for d in top.iterdir() if d.is_dir() and any(d.glob("lib*.so*")))
    return found
