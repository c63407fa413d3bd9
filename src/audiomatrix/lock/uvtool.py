"""uv as every stage runs it: the one binary this project pins, an environment free of this
machine's index settings, and its errors folded into one line.

Locking, the native venvs, the wheelhouse, the images and the doctor all use it; none of them should
resolve with another uv or through a mirror this machine's configuration names.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from audiomatrix.core.files import kept_answer

# The UV_* variables kept; any other (and every PIP_*) could bring this machine's index, mirror
# or find-links to uv.
_KEPT_UV_VARIABLES = {"UV_CACHE_DIR", "UV_NO_PROGRESS", "UV_CONCURRENT_DOWNLOADS"}

UNREACHABLE = re.compile(
    r"Failed to fetch|error sending request|dns error|tcp connect error|Could not connect|"  # uv
    r"Failed to establish a new connection|Max retries exceeded|Could not fetch URL|"  # pip
    r"Temporary failure in name resolution|Network is unreachable|Connection refused|timed out",
    re.IGNORECASE,
)
"""What uv (locking, installs) or pip (`pip index versions`) says when the index did not
answer: an outage, which says nothing about what was asked of it."""


def clean_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The environment for uv without this machine's index settings."""
    return {
        k: v
        for k, v in env.items()
        if not k.startswith("PIP_") and (not k.startswith("UV_") or k in _KEPT_UV_VARIABLES)
    }


def one_line(stderr: str, limit: int = 400) -> str:
    """uv's explanation in one line: its `error:`/`cause:` chain joined, hints dropped."""
    kept = []
    for raw in stderr.splitlines():
        line = re.sub(r"^\s*(error|cause|warning):\s*", "", raw.strip())
        if line.startswith("hint:"):
            break
        if line and line != "No solution found when resolving dependencies":
            kept.append(line)
    folded = re.sub(r"\s+", " ", " ".join(kept)).strip()
    return folded if len(folded) <= limit else folded[: limit - 1] + "…"


def uv_binary() -> str:
    """The uv this project depends on, so every machine locks with the same resolver."""
    from uv import find_uv_bin

    return find_uv_bin()


def uv_version() -> str:
    """The version of uv_binary(), asked once per build of it (files.kept_answer)."""
    binary = uv_binary()

    def ask() -> str:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
        return done.stdout.split()[1]

    return str(kept_answer(Path(binary), "version", ask))
