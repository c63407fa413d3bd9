"""Which GPUs a row's wheel has kernels for: predicted from the code compiled into every library
of the wheel (measured by the suite's fatbin reader, no GPU needed), observed where the run had
one.

A GPU with no SASS for its architecture and no PTX the driver can compile fails with "no
kernel image is available for execution on the device"; one with PTX only runs after a slow
first compile. Each library carries its own device code (torch/lib/libtorch_cuda.so, and
libtorch_cuda_linalg.so, bundled NVIDIA libraries, torchaudio's), in containers, one per
translation unit, so the verdict is made per container, per library, then per row:
native, ptx-jit, partial (the main library runs, another lacks kernels: named, with the
operations it serves) or no-kernel-image (the main library has none). Containers that carry
only architecture- or family-specific code (sm_90a) for other GPUs are set aside: a library
dispatches them on those GPUs only. The architecture list a matrix declares for an accelerator
is checked against the verdicts, and a declared architecture the wheel cannot run on is a
finding.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from audiomatrix.records.compatibility import Kernels, KernelVerdict, Lacking
from audiomatrix.suite.fatbin import predict
from audiomatrix.table import gpu_data

UNDESCRIBED = "kernels gpu_libraries.yaml does not describe yet"


@dataclass(frozen=True)
class Library:
    """One library's verdict on one architecture and the counts it rests on."""

    path: str
    verdict: KernelVerdict
    evidence: str

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def _specific(target: str) -> bool:
    """sm_90a, compute_100f: code for one architecture or family only."""
    return target.endswith(("a", "f"))


def _kind(target: str, first: bool) -> str:
    """`SASS ` or `PTX `: said for the first target, and for any PTX after it."""
    if target.startswith("sm_"):
        return "SASS " if first else ""
    return "PTX "


def _containers(n: int, total: int) -> str:
    if n == total:
        return f"its {total} container" if total == 1 else f"all {total} containers"
    return f"{n} of {total} containers"


def library(gpu: str, path: str, measured: Mapping[str, Any]) -> Library:
    """A library's verdict on `gpu` from its containers' arch sets: the SASS or PTX each one
    runs there, most containers first, with the counts."""
    runs: Counter[str] = Counter()
    verdicts: Counter[str] = Counter()
    aside: set[str] = set()
    set_aside = 0
    for arch_set in measured.get("arch_sets") or []:
        found = predict(gpu, arch_set["sass"], arch_set["ptx"])
        count = int(arch_set["containers"])
        targets = [*arch_set["sass"], *arch_set["ptx"]]
        if found["verdict"] == "no-kernel-image" and targets and all(map(_specific, targets)):
            aside.update(targets)
            set_aside += count
            continue
        verdicts[found["verdict"]] += count
        if found["evidence"]:
            runs[found["evidence"]] += count
    total, none = sum(verdicts.values()), verdicts["no-kernel-image"]
    name = path.rsplit("/", 1)[-1]
    said = [
        f"{target} {_kind(target, i == 0)}in {_containers(n, total) if i == 0 else n}"
        for i, (target, n) in enumerate(runs.most_common())
    ]
    if none == total:
        plain = [t for t in measured.get("sass") or [] if not _specific(t)]
        code = f"its SASS: {' '.join(plain)}" if plain else "no SASS that runs elsewhere"
        said = [f"no kernel for {gpu} in {_containers(total, total) if total else 'any container'}"
                f" ({code})"]  # fmt: skip
    elif none:
        said.append(f"none in {none}")
    if aside:
        said.append(f"{set_aside} with only {'/'.join(sorted(aside))} code set aside")
    if none == total:
        verdict: KernelVerdict = "no-kernel-image"
    elif none:
        verdict = "partial"
    else:
        verdict = "ptx-jit" if verdicts["ptx-jit"] else "native"
    return Library(path, verdict, f"{name}: {', '.join(said)}")


def _libraries(gpu_arch: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Every library with device code, the main one (the measurement's primary) first."""
    files = [(f["path"], f) for f in gpu_arch.get("files") or [] if f.get("arch_sets")]
    primary = gpu_arch.get("primary") or (files[0][0] if files else "")
    return sorted(files, key=lambda f: f[0] != primary)


def verdict(gpu: str, gpu_arch: Mapping[str, Any]) -> Kernels | None:
    """One architecture's verdict for a wheel from all its libraries; None without a
    measurement (a CPU build, or a run that measured nothing)."""
    files = _libraries(gpu_arch)
    if not files:
        return None
    found = [library(gpu, path, measured) for path, measured in files]
    main = found[0]
    if main.verdict == "no-kernel-image":
        row: KernelVerdict = "no-kernel-image"
    elif any(lib.verdict in ("partial", "no-kernel-image") for lib in found):
        row = "partial"
    else:
        row = "ptx-jit" if any(lib.verdict == "ptx-jit" for lib in found) else "native"
    lacking = [
        Lacking(library=lib.path, ops=gpu_data.ops_of(lib.name) or UNDESCRIBED)
        for lib in found
        if row == "partial" and lib.verdict in ("partial", "no-kernel-image")
    ]
    shown = [main] if row == "no-kernel-image" else found
    return Kernels(
        verdict=row,
        basis="predicted",
        evidence="; ".join(lib.evidence for lib in shown),
        libraries={lib.path: lib.verdict for lib in found},
        lacking=lacking,
    )


def predicted(gpu_arch: Mapping[str, Any]) -> dict[str, Kernels]:
    """The verdict for every architecture CUDA lists ({} without a measurement)."""
    return {
        arch: found
        for arch in gpu_data.arch_names()
        if (found := verdict(arch, gpu_arch)) is not None
    }


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


def _with_prediction(seen: Kernels, guess: Kernels | None) -> Kernels:
    """An observed verdict beside the wheel's code: a run that passed through the PTX JIT, or
    on a GPU some library has no kernels for, keeps that verdict (the check does not reach
    every library), and the evidence keeps what the code says."""
    if guess is None:
        return seen
    verdict = seen.verdict
    if verdict == "native" and guess.verdict in ("ptx-jit", "partial"):
        verdict = guess.verdict
    return seen.model_copy(
        update={
            "verdict": verdict,
            "evidence": f"{seen.evidence}; the wheel's code: {guess.evidence}",
            "libraries": guess.libraries,
            "lacking": guess.lacking if verdict == "partial" else [],
        }
    )


def _arch_number(arch: str) -> int:
    digits = arch.removeprefix("sm_")
    return int(digits) if digits.isdigit() else 0


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
        found[arch] = _with_prediction(kernels, found.get(arch))
    return dict(sorted(found.items(), key=lambda item: _arch_number(item[0])))


def findings(
    declared: Sequence[str], kernels: Mapping[str, Kernels], gpu_arch: Mapping[str, Any]
) -> list[str]:
    """Where the matrix's declaration and the measurement disagree, in words."""
    if not kernels:
        return []
    found = []
    for arch in declared:
        kernel = kernels.get(arch)
        if kernel is not None and kernel.verdict == "no-kernel-image":
            found.append(f"declares {arch}, but the wheel has no kernel image for it "
                         f"({kernel.basis})")  # fmt: skip
        elif kernel is not None and kernel.verdict == "partial":
            names = ", ".join(lack.library.rsplit("/", 1)[-1] for lack in kernel.lacking)
            found.append(f"declares {arch}, but {names} has no kernels for it ({kernel.basis})")
    for arch, kernel in kernels.items():
        guess = verdict(arch, gpu_arch)
        if kernel.basis == "observed" and guess and guess.verdict != kernel.verdict:
            found.append(f"{arch}: predicted {guess.verdict}, observed {kernel.verdict}")
    return found
