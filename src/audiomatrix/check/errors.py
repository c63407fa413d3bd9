"""The one-line failures of `check`: a tool or this machine failed (1), or the input is wrong
(2); a failing environment is neither, it is what the check reports."""

from __future__ import annotations

from audiomatrix.core.errors import AudiomatrixError


class CheckError(AudiomatrixError):
    exit_code = 1


class CheckInputError(CheckError):
    exit_code = 2
