"""Whether the report must be written again: what `make matrix` asks when nothing changed.

The report reads every run, log, lock record and publication and renders three files: most
of a no-op `make matrix`. It needs doing again only when an input or the code that renders
it changed, or when someone touched an output. So each write leaves a stamp in the machine
cache (never in the repository): the digest of every input file's path, size and
modification time, and the sha256 of each output as written. A later pass whose digest and
outputs both still match skips the write.

Unlike make's "outputs newer than inputs", the stamp compares the exact times: an input put
back with an older time (an unpacked CI artifact, `cp -p`) still counts as changed. An
interruption before the stamp is written leaves the previous stamp, which no longer
matches, so the next pass writes the report.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from stat import S_ISREG

from audiomatrix.core.files import cache_dir, sha256_file, write_atomic

PACKAGE = Path(__file__).resolve().parents[1]
"""The code, catalog and templates the report is made with."""


def _entries(folder: Path, shown: str) -> Iterable[str]:
    """`shown/relative/path\0size\0mtime` for every file under `folder`, sorted (os.walk:
    pathlib's per-path objects were most of a no-op pass over thousands of runs)."""
    found = []
    for top, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if name != "__pycache__"]
        relative = os.path.relpath(top, folder).replace(os.sep, "/")
        for name in files:
            try:
                stat = os.stat(os.path.join(top, name))
            except OSError:  # a dangling link, or gone since the listing
                continue
            if S_ISREG(stat.st_mode):
                path = name if relative == "." else f"{relative}/{name}"
                found.append(f"{shown}/{path}\0{stat.st_size}\0{stat.st_mtime_ns}")
    return sorted(found)


def inputs_digest(inputs: Sequence[Path]) -> str:
    """One digest of every file under `inputs` and of the package: path, size, mtime."""
    digest = hashlib.sha256()
    for index, folder in enumerate([*inputs, PACKAGE]):
        for entry in _entries(folder, str(index)):
            digest.update(entry.encode() + b"\n")
    return digest.hexdigest()


def stamp_path(root: Path) -> Path:
    """This checkout's stamp in the machine cache, named after its absolute path."""
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return cache_dir() / "report-stamps" / f"{key}.json"


def _outputs(outputs: Sequence[Path]) -> dict[str, str | None]:
    return {p.name: sha256_file(p) if p.is_file() else None for p in outputs}


def is_fresh(root: Path, inputs: Sequence[Path], outputs: Sequence[Path]) -> bool:
    """True when the stamp says the outputs were written from exactly these inputs and
    nobody has changed an output since."""
    try:
        stamp = json.loads(stamp_path(root).read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(stamp, dict)
        and stamp.get("inputs") == inputs_digest(inputs)
        and stamp.get("outputs") == _outputs(outputs)
        and None not in stamp["outputs"].values()
    )


def record(root: Path, digest: str, outputs: Sequence[Path]) -> None:
    """Stamp the outputs just written from the inputs `digest` (inputs_digest) describes,
    taken before they were read: a run written meanwhile leaves the stamp stale."""
    stamp = {"inputs": digest, "outputs": _outputs(outputs)}
    write_atomic(stamp_path(root), json.dumps(stamp, indent=1) + "\n")
