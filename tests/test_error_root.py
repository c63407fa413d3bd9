"""One error root and one place that tells it: every one-line failure is an AudiomatrixError
whose exit code says whose fault it was, and the command line turns any of them into its one
line; the pipeline is a tuple of stages that a command only runs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from audiomatrix.catalog.boundaries import EdgeNotFound, NoVerdict
from audiomatrix.catalog.probe_runs import DiskLow
from audiomatrix.catalog.signatures import CatalogError
from audiomatrix.cli import images
from audiomatrix.cli.app import app
from audiomatrix.core.errors import AudiomatrixError, CellError
from audiomatrix.image.base import BaseUnavailable
from audiomatrix.image.debs import DebError
from audiomatrix.image.engine import EngineError
from audiomatrix.image.plan import PlanError
from audiomatrix.lock.stage import RecordError
from audiomatrix.publish.registry import PublishError
from audiomatrix.smoke.results import ResultError
from audiomatrix.spec.selection import SelectError
from audiomatrix.spec.yamlpos import YamlFileError
from audiomatrix.workflow import pipeline

USERS_INPUT = (YamlFileError, SelectError, CatalogError)
TOOLS = (CellError, RecordError, ResultError, EngineError, PublishError, BaseUnavailable,
         DebError, PlanError, NoVerdict, EdgeNotFound, DiskLow)  # fmt: skip


@pytest.mark.parametrize("error", USERS_INPUT + TOOLS)
def test_every_one_line_failure_has_the_one_root(error: type[Exception]) -> None:
    assert issubclass(error, AudiomatrixError)
    assert error.exit_code == (2 if error in USERS_INPUT else 1)  # type: ignore[attr-defined]


def test_the_catalog_error_is_still_a_value_error() -> None:
    """catalog.edit's refusals are ValueErrors, and `boundaries --write` catches both alike."""
    assert issubclass(CatalogError, ValueError)


def test_a_command_that_raises_one_ends_in_its_line_and_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def gone() -> str:
        raise EngineError("no Docker Engine answers here")

    monkeypatch.setattr(images.engine_stage, "ensure_engine", gone)
    outcome = CliRunner().invoke(app, ["engine"])
    assert outcome.exit_code == 1
    assert outcome.output.strip() == "no Docker Engine answers here"
    assert outcome.exception is None or isinstance(outcome.exception, SystemExit)


def _run(cells: list[Any]) -> pipeline.Run:
    matrix: Any = SimpleNamespace(path=str(Path("matrix.yaml")))
    display: Any = None
    return pipeline.Run(matrix, cells, display)


def test_the_stages_run_in_turn_until_one_says_stop() -> None:
    ran = []

    def ok(run: pipeline.Run) -> bool:
        ran.append("ok")
        return True

    def stops(run: pipeline.Run) -> bool:
        ran.append("stops")
        run.failed = True
        return False

    assert pipeline.execute((ok, stops, ok), _run([])) is True
    assert ran == ["ok", "stops"]


def test_a_matrix_without_linux_cells_asks_no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    def engine_asked() -> str:
        raise AssertionError("the engine was asked")

    monkeypatch.setattr(pipeline.engine, "ensure_engine", engine_asked)
    run = _run([])
    assert pipeline.linux_sweep(run) is True and not run.failed
