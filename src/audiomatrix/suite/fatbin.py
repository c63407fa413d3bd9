"""Which GPU architectures a CUDA library carries kernels for, read from its ELF fatbins.

A CUDA torch wheel fails on a GPU it has no code for with "no kernel image is available for
execution on the device", and `torch.cuda.get_arch_list()` answers [] without a GPU. The code
itself says more: nvcc puts each translation unit's device code in a fatbin container, and the
link concatenates the containers in the `.nv_fatbin` section. Each container lists its entries:
SASS (a cubin, machine code for one architecture) and PTX (virtual code the driver can compile
for newer GPUs). Reading the headers alone (no payload, no decompression) takes about a second
for a 1 GB libtorch_cuda.so from a cold disk and a twentieth of one from the page cache, so
this runs anywhere: standard library only, Python 3.10+, no import of torch or of the rest of
audiomatrix, as `python -m audiomatrix.suite.fatbin [PATH ...]`.

Where device code lives in an ELF file:
- `.nv_fatbin`: the fatbins the CUDA runtime registers at load (through `.nvFatBinSegment`);
  the code that runs.
- `__nv_relfatbin`: relocatable device code kept for a later device link (`-rdc`); the runtime
  does not load it, so it is reported apart (relocatable_sass, relocatable_ptx).
- Anywhere else, as data the library loads itself with cuModuleLoadData (cuFFT 11 keeps 23,531
  containers, SASS, PTX and LTO-IR, in `.ldata`, and only one in `.nv_fatbin`), or behind a
  stripped section table: found only with scan=True, by the container magic, and kept only
  when the whole container parses. cuobjdump does not list these either.
PE (Windows) and Mach-O files keep fatbins under other section names and are not read.

The layout, as nvcc and nvlink write it (checked against cuobjdump on CUDA 12.4, 12.8 and 13.0
output): a container is a 16-byte header (u32 magic 0xBA55ED50, u16 version 1, u16 header
size 16, u64 size of the entries that follow), then entries back to back, each a header of its
own size (64 bytes or more) followed by its payload (padded to 8 bytes):

    offset  0  u16 kind: 1 PTX, 2 ELF (SASS), 8 LTO-IR (NVVM for link-time optimisation)
            4  u32 header size       8  u64 payload size
           24  u16 minor, u16 major: the PTX ISA version, or the cubin format version
           28  u32 architecture: 86 for sm_86 or compute_86
           40  u64 flags: 0x1 64-bit, 0x2 debug, 0x10 Linux host, 0x2000 LZ4-compressed,
               0x8000 zstd-compressed, 0x100000 arch-specific ('a': sm_90a),
               0x200000 family-specific ('f': sm_100f)
           56  u64 uncompressed size (when compressed)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import mmap
import os
import re
import struct
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FATBIN_MAGIC = 0xBA55ED50
RUNNABLE_SECTION = ".nv_fatbin"
RELOCATABLE_SECTION = "__nv_relfatbin"
# The architectures of the GPUs people rent or buy for audio models: T4/RTX 20, A100, RTX 30/
# A10, RTX 40/L4/L40, H100/H200, B200, RTX 50.
COMMON_GPU_ARCHS = ("sm_75", "sm_80", "sm_86", "sm_89", "sm_90", "sm_100", "sm_120")
VERDICTS = ("native", "ptx-jit", "no-kernel-image")

_CONTAINER = struct.Struct("<IHHQ")
_ENTRY = struct.Struct("<HHIQIIHHIIIQQQ")  # 64 bytes; a longer header only adds fields
_KINDS = {1: "ptx", 2: "sass", 8: "lto"}
_PREFIXES = {"ptx": "compute", "sass": "sm", "lto": "lto"}
_FLAG_LZ4, _FLAG_ZSTD = 0x2000, 0x8000
_FLAG_ARCH_SPECIFIC, _FLAG_FAMILY = 0x100000, 0x200000
_ELF_HEADER = struct.Struct("<4sBB10xHHIQQQIHHHHHH")
_SECTION = struct.Struct("<IIQQQQIIQQ")
_SHT_PROGBITS, _SHT_NOBITS = 1, 8
_MAX_NOTES = 5
_ARCH = re.compile(r"(sm|compute)_(\d+)([af]?)")


@dataclass(frozen=True)
class Entry:
    """One fatbin entry's header: what code it is and for which architecture."""

    kind: str  # "sass", "ptx", "lto" or "kind-N"
    arch: int  # 86 for sm_86
    variant: str  # "", "a" (this architecture only) or "f" (its family)
    version: str  # PTX ISA version for PTX, cubin format version for SASS
    flags: int
    offset: int  # of the entry header in the file
    payload_size: int
    uncompressed_size: int

    @property
    def target(self) -> str:
        """nvcc's name for it: sm_86, sm_90a, compute_90, lto_80."""
        prefix = _PREFIXES.get(self.kind, self.kind.replace("-", ""))
        return f"{prefix}_{self.arch}{self.variant}"

    @property
    def compression(self) -> str:
        if self.flags & _FLAG_ZSTD:
            return "zstd"
        return "lz4" if self.flags & _FLAG_LZ4 else "none"


@dataclass(frozen=True)
class Container:
    offset: int
    entries: tuple[Entry, ...]


@dataclass
class Section:
    """A fatbin region of the file: an ELF section, or a container found by scanning one."""

    name: str
    offset: int
    size: int
    found_by: str  # "section" or "scan"
    containers: list[Container] = field(default_factory=list)

    @property
    def relocatable(self) -> bool:
        return self.name == RELOCATABLE_SECTION

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "offset": self.offset,
            "size": self.size,
            "found_by": self.found_by,
            "containers": len(self.containers),
            "entries": sum(len(c.entries) for c in self.containers),
        }


class _Problems:
    """Malformed bits seen while reading: counted, the first few described."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.count = 0

    def add(self, text: str) -> None:
        self.count += 1
        if len(self.seen) < _MAX_NOTES:
            self.seen.append(text)

    def notes(self) -> list[str]:
        more = self.count - len(self.seen)
        return self.seen + ([f"... and {more} more malformed spots"] if more else [])


def _entry(buf: Any, pos: int, end: int) -> tuple[Entry, int] | None:
    """The entry at pos and where the next one starts, or None when it is not one."""
    if pos + _ENTRY.size > end:
        return None
    (kind, _, header_size, payload_size, _, _, minor, major, arch, _, _, flags, _,
     uncompressed) = _ENTRY.unpack_from(buf, pos)  # fmt: skip
    if header_size < _ENTRY.size or pos + header_size + payload_size > end:
        return None
    variant = "a" if flags & _FLAG_ARCH_SPECIFIC else "f" if flags & _FLAG_FAMILY else ""
    entry = Entry(
        kind=_KINDS.get(kind, f"kind-{kind}"),
        arch=arch,
        variant=variant,
        version=f"{major}.{minor}",
        flags=flags,
        offset=pos,
        payload_size=payload_size,
        uncompressed_size=uncompressed,
    )
    return entry, pos + header_size + payload_size


def _container(buf: Any, pos: int, end: int, strict: bool) -> tuple[Container, int, bool]:
    """The container whose magic is at pos, where reading stopped, and whether it was whole.

    Lenient (a known fatbin section): keep the entries read before anything malformed.
    Strict (scanning other data): the caller keeps it only when whole and of known kinds.
    """
    _, version, header_size, fat_size = _CONTAINER.unpack_from(buf, pos)
    if header_size < _CONTAINER.size or (strict and (version != 1 or header_size != 16)):
        return Container(pos, ()), pos + 4, False
    claimed_end = pos + header_size + fat_size
    stop = min(claimed_end, end)
    entries: list[Entry] = []
    cursor = pos + header_size
    while cursor < stop:
        read = _entry(buf, cursor, stop)
        if read is None:
            break
        entries.append(read[0])
        cursor = read[1]
    whole = cursor == claimed_end
    if strict:
        whole = whole and bool(entries) and all(e.kind in _PREFIXES for e in entries)
    return Container(pos, tuple(entries)), cursor if entries or whole else pos + 4, whole


def read_containers(
    buf: Any, start: int, end: int, strict: bool = False
) -> tuple[list[Container], list[str]]:
    """Every fatbin container in buf[start:end], with notes on what could not be read.

    The containers are concatenated, each padded to 8 bytes; padding and anything unreadable
    between them is skipped by looking for the next magic. Never raises on garbage.
    """
    magic = struct.pack("<I", FATBIN_MAGIC)
    containers: list[Container] = []
    problems = _Problems()
    pos = start
    while pos < end:
        hit = buf.find(magic, pos, end)
        if hit < 0 or hit + _CONTAINER.size > end:
            if not strict and buf[pos:end].strip(b"\0"):
                problems.add(f"{end - pos} bytes without a container at {pos:#x}")
            break
        if not strict and buf[pos:hit].strip(b"\0"):
            problems.add(f"{hit - pos} bytes skipped before the container at {hit:#x}")
        container, pos, whole = _container(buf, hit, end, strict)
        if container.entries and (whole or not strict):
            containers.append(container)
        if not whole and not strict:
            problems.add(f"container at {hit:#x}: unreadable after {len(container.entries)} "
                         "entries")  # fmt: skip
    return containers, problems.notes()


def _elf_sections(buf: Any) -> tuple[list[tuple[str, int, int, int]], str | None]:
    """(name, type, offset, size) of each section of an ELF64 little-endian file, or a note."""
    if len(buf) < _ELF_HEADER.size or buf[:4] != b"\x7fELF":
        return [], "not an ELF file"
    header = _ELF_HEADER.unpack_from(buf, 0)
    elf_class, data = header[1], header[2]
    shoff, shentsize, shnum, shstrndx = header[8], header[13], header[14], header[15]
    if elf_class != 2 or data != 1:
        return [], "not a 64-bit little-endian ELF file"
    if shoff == 0 or shentsize < _SECTION.size or shoff + shentsize > len(buf):
        return [], "no section table"
    first = _SECTION.unpack_from(buf, shoff)
    shnum = shnum or first[5]  # more than 0xff00 sections: the count is in section 0
    shstrndx = first[6] if shstrndx == 0xFFFF else shstrndx
    shnum = min(shnum, (len(buf) - shoff) // shentsize)
    raw = [_SECTION.unpack_from(buf, shoff + i * shentsize) for i in range(shnum)]
    if shstrndx >= len(raw):
        return [], "no section names"
    names_at, names_size = raw[shstrndx][4], raw[shstrndx][5]
    names_end = min(names_at + names_size, len(buf))
    sections = []
    for name_offset, kind, _, _, offset, size, *_ in raw:
        start = names_at + name_offset
        stop = buf.find(b"\0", start, names_end) if start < names_end else -1
        name = buf[start:stop].decode("utf-8", "replace") if stop >= 0 else ""
        if kind != _SHT_NOBITS and offset < len(buf):
            sections.append((name, kind, offset, min(size, len(buf) - offset)))
    return sections, None


def _fatbin_sections(buf: Any, scan: bool) -> tuple[list[Section], list[str]]:
    sections, note = _elf_sections(buf)
    notes = [note] if note else []
    if note and not scan:
        return [], notes
    found: list[Section] = []
    named = (RUNNABLE_SECTION, RELOCATABLE_SECTION)
    for name, _, offset, size in sections:
        if name in named:
            region = Section(name, offset, size, "section")
            region.containers, problems = read_containers(buf, offset, offset + size)
            notes += [f"{name}: {p}" for p in problems]
            found.append(region)
    if scan:
        others = [(n, o, s) for n, k, o, s in sections if k == _SHT_PROGBITS and n not in named]
        for name, offset, size in others or [("(whole file)", 0, len(buf))]:
            containers, _ = read_containers(buf, offset, offset + size, strict=True)
            if containers:
                found.append(Section(name, offset, size, "scan", containers))
    return found, notes


def _sort_key(target: str) -> tuple[str, int, str]:
    prefix, _, rest = target.partition("_")
    digits = rest.rstrip("af")
    return (prefix, int(digits) if digits.isdigit() else -1, rest[len(digits) :])


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _targets(entries: Iterable[Entry], kind: str) -> list[str]:
    return sorted({e.target for e in entries if e.kind == kind}, key=_sort_key)


def _arch_sets(containers: Iterable[Container]) -> list[dict[str, Any]]:
    """The distinct (SASS, PTX) sets of the containers, most common first, then as met."""
    tally = Counter(
        (tuple(_targets(c.entries, "sass")), tuple(_targets(c.entries, "ptx"))) for c in containers
    )
    return [
        {"sass": list(sass), "ptx": list(ptx), "containers": n}
        for (sass, ptx), n in sorted(tally.items(), key=lambda item: -item[1])
    ]


def summarize(path: str, size: int, sections: Sequence[Section]) -> dict[str, Any]:
    """A file's measurement as JSON-able data; relocatable code is kept apart (see module)."""
    runnable = [c for s in sections if not s.relocatable for c in s.containers]
    relocatable = [e for s in sections if s.relocatable for c in s.containers for e in c.entries]
    entries = [e for c in runnable for e in c.entries]
    sass, ptx, arch_sets = _targets(entries, "sass"), _targets(entries, "ptx"), _arch_sets(runnable)
    common = set.intersection(*(set(s["sass"]) for s in arch_sets)) if arch_sets else set()
    kinds = Counter(e.kind if e.kind in _PREFIXES else "other" for e in entries)
    return {
        "path": path,
        "bytes": size,
        "sections": [s.as_dict() for s in sections],
        "sass": sass,
        "ptx": ptx,
        # A driver compiles only the PTX ISA versions its CUDA release knows.
        "ptx_versions": sorted({e.version for e in entries if e.kind == "ptx"}, key=_version_key),
        "sass_common": sorted(common, key=_sort_key),
        "relocatable_sass": _targets(relocatable, "sass"),
        "relocatable_ptx": _targets(relocatable, "ptx"),
        "entries": {k: kinds.get(k, 0) for k in ("sass", "ptx", "lto", "other")},
        "compression": dict(sorted(Counter(e.compression for e in entries).items())),
        "arch_sets": arch_sets,
        "predictions": predict_all(sass, ptx, arch_sets),
    }


def read_library(path: str, scan: bool = False) -> dict[str, Any]:
    """The fatbin measurement of one file (see summarize), plus notes and seconds taken.

    Maps the file and touches only the section table and the entry headers. Never raises:
    an unreadable or foreign file gives empty lists and a note.
    """
    started = time.perf_counter()
    sections: list[Section] = []
    notes: list[str] = []
    size = 0
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size == 0:
                notes.append("empty file")
            else:
                with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                    sections, notes = _fatbin_sections(buf, scan)
    except (OSError, ValueError, struct.error) as error:
        notes.append(f"unreadable: {error}")
    result = summarize(path, size, sections)
    result["notes"] = notes
    result["seconds"] = round(time.perf_counter() - started, 4)
    return result


def _arch(name: str) -> tuple[int, int, str] | None:
    """("sm"|"compute") name -> (major, minor, variant): sm_86 -> (8, 6, ""), sm_100f -> (10, 0,
    "f"); None for anything else."""
    match = _ARCH.fullmatch(name.strip())
    if not match:
        return None
    number = int(match.group(2))
    return number // 10, number % 10, match.group(3)


def _runs_sass(code: tuple[int, int, str], gpu: tuple[int, int]) -> bool:
    major, minor, variant = code
    if variant == "a":
        return (major, minor) == gpu
    return major == gpu[0] and minor <= gpu[1]


def _jits_ptx(code: tuple[int, int, str], gpu: tuple[int, int]) -> bool:
    major, minor, variant = code
    if variant:
        return _runs_sass(code, gpu)
    return (major, minor) <= gpu


def predict(gpu: str, sass: Iterable[str], ptx: Iterable[str]) -> dict[str, Any]:
    """Whether a GPU of architecture `gpu` (sm_86) finds code among these SASS and PTX targets.

    Returns {"gpu", "verdict", "evidence", "why"}: verdict "native" (a cubin that runs there),
    "ptx-jit" (no such cubin, but PTX the driver compiles for it at first use: slow first
    run, cached after) or "no-kernel-image" (CUDA's error there); evidence is the target
    that decides, None for no-kernel-image. The rules, as CUDA documents them:

    - SASS sm_XY runs on GPUs of the same major version X with minor >= Y: machine code is
      binary compatible upwards within a major version, never across one, never downwards.
      sm_80 runs on sm_86 and sm_89, sm_86 not on sm_80, sm_90 not on sm_100.
    - sm_XYa uses architecture-specific instructions (Hopper's wgmma, Blackwell's tcgen05):
      it runs on exactly X.Y and nothing else, not even a later X.z.
    - sm_XYf uses the features a family shares (10.0 and 10.3; 12.0 and 12.1): it runs on
      the same major with minor >= Y, which is the plain rule again.
    - PTX compute_XY can be JIT-compiled by the driver for any GPU of X.Y or later, across
      major versions: PTX is the forward-compatible form. compute_XYa only for exactly X.Y,
      compute_XYf only within its family (same major, minor >= Y).
    - The driver loads a matching cubin before it compiles PTX, so SASS decides first.

    Checked on an sm_90 GPU (H200, driver 580) with one kernel built twelve ways, loaded and
    run with and without CUDA_DISABLE_PTX_JIT=1: sm_90, sm_90a native; compute_80, compute_90a,
    sm_86+compute_86 JIT; sm_80, sm_89, sm_100+compute_100, sm_100f, sm_120a, compute_100a
    CUDA_ERROR_NO_BINARY_FOR_GPU, the "no kernel image" error.

    What it cannot see: a driver older than the toolkit that wrote the PTX cannot compile it
    (CUDA_ERROR_UNSUPPORTED_PTX_VERSION), and CUDA_DISABLE_PTX_JIT=1 forbids compiling it.
    The lists are a library's union: see coverage() for code missing from some containers.
    """
    device = _arch(gpu)
    if device is None or device[2] or not gpu.startswith("sm_"):
        raise ValueError(f"not a GPU architecture: {gpu!r} (expected sm_XY, e.g. sm_86)")
    at = device[:2]
    for kind, names, fits in (("sass", sass, _runs_sass), ("ptx", ptx, _jits_ptx)):
        prefix = _PREFIXES[kind] + "_"
        parsed = [(n, _arch(n)) for n in names if n.startswith(prefix)]
        # The closest target decides; between sm_90 and sm_90a, the plain one that every
        # translation unit tends to carry.
        usable = sorted(
            (n for n, code in parsed if code and fits(code, at)),
            key=lambda n: (_sort_key(n)[1], ("a", "f", "").index(_sort_key(n)[2])),
        )
        if usable:
            best = usable[-1]
            if kind == "sass":
                why = f"{best} runs on {gpu}"
                return {"gpu": gpu, "verdict": "native", "evidence": best, "why": why}
            why = f"no SASS runs on {gpu}; the driver compiles {best} at first use"
            return {"gpu": gpu, "verdict": "ptx-jit", "evidence": best, "why": why}
    why = f"no SASS for {gpu} nor PTX it can compile"
    return {"gpu": gpu, "verdict": "no-kernel-image", "evidence": None, "why": why}


def coverage(gpu: str, arch_sets: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """How many containers (translation units) get each verdict on gpu: a library can carry
    sm_90a code in a few containers and sm_80 in all; only the tally shows the gaps."""
    tally = dict.fromkeys(VERDICTS, 0)
    for arch_set in arch_sets:
        verdict = predict(gpu, arch_set["sass"], arch_set["ptx"])["verdict"]
        tally[verdict] += int(arch_set["containers"])
    return tally


def predict_all(
    sass: Iterable[str],
    ptx: Iterable[str],
    arch_sets: Iterable[Mapping[str, Any]] = (),
    gpus: Sequence[str] = COMMON_GPU_ARCHS,
) -> dict[str, dict[str, Any]]:
    """predict() for each GPU architecture, with its coverage() of the given arch sets."""
    sass, ptx, arch_sets = list(sass), list(ptx), list(arch_sets)
    return {
        gpu: {**predict(gpu, sass, ptx), "containers": coverage(gpu, arch_sets)} for gpu in gpus
    }


def measure_files(paths: Iterable[str], scan: bool = False) -> dict[str, Any]:
    """The fatbins of several libraries together: every file read (read), those that carry
    fatbins (files, each with its own predictions) and the union of their targets.

    The top-level predictions are the primary file's: the first given that carries fatbins.
    A union would mislead: torch 2.5.1 bundles cuSPARSELt, whose few compute_90 PTX kernels
    would make a Blackwell GPU look "ptx-jit" while libtorch_cuda.so has nothing for it."""
    started = time.perf_counter()
    read = [read_library(p, scan) for p in paths]
    files = [f for f in read if f["sections"]]
    union = {
        key: sorted({t for f in files for t in f[key]}, key=_sort_key)
        for key in ("sass", "ptx", "relocatable_sass", "relocatable_ptx")
    }
    return {
        "read": [f["path"] for f in read],
        "files": files,
        **union,
        "primary": files[0]["path"] if files else None,
        "predictions": files[0]["predictions"] if files else predict_all([], []),
        "notes": [f"{f['path']}: {n}" for f in read if not f["sections"] for n in f["notes"]],
        "seconds": round(time.perf_counter() - started, 4),
    }


def torch_libraries(torch_dir: str) -> list[str]:
    """The shared libraries in torch/lib, libtorch_cuda.so first: the CUDA kernels live there,
    in libtorch_cuda_linalg.so, and in bundled NVIDIA libraries (libcusparseLt-<hash>.so.0)."""
    lib = os.path.join(torch_dir, "lib")
    try:
        names = sorted(os.listdir(lib))
    except OSError:
        return []
    seen: set[str] = set()
    found = []
    for name in sorted(names, key=lambda n: n != "libtorch_cuda.so"):
        path = os.path.join(lib, name)
        real = os.path.realpath(path)
        if re.fullmatch(r"lib.+\.so(\.\d+)*", name) and os.path.isfile(real) and real not in seen:
            seen.add(real)
            found.append(path)
    return found


def measure_torch(torch_dir: str, scan: bool = False) -> dict[str, Any]:
    """measure_files() over an installed torch (site-packages/torch)."""
    result = {"torch_dir": torch_dir, **measure_files(torch_libraries(torch_dir), scan)}
    if not os.path.isfile(os.path.join(torch_dir, "lib", "libtorch_cuda.so")):
        result["notes"].append("no lib/libtorch_cuda.so: a CPU-only torch, or not a torch folder")
    return result


def _installed_torch() -> str | None:
    """The folder of the torch this interpreter would import, found without importing it."""
    spec = importlib.util.find_spec("torch")
    return os.path.dirname(spec.origin) if spec and spec.origin else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m audiomatrix.suite.fatbin",
        description="Print as JSON the GPU architectures CUDA libraries carry code for.",
    )
    parser.add_argument(
        "paths", nargs="*", metavar="PATH",
        help="a torch folder (site-packages/torch) or a library; default: the installed torch",
    )  # fmt: skip
    parser.add_argument(
        "--scan", action="store_true", help="also look for fatbins outside the fatbin sections"
    )
    args = parser.parse_args(argv)
    paths = args.paths or [p for p in [_installed_torch()] if p]
    if not paths:
        print(json.dumps({"notes": ["no PATH given and no torch installed"]}))
        return 1
    if len(paths) == 1 and os.path.isdir(paths[0]):
        result = measure_torch(paths[0], args.scan)
    else:
        libraries = [
            lib for p in paths for lib in (torch_libraries(p) if os.path.isdir(p) else [p])
        ]
        result = measure_files(libraries, args.scan)
    print(json.dumps(result, indent=2))
    return 0 if result["read"] else 1


if __name__ == "__main__":
    sys.exit(main())
