"""The lock split into image layers, on the committed locks: the CUDA libraries a CUDA line
shares come out byte-identical across torch versions and Pythons, and nothing is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from audiomatrix.image import layers
from audiomatrix.image.wheelhouse import parse_lock

ENVS = Path(__file__).resolve().parents[1] / "environments"
CU128 = [
    f"bookworm-py{py}-torch{torch}-cu128-maintained"
    for py, torch in (("3.11", "2.8.0"), ("3.11", "2.9.1"), ("3.10", "2.10.0"), ("3.12", "2.8.0"))
]


def _lock(cell: str) -> str:
    path = ENVS / cell / "requirements.txt"
    if not path.exists():
        pytest.skip(f"{cell} is not locked")
    return path.read_text()


def test_a_cuda_line_shares_one_cuda_part_across_torch_and_python() -> None:
    locks = [_lock(c) for c in CU128]
    shared = layers.shared_cuda(locks)
    names = {p.name for p in shared}
    assert {"nvidia-cublas-cu12", "nvidia-cudnn-cu12", "nvidia-cufft-cu12"} <= names
    # NCCL moves with torch: it is not in every lock identically, so it stays in torch's part.
    assert "nvidia-nccl-cu12" not in names
    parts = [layers.split(text, shared) for text in locks]
    assert len({p.cuda for p in parts}) == 1 and parts[0].cuda
    for text, part in zip(locks, parts, strict=True):
        whole = {(p.name, p.version, p.hashes) for p in parse_lock(text)}
        pieces = [parse_lock(t) for t in (part.cuda, part.torch, part.rest)]
        assert sum(len(p) for p in pieces) == len(whole)
        assert {(p.name, p.version, p.hashes) for piece in pieces for p in piece} == whole
        assert any(p.name == "torch" for p in pieces[1]) and "nvidia-nccl-cu12==" in part.torch
        assert not any(p.name == "torch" or p.name.startswith("nvidia-") for p in pieces[2])


def test_a_cpu_build_in_the_group_leaves_no_shared_cuda_part() -> None:
    cuda = _lock(CU128[0])
    cpu = "numpy==2.3.5 \\\n    --hash=sha256:" + "a" * 64 + "\n"
    assert layers.shared_cuda([cuda, cpu]) == frozenset()
    part = layers.split(cuda, frozenset())
    assert part.cuda == "" and "nvidia-cublas-cu12==" in part.torch


def test_parts_are_stable_text() -> None:
    shared = layers.shared_cuda([_lock(CU128[0])])
    first = layers.split(_lock(CU128[0]), shared)
    assert layers.split(_lock(CU128[0]), shared) == first
    assert first.cuda.endswith("\n") and "# via" not in first.cuda + first.torch + first.rest
    names = [p.name.lower() for p in parse_lock(first.cuda)]
    assert names == sorted(names)


def test_the_shared_part_reads_the_nvidia_entries_exactly_as_a_full_parse() -> None:
    """shared_cuda scans only the nvidia-* blocks; on every committed lock, and on one that
    starts and ends with one and has comments between, it finds what parsing all of it finds."""

    def by_full_parse(text: str) -> set[layers.Entry]:
        return {e for e in layers.entries(text) if layers.SHARED_LIBRARY.match(e.name)}

    edge = (
        "nvidia-cublas-cu12==12.8.4.1 \\\n    --hash=sha256:" + "b" * 64 + "\n    # via torch\n"
        "# a comment at the margin\nnumpy==2.3.5 \\\n    --hash=sha256:" + "a" * 64 + "\n"
        "nvidia-nccl-cu12==2.27.5 \\\n    --hash=sha256:" + "c" * 64
    )
    texts = [edge, *(p.read_text() for p in sorted(ENVS.glob("*/requirements.txt")))]
    assert len(texts) > 10
    for text in texts:
        assert layers.shared_cuda([text]) == frozenset(by_full_parse(text))
    assert {e.name for e in layers.shared_cuda([edge])} == {
        "nvidia-cublas-cu12",
        "nvidia-nccl-cu12",
    }
