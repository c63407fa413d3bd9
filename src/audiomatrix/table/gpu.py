"""Which GPUs a row's torch wheel has kernels for: predicted from the code compiled into the
wheel (measured by the suite's fatbin reader, no GPU needed), observed where the run had one.

A GPU with no SASS for its architecture and no PTX the driver can compile fails with "no
kernel image is available for execution on the device"; one with PTX only runs after a slow
first compile. The architecture list a matrix declares for an accelerator is checked against
the measurement, and a declared architecture the wheel cannot run on is a finding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from audiomatrix.records.compatibility import Kernels
from audiomatrix.suite.fatbin import COMMON_GPU_ARCHS


def predicted(gpu_arch: Mapping[str, Any]) -> dict[str, Kernels]:
    """The measurement's predictions for the architectures people buy ({} without one: a
    CPU build, or a run that measured nothing)."""
    found = {}
    for arch, guess in (gpu_arch.get("predictions") or {}).items():
        if arch in COMMON_GPU_ARCHS and guess.get("verdict"):
            evidence = guess.get("evidence") or guess.get("why") or ""
            found[arch] = Kernels(verdict=guess["verdict"], basis="predicted", evidence=evidence)
    return found


def observed(
    compute_capability: str | None, gpu: str | None, accelerator: str | None, signature: str | None
) -> tuple[str, Kernels] | None:
    """What the accelerator check saw on the run's own GPU: kernels ran, or the GPU had no
    kernel image; None when no GPU ran it (or it failed for another reason)."""
    if not compute_capability or accelerator is None:
        return None
    where = f"{gpu or 'a GPU'} ({compute_capability}), the accelerator check"
    if accelerator == "pass":
        return compute_capability, Kernels(verdict="native", basis="observed", evidence=where)
    if signature == "no-kernel-image":
        return compute_capability, Kernels(
            verdict="no-kernel-image", basis="observed", evidence=where
        )
    return None


def verdicts(
    gpu_arch: Mapping[str, Any],
    compute_capability: str | None,
    gpu: str | None,
    accelerator: str | None,
    signature: str | None,
) -> dict[str, Kernels]:
    """Per architecture: what the GPU did where one ran, else what the wheel predicts."""
    found = predicted(gpu_arch)
    seen = observed(compute_capability, gpu, accelerator, signature)
    if seen is not None:
        arch, kernels = seen
        if arch in found and found[arch].verdict == "ptx-jit" and kernels.verdict == "native":
            kernels = kernels.model_copy(update={"verdict": "ptx-jit"})  # ran, through the JIT
        found[arch] = kernels
    return dict(sorted(found.items(), key=lambda item: int(item[0].removeprefix("sm_"))))


def findings(
    declared: Sequence[str], kernels: Mapping[str, Kernels], gpu_arch: Mapping[str, Any]
) -> list[str]:
    """Where the matrix's declaration and the measurement disagree, in words."""
    if not kernels:
        return []
    found = []
    for arch in declared:
        verdict = kernels.get(arch)
        if verdict is not None and verdict.verdict == "no-kernel-image":
            found.append(f"declares {arch}, but the wheel has no kernel image for it "
                         f"({verdict.basis})")  # fmt: skip
    predictions = gpu_arch.get("predictions") or {}
    for arch, kernel in kernels.items():
        guess = (predictions.get(arch) or {}).get("verdict")
        if kernel.basis == "observed" and guess and guess != kernel.verdict:
            found.append(f"{arch}: predicted {guess}, observed {kernel.verdict}")
    return found
