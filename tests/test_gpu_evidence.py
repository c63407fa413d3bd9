"""The committed observations of a real GPU (evidence/gpu-h200/) against the fatbin reader
and its predictions: what a GPU did there is what the code predicts here, without a GPU."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from audiomatrix.suite import fatbin

EVIDENCE = Path(__file__).resolve().parents[1] / "evidence" / "gpu-h200"
KERNELS = EVIDENCE / "kernel-image"
TORCH = EVIDENCE / "torch-2.11.0-cu130"


def _gpu() -> str:
    with (TORCH / "nvidia-smi.csv").open() as f:
        row = next(csv.DictReader(f, skipinitialspace=True))
    return "sm_" + row["compute_cap"].replace(".", "")


def _observed_verdict(with_jit: str, without_jit: str) -> str:
    if with_jit == "ran":
        return "native" if without_jit == "ran" else "ptx-jit"
    assert "CUDA_ERROR_NO_BINARY_FOR_GPU" in with_jit, with_jit
    return "no-kernel-image"


OBSERVED = json.loads((KERNELS / "observed.json").read_text())


@pytest.mark.parametrize("build", sorted(p.name for p in KERNELS.glob("*.fatbin")))
def test_each_kernel_build_did_on_the_gpu_what_predict_says(build: str) -> None:
    data = (KERNELS / build).read_bytes()
    containers, notes = fatbin.read_containers(data, 0, len(data))
    assert containers and not notes, notes
    entries = [e for c in containers for e in c.entries]
    sass = sorted({e.target for e in entries if e.kind == "sass"})
    ptx = sorted({e.target for e in entries if e.kind == "ptx"})
    expected = _observed_verdict(OBSERVED["jit"][build], OBSERVED["nojit"][build])
    assert fatbin.predict(_gpu(), sass, ptx)["verdict"] == expected, (sass, ptx)


def test_the_controls_cover_every_verdict() -> None:
    verdicts = {
        _observed_verdict(OBSERVED["jit"][name], OBSERVED["nojit"][name])
        for name in OBSERVED["jit"]
        if not name.startswith("_")
    }
    assert verdicts == set(fatbin.VERDICTS)


def test_the_reader_agrees_with_cuobjdump_and_torch_on_the_real_wheel() -> None:
    arch = json.loads((TORCH / "arch.json").read_text())
    library = arch["fatbin"]["files"][0]
    assert library["path"] == "torch/lib/libtorch_cuda.so"
    listed = re.findall(r"\.(sm_\d+[af]?)\.cubin$", (TORCH / "cuobjdump-elf.txt").read_text(), re.M)
    assert library["entries"]["sass"] == len(listed) == 2789
    assert set(library["sass"]) == set(listed)
    assert library["ptx"] == [] and "No PTX file found" in (TORCH / "cuobjdump-ptx.txt").read_text()
    # What every translation unit carries is exactly what torch says it was built for.
    assert library["sass_common"] == arch["arch_flags"] == arch["get_arch_list"]
    assert arch["fatbin"]["predictions"][_gpu()]["verdict"] == "native"
