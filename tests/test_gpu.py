"""GPU verdicts per architecture: predicted from the wheel's code, observed on a GPU, and the
matrix's declaration checked against them."""

from __future__ import annotations

from audiomatrix.table import gpu
from support import wheel_gpu_code

OLD = wheel_gpu_code("cu124")  # sm_50 ... sm_90, what torch 2.5.1+cu124 carries
NEW = wheel_gpu_code("cu128")


def test_predictions_cover_the_architectures_people_buy() -> None:
    kernels = gpu.verdicts(OLD, None, None, None, None)
    assert list(kernels) == ["sm_75", "sm_80", "sm_86", "sm_89", "sm_90", "sm_100", "sm_120"]
    assert kernels["sm_89"].verdict == "native" and kernels["sm_89"].evidence == "sm_86"
    assert kernels["sm_120"].verdict == "no-kernel-image"
    assert all(k.basis == "predicted" for k in kernels.values())
    assert gpu.verdicts({}, None, None, None, None) == {}


def test_a_gpu_run_overrides_the_prediction_for_its_own_architecture() -> None:
    ran = gpu.verdicts(NEW, "sm_120", "RTX 5090", "pass", None)
    assert ran["sm_120"].basis == "observed" and ran["sm_120"].verdict == "native"
    assert ran["sm_90"].basis == "predicted"
    refused = gpu.verdicts(OLD, "sm_120", "RTX 5090", "fail", "no-kernel-image")
    assert refused["sm_120"].verdict == "no-kernel-image" and refused["sm_120"].basis == "observed"
    other = gpu.verdicts(OLD, "sm_120", "RTX 5090", "fail", "weights-only-demucs")
    assert other["sm_120"].basis == "predicted"


def test_a_declaration_the_wheel_cannot_keep_is_a_finding() -> None:
    kernels = gpu.verdicts(OLD, None, None, None, None)
    assert gpu.findings(["sm_90", "sm_120"], kernels, OLD) == [
        "declares sm_120, but the wheel has no kernel image for it (predicted)"
    ]
    assert gpu.findings(["sm_90"], kernels, OLD) == []
    contradicted = gpu.verdicts(NEW, "sm_120", "RTX 5090", "fail", "no-kernel-image")
    assert gpu.findings([], contradicted, NEW) == [
        "sm_120: predicted native, observed no-kernel-image"
    ]
