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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from audiomatrix.wheelhouse import Pin, parse_lock

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


def shared_cuda(locks: Iterable[str]) -> frozenset[Pin]:
    """The nvidia-* pins (with their hashes) that every one of these locks has, identically:
    the group's shared CUDA layer. Empty when one lock has none (a CPU build in the group)."""
    common: set[Pin] | None = None
    for text in locks:
        pins = {p for p in parse_lock(text) if SHARED_LIBRARY.match(p.name.lower())}
        common = pins if common is None else common & pins
    return frozenset(common or ())


def requirement_text(pins: Iterable[Pin]) -> str:
    """Pins as a hash-checked requirements file, sorted: the same pins give the same bytes,
    so the layer's COPY and RUN are cached across cells."""
    lines = []
    for pin in sorted(pins, key=lambda p: p.name.lower()):
        hashes = sorted(pin.hashes)
        lines.append(f"{pin.name}=={pin.version}" + (" \\" if hashes else ""))
        lines += [f"    --hash=sha256:{h}" + (" \\" if i < len(hashes) - 1 else "")
                  for i, h in enumerate(hashes)]  # fmt: skip
    return "".join(f"{line}\n" for line in lines)


def split(lock: str, shared: frozenset[Pin]) -> Parts:
    """One cell's lock as its shared CUDA part, its torch part and the rest."""
    pins = parse_lock(lock)
    cuda = [p for p in pins if p in shared]
    torch = [p for p in pins if p not in shared and TORCH_LINE.match(p.name.lower())]
    rest = [p for p in pins if p not in shared and not TORCH_LINE.match(p.name.lower())]
    return Parts(requirement_text(cuda), requirement_text(torch), requirement_text(rest))


def group_key(record: Mapping[str, object]) -> tuple[str, str]:
    """Cells whose CUDA libraries can share a layer: the same wheel variant (cu128) for the
    same platform."""
    cell = record["cell"]
    assert isinstance(cell, Mapping)
    return str(cell["variant"]), str(cell["platform"])
