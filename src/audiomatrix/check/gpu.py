"""This machine's NVIDIA GPUs, and what an environment's torch wheel has for each: read from
the wheel's fatbins as the suite measured them (suite/fatbin.py), and observed where the
suite's accelerator check launched a kernel on it."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from audiomatrix.suite import fatbin
from audiomatrix.table import gpu as table_gpu
from audiomatrix.views.labels import GPU_WORDS, gpu_label

NO_SMI = "no NVIDIA GPU (nvidia-smi not found)"


@dataclass(frozen=True)
class Gpu:
    name: str
    arch: str
    driver: str

    @property
    def label(self) -> str:
        return f"{self.name} {self.arch} (driver {self.driver})"


def parse_gpus(csv: str) -> list[Gpu]:
    """`name, compute_cap, driver` rows from nvidia-smi."""
    gpus = []
    for row in csv.strip().splitlines():
        name, cap, driver = (part.strip() for part in row.split(","))
        gpus.append(Gpu(name, f"sm_{cap.replace('.', '')}", driver))
    return gpus


def local_gpus() -> list[Gpu] | str:
    """The GPUs nvidia-smi lists, or why there are none to list."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return NO_SMI
    query = ["--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"]
    proc = subprocess.run([smi, *query], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        return f"nvidia-smi failed: {proc.stderr.strip() or proc.returncode}"
    return parse_gpus(proc.stdout)


def wheel_verdict(
    arch: str,
    gpu_arch: Mapping[str, Any],
    host: tuple[str | None, str | None],
    accelerator: tuple[str | None, str | None],
) -> str:
    """What the wheel measured in `gpu_arch` has for `arch`: observed where the run's GPU
    (host: compute capability, name) ran the accelerator check (its status, signature),
    else predicted from the primary library's fatbins, or why it cannot be said."""
    found = table_gpu.verdicts(gpu_arch, *host, *accelerator).get(arch)
    if found is not None:
        return gpu_label(found)
    files = gpu_arch.get("files") or []
    if not files:
        return "no CUDA code in this torch (a CPU build, or no torch)"
    guess = fatbin.predict(arch, files[0]["sass"], files[0]["ptx"])
    return f"{GPU_WORDS[guess['verdict']]} (predicted: {guess['evidence'] or guess['why']})"
