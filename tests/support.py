"""Helpers shared by the image and publish tests (not a test module)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from audiomatrix import lock, smoke
from audiomatrix.files import sha256_file


def small_cell(root: Path, cell: str, python: str = "3.11") -> smoke.CellLock:
    """A cell without torch (soundfile, numpy, pytest), locked for real with uv: its image
    builds in seconds once the base exists."""
    folder = root / cell
    folder.mkdir(parents=True)
    (folder / "requirements.in").write_text("soundfile\nnumpy\npytest\npytest-timeout\n")
    subprocess.run(
        [lock.uv_binary(), "pip", "compile", "requirements.in", "-o", "requirements.txt",
         "--generate-hashes", "--no-config", "--quiet", "--python-version", python,
         "--python-platform", "x86_64-manylinux_2_36"],
        cwd=folder, check=True, env=lock.clean_environment(os.environ),
    )  # fmt: skip
    record = {
        "schema": 1,
        "status": "locked",
        "lock": "requirements.txt",
        "lock_sha256": sha256_file(folder / "requirements.txt"),
        "inputs": {"index": None},
        "cell": {"id": cell, "python": python, "platform": "x86_64-manylinux_2_36",
                 "base": "debian:bookworm-slim", "ffmpeg": False, "device": "cpu"},
    }  # fmt: skip
    (folder / "cell.json").write_text(json.dumps(record))
    return smoke.read_lock(root, cell)
