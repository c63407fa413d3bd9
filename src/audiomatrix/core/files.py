"""Writing files so that a reader never sees half of one, and hashing them."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """AUDIOMATRIX_CACHE, else $XDG_CACHE_HOME/audiomatrix: what outlives a checkout (the
    dockerd log, the wheelhouse, native venvs), so CI and every clone on a machine share it."""
    explicit = os.environ.get("AUDIOMATRIX_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "audiomatrix"


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write via a temporary file in the same folder and rename it over `path`.

    A run killed mid-write leaves the old file (or none), never a truncated one. The file
    gets the mode a plain open() would give it (mkstemp's is owner-only). An OSError names
    `path` (a failed write alone names no file: a full disk would say nothing of where).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not exc.filename:
            exc.filename = str(path)
        raise


def current_umask() -> int:
    """The process umask (read by setting it and putting it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def json_text(data: Any) -> str:
    """How audiomatrix writes JSON files: stable key order, so reruns give the same bytes."""
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json_text(data))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    return sha256_bytes(path.read_bytes())


def sha256_json(data: Any) -> str:
    """A hash of data that does not depend on key order or formatting."""
    return sha256_bytes(json.dumps(data, sort_keys=True, separators=(",", ":")).encode())


def describe_error(exc: ValueError) -> str:
    """One line for a JSON or schema error: the field's path and what is wrong with it, so a
    damaged file is named with its fault instead of a traceback."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            return f"not valid JSON: {first['ctx']['error']}"
        where = ".".join(str(p) for p in first["loc"]) or "the top level"
        extra = f" ({exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"field '{where}': {first['msg'][0].lower()}{first['msg'][1:]}{extra}"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
    return str(exc).splitlines()[0]


def read_text(path: Path) -> str:
    """A file the tool reads, as UTF-8; ValueError (one line) when it is not text."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x})"
        ) from None


def kept_answer(binary: Path, question: str, ask: Callable[[], Any]) -> Any:
    """What `binary` answers to `question` (ask() runs it), asked once per build of it: the
    answer is kept in the machine cache under the binary's path, size and time, since
    starting a program to learn its version costs more than a no-op step. A None answer (it
    did not run) is not kept."""
    try:
        resolved = binary.resolve()
        stat = resolved.stat()
    except OSError:
        return ask()
    identity = f"{question}\0{resolved}\0{stat.st_size}\0{stat.st_mtime_ns}"
    kept = cache_dir() / "answers" / f"{sha256_bytes(identity.encode())[:24]}.json"
    with contextlib.suppress(OSError, ValueError):
        return json.loads(kept.read_text())
    answer = ask()
    if answer is not None:
        with contextlib.suppress(OSError):  # a read-only cache only costs the next start
            write_atomic(kept, json.dumps(answer))
    return answer
