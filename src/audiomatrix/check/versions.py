"""A person's versions without running anything: pinned words, a lock, an environment.yml's
pins, or a requirements file resolved by `uv pip compile` (as lock/ runs uv: no config file,
no index setting of this machine), matched against the catalog's version ranges.

A range says where a failure can happen, not that it will: an entry whose failure is a package
missing (`No module named 'six'`, `TorchCodec is required for ...`) is not expected where that
package is installed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet

from audiomatrix.catalog.signatures import Signature, catalog
from audiomatrix.check.errors import CheckError, CheckInputError
from audiomatrix.check.evidence import missing_package, public
from audiomatrix.lock import uvtool
from audiomatrix.lock.installers.uv import PIN
from audiomatrix.suite.probe import normalise

UV_TIMEOUT_S = 300
PYTHON_VERSION = re.compile(r"^3\.\d+(\.\d+)?$")
CONDA_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*==?\s*([0-9][^=\s]*)")


@dataclass(frozen=True)
class Expected:
    """A catalog entry whose every range holds these versions."""

    signature: Signature
    because: list[str]
    """Each range and the version in it: `torch 2.6.0 in >=2.6`."""


def python_version(given: str | None) -> str:
    """X.Y of --python-version, else of this interpreter."""
    if given is None:
        return f"{sys.version_info[0]}.{sys.version_info[1]}"
    if not PYTHON_VERSION.match(given):
        raise CheckInputError(f"--python-version {given}: give a version like 3.11")
    return ".".join(given.split(".")[:2])


def pinned_words(words: Iterable[str]) -> dict[str, str]:
    """`torch==2.6.0` words as {normalised name: version}; anything else is bad input."""
    found = {}
    for word in words:
        pin = PIN.fullmatch(word.strip())
        if pin is None:
            raise CheckInputError(f"{word}: give pinned versions like torch==2.6.0")
        found[normalise(pin.group(1))] = pin.group(2)
    return found


def read_input(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not a text file"
        raise CheckInputError(f"{path}: cannot read the {what}: {why}") from None


def lock_pins(text: str) -> dict[str, str]:
    """A lock's requirement lines (`name==version`, hashes and comments aside)."""
    return {normalise(name): version for name, version in PIN.findall(text)}


def environment_pins(path: Path) -> dict[str, str]:
    """An environment.yml's pinned packages, conda's (`name=1.2`, `name==1.2=build`) and its
    pip section's, without a solve."""
    try:
        data = yaml.safe_load(read_input(path, "environment file")) or {}
    except yaml.YAMLError as exc:
        raise CheckInputError(f"{path}: not YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("dependencies"), list):
        raise CheckInputError(f"{path}: no `dependencies:` list, as environment.yml has")
    found = {}
    for item in data["dependencies"]:
        specs = item.get("pip", []) if isinstance(item, dict) else [item]
        for spec in specs:
            pin = CONDA_PIN.match(str(spec).split("::")[-1])
            if pin:
                found[normalise(pin.group(1))] = pin.group(2)
    return found


def _uv_compile(args: list[str], cwd: str, path: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            args, cwd=cwd, env=uvtool.clean_environment(os.environ),
            capture_output=True, text=True, timeout=UV_TIMEOUT_S,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise CheckError(f"{path}: uv took over {UV_TIMEOUT_S} s to resolve it") from None


def compile_requirements(path: Path, python: str, lock: bool = False) -> tuple[str, bool]:
    """`path` resolved by uv for Python `python` on this platform (with `lock`, hash-pinned
    and naming its indexes, for `uv pip sync`), and whether uv's cache answered alone: it is
    asked first offline (the index revalidating every page takes tens of seconds), then the
    index where the cache lacks something."""
    if not path.is_file():
        raise CheckInputError(f"{path}: no such requirements file")
    with tempfile.TemporaryDirectory(prefix="audiomatrix-check-") as scratch:
        out = Path(scratch) / "requirements.txt"
        args = [uvtool.uv_binary(), "pip", "compile", str(path.resolve()), "--output-file",
                str(out), "--no-config", "--python-version", python, "--quiet"]  # fmt: skip
        args += ["--generate-hashes", "--emit-index-url"] if lock else []
        offline = _uv_compile([*args, "--offline"], scratch, path).returncode == 0
        proc = None if offline else _uv_compile(args, scratch, path)
        if proc is not None and proc.returncode != 0:
            why = uvtool.one_line(proc.stderr) or f"uv exited with {proc.returncode}"
            error = CheckError if uvtool.UNREACHABLE.search(proc.stderr) else CheckInputError
            raise error(f"{path}: uv cannot resolve it for Python {python}: {why}")
        return out.read_text(), offline


def _absent_module(signature: Signature, versions: Mapping[str, str | None]) -> bool:
    """The entry's failure is a package missing, and that package is there."""
    missing = missing_package(signature)
    return missing is not None and bool(versions.get(missing))


def covered(signature: Signature, versions: Mapping[str, str | None]) -> list[str] | None:
    """Why every range of the entry holds these versions, or None where one does not (or the
    entry has no range: a failure no version predicts)."""
    because = []
    for package, spec in signature.affects.items():
        version = public(versions.get(normalise(package)))
        if version is None or not SpecifierSet(spec).contains(version, prereleases=True):
            return None
        because.append(f"{package} {version} in {spec}")
    return because or None


def expected(versions: Mapping[str, str | None]) -> list[Expected]:
    """The catalog entries these versions fall in, in catalog order."""
    return [
        Expected(s, because)
        for s in catalog()
        if (because := covered(s, versions)) and not _absent_module(s, versions)
    ]
