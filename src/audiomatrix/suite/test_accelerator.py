"""accelerator: the GPU this torch build claims to support really runs its kernels.

With CUDA: real kernels (a matmul and a conv1d) run on the device and agree with the CPU, and
the device's architecture is one the build carries code for (`torch.cuda.get_arch_list()`): a
cubin for the same major architecture at or below the device's minor, or PTX at or below the
device's compute capability, which the driver compiles. This catches Blackwell (sm_120) on builds
made before CUDA 12.8: "no kernel image is available for execution on the device". With ROCm the
device's gfx name must be in the list. On macOS, the same kernels on MPS. Elsewhere: skip.
"""

from __future__ import annotations

import re

import pytest


def _covers(arch_list: list[str], major: int, minor: int) -> bool:
    """Whether a CUDA build with these targets has code a (major, minor) device can run."""
    device = major * 10 + minor
    for arch in arch_list:
        match = re.fullmatch(r"(sm|compute)_(\d+)([a-z]?)", arch)
        if not match:
            continue
        kind, number, suffix = match.group(1), int(match.group(2)), match.group(3)
        if suffix:  # sm_90a, sm_100f...: architecture-specific code, runs on that one only
            if number == device:
                return True
        elif kind == "sm" and number // 10 == major and number <= device:
            return True  # cubins run on later minors of the same major architecture
        elif kind == "compute" and number <= device:
            return True  # PTX is compiled by the driver for newer architectures
    return False


def _run_kernels(torch, device: str) -> None:
    """A matmul and a conv1d on `device`, synchronised, compared with the CPU."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(256, 256, generator=generator)
    b = torch.randn(256, 256, generator=generator)
    signal = torch.randn(2, 4, 4096, generator=generator)
    weight = torch.randn(8, 4, 9, generator=generator)

    product = a.to(device) @ b.to(device)
    conv = torch.nn.functional.conv1d(signal.to(device), weight.to(device), padding=4)
    if device == "cuda":
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()
    # Loose enough for TF32 and reduced-precision reductions, far below any real breakage.
    expected = (a @ b, torch.nn.functional.conv1d(signal, weight, padding=4))
    for name, got, want in zip(("matmul", "conv1d"), (product, conv), expected, strict=True):
        got = got.cpu()
        assert torch.isfinite(got).all(), f"{name} on {device}: non-finite results"
        scale = float(want.abs().max())
        worst = float((got - want).abs().max())
        assert worst <= 5e-3 * scale, f"{name} on {device} differs from CPU by {worst:.3g}"


@pytest.mark.timeout(120)
def test_accelerator(record_property):
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        arch_list = torch.cuda.get_arch_list()
        if torch.version.hip:
            arch = torch.cuda.get_device_properties(0).gcnArchName.split(":")[0]
            supported = arch in arch_list
        else:
            major, minor = torch.cuda.get_device_capability(0)
            arch = f"sm_{major}{minor}"
            supported = _covers(arch_list, major, minor)
        build = torch.version.hip or torch.version.cuda
        print(f"device: {name}, {arch}; torch {torch.__version__} built for {arch_list} ({build})")
        record_property("device", name)
        record_property("arch", arch)
        record_property("arch_list", " ".join(arch_list))
        _run_kernels(torch, "cuda")
        assert supported, (
            f"{name} is {arch}, which torch {torch.__version__} (CUDA {build}) has no code for:"
            f" its arch list is {arch_list}"
        )
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        print(f"device: mps; torch {torch.__version__}")
        record_property("device", "mps")
        _run_kernels(torch, "mps")
    else:
        pytest.skip("no GPU")
