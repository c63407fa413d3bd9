"""The checks a matrix's conda stacks need beyond their schema, each failing at a position:
a conda cell's id says so, what its environment.yml writes from the cell is not declared by
hand, and its pip part never brings torch.

Kept apart from spec.py, which calls `check` from its checker with the checker's `fail`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from packaging.requirements import Requirement

from audiomatrix.spec.yamlpos import YamlFileError, shown

if TYPE_CHECKING:
    from audiomatrix.spec.schema import MatrixFile

CONDA_SUFFIX = "-conda"
"""The end of every conda stack's name, so that a conda cell's id says so."""

CONDA_GENERATED = frozenset(
    {"python", "pytorch", "torchaudio", "torchcodec", "cuda-version", "ffmpeg", "libsndfile", "pip"}
)
"""The conda packages a cell's environment.yml pins from its axes, never declared by hand."""

PIP_NEVER = frozenset({"torch", "torchaudio", "torchcodec"})
"""What a conda cell never takes from PyPI: a second torch over the channel's."""

Fail = Callable[..., YamlFileError]
"""The checker's `fail(path, message, key=False)`: the error at a place in the file."""


def check(doc: MatrixFile, fail: Fail) -> None:
    """Raise the first mistake of the conda stacks (their requirements already parse)."""
    stacks = doc.stack.items()
    for name, stack in stacks:
        conda = stack.installer == "conda"
        if conda != name.endswith(CONDA_SUFFIX):
            message = (
                f"stack {name} installs with conda: end its name in '{CONDA_SUFFIX}' so that"
                " its cells' ids say so"
                if conda
                else f"stack {name} ends in '{CONDA_SUFFIX}' but installs with uv: add"
                " `installer: conda` and its channels, or rename it"
            )
            raise fail(("stack", name), message, key=True)
        if not conda:
            continue
        if not doc.smoke_requirements_conda:
            message = (
                f"stack {name} installs with conda: list the smoke suite's conda packages"
                " in smoke_requirements_conda (e.g. [pytest, numpy, pysoundfile])"
            )
            raise fail(("stack", name, "installer"), message)
        for i, channel in enumerate(stack.channels):
            if channel in ("defaults", "nodefaults"):
                message = (
                    f"{shown(channel)}: every environment.yml ends in nodefaults; list the"
                    " channels to use (e.g. conda-forge)"
                )
                raise fail(("stack", name, "channels", i), message)
        for i, text in enumerate(stack.packages):
            if Requirement(text).name.lower() in PIP_NEVER:
                message = (
                    f"{shown(text)}: a conda cell takes torch, torchaudio and torchcodec from"
                    " its channels, never from PyPI; drop it from packages"
                )
                raise fail(("stack", name, "packages", i), message)
        _check_match_specs(("stack", name, "conda"), stack.conda, fail)
    if any(s.installer == "conda" for _, s in stacks):
        smoke = doc.smoke_requirements_conda
        _check_match_specs(("smoke_requirements_conda",), smoke, fail)


def _check_match_specs(path: tuple[Any, ...], specs: Sequence[str], fail: Fail) -> None:
    # Only matrices with conda stacks pay for the import.
    from rattler import MatchSpec
    from rattler.exceptions import InvalidMatchSpecError

    for i, text in enumerate(specs):
        try:
            name = MatchSpec(text, strict=False).name
        except InvalidMatchSpecError as exc:
            raise fail((*path, i), f"{shown(text)} is not a conda match spec: {exc}") from None
        if name is not None and name.normalized in CONDA_GENERATED:
            message = (
                f"{shown(text)}: audiomatrix writes {name.normalized} into every conda"
                " cell's environment.yml from its axes; drop it here"
            )
            raise fail((*path, i), message)
