"""The CPython a cell declares, found on this machine for an image or a native venv.

Nothing is downloaded: an image gets its base's own python3 when that is the declared
version, else a CPython built for the same distribution that this machine has (a pyenv build,
say) copied in whole; a native venv gets the machine's interpreter of that version. pyenv's
shims are skipped (they fail for versions that are not active); its builds are found where
pyenv keeps them. TorchCodec links to libpython, so a copied build must be a shared one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiomatrix.core.files import cache_dir, kept_answer, write_atomic

# Run by the candidate itself: where it lives and what it is.
_INSPECT = r"""
import json, os, platform, sys, sysconfig
print(json.dumps({
    "version": platform.python_version(),
    "prefix": sys.base_prefix,
    "executable": os.path.realpath(sys.executable),
    "shared": bool(sysconfig.get_config_var("Py_ENABLE_SHARED")),
    "libdir": sysconfig.get_config_var("LIBDIR"),
}))
"""
SKIPPED = frozenset({"test", "idlelib", "tkinter", "turtledemo", "__pycache__", "site-packages"})
"""Left out of a copied build: the test suite and GUI parts (a third of its size), bytecode
caches, and anything installed into it."""


@dataclass(frozen=True)
class Interpreter:
    version: str
    prefix: Path
    executable: Path
    shared: bool

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


def candidates(minor: str) -> Iterator[Path]:
    """Interpreters that may be CPython `minor`: pyenv's builds (newest first), then PATH."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    builds = sorted(root.glob(f"{minor}.*"), key=lambda p: _release(p.name), reverse=True)
    for build in builds:
        yield build / "bin" / f"python{minor}"
    found = shutil.which(f"python{minor}")
    if found and "shims" not in Path(found).parts:
        yield Path(found)


def _release(name: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else -1 for p in name.split("."))


def inspect(path: Path) -> Interpreter | None:
    """What `path` is, asked of itself once per build of it (files.kept_answer); None when it
    does not run."""

    def ask() -> dict[str, Any] | None:
        try:
            proc = subprocess.run(
                [str(path), "-I", "-c", _INSPECT], capture_output=True, text=True, timeout=60
            )
            return dict(json.loads(proc.stdout))
        except (OSError, subprocess.TimeoutExpired, ValueError):
            return None

    data = kept_answer(path, "python-inspect", ask)
    if data is None:
        return None
    return Interpreter(
        version=data["version"],
        prefix=Path(data["prefix"]),
        executable=Path(data["executable"]),
        shared=data["shared"],
    )


@functools.cache
def find(minor: str) -> Interpreter | None:
    """This machine's CPython `minor` (3.12), or None."""
    for path in candidates(minor):
        found = inspect(path) if path.exists() else None
        if found and found.minor == minor:
            return found
    return None


def archive(interpreter: Interpreter) -> Path:
    """A tar of the build (without its tests, GUI and caches) in the machine cache, made once
    per build: what an image copies to /opt/python."""
    digest = hashlib.sha256(str(interpreter.prefix).encode()).hexdigest()[:12]
    path = cache_dir() / "interpreters" / f"cpython-{interpreter.version}-{digest}.tar"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        with tarfile.open(partial, "w") as out:
            for item in sorted(interpreter.prefix.rglob("*")):
                if SKIPPED.intersection(item.relative_to(interpreter.prefix).parts):
                    continue
                if item.is_file() or item.is_symlink():
                    out.add(item, arcname=str(item.relative_to(interpreter.prefix)),
                            recursive=False, filter=_normalise)  # fmt: skip
        os.replace(partial, path)
    return path


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def manifest(path: Path) -> str:
    """The archive's identity for a content tag (its sha256, computed once per file)."""
    stamp = path.with_suffix(".sha256")
    if not stamp.exists():
        write_atomic(stamp, hashlib.sha256(path.read_bytes()).hexdigest())
    return stamp.read_text()
