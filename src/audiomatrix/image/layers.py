"""A lock split into image layers by how widely their contents are shared.

Docker shares a layer only when every layer below it is the same, so what many cells have in
common goes first. The CUDA runtime libraries (nvidia-* wheels) are most of a CUDA image,
torch versions of one CUDA line pin the same cuBLAS, cuDNN, cuFFT... (only NCCL and NVSHMEM
move with torch), and their files do not depend on Python: the pins that every locked cell of
the same wheel variant shares go into one layer below the interpreter, installed outside any
venv. Then torch and the rest of its line (per Python and torch), then everything else.
The split is chosen from the locks themselves, never from a list of names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from audiomatrix.records.cell import CellRecord

TORCH_LINE = re.compile(r"^(torch|triton|pytorch-triton|nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+)$")
"""What the torch layer holds: torch, its compiler, and its CUDA packages not shared."""
SHARED_LIBRARY = re.compile(r"^nvidia-[a-z0-9-]+$")
"""Candidates for the shared CUDA layer: NVIDIA's runtime wheels (py3-none, no Python in
their paths or tags); cuda-bindings and friends are compiled per Python and stay above."""


@dataclass(frozen=True)
class Parts:
    """A lock as three requirement files, each `name==version` with its `--hash` lines."""

    cuda: str
    torch: str
    rest: str


@dataclass(frozen=True)
class Entry:
    """One requirement of a lock, verbatim (its line and `--hash` lines; comments dropped)."""

    name: str
    text: str


def entries(lock: str) -> list[Entry]:
    """The lock's requirements, each exactly as written: a damaged hash stays damaged, so uv
    refuses it in the image as it would from the lock."""
    found = []
    for block in re.split(r"\n(?=[A-Za-z0-9])", lock):
        head = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==", block)
        if head:
            kept = [ln for ln in block.splitlines() if not ln.lstrip().startswith("#")]
            found.append(Entry(head.group(1).lower(), "".join(f"{ln}\n" for ln in kept)))
    return found


def shared_cuda(locks: Iterable[str]) -> frozenset[Entry]:
    """The nvidia-* requirements (with their hashes) that every one of these locks has,
    identically: the group's shared CUDA layer. Empty when one lock has none (a CPU build)."""
    common: set[Entry] | None = None
    for text in locks:
        pins = {e for e in entries(_library_blocks(text)) if SHARED_LIBRARY.match(e.name)}
        common = pins if common is None else common & pins
    return frozenset(common or ())


_NEXT_BLOCK = re.compile(r"\n(?=[A-Za-z0-9])")


def _library_blocks(lock: str) -> str:
    """Only the lock's nvidia-* requirements, as written: a group holds dozens of locks of
    hundreds of requirements, and this is what every build and no-op sweep reads first
    (str.find, since a MULTILINE `^` makes the regex engine try every position)."""
    text, blocks = "\n" + lock, []
    start = text.find("\nnvidia-")
    while start != -1:
        end = _NEXT_BLOCK.search(text, start + 1)
        stop = end.start() if end else len(text)
        blocks.append(text[start + 1 : stop + 1])
        start = text.find("\nnvidia-", stop)
    return "".join(blocks)


def split(lock: str, shared: frozenset[Entry]) -> Parts:
    """One cell's lock as its shared CUDA part, its torch part and the rest, each sorted by
    name so that the same requirements give the same bytes (and the same cached layer)."""
    found = sorted(entries(lock), key=lambda e: e.name)
    cuda = [e for e in found if e in shared]
    torch = [e for e in found if e not in shared and TORCH_LINE.match(e.name)]
    rest = [e for e in found if e not in shared and not TORCH_LINE.match(e.name)]
    return Parts(*("".join(e.text for e in part) for part in (cuda, torch, rest)))


def group_key(record: CellRecord) -> tuple[str, str]:
    """Cells whose CUDA libraries can share a layer: the same wheel variant (cu128) for the
    same platform."""
    return record.cell.variant, record.cell.platform
