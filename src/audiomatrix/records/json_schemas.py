"""The published JSON Schema of each record, generated from its model and committed under
records/schemas/ (tests/test_records.py says when one is stale and how to rewrite it)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from audiomatrix.core.files import json_text
from audiomatrix.records.base import Record
from audiomatrix.records.cell import CellRecord, Manifest
from audiomatrix.records.compatibility import Compatibility
from audiomatrix.records.index_check import IndexCheck
from audiomatrix.records.publication import Published
from audiomatrix.records.run import RunResult
from audiomatrix.records.sweep import SweepRecord

MODELS: dict[str, type[Record]] = {
    "cell": CellRecord,
    "cells": Manifest,
    "run": RunResult,
    "publication": Published,
    "compatibility": Compatibility,
    "sweep": SweepRecord,
    "index": IndexCheck,
}
"""Each record's schema name (records/schemas/<name>.schema.json) and model."""


def file_name(name: str) -> str:
    return f"{name}.schema.json"


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema the model of record `name` generates."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **MODELS[name].model_json_schema(),
    }


def schema_text(name: str) -> str:
    return json_text(schema(name))


def committed_schema(name: str) -> dict[str, Any]:
    schemas = resources.files("audiomatrix.records").joinpath("schemas")
    return json.loads(schemas.joinpath(file_name(name)).read_text())
