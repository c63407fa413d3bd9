"""`audiomatrix check` on environments made the way users make them, with the real uv and the
package index (marked `lock`): a venv with a tiny pure package, checked and left byte-identical
(the suite's harness put beside it, never into it); a requirements file resolved in seconds."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from audiomatrix.lock import uvtool
from audiomatrix.smoke.runner import uv_environment
from test_check import audiomatrix, tree

pytestmark = pytest.mark.lock


def uv_venv(folder: Path, *packages: str) -> Path:
    """`uv venv` + `uv pip install`, as a user makes one."""
    uv = uvtool.uv_binary()
    subprocess.run([uv, "venv", "--quiet", str(folder)], check=True, env=uv_environment())
    python = folder / "bin" / "python"
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python), *packages],
                   check=True, env=uv_environment())  # fmt: skip
    return python


def test_a_uv_venv_is_checked_and_left_as_it_was(tmp_path: Path) -> None:
    python = uv_venv(tmp_path / "venv", "six")
    before = tree(tmp_path / "venv")
    cache = tmp_path / "cache"
    proc = audiomatrix("check", "--python", str(python), "--check", "torch_load", "--json",
                       env={"AUDIOMATRIX_CACHE": str(cache)})  # fmt: skip
    assert tree(tmp_path / "venv") == before
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    (check,) = data["checks"]
    assert check["raw"] == "fail" and check["compat"] == "crash"  # compat imports torch
    assert check["first_error"] == "ModuleNotFoundError: No module named 'torch'"
    assert data["versions"]["torch"] is None and data["nearest"] is None
    (harness,) = cache.glob("check/harness-py*")
    assert (harness / "pytest").is_dir() and (harness / "numpy").is_dir()


def test_requirements_versions_only_in_seconds(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    # The pinned stack as its remedy cell declares it: setuptools pinned too, so a newer
    # setuptools on the index (84 moved the nearest row to the unpinned legacy one) changes
    # nothing here.
    requirements.write_text(
        "torch==2.6.0\ntorchaudio==2.6.0\nTTS==0.22.0\ntransformers<4.50\nsetuptools<81\n"
    )
    args = ("check", "-r", str(requirements), "--versions-only", "--python-version", "3.11",
            "--workload", "xtts", "--json")  # fmt: skip
    audiomatrix(*args)  # warms uv's cache
    started = time.monotonic()
    proc = audiomatrix(*args)
    assert time.monotonic() - started < 10
    data = json.loads(proc.stdout)
    assert data["versions"]["torch"] == "2.6.0" and data["versions"]["transformers"] < "4.50"
    assert data["nearest"]["cell"] == "bookworm-py3.10-torch2.6.0-cu124-legacy-pinned"
    assert data["matches"][0]["signature"] == "weights-only-xtts"


def test_requirements_are_checked_in_a_throwaway_venv(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("six\n")
    proc = audiomatrix("check", "-r", str(requirements), "--check", "torch_load", "--json",
                       env={"AUDIOMATRIX_CACHE": str(tmp_path / "cache")})  # fmt: skip
    data = json.loads(proc.stdout)
    assert data["subject"] == str(requirements)
    assert data["checks"][0]["first_error"] == "ModuleNotFoundError: No module named 'torch'"
    assert not list(Path("/tmp").glob("audiomatrix-check-venv-*"))
