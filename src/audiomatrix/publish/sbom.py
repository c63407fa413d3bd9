"""The CycloneDX SBOM of a published image: what the image's own Python reported installed
(Python distributions and Debian packages), with package URLs, the image as the described
component, its lock hash and labels as properties. cyclonedx-python-lib builds and writes it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from audiomatrix.records.compatibility import Row


def build(row: Row, reference: str, labels: Mapping[str, str], inventory: Mapping[str, Any]) -> Bom:
    """The image's CycloneDX SBOM: every Python distribution and Debian package installed in
    it, with package URLs, the image as the described component, the lock hash and labels
    as properties."""
    distro = inventory.get("os", {})
    distro_id = str(distro.get("ID", "debian"))
    distro_q = f"{distro_id}-{distro.get('VERSION_ID', '')}".rstrip("-")
    name, digest = reference.split("@", 1)
    root = Component(
        type=ComponentType.CONTAINER,
        name=name,
        version=digest,
        bom_ref=reference,
        purl=PackageURL(
            "oci",
            name=name.rsplit("/", 1)[1],
            version=digest,
            qualifiers={"repository_url": name},
        ),
        description=f"audiomatrix cell {row.cell}",
        properties=[
            Property(name="audiomatrix:cell", value=row.cell),
            Property(name="audiomatrix:lock-sha256", value=row.lock_sha256),
            Property(name="audiomatrix:python", value=str(inventory.get("python_version", ""))),
            *(
                Property(name=f"label:{k}", value=v)
                for k, v in sorted(labels.items())
                if v and k.startswith(("org.opencontainers.", "org.audiomatrix."))
            ),
        ],
    )
    bom = Bom()
    bom.metadata.component = root
    components = []
    for dist, version in inventory.get("python", []):
        purl = PackageURL("pypi", name=re.sub(r"[-_.]+", "-", dist).lower(), version=version)
        components.append(
            Component(
                type=ComponentType.LIBRARY, name=dist, version=version, purl=purl,
                bom_ref=purl.to_string(),
            )
        )  # fmt: skip
    for package, version, arch in inventory.get("deb", []):
        purl = PackageURL(
            "deb", namespace=distro_id, name=package, version=version,
            qualifiers={"arch": arch, "distro": distro_q} if arch else {"distro": distro_q},
        )  # fmt: skip
        components.append(
            Component(
                type=ComponentType.LIBRARY, name=package, version=version, purl=purl,
                bom_ref=purl.to_string(),
            )
        )  # fmt: skip
    for component in components:
        bom.components.add(component)
    bom.register_dependency(root, components)
    return bom


def to_json(bom: Bom) -> str:
    return JsonV1Dot6(bom).output_as_string(indent=2) + "\n"
