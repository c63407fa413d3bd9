"""The words and labels a row is shown with: COMPATIBILITY.md, the page, the grid and the
answers to `recommend` say a row, its image and its GPU kernels the same way."""

from __future__ import annotations

from audiomatrix.records.compatibility import Kernels, Row
from audiomatrix.records.run import Where

NONE = "-"
"""What a table shows for a missing value or an absent check."""
GPU_WORDS = {
    "native": "native",
    "ptx-jit": "PTX JIT",
    "partial": "partial",
    "no-kernel-image": "no kernel image",
}


def stack_label(versions: dict[str, str | None]) -> str:
    tts = next(
        (f"{name} {versions[name]}" for name in ("coqui-tts", "TTS") if versions.get(name)), None
    )
    parts = [tts, f"demucs {versions['demucs']}" if versions.get("demucs") else None]
    return " + ".join(p for p in parts if p) or NONE


def accelerator_label(row: Row) -> str:
    cuda = f" (CUDA {row.facts.cuda})" if row.facts.cuda else ""
    return f"{row.axes.accelerator}{cuda}"


def device_label(row: Row) -> str:
    host = row.host
    if not host.gpu:
        return "CPU"
    return f"{host.gpu} ({host.compute_capability})" if host.compute_capability else host.gpu


def where_label(where: Where, cell: str = "") -> str:
    """`native`, or `image <content tag> @<digest>` (the tag without the cell id it repeats)."""
    if where.kind == "native":
        return "native"
    tag = (where.image or "?").rsplit(":", 1)[-1].removeprefix(f"{cell}-")
    digest = f" @{where.image_digest.removeprefix('sha256:')[:12]}" if where.image_digest else ""
    return f"image {tag}{digest}"


def gpu_label(kernels: Kernels) -> str:
    """`native (predicted: sm_80)`, `no kernel image (observed on NVIDIA H200 ...)`."""
    how = "observed on" if kernels.basis == "observed" else "predicted:"
    return f"{GPU_WORDS[kernels.verdict]} ({how} {kernels.evidence})"
