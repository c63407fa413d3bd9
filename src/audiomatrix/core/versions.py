"""Versions in the order people read them: 3.9 before 3.10, 2.10.0 after 2.9.1."""

from __future__ import annotations

from packaging.version import InvalidVersion, Version


def version_key(text: str) -> Version:
    """The sort key of an axis value or release; what is no version sorts first."""
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")
