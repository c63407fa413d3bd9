"""The catalog of known failures: which error text means which known problem, and its remedy.

The catalog is data (signatures.yaml beside this file) so that adding a failure met while
running the matrix is one entry, with the upstream references that document it.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, field_validator

UNCLASSIFIED = "unclassified"


class Signature(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str
    pattern: str
    affects: dict[str, str]
    remedy: str
    sources: list[str]

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        re.compile(value)
        return value

    def matches(self, text: str) -> bool:
        return re.search(self.pattern, text) is not None


@functools.cache
def catalog() -> tuple[Signature, ...]:
    text = resources.files("audiomatrix").joinpath("signatures.yaml").read_text()
    entries = tuple(Signature.model_validate(e) for e in yaml.safe_load(text))
    ids = [e.id for e in entries]
    if len(ids) != len(set(ids)):
        raise ValueError(f"duplicate signature ids in signatures.yaml: {ids}")
    return entries


def classify(text: str) -> str:
    """The id of the first signature whose pattern is in `text`, else `unclassified`."""
    return next((s.id for s in catalog() if s.matches(text)), UNCLASSIFIED)


def by_id(signature_id: str) -> Signature | None:
    return next((s for s in catalog() if s.id == signature_id), None)
