"""The GPU facts the table's verdicts rest on, read from the data files beside this module:
every architecture CUDA lists and its generation (gpu_architectures.yaml), the GPUs people name
and their architecture (gpu_names.yaml), and the operations each library's kernels serve
(gpu_libraries.yaml). Each fact carries its source there; this module only reads them.
"""

from __future__ import annotations

import difflib
import functools
import re
from importlib import resources
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from audiomatrix.core.errors import AudiomatrixError
from audiomatrix.spec.pydantic_errors import pydantic_error
from audiomatrix.spec.yamlpos import YamlFileError, load_yaml

ARCHITECTURES_FILE = "gpu_architectures.yaml"
NAMES_FILE = "gpu_names.yaml"
LIBRARIES_FILE = "gpu_libraries.yaml"
BRAND_WORDS = ("nvidia", "geforce", "tesla", "quadro")
"""Words a GPU's name may carry or leave out: "Tesla T4" and "T4" are one GPU."""


class GpuDataError(AudiomatrixError):
    """A GPU data file that cannot be read, or a GPU name it does not know (exit 2)."""

    exit_code = 2


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Generation(_Data):
    name: str
    source: str


class Architecture(_Data):
    arch: str
    generation: str
    listed_by: list[str]
    """The CUDA releases whose compiler lists it (keys of the file's listed_by)."""
    renamed_to: str | None = None
    source: str | None = None
    """Beside listed_by's: where a note on it (a rename) comes from."""


class Architectures(_Data):
    listed_by: dict[str, str]
    generations: list[Generation]
    architectures: list[Architecture]


class Gpu(_Data):
    name: str
    also: list[str] = []
    arch: str
    source: Literal["current", "legacy"]


class GpuNames(_Data):
    sources: dict[str, str]
    gpus: list[Gpu]


class Library(_Data):
    library: str
    """A regular expression on the file name."""
    ops: str
    source: str


class Libraries(_Data):
    libraries: list[Library]


Model = TypeVar("Model", bound=_Data)


def _read(name: str, schema: type[Model]) -> Model:
    """One data file, or a GpuDataError of one positioned line."""
    path = resources.files("audiomatrix.table").joinpath(name)
    file = f"src/audiomatrix/table/{name}"
    try:
        data, pos = load_yaml(path.read_text(encoding="utf-8"), file)
        return schema.model_validate(data)
    except YamlFileError as exc:
        raise GpuDataError(str(exc)) from None
    except ValidationError as exc:
        raise GpuDataError(str(pydantic_error(exc, data, pos, file, schema))) from None


@functools.cache
def architectures() -> Architectures:
    found = _read(ARCHITECTURES_FILE, Architectures)
    generations = [g.name for g in found.generations]
    for arch in found.architectures:
        unknown = [r for r in arch.listed_by if r not in found.listed_by]
        if arch.generation not in generations or unknown:
            what = f"generation {arch.generation}" if not unknown else f"release {unknown[0]}"
            raise GpuDataError(f"src/audiomatrix/table/{ARCHITECTURES_FILE}: {arch.arch}: "
                               f"unknown {what}; declare it in the file first")  # fmt: skip
    return found


def arch_names() -> tuple[str, ...]:
    """Every listed architecture, oldest first: the GPU table's columns."""
    return tuple(a.arch for a in architectures().architectures)


def generation_of(arch: str) -> str | None:
    return next((a.generation for a in architectures().architectures if a.arch == arch), None)


def by_generation(archs: list[str] | tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """The architectures grouped by generation, in the file's order; empty groups left out."""
    return [
        (g.name, found)
        for g in architectures().generations
        if (found := [a for a in archs if generation_of(a) == g.name])
    ]


@functools.cache
def gpu_names() -> GpuNames:
    found = _read(NAMES_FILE, GpuNames)
    for gpu in found.gpus:
        if gpu.arch not in arch_names():
            raise GpuDataError(f"src/audiomatrix/table/{NAMES_FILE}: {gpu.name}: {gpu.arch} is "
                               f"not in {ARCHITECTURES_FILE}")  # fmt: skip
    return found


def _words(name: str) -> tuple[str, ...]:
    """A name's words and numbers, lower case, without punctuation or brand words, letters
    and digits apart: "GeForce RTX 4090", "rtx4090" -> ("rtx", "4090"); "H100" -> ("h", "100")."""
    return tuple(w for w in re.findall(r"[a-z]+|[0-9]+", name.lower()) if w not in BRAND_WORDS)


def gpu_named(name: str) -> Gpu:
    """The GPU a name means: one whose name's words equal, or begin, the given ones
    (nvidia-smi's "NVIDIA H100 80GB HBM3" is an H100), the longest such name. GpuDataError
    (one line, with the closest names) for a name the data file does not know."""
    asked = _words(name)
    found = [
        (len(words), gpu)
        for gpu in gpu_names().gpus
        for alias in (gpu.name, *gpu.also)
        if (words := _words(alias)) and asked[: len(words)] == words
    ]
    if found:
        return max(found, key=lambda f: f[0])[1]
    every = {" ".join(_words(a)): a for g in gpu_names().gpus for a in (g.name, *g.also)}
    close = difflib.get_close_matches(" ".join(asked), list(every), n=4, cutoff=0.5)
    hint = f"close: {', '.join(every[c] for c in close)}" if close else "no close name"
    raise GpuDataError(
        f"--gpu {name}: not a GPU {NAMES_FILE} names ({hint}); or give its architecture "
        "with --gpu-arch (nvidia-smi --query-gpu=compute_cap)"
    )


def source_of(gpu: Gpu) -> str:
    return gpu_names().sources[gpu.source]


@functools.cache
def libraries() -> Libraries:
    return _read(LIBRARIES_FILE, Libraries)


def ops_of(library: str) -> str | None:
    """What a library's kernels serve, in words, by its file name; None for one the data file
    does not describe."""
    return next(
        (lib.ops for lib in libraries().libraries if re.fullmatch(lib.library, library)), None
    )
