"""GPU verdicts per architecture: predicted from the wheel's code, observed on a GPU, and the
matrix's declaration checked against them."""

from __future__ import annotations

import pytest

from audiomatrix.table import gpu, gpu_data
from support import gpu_code, wheel_gpu_code

OLD = wheel_gpu_code("cu124")  # sm_50 ... sm_90, what torch 2.5.1+cu124 carries
NEW = wheel_gpu_code("cu128")


def test_predictions_cover_every_architecture_cuda_lists() -> None:
    kernels = gpu.verdicts(OLD, None, None, None, None)
    assert list(kernels) == list(gpu_data.arch_names())
    assert list(kernels)[:3] == ["sm_50", "sm_52", "sm_53"] and list(kernels)[-1] == "sm_121"
    assert kernels["sm_89"].verdict == "native"
    assert kernels["sm_89"].evidence == "libtorch_cuda.so: sm_86 SASS in its 1 container"
    assert kernels["sm_61"].verdict == "native" and kernels["sm_70"].verdict == "native"
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


# The committed torch 2.11.0+cu130 wheel, as the suite read it: libtorch_cuda.so has sm_75 in
# every container, libtorch_cuda_linalg.so starts at sm_80, and one container of the main library
# carries sm_89 and sm_121a beside the rest.
CU130 = gpu_code(
    ("torch/lib/libtorch_cuda.so", [["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]] * 442
     + [["sm_75", "sm_80", "sm_86", "sm_89", "sm_90", "sm_90a", "sm_100", "sm_100a", "sm_103a",
         "sm_120", "sm_120a", "sm_121a"]] * 2),
    ("torch/lib/libtorch_cuda_linalg.so", [["sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]] * 99),
)  # fmt: skip


def test_a_library_without_kernels_where_the_main_one_has_them_is_partial() -> None:
    kernels = gpu.verdicts(CU130, None, None, None, None)
    t4 = kernels["sm_75"]
    assert t4.verdict == "partial"
    assert [lack.library for lack in t4.lacking] == ["torch/lib/libtorch_cuda_linalg.so"]
    assert "torch.linalg" in t4.lacking[0].ops and "cuSOLVER" in t4.lacking[0].ops
    assert t4.libraries == {"torch/lib/libtorch_cuda.so": "native",
                            "torch/lib/libtorch_cuda_linalg.so": "no-kernel-image"}  # fmt: skip
    assert "libtorch_cuda_linalg.so: no kernel for sm_75 in all 99 containers" in t4.evidence
    # The SASS most containers run, with the counts, never a bare target.
    assert kernels["sm_89"].evidence.startswith(
        "libtorch_cuda.so: sm_86 SASS in 442 of 444 containers, sm_89 in 2;"
    )
    assert kernels["sm_70"].verdict == "no-kernel-image"  # the main library has none
    assert kernels["sm_121"].verdict == "native" and kernels["sm_110"].verdict == "no-kernel-image"
    assert gpu.findings(["sm_75", "sm_80"], kernels, CU130) == [
        "declares sm_75, but libtorch_cuda_linalg.so has no kernels for it (predicted)"
    ]


def test_arch_specific_code_for_other_gpus_is_set_aside_and_ptx_is_the_jit() -> None:
    sparse = gpu_code(
        ("torch/lib/libtorch_cuda.so", [["sm_80", "sm_90"]]),
        ("torch/lib/libcusparseLt-294d6944.so.0", [["sm_80", "sm_86"]] * 3 + [["sm_90a"]] * 2),
    )
    ampere = gpu.verdict("sm_86", sparse)
    assert ampere is not None and ampere.verdict == "native"
    assert "2 with only sm_90a code set aside" in ampere.evidence
    turing = gpu.verdict("sm_75", sparse)
    assert turing is not None and turing.verdict == "no-kernel-image"  # the main library: none
    older = gpu_code(("torch/lib/libtorch_cuda.so", [["sm_75"]]),
                     ("torch/lib/libcusparseLt-1.so.0", [["sm_80"]]))  # fmt: skip
    found = gpu.verdict("sm_75", older)
    assert found is not None and found.verdict == "partial"
    assert "semi-structured (2:4) sparse" in found.lacking[0].ops
    # A package beside torch (torchaudio's libraries, from the next sweep on) counts the same.
    audio = gpu_code(("torch/lib/libtorch_cuda.so", [["sm_75", "sm_80"]]),
                     ("torchaudio/lib/libtorchaudio.so", [["sm_80"]] * 5))  # fmt: skip
    found = gpu.verdict("sm_75", audio)
    assert found is not None and found.verdict == "partial"
    assert found.lacking[0].library == "torchaudio/lib/libtorchaudio.so"
    assert "RNN-T loss" in found.lacking[0].ops and "forced alignment" in found.lacking[0].ops


def test_gpu_names_map_to_architectures_with_their_spelling_aside() -> None:
    names = ["Tesla T4", "t4", "NVIDIA T4", "RTX 4090", "rtx4090", "GeForce GTX 1080",
             "GTX 1080 Ti", "V100", "A100", "NVIDIA H100 80GB HBM3", "H200", "B200", "RTX 5090",
             "DGX Spark", "Jetson Thor", "Jetson AGX Orin", "L4", "RTX 3090"]  # fmt: skip
    named = {name: gpu_data.gpu_named(name).arch for name in names}
    assert named == {
        "Tesla T4": "sm_75", "t4": "sm_75", "NVIDIA T4": "sm_75", "RTX 4090": "sm_89",
        "rtx4090": "sm_89", "GeForce GTX 1080": "sm_61", "GTX 1080 Ti": "sm_61", "V100": "sm_70",
        "A100": "sm_80", "NVIDIA H100 80GB HBM3": "sm_90", "H200": "sm_90", "B200": "sm_100",
        "RTX 5090": "sm_120", "DGX Spark": "sm_121", "Jetson Thor": "sm_110",
        "Jetson AGX Orin": "sm_87", "L4": "sm_89", "RTX 3090": "sm_86",
    }  # fmt: skip
    assert gpu_data.gpu_named("A10G").name == "NVIDIA A10"
    with pytest.raises(gpu_data.GpuDataError, match=r"^--gpu a1000: not a GPU gpu_names.yaml "
                       r"names \(close: .*A100"):  # fmt: skip
        gpu_data.gpu_named("a1000")


def test_every_architecture_has_a_generation_and_every_name_a_listed_architecture() -> None:
    assert [g for g, _ in gpu_data.by_generation(gpu_data.arch_names())] == [
        "Maxwell", "Pascal", "Volta", "Turing", "Ampere", "Ada", "Hopper", "Blackwell"
    ]  # fmt: skip
    assert {"sm_61", "sm_70", "sm_103", "sm_110", "sm_121"} <= set(gpu_data.arch_names())
    assert gpu_data.generation_of("sm_89") == "Ada" and gpu_data.generation_of("sm_37") is None
    assert all(g.arch in gpu_data.arch_names() for g in gpu_data.gpu_names().gpus)
