"""Finding the declared CPython: each build of an interpreter is asked what it is once, and
asked again when the binary changes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from audiomatrix.image import interpreters


def _answering(path: Path, version: str) -> None:
    """An executable that answers the inspection as a CPython of `version` would, and counts
    how often it was asked."""
    answer = json.dumps({"version": version, "prefix": "/opt/py", "executable": str(path),
                         "shared": True, "libdir": "/opt/py/lib"})  # fmt: skip
    path.write_text(f"#!/bin/sh\necho run >> {path}.runs\necho '{answer}'\n")
    path.chmod(0o755)


def _runs(path: Path) -> int:
    runs = path.with_name(path.name + ".runs")
    return len(runs.read_text().splitlines()) if runs.exists() else 0


def test_an_interpreter_is_asked_once_per_build_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIOMATRIX_CACHE", str(tmp_path / "cache"))
    python = tmp_path / "python3.12"
    _answering(python, "3.12.7")
    first = interpreters.inspect(python)
    assert first is not None and first.version == "3.12.7" and first.shared
    assert interpreters.inspect(python) == first and _runs(python) == 1
    # Rebuilt in place (another size and time): asked again, the new answer wins.
    _answering(python, "3.12.8")
    os.utime(python, ns=(1, 1))
    again = interpreters.inspect(python)
    assert again is not None and again.version == "3.12.8" and _runs(python) == 2


def test_the_running_python_answers_for_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIOMATRIX_CACHE", str(tmp_path / "cache"))
    found = interpreters.inspect(Path(sys.executable))
    assert found is not None
    assert found.minor == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert interpreters.inspect(tmp_path / "missing") is None
