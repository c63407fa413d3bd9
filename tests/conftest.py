"""Fixtures shared by the image and publish tests."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from audiomatrix.image.engine import client, ensure_engine
from support import TrackedImages


@pytest.fixture(scope="session")
def images() -> Iterator[TrackedImages]:
    """A Docker Engine that answers, and the session's builds: every image they made is
    removed at the end, and a dangling one left behind fails the session."""
    ensure_engine()
    tracked = TrackedImages(client())
    yield tracked
    left = tracked.remove()
    others = tracked.new()
    if others:
        warnings.warn(f"new images not removed by the image tests: {others}", stacklevel=1)
    assert not left, f"the image tests left dangling images behind: {left}"
