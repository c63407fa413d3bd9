"""The one error root: every failure audiomatrix reports as one line derives from it, carrying
the exit code its command ends with, so the CLI catches one class in one place."""

from __future__ import annotations


class AudiomatrixError(Exception):
    """A failure told as one line (the message) and the exit code it ends a command with:
    2 when the user's input is wrong, 1 when a tool or this machine failed."""

    exit_code: int = 1


class CellError(AudiomatrixError):
    """A cell that cannot be built or smoke-tested here, with the one line that says why."""
