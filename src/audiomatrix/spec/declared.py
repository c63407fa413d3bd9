"""What a declared value means on a real machine: the CUDA a wheel variant is built against,
the distribution a base image is, in the words the suite measures them in. The lock, image
and smoke stages compare declarations with them, and the table does at report time."""

from __future__ import annotations

import re


def cuda_of_variant(variant: str) -> str | None:
    """The CUDA version a wheel variant is built against: cu128 -> 12.8, cu130 -> 13.0;
    None for CPU and MPS builds."""
    found = re.fullmatch(r"cu(\d+)(\d)", variant)
    return f"{int(found.group(1))}.{found.group(2)}" if found else None


def distribution_of_base(base: str | None) -> str | None:
    """`debian:bookworm-slim` -> `debian bookworm`; `ubuntu:noble` -> `ubuntu noble`."""
    if not base or ":" not in base:
        return None
    name, _, tag = base.rpartition(":")
    return f"{name.rsplit('/', 1)[-1]} {tag.split('-')[0]}"


def comparable_distribution(measured: str | None) -> str | None:
    """`debian 12 (bookworm)` (as the suite reads /etc/os-release) -> `debian bookworm`,
    comparable with a declaration's base."""
    if not measured:
        return None
    found = re.fullmatch(r"(\S+)\s*\S*\s*\((\S+)\)", measured)
    return f"{found.group(1)} {found.group(2)}" if found else measured
