"""The dependencies of the sdist-only packages a lock pins, kept so that a relock does not
build those sdists again.

uv reads a wheel's dependencies from its metadata file, but an sdist's only by building it (its
PEP 517 metadata, in an isolated build environment). uv keeps that build for as long as the
index calls the download fresh; an index that sends no cache headers makes every download new,
so each resolution builds every sdist-only package of the lock again (the TTS 0.22 stacks pin a
dozen: 10 s and more of CPU per cell, each time).

So each such sdist is built once, by uv, and what its metadata declares (Requires-Dist,
Requires-Python, Provides-Extra, as written by the build) is kept in the machine cache under the
sdist's sha256: a file on the index never changes under its hash. A later resolution of the same
cell gets those as uv's `dependency-metadata`, which uv applies by name and version, not by
file. An entry is therefore offered only where the cell's previous resolution pinned exactly
that sdist, and it stands only if the new lock pins the same version with that one file and
nothing else: a lock's hashes are every file of the version the index serves as of the date
(wheels for every platform included), so no other file could have given uv different
metadata. Otherwise the cell is resolved again without the entries it did not bear out.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import fcntl
import json
import re
import shutil
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from audiomatrix.core.files import cache_dir, sha256_json, write_atomic

CONFIG_FILE = "uv.toml"
"""What the resolution reads its entries from (`--config-file`, beside `--no-config`)."""

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)
"""A requirement line `name==version` of a lock (or of pasted text)."""
_HASH = re.compile(r"^\s+--hash=sha256:([0-9a-f]{64})")

Run = Callable[[list[str]], tuple[int, str]]
"""Runs uv with these arguments in the lock's scratch folder: (returncode, stderr)."""


@dataclass(frozen=True)
class Pin:
    """A lock's requirement: its version and the sha256 of every file of that version."""

    name: str
    version: str
    hashes: tuple[str, ...]


def hashed_pins(lock: str) -> dict[str, Pin]:
    """A hash-pinned requirements file's pins, by canonical name."""
    found: dict[str, Pin] = {}
    current: Pin | None = None
    for line in lock.splitlines():
        if pin := PIN.match(line):
            current = Pin(pin.group(1), pin.group(2), ())
            found[canonicalize_name(current.name)] = current
        elif (digest := _HASH.match(line)) and current is not None:
            current = Pin(current.name, current.version, (*current.hashes, digest.group(1)))
            found[canonicalize_name(current.name)] = current
    return found


def static_metadata(text: str) -> dict[str, Any]:
    """A METADATA (or PKG-INFO) file's fields that uv resolves with, as uv's
    `dependency-metadata` entry spells them, each exactly as the file declares it."""
    message = email.parser.Parser(policy=email.policy.compat32).parsestr(text, headersonly=True)
    entry: dict[str, Any] = {
        "name": message["Name"],
        "version": message["Version"],
        "requires-dist": message.get_all("Requires-Dist") or [],
        "provides-extras": message.get_all("Provides-Extra") or [],
    }
    if message["Requires-Python"]:
        entry["requires-python"] = message["Requires-Python"]
    if not entry["name"] or not entry["version"]:
        raise ValueError("a metadata file without Name or Version")
    return entry


def _toml_string(value: str) -> str:
    # JSON's escapes (\" \\ \n \uXXXX) are TOML's; non-ASCII stays as it is (TOML is UTF-8).
    return json.dumps(value, ensure_ascii=False)


def dependency_metadata_toml(entries: Iterable[dict[str, Any]]) -> str:
    """A uv.toml that holds only these `dependency-metadata` entries."""
    blocks = []
    for entry in entries:
        lines = ["[[dependency-metadata]]"]
        for key in ("name", "version", "requires-python"):
            if key in entry:
                lines.append(f"{key} = {_toml_string(entry[key])}")
        for key in ("requires-dist", "provides-extras"):
            items = ", ".join(_toml_string(item) for item in entry[key])
            lines.append(f"{key} = [{items}]")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _same_version(one: str, other: str) -> bool:
    try:
        return Version(one) == Version(other)
    except InvalidVersion:
        return one == other


def borne_out(entry: dict[str, Any], sha256: str, pins: dict[str, Pin]) -> bool:
    """Whether a lock pins the entry's version with the one file it was read from and no
    other: then uv, without the entry, would have built that very sdist for it."""
    pin = pins.get(canonicalize_name(entry["name"]))
    return (
        pin is not None and _same_version(pin.version, entry["version"]) and pin.hashes == (sha256,)
    )


# ------------------------------------------------------------------------- the machine cache


def _folder() -> Path:
    return cache_dir() / "sdist-metadata"


def _file_record(sha256: str) -> Path:
    return _folder() / "files" / f"{sha256}.json"


def _hint(key: str) -> Path:
    return _folder() / "cells" / f"{key}.json"


def _read(path: Path) -> Any:
    """A cache file's data; None when it is missing or damaged (it is simply learnt again)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _keep(path: Path, data: Any) -> None:
    with contextlib.suppress(OSError):  # a read-only or full cache only costs the next relock
        write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def resolution_key(inputs: dict[str, Any]) -> str:
    """What a cell's resolutions share across dates: its inputs but `exclude_newer`."""
    return sha256_json({k: v for k, v in inputs.items() if k != "exclude_newer"})


def offered(key: str) -> dict[str, dict[str, Any]]:
    """The entries for the sdists the cell's previous resolution pinned, by sha256."""
    known = {}
    for sha256 in _read(_hint(key)) or []:
        record = _read(_file_record(str(sha256)))
        if isinstance(record, dict) and record.get("kind") == "sdist":
            known[sha256] = record["metadata"]
    return known


# ---------------------------------------------------------------------------- learning them


def _file_kinds(pylock: str) -> dict[str, str]:
    """sha256 -> "sdist" or "wheel" for every file a pylock.toml lists."""
    kinds = {}
    for package in tomllib.loads(pylock).get("packages", []):
        if sdist := package.get("sdist"):
            kinds[sdist["hashes"]["sha256"]] = "sdist"
        for wheel in package.get("wheels", []):
            kinds[wheel["hashes"]["sha256"]] = "wheel"
    return kinds


def _identify(pins: Sequence[Pin], work: Path, run: Run, target: list[str]) -> dict[str, str]:
    """Whether each pin's one file is an sdist or a wheel, as uv's pylock.toml for those very
    versions says (no dependencies, so nothing is built)."""
    (work / "single-files.in").write_text("".join(f"{p.name}=={p.version}\n" for p in pins))
    args = ["pip", "compile", "single-files.in", "--no-deps", "--quiet",
            "--format", "pylock.toml", "--output-file", "pylock.toml", *target]  # fmt: skip
    code, _ = run(args)
    return _file_kinds((work / "pylock.toml").read_text()) if code == 0 else {}


def _built_metadata(pin: Pin, work: Path, run: Run, source: list[str]) -> dict[str, Any] | None:
    """The pin's sdist built by uv into a throwaway folder (that file only: its hash is
    required) and its metadata as the build wrote it; None when uv could not build it."""
    target = work / "built"
    shutil.rmtree(target, ignore_errors=True)
    (work / "sdist.txt").write_text(f"{pin.name}=={pin.version} --hash=sha256:{pin.hashes[0]}\n")
    args = ["pip", "install", "--quiet", "--target", str(target), "--no-deps",
            "--no-binary", pin.name, "--require-hashes", "-r", "sdist.txt", *source]  # fmt: skip
    try:
        code, _ = run(args)
        found = list(target.glob("*.dist-info/METADATA")) if code == 0 else []
        if len(found) != 1:
            return None
        entry = static_metadata(found[0].read_text(encoding="utf-8"))
    except ValueError:
        return None
    finally:
        shutil.rmtree(target, ignore_errors=True)
    same = canonicalize_name(entry["name"]) == canonicalize_name(pin.name)
    return entry if same and _same_version(entry["version"], pin.version) else None


def learn(
    lock: str, key: str, work: Path, run: Run, *, target: list[str], source: list[str]
) -> None:
    """After a resolution: keep what each newly pinned one-file version is (an sdist's metadata
    built once; a wheel needs nothing) and which sdists this cell pins, for its next
    resolution. `target` and `source` are the uv arguments that aim at the cell's platform and
    at its index and date."""
    singles = [pin for pin in hashed_pins(lock).values() if len(pin.hashes) == 1]
    unknown = [pin for pin in singles if _read(_file_record(pin.hashes[0])) is None]
    kinds = _identify(unknown, work, run, target) if unknown else {}
    for pin in unknown:
        sha256 = pin.hashes[0]
        kind = kinds.get(sha256)
        if kind == "wheel":
            _keep(_file_record(sha256), {"kind": kind, "name": pin.name, "version": pin.version})
        elif kind == "sdist":
            _build_once(pin, work, run, source)
    sdists = sorted(_sdists(singles))
    if sdists != _read(_hint(key)):
        _keep(_hint(key), sdists)


def _sdists(pins: Iterable[Pin]) -> set[str]:
    found = set()
    for pin in pins:
        record = _read(_file_record(pin.hashes[0]))
        if isinstance(record, dict) and record.get("kind") == "sdist":
            found.add(pin.hashes[0])
    return found


def _build_once(pin: Pin, work: Path, run: Run, source: list[str]) -> None:
    """Build the sdist unless another resolution (another cell, another process) has kept it
    meanwhile: cells locked side by side often pin the same sdists."""
    sha256 = pin.hashes[0]
    guard_path = _folder() / "building" / f"{sha256}.lock"
    try:
        guard_path.parent.mkdir(parents=True, exist_ok=True)
        guard = guard_path.open("w")
    except OSError:
        return
    with guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if _read(_file_record(sha256)) is not None:
            return
        if (metadata := _built_metadata(pin, work, run, source)) is not None:
            record = {"kind": "sdist", "name": pin.name, "version": pin.version}
            _keep(_file_record(sha256), {**record, "metadata": metadata})
