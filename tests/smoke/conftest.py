"""The in-image smoke suite's plumbing: the compat switch and the outcome record.

The runner (run.py) starts pytest once per check and reads the outcome this file writes to
$AUDIOMATRIX_SMOKE_REPORT, so that `corrupt` and the first error line survive intact.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from smokelib import CorruptOutput, compat_enabled

_outcomes: list[dict] = []
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def pytest_configure(config: pytest.Config) -> None:
    if compat_enabled():
        from audiomatrix import compat

        compat.enable()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _outcomes.append(_outcome(item, call, report))


def _outcome(item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport) -> dict:
    record = {
        "check": item.name.removeprefix("test_"),
        "status": "pass",
        "duration_s": round(call.duration, 3),
        "first_error": None,
        "error_text": None,
    }
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        record.update(status="skip", first_error=reason.removeprefix("Skipped: "))
    elif report.failed:
        excinfo = call.excinfo
        corrupt = excinfo is not None and excinfo.errisinstance(CorruptOutput)
        exconly = _ANSI.sub("", excinfo.exconly() if excinfo else str(report.longrepr))
        record.update(
            status="corrupt" if corrupt else "fail",
            first_error=_first_line(exconly)[:500],
            error_text=_ANSI.sub("", str(report.longrepr))[-20000:],
        )
    return record


def _first_line(exconly: str) -> str:
    """`Type: message`, taking the message from the next line when it starts there."""
    lines = [ln.strip() for ln in exconly.strip().splitlines() if ln.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} {lines[1]}"
    return lines[0] if lines else ""


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("AUDIOMATRIX_SMOKE_REPORT")
    if target:
        tmp = Path(f"{target}.{os.getpid()}.{time.monotonic_ns()}.tmp")
        tmp.write_text(json.dumps(_outcomes))
        os.replace(tmp, target)
