"""Whether a run stands for its cell: each declared fact against its measurement."""

from __future__ import annotations

import pytest

from audiomatrix.smoke import evidence
from audiomatrix.spec.declared import cuda_of_variant
from support import LOCK, environment, record_model

CELL = "bookworm-py3.11-torch2.9.1-cu128-maintained"


@pytest.mark.parametrize(
    ("variant", "cuda"), [("cu128", "12.8"), ("cu130", "13.0"), ("cu124", "12.4"), ("cpu", None)]
)
def test_the_cuda_a_wheel_variant_is_built_against(variant: str, cuda: str | None) -> None:
    assert cuda_of_variant(variant) == cuda


def test_a_run_in_the_declared_environment_stands() -> None:
    declared = evidence.declaration(record_model(CELL, ffmpeg=True, torchcodec="0.9.1"))
    measured = environment(ffmpeg="5", torchcodec="0.9.1")
    assert declared.distribution == "debian bookworm" and declared.cuda == "12.8"
    assert evidence.differences(declared, measured.facts, measured.host, LOCK) == []


def test_ffmpeg_is_compared_by_presence_and_major() -> None:
    declared = evidence.declaration(record_model(CELL, ffmpeg=True, torchcodec="0.9.1"))
    for ffmpeg, said in ((None, "measured none"), ("6", "measured FFmpeg 6")):
        measured = environment(ffmpeg=ffmpeg, torchcodec="0.9.1")
        assert evidence.differences(declared, measured.facts, measured.host, LOCK) == [
            f"FFmpeg: declared FFmpeg 5, {said}"
        ]
    undeclared = evidence.declaration(record_model(CELL, torchcodec="0.9.1"))
    measured = environment(ffmpeg="5", torchcodec="0.9.1")
    assert evidence.differences(undeclared, measured.facts, measured.host, LOCK) == [
        "FFmpeg: declared none, measured FFmpeg 5"
    ]


def test_installed_packages_are_checked_against_the_lock_pins() -> None:
    pins = {"torch": "2.9.1", "numpy": "2.3.5", "Demucs": "4.1.0"}
    installed = {"torch": "2.9.1+cu128", "numpy": "2.3.4", "jax": "0.11.2"}
    assert evidence.lock_drift(pins, installed) == [
        "2 of 3 pins not as locked: Demucs missing (lock 4.1.0), numpy 2.3.4 (lock 2.3.5)",
        "1 distributions beyond the lock: jax",
    ]
    assert evidence.lock_drift(pins, {"torch": "2.9.1", "numpy": "2.3.5", "demucs": "4.1.0"}) == []
