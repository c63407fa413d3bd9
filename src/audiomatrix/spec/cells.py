"""A cell: one point of the matrix, its axis values resolved into what they mean, and whether
it can be built at all (the first fact one of its values needs and the cell breaks)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from audiomatrix.spec.schema import AcceleratorValue, Fact, Ffmpeg, OsValue, StackValue, TorchValue

AXES: tuple[str, ...] = ("os", "python", "torch", "accelerator", "stack")
"""The axes of a cell, in the order they appear in its id."""


@dataclass(frozen=True)
class Cell:
    """One point of the matrix with the attributes of its values resolved."""

    os: str
    python: str
    torch: str
    accelerator: str
    stack: str
    os_value: OsValue = field(repr=False, compare=False)
    torch_value: TorchValue = field(repr=False, compare=False)
    accelerator_value: AcceleratorValue = field(repr=False, compare=False)
    stack_value: StackValue = field(repr=False, compare=False)
    unbuildable: str | None = None
    parent_stack: StackValue | None = field(default=None, repr=False, compare=False)
    """The stack this cell's stack repairs (`remedy_of`), if any."""

    @cached_property  # selecting among thousands of cells asks for it once per term
    def id(self) -> str:
        return cell_id(self.os, self.python, self.torch, self.accelerator, self.stack)

    @property
    def buildable(self) -> bool:
        return self.unbuildable is None

    @property
    def ffmpeg(self) -> Ffmpeg | None:
        """The FFmpeg this cell gets: its stack wants one and its (Linux) os ships one."""
        return self.os_value.ffmpeg if self.stack_value.ffmpeg else None

    @property
    def torchcodec(self) -> str | None:
        """The TorchCodec this cell installs: the stack wants it and the torch pairs one."""
        return self.torch_value.torchcodec if self.stack_value.torchcodec else None

    @property
    def installer(self) -> str:
        return self.stack_value.installer

    def axis(self, name: str) -> str:
        return str(getattr(self, name))


def stack_change(parent: StackValue, stack: StackValue) -> list[str]:
    """What a remedy stack changes in its parent: requirements added (+) and dropped (-), and
    the TorchCodec and FFmpeg switches turned on (+) or off (-)."""
    change = [f"+{p}" for p in stack.packages if p not in parent.packages]
    change += [f"-{p}" for p in parent.packages if p not in stack.packages]
    for flag, label in (("torchcodec", "TorchCodec"), ("ffmpeg", "FFmpeg")):
        if getattr(stack, flag) != getattr(parent, flag):
            change.append(f"{'+' if getattr(stack, flag) else '-'}{label}")
    return change


def cell_id(os: str, python: str, torch: str, accelerator: str, stack: str) -> str:
    """`bookworm-py3.11-torch2.9.1-cu128-maintained`: readable, a valid folder and Docker tag."""
    return f"{os}-py{python}-torch{torch}-{accelerator}-{stack}"


def _fact_violation(fact: Fact, cell: Mapping[str, str], family: str) -> str | None:
    """The first constraint of `fact` the cell breaks, as `axis needs constraint`."""
    for axis in ("python", "torch"):
        spec = getattr(fact, axis)
        if spec is not None and Version(cell[axis]) not in SpecifierSet(spec):
            return f"{axis} {spec}"
    if fact.os_family is not None and family not in fact.os_family:
        return f"os family {' or '.join(fact.os_family)}"
    for axis in ("accelerator", "stack"):
        names = getattr(fact, axis)
        if names is not None and cell[axis] not in names:
            return f"{axis} {' or '.join(names)}"
    return None


def unbuildable_reason(
    values: Mapping[str, str],
    os_value: OsValue,
    torch_value: TorchValue,
    accelerator_value: AcceleratorValue,
    stack_value: StackValue,
) -> str | None:
    """Why no such build exists, from the first fact a value needs and the cell breaks."""
    owners = (
        (f"os {values['os']}", os_value),
        (f"torch {values['torch']}", torch_value),
        (f"accelerator {values['accelerator']}", accelerator_value),
        (f"stack {values['stack']}", stack_value),
    )
    for owner, value in owners:
        for fact in value.requires:
            broken = _fact_violation(fact, values, os_value.family)
            if broken:
                return f"{owner} needs {broken}: {fact.reason} ({fact.source})"
    return None
