"""audiomatrix.suite.fatbin: the fatbin reader on ELF files built here byte by byte, on
libraries nvcc compiles (where nvcc is), and on an installed CUDA torch (marked `smoke`)."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audiomatrix.lock import cell_lock
from audiomatrix.smoke import runner as smoke
from audiomatrix.spec import matrix as spec
from audiomatrix.suite import fatbin
from support import cuobjdump_lists

MODULE = Path(fatbin.__file__)
REPO = Path(__file__).resolve().parents[1]
CI_CELLS = [c.id for c in spec.load(REPO / "matrix.yaml").select(["ci"])]
PTX, SASS, LTO = 1, 2, 8
LINUX_64 = 0x11
LZ4, ZSTD, ARCH_SPECIFIC, FAMILY = 0x2000, 0x8000, 0x100000, 0x200000


def entry(kind: int, arch: int, flags: int = LINUX_64, payload: bytes = b"code",
          version: tuple[int, int] = (1, 8), header_size: int = 64,
          uncompressed: int = 0) -> bytes:  # fmt: skip
    """A fatbin entry as nvcc writes it: header (64 bytes or more), payload padded to 8."""
    padded = payload + b"\0" * (-len(payload) % 8)
    header = struct.pack("<HHIQIIHHIIIQQQ", kind, 0x0101, header_size, len(padded), len(payload),
                         0, version[1], version[0], arch, 0, 0, flags, 0, uncompressed)  # fmt: skip
    return header + b"\0" * (header_size - len(header)) + padded


def container(*entries: bytes) -> bytes:
    body = b"".join(entries)
    return struct.pack("<IHHQ", fatbin.FATBIN_MAGIC, 1, 16, len(body)) + body


def elf(sections: dict[str, bytes], nobits: tuple[str, ...] = ()) -> bytes:
    """An ELF64 little-endian shared object with these PROGBITS sections, .shstrtab and a
    section table at the end; names in nobits become SHT_NOBITS (no bytes in the file)."""
    names = b"\0"
    table = [struct.pack("<IIQQQQIIQQ", *([0] * 10))]
    data = bytearray(b"\0" * 64)
    for name, content in [*sections.items(), (".shstrtab", None)]:
        name_offset = len(names)
        names += name.encode() + b"\0"
        content = names if content is None else content
        data += b"\0" * (-len(data) % 8)
        kind = 3 if name == ".shstrtab" else 8 if name in nobits else 1
        table.append(struct.pack("<IIQQQQIIQQ", name_offset, kind, 2, 0, len(data), len(content),
                                 0, 0, 8, 0))  # fmt: skip
        if kind != 8:
            data += content
    data += b"\0" * (-len(data) % 8)
    shoff = len(data)
    header = struct.pack("<4sBBBB8xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 3, 62, 1, 0, 0, shoff,
                         0, 64, 0, 0, 64, len(table), len(table) - 1)  # fmt: skip
    data[:64] = header
    return bytes(data) + b"".join(table)


FIRST = container(
    entry(SASS, 75, flags=LINUX_64 | LZ4, uncompressed=99),
    entry(SASS, 86),
    entry(PTX, 86, flags=LINUX_64 | ZSTD, payload=b"// ptx", version=(8, 4), header_size=80),
)
SECOND = container(
    entry(SASS, 90, flags=LINUX_64 | ARCH_SPECIFIC, header_size=96),
    entry(SASS, 75, payload=b"x" * 13),
    entry(SASS, 86),
)
THIRD = container(entry(SASS, 100, flags=LINUX_64 | FAMILY, header_size=112), entry(SASS, 75))
SECTION = FIRST + b"\0" * 8 + SECOND + THIRD


def write(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def test_every_container_of_the_section_is_read(tmp_path: Path) -> None:
    library = elf({".text": b"\x90" * 40, fatbin.RUNNABLE_SECTION: SECTION, ".bss": b""},
                  nobits=(".bss",))  # fmt: skip
    result = fatbin.read_library(write(tmp_path, "libk.so", library))
    assert result["sass"] == ["sm_75", "sm_86", "sm_90a", "sm_100f"]
    assert result["ptx"] == ["compute_86"]
    assert result["ptx_versions"] == ["8.4"]
    assert result["sass_common"] == ["sm_75"]
    assert result["entries"] == {"sass": 7, "ptx": 1, "lto": 0, "other": 0}
    assert result["compression"] == {"lz4": 1, "none": 6, "zstd": 1}
    [section] = result["sections"]
    assert (section["name"], section["size"], section["found_by"]) == (".nv_fatbin", len(SECTION),
                                                                       "section")  # fmt: skip
    assert (section["containers"], section["entries"]) == (3, 8)
    assert result["arch_sets"] == [
        {"sass": ["sm_75", "sm_86"], "ptx": ["compute_86"], "containers": 1},
        {"sass": ["sm_75", "sm_86", "sm_90a"], "ptx": [], "containers": 1},
        {"sass": ["sm_75", "sm_100f"], "ptx": [], "containers": 1},
    ]
    assert result["notes"] == []
    assert result["predictions"]["sm_89"]["evidence"] == "sm_86"
    assert result["predictions"]["sm_100"]["containers"] == {
        "native": 1, "ptx-jit": 1, "no-kernel-image": 1
    }  # fmt: skip


def test_entry_headers_are_decoded() -> None:
    containers, notes = fatbin.read_containers(SECTION, 0, len(SECTION))
    assert notes == []
    assert [c.offset for c in containers] == [0, len(FIRST) + 8, len(FIRST) + 8 + len(SECOND)]
    lz4, sass, ptx = containers[0].entries
    assert (lz4.kind, lz4.arch, lz4.compression, lz4.uncompressed_size) == ("sass", 75, "lz4", 99)
    assert (ptx.target, ptx.version, ptx.compression, ptx.offset) == (
        "compute_86", "8.4", "zstd", 16 + 2 * (64 + 8)
    )  # fmt: skip
    assert sass.flags == LINUX_64 and sass.version == "1.8"
    assert containers[1].entries[1].payload_size == 16  # 13 bytes padded to 8
    assert [e.target for e in containers[2].entries] == ["sm_100f", "sm_75"]


def test_relocatable_and_lto_code_is_kept_apart(tmp_path: Path) -> None:
    relocatable = container(entry(SASS, 80), entry(PTX, 80, version=(9, 0)), entry(LTO, 80),
                            entry(5, 80))  # fmt: skip
    library = elf({fatbin.RUNNABLE_SECTION: FIRST, fatbin.RELOCATABLE_SECTION: relocatable})
    result = fatbin.read_library(write(tmp_path, "librdc.so", library))
    assert (result["sass"], result["ptx"]) == (["sm_75", "sm_86"], ["compute_86"])
    assert (result["relocatable_sass"], result["relocatable_ptx"]) == (["sm_80"], ["compute_80"])
    assert [s["name"] for s in result["sections"]] == [".nv_fatbin", "__nv_relfatbin"]
    rdc, _ = fatbin.read_containers(relocatable, 0, len(relocatable))
    assert [e.target for e in rdc[0].entries] == ["sm_80", "compute_80", "lto_80", "kind5_80"]


@pytest.mark.parametrize(
    ("section", "found", "note"),
    [
        (FIRST + b"garbage!" + SECOND, ["sm_75", "sm_86", "sm_90a"], "8 bytes skipped"),
        (FIRST + SECOND[:-40], ["sm_75", "sm_86", "sm_90a"], "unreadable after 2 entries"),
        (FIRST + SECOND[:20] + b"\xff" * 8 + SECOND[28:] + THIRD,
         ["sm_75", "sm_86", "sm_100f"], "unreadable after 0 entries"),
        (FIRST + b"tail", ["sm_75", "sm_86"], "4 bytes without a container"),
    ],
    ids=["garbage-between", "truncated", "bad-entry-header", "trailing-bytes"],
)  # fmt: skip
def test_damaged_sections_keep_what_reads(
    tmp_path: Path, section: bytes, found: list[str], note: str
) -> None:
    result = fatbin.read_library(write(tmp_path, "libd.so", elf({".nv_fatbin": section})))
    assert result["sass"] == found
    assert any(note in n for n in result["notes"]), result["notes"]


@pytest.mark.parametrize(
    ("content", "note"),
    [
        (b"", "empty file"),
        (b"#!/bin/sh\necho not a library\n" * 4, "not an ELF file"),
        (b"\x7fELF\x01\x01\x01" + b"\0" * 60, "not a 64-bit little-endian ELF file"),
        (b"\x7fELF\x02\x01", "not an ELF file"),
        (elf({".nv_fatbin": FIRST})[:200], "no section table"),
        (elf({".text": b"\x90" * 64, ".rodata": FIRST}), None),
    ],
    ids=["empty", "text", "elf32", "short-elf", "truncated-elf", "no-fatbin-section"],
)  # fmt: skip
def test_foreign_files_give_an_empty_result(tmp_path: Path, content: bytes, note: str) -> None:
    result = fatbin.read_library(write(tmp_path, "libx.so", content))
    assert (result["sections"], result["sass"], result["ptx"]) == ([], [], [])
    assert result["notes"] == ([note] if note else [])
    assert all(p["verdict"] == "no-kernel-image" for p in result["predictions"].values())
    json.dumps(result)


def test_a_missing_file_is_a_note(tmp_path: Path) -> None:
    result = fatbin.read_library(str(tmp_path / "absent.so"))
    assert result["sass"] == [] and result["notes"][0].startswith("unreadable: ")


def test_every_truncation_and_random_damage_is_survived(tmp_path: Path) -> None:
    library = elf({".nv_fatbin": SECTION, fatbin.RELOCATABLE_SECTION: SECOND})
    full = set(fatbin.read_library(write(tmp_path, "full.so", library))["sass"])
    path = tmp_path / "cut.so"
    for cut in range(0, len(library), 7):
        path.write_bytes(library[:cut])
        assert set(fatbin.read_library(str(path))["sass"]) <= full
    rng = random.Random(4)
    for _ in range(300):
        damaged = bytearray(library)
        for _ in range(rng.randint(1, 12)):
            spot = rng.randrange(len(damaged))
            damaged[spot : spot + 4] = rng.choice([b"\xff\xff\xff\xff", b"\0\0\0\0",
                                                   struct.pack("<I", fatbin.FATBIN_MAGIC),
                                                   rng.randbytes(4)])  # fmt: skip
        path.write_bytes(damaged)
        json.dumps(fatbin.read_library(str(path), scan=True))


def test_scan_finds_fatbins_kept_as_data(tmp_path: Path) -> None:
    fake = struct.pack("<IHHQ", fatbin.FATBIN_MAGIC, 1, 16, 64) + b"\x07" * 64
    library = elf({".text": b"\x90" * 64, ".rodata": b"\1" * 24 + fake + SECOND})
    path = write(tmp_path, "libembedded.so", library)
    assert fatbin.read_library(path)["sections"] == []
    scanned = fatbin.read_library(path, scan=True)
    assert scanned["sass"] == ["sm_75", "sm_86", "sm_90a"]
    assert [(s["name"], s["found_by"], s["containers"]) for s in scanned["sections"]] == [
        (".rodata", "scan", 1)
    ]
    raw = fatbin.read_library(write(tmp_path, "kernels.fatbin", FIRST), scan=True)
    assert (raw["sass"], raw["notes"]) == (["sm_75", "sm_86"], ["not an ELF file"])
    assert raw["sections"][0]["name"] == "(whole file)"


CASES = [
    # (gpu, SASS, PTX, verdict, evidence)
    ("sm_86", ["sm_80"], [], "native", "sm_80"),  # upwards within a major
    ("sm_89", ["sm_80", "sm_86"], [], "native", "sm_86"),  # the closest decides
    ("sm_75", ["sm_80"], [], "no-kernel-image", None),  # never downwards
    ("sm_80", ["sm_86"], [], "no-kernel-image", None),
    ("sm_90", ["sm_80", "sm_86"], [], "no-kernel-image", None),  # never across a major
    ("sm_120", ["sm_100"], [], "no-kernel-image", None),
    ("sm_75", ["sm_70"], [], "native", "sm_70"),
    ("sm_90", ["sm_80"], ["compute_80"], "ptx-jit", "compute_80"),  # PTX crosses majors
    ("sm_120", [], ["compute_52", "compute_90"], "ptx-jit", "compute_90"),
    ("sm_86", ["sm_86"], ["compute_90"], "native", "sm_86"),
    ("sm_80", [], ["compute_86"], "no-kernel-image", None),  # PTX only upwards
    ("sm_90", ["sm_90a"], [], "native", "sm_90a"),  # 'a': exactly that architecture
    ("sm_100", ["sm_90a"], [], "no-kernel-image", None),
    ("sm_103", ["sm_100a"], [], "no-kernel-image", None),
    ("sm_90", ["sm_90a", "sm_90"], [], "native", "sm_90"),
    ("sm_100", [], ["compute_90a"], "no-kernel-image", None),  # 'a' PTX: no JIT elsewhere
    ("sm_90", [], ["compute_90a"], "ptx-jit", "compute_90a"),
    ("sm_103", ["sm_100f"], [], "native", "sm_100f"),  # 'f': the family
    ("sm_100", ["sm_103f"], [], "no-kernel-image", None),
    ("sm_110", ["sm_100f"], [], "no-kernel-image", None),
    ("sm_121", [], ["compute_120f"], "ptx-jit", "compute_120f"),
    ("sm_130", [], ["compute_120f"], "no-kernel-image", None),
    ("sm_120", ["lto_120", "bogus"], ["sm_120"], "no-kernel-image", None),  # not code names
]


@pytest.mark.parametrize(("gpu", "sass", "ptx", "verdict", "evidence"), CASES)
def test_prediction_rules(gpu: str, sass: list[str], ptx: list[str], verdict: str,
                          evidence: str | None) -> None:  # fmt: skip
    result = fatbin.predict(gpu, sass, ptx)
    assert (result["gpu"], result["verdict"], result["evidence"]) == (gpu, verdict, evidence)
    assert gpu in result["why"]


@pytest.mark.parametrize("gpu", ["compute_86", "sm_90a", "8.6", "sm86", ""])
def test_a_gpu_is_named_by_its_sm_architecture(gpu: str) -> None:
    with pytest.raises(ValueError, match="not a GPU architecture"):
        fatbin.predict(gpu, ["sm_80"], [])


def test_predict_all_counts_containers_per_verdict() -> None:
    arch_sets = [
        {"sass": ["sm_80", "sm_90"], "ptx": [], "containers": 30},
        {"sass": ["sm_90a"], "ptx": [], "containers": 2},
        {"sass": [], "ptx": ["compute_80"], "containers": 1},
    ]
    result = fatbin.predict_all(["sm_80", "sm_90", "sm_90a"], ["compute_80"], arch_sets)
    assert list(result) == list(fatbin.COMMON_GPU_ARCHS)
    assert result["sm_86"]["verdict"] == "native"
    assert result["sm_86"]["containers"] == {"native": 30, "ptx-jit": 1, "no-kernel-image": 2}
    assert result["sm_90"]["containers"] == {"native": 32, "ptx-jit": 1, "no-kernel-image": 0}
    assert result["sm_75"]["verdict"] == "no-kernel-image"
    assert result["sm_120"]["verdict"] == "ptx-jit"


def fake_torch(root: Path) -> Path:
    lib = root / "torch" / "lib"
    lib.mkdir(parents=True)
    (lib / "libc10.so").write_bytes(elf({".text": b"\x90" * 16}))
    (lib / "libtorch_cuda.so").write_bytes(elf({".nv_fatbin": SECOND}))
    (lib / "libcusparseLt-0123abcd.so.0").write_bytes(elf({".nv_fatbin": FIRST}))
    (lib / "libc10.so.2").symlink_to("libc10.so")
    (lib / "libshm").mkdir()
    (lib / "libshm" / "libshm.h").write_text("/* not a library */\n")
    return root / "torch"


def test_torch_folder(tmp_path: Path) -> None:
    torch_dir = fake_torch(tmp_path)
    result = fatbin.measure_torch(str(torch_dir))
    assert [Path(p).name for p in result["read"]] == [
        "libtorch_cuda.so", "libc10.so", "libcusparseLt-0123abcd.so.0"
    ]  # fmt: skip
    assert [Path(f["path"]).name for f in result["files"]] == [
        "libtorch_cuda.so", "libcusparseLt-0123abcd.so.0"
    ]  # fmt: skip
    assert result["sass"] == ["sm_75", "sm_86", "sm_90a"]
    assert result["ptx"] == ["compute_86"]
    assert Path(result["primary"]).name == "libtorch_cuda.so"
    # libtorch_cuda.so decides: cuSPARSELt's compute_86 PTX would reach sm_100 too.
    assert result["predictions"]["sm_89"]["evidence"] == "sm_86"
    assert result["predictions"]["sm_100"]["verdict"] == "no-kernel-image"
    assert result["notes"] == []


def test_cpu_torch_folder(tmp_path: Path) -> None:
    torch_dir = fake_torch(tmp_path)
    (torch_dir / "lib" / "libtorch_cuda.so").unlink()
    (torch_dir / "lib" / "libcusparseLt-0123abcd.so.0").unlink()
    result = fatbin.measure_torch(str(torch_dir))
    assert (result["files"], result["sass"], result["primary"]) == ([], [], None)
    assert result["predictions"]["sm_86"]["verdict"] == "no-kernel-image"
    assert result["notes"] == ["no lib/libtorch_cuda.so: a CPU-only torch, or not a torch folder"]


def pythons() -> list[str]:
    """This interpreter, and 3.10 (the oldest the images run) where the machine has one."""
    found = shutil.which("python3.10")
    works = found and subprocess.run([found, "-c", ""], capture_output=True).returncode == 0
    return [sys.executable, *([found] if works else [])]


@pytest.mark.parametrize("python", pythons())
def test_cli_runs_alone_on_the_standard_library(tmp_path: Path, python: str) -> None:
    """-I -S: no site-packages, no audiomatrix package, no PYTHONPATH; the file alone."""
    torch_dir = fake_torch(tmp_path)
    run = subprocess.run([python, "-I", "-S", str(MODULE), str(torch_dir)], capture_output=True,
                         text=True, check=True)  # fmt: skip
    result = json.loads(run.stdout)
    assert result["torch_dir"] == str(torch_dir) and result["sass"] == ["sm_75", "sm_86", "sm_90a"]
    library = torch_dir / "lib" / "libcusparseLt-0123abcd.so.0"
    # -m from src/ without site-packages: the package's own __init__ files import nothing.
    files = subprocess.run([python, "-S", "-m", "audiomatrix.suite.fatbin", str(library),
                            str(tmp_path)], cwd=MODULE.parents[2], capture_output=True, text=True,
                           check=True)  # fmt: skip
    assert json.loads(files.stdout)["read"] == [str(library)]


def test_cli_without_torch_says_so(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-I", "-S", str(MODULE)], capture_output=True, text=True)
    assert run.returncode == 1
    assert json.loads(run.stdout) == {"notes": ["no PATH given and no torch installed"]}


# -- real device code, where nvcc is ------------------------------------------------------------

KERNEL = """
__global__ void scale(float *x, float v) { x[threadIdx.x] *= v; }
extern "C" int launch(float *x) { scale<<<1, 32>>>(x, 2.0f); return (int)cudaGetLastError(); }
"""
GENCODES = ["-gencode", "arch=compute_75,code=sm_75", "-gencode", "arch=compute_86,code=sm_86",
            "-gencode", "arch=compute_90,code=compute_90",
            "-gencode", "arch=compute_90a,code=sm_90a"]  # fmt: skip


def find_nvcc() -> str | None:
    """nvcc 12 or later (sm_90a is new in CUDA 12)."""
    candidates = [shutil.which("nvcc"), os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"),
                                                     "bin", "nvcc")]  # fmt: skip
    for nvcc in filter(None, candidates):
        if os.access(nvcc, os.X_OK):
            version = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
            found = re.search(r"release (\d+)\.", version)
            return nvcc if found and int(found.group(1)) >= 12 else None
    return None


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[str, str]:
    """libplain.so as torch is built, librdc.so with relocatable device code (-rdc)."""
    nvcc = find_nvcc()
    if nvcc is None:
        pytest.skip("no nvcc 12 or later on PATH or in $CUDA_HOME/bin")
    folder = tmp_path_factory.mktemp("nvcc")
    (folder / "scale.cu").write_text(KERNEL)
    runs = {
        name: subprocess.Popen([nvcc, "-shared", "-Xcompiler", "-fPIC", *flags, *GENCODES,
                                "-o", f"{name}.so", "scale.cu"], cwd=folder,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, flags in (("libplain", []), ("librdc", ["-rdc=true"]))
    }  # fmt: skip
    for name, run in runs.items():
        output, _ = run.communicate()
        assert run.returncode == 0, f"nvcc {name}: {output}"
    return {name: str(folder / f"{name}.so") for name in runs}


def test_nvcc_library(compiled: dict[str, str]) -> None:
    result = fatbin.read_library(compiled["libplain"])
    assert result["sass"] == ["sm_75", "sm_86", "sm_90a"]
    assert result["ptx"] == ["compute_90"]
    assert result["sass_common"] == ["sm_75", "sm_86", "sm_90a"]
    assert (result["relocatable_sass"], result["relocatable_ptx"]) == ([], [])
    assert result["ptx_versions"] and result["notes"] == []
    verdicts = {gpu: p["verdict"] for gpu, p in result["predictions"].items()}
    assert verdicts == {"sm_75": "native", "sm_80": "no-kernel-image", "sm_86": "native",
                        "sm_89": "native", "sm_90": "native", "sm_100": "ptx-jit",
                        "sm_120": "ptx-jit"}  # fmt: skip


def test_nvcc_relocatable_library(compiled: dict[str, str]) -> None:
    """nvlink's device link keeps the SASS in .nv_fatbin and drops the PTX; __nv_relfatbin
    keeps everything nvcc made, for a later device link."""
    result = fatbin.read_library(compiled["librdc"])
    assert [s["name"] for s in result["sections"]] == [".nv_fatbin", "__nv_relfatbin"]
    assert (result["sass"], result["ptx"]) == (["sm_75", "sm_86", "sm_90a"], [])
    assert result["relocatable_sass"] == ["sm_75", "sm_86", "sm_90a"]
    assert result["relocatable_ptx"] == ["compute_90"]


def test_nvcc_library_agrees_with_cuobjdump(compiled: dict[str, str]) -> None:
    cuobjdump = os.environ.get("AUDIOMATRIX_CUOBJDUMP") or shutil.which("cuobjdump")
    if not cuobjdump:
        pytest.skip("no cuobjdump on PATH and no AUDIOMATRIX_CUOBJDUMP")
    for library in compiled.values():
        result = fatbin.read_library(library)
        sass = sorted({re.sub(r"f$", "", s) for s in result["sass"]})
        assert cuobjdump_lists(cuobjdump, library) == (sass, sorted(result["ptx"]))


# -- an installed CUDA torch (the CI cells' venvs) ----------------------------------------------


@pytest.mark.smoke
@pytest.mark.parametrize("cell", CI_CELLS)
def test_the_ci_cells_wheels_match_their_arch_flags(cell: str) -> None:
    """On the CI cells' real torch wheels (their venvs from the committed locks): what every
    container of libtorch_cuda.so carries is what torch says it was built for."""
    python = smoke.ensure_venv(
        cell_lock.read_lock(REPO / "environments", cell), smoke.venv_root() / cell
    )
    probe = ("import os, torch; print(os.path.dirname(torch.__file__)); "
             "print(torch._C._cuda_getArchFlags())")  # fmt: skip
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True)
    torch_dir, flags = out.stdout.strip().splitlines()
    started = time.perf_counter()
    result = fatbin.measure_torch(torch_dir)
    seconds = time.perf_counter() - started
    primary = result["files"][0]
    assert Path(primary["path"]).name == "libtorch_cuda.so"
    assert primary["sass_common"] == flags.split(), primary["arch_sets"]
    assert seconds < 5, f"{seconds:.1f} s to read {torch_dir}"
