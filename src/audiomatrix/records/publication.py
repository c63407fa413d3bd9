"""publications/<cell>.json: where the publish stage pushed a cell's tested image.

The publish stage's own output, one file per cell so that publishing some cells never has to
read back what an earlier run wrote for others.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from audiomatrix.core.files import describe_error, read_text
from audiomatrix.records.base import Damaged, Record

FOLDER = "publications"


class Sbom(Record):
    """The CycloneDX SBOM of a published image: a copy in the repository and an OCI artifact
    beside the image in the registry (tagged `sha256-<image digest hex>.sbom`)."""

    format: Literal["CycloneDX 1.6"] = "CycloneDX 1.6"
    path: str
    """Relative to the repository (sboms/<cell>.cdx.json)."""
    reference: str
    digest: str
    components: int


class Published(Record):
    """Where the tested image was pushed: pull `reference` to get exactly what ran."""

    cell: str
    reference: str
    """repository@sha256:..., the registry's digest of the pushed manifest."""
    tags: list[str]
    digest: str
    image_id: str
    """The local image id that ran the smoke suite and was pushed (where.image_digest)."""
    pushed: datetime
    sbom: Sbom


def read_all(folder: Path) -> tuple[dict[str, Published], list[Damaged]]:
    """Every publication by cell; a damaged or misnamed file is listed, not used."""
    found, damaged = {}, []
    for path in sorted(folder.glob("*.json")):
        shown = f"{folder.name}/{path.name}"
        try:
            published = Published.model_validate_json(read_text(path))
        except (OSError, ValueError) as exc:
            reason = describe_error(exc) if isinstance(exc, ValueError) else str(exc)
            damaged.append(Damaged(path=shown, reason=reason))
            continue
        if path.stem != published.cell:
            damaged.append(Damaged(path=shown, reason=f"names cell '{published.cell}'"))
            continue
        found[published.cell] = published
    return found, damaged
