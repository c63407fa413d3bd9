"""The fatbin reader against NVIDIA's own tool on real torch wheels (marked `wheels`: three
wheels of about a GB each, from uv's cache when warm; a few minutes).

For a cu124, a cu128 and a cu130 wheel (PyPI's manylinux x86_64 wheels for CPython 3.11),
every library in torch/lib: the SASS and PTX targets the reader finds, and how many containers
carry each (the arch sets the table's GPU verdicts count), equal what cuobjdump lists, one cubin
or PTX file per container and target (runnable code: neither lists relocatable code); a library
the reader finds no device code in has none for cuobjdump either. cuobjdump comes from NVIDIA's
PyPI package nvidia-cuda-cuobjdump, installed by the test into a throwaway folder with uv.
Measured here, with the wheels in uv's cache: about 90 s for the three.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from audiomatrix.lock import uvtool
from audiomatrix.suite import fatbin
from support import cuobjdump_targets

pytestmark = pytest.mark.wheels

WHEELS = {"cu124": "2.5.1", "cu128": "2.9.1", "cu130": "2.11.0"}
"""torch's PyPI wheel of each CUDA line the table measures."""
PLATFORM = ("--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28")


def _install(target: Path, requirement: str) -> Path:
    """A wheel unpacked into `target` by uv (no dependencies, no environment)."""
    subprocess.run(
        [uvtool.uv_binary(), "pip", "install", "--quiet", "--no-deps", *PLATFORM,
         "--target", str(target), requirement],
        check=True,
    )  # fmt: skip
    return target


@pytest.fixture(scope="module")
def cuobjdump(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = _install(tmp_path_factory.mktemp("cuobjdump"), "nvidia-cuda-cuobjdump")
    [found] = [p for p in folder.rglob("cuobjdump") if p.is_file()]
    return str(found)


def _counts(measured: dict, kind: str) -> Counter[str]:
    """Per target, how many of a library's containers carry it (from its arch sets)."""
    found: Counter[str] = Counter()
    for arch_set in measured["arch_sets"]:
        found.update(dict.fromkeys(arch_set[kind], arch_set["containers"]))
    return found


@pytest.mark.parametrize("variant", list(WHEELS))
def test_the_readers_lists_agree_with_cuobjdump(
    variant: str, cuobjdump: str, tmp_path: Path
) -> None:
    torch_dir = _install(tmp_path, f"torch=={WHEELS[variant]}") / "torch"
    started = time.perf_counter()
    measured = fatbin.measure_torch(str(torch_dir))
    seconds = time.perf_counter() - started
    files = {f["path"]: f for f in measured["files"]}
    assert str(torch_dir / "lib" / "libtorch_cuda.so") in files
    for library in measured["read"]:
        sass, ptx = cuobjdump_targets(cuobjdump, library)
        found = files.get(library)
        if found is None:
            assert (sass, ptx) == (Counter(), Counter()), library
            continue
        # Relocatable device code (__nv_relfatbin, libtorch_nvshmem.so's) is in neither list:
        # the runtime does not load it, and cuobjdump does not list it.
        assert (sass, ptx) == (_counts(found, "sass"), _counts(found, "ptx")), library
    assert seconds < 30, f"{seconds:.1f} s to read {torch_dir}"
