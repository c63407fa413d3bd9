"""The pytest plugin every check runs under (`-p audiomatrix.suite.plugin`).

It applies the remedies of audiomatrix.compat that $AUDIOMATRIX_COMPAT names (`1` all, as the
compat mode does; a comma-separated list, as the runs that prove each remedy alone do) and
writes each check's outcome to $AUDIOMATRIX_SMOKE_REPORT as a schema.CheckOutcome, so that
`corrupt`, the skip reason, the first error line and the fingerprints of its outputs
(golden.record, kept even when a later step failed) reach the runner intact instead of being
parsed out of pytest's output.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from audiomatrix.suite import golden
from audiomatrix.suite.schema import CheckOutcome
from audiomatrix.suite.smokelib import CorruptOutput, compat_enabled, compat_selection

_outcomes: list[dict] = []
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def pytest_configure(config: pytest.Config) -> None:
    if compat_enabled():
        from audiomatrix import compat

        value = os.environ.get("AUDIOMATRIX_COMPAT")
        try:
            compat.enable(only=compat_selection(value))
        except ValueError as exc:
            raise pytest.UsageError(
                f"AUDIOMATRIX_COMPAT={value!r}: {exc}; set 1 (all), 0 (none) or remedy names "
                "separated by commas"
            ) from None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _outcomes.append(_outcome(item, call, report))


def _outcome(item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport) -> dict:
    check = item.name.removeprefix("test_")
    duration = round(call.duration, 3)
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        result = CheckOutcome(check, "skip", duration, reason.removeprefix("Skipped: "))
    elif report.failed:
        excinfo = call.excinfo
        corrupt = excinfo is not None and excinfo.errisinstance(CorruptOutput)
        exconly = _ANSI.sub("", excinfo.exconly() if excinfo else str(report.longrepr))
        status = "corrupt" if corrupt else "fail"
        result = CheckOutcome(check, status, duration, first_line(exconly)[:500])
    else:
        result = CheckOutcome(check, "pass", duration)
    recorded = dict(golden.RECORDED)
    golden.RECORDED.clear()
    return {**asdict(result), "fingerprints": recorded}


def first_line(exconly: str) -> str:
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
