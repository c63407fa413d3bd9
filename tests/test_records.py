"""The records: each committed JSON Schema is its model's, and every committed file a stage
wrote still reads as its typed model."""

from __future__ import annotations

from pathlib import Path

import pytest

from audiomatrix.core.files import json_text
from audiomatrix.records import cell, json_schemas, publication, run, sweep
from audiomatrix.records.cell import CellRecord, Manifest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(json_schemas.MODELS))
def test_each_committed_schema_is_its_models(name: str) -> None:
    path = f"src/audiomatrix/records/schemas/{json_schemas.file_name(name)}"
    assert json_schemas.committed_schema(name) == json_schemas.schema(name), (
        f"{path} is stale: regenerate it with `python -c 'from audiomatrix.records import "
        f'json_schemas; print(json_schemas.schema_text("{name}"), end="")\' > {path}`'
    )


def test_every_committed_record_reads_as_its_model() -> None:
    environments = REPO / "environments"
    assert isinstance(cell.read_manifest(environments), Manifest)
    folders = sorted(p.parent for p in environments.glob(f"*/{cell.CELL_FILE}"))
    assert folders
    assert all(isinstance(cell.read_record(f), CellRecord) for f in folders)
    for path in sorted((REPO / "results").glob("*/*.json")):
        assert run.read(path).cell == path.parent.name
    found, damaged = publication.read_all(REPO / publication.FOLDER)
    assert not damaged
    assert all(cell == p.cell for cell, p in found.items())
    record = REPO / "benchmarks" / "results" / "sweep.json"
    swept = sweep.read(record)
    assert swept is not None and json_text(swept.model_dump(mode="json")) == record.read_text()


def test_no_manifest_yet_is_an_empty_one(tmp_path: Path) -> None:
    assert cell.read_manifest(tmp_path) == Manifest.empty()
    assert Manifest.empty().model_dump(by_alias=True) == {"schema": 1, "cells": [], "reference": []}
