"""The publish stage: push the images the table was made from, each with a CycloneDX SBOM,
record where they went in publications/<cell>.json, and pull a known-good cell back.

It reads the report's compatibility.json (and the local images its rows name). The registry
is configuration (`--registry` or AUDIOMATRIX_REGISTRY); the code names none. An image is
pushed only if it is the very image the row's smoke run used (same image id), so a digest in
the table always names what was tested. The SBOM travels beside the image as an OCI artifact
tagged `sha256-<image digest hex>.sbom` (the tag scheme cosign uses), and a copy is kept in
sboms/ for people who read the repository.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker.errors
import requests

from audiomatrix.core.errors import AudiomatrixError, CellError
from audiomatrix.core.files import sha256_bytes, write_atomic
from audiomatrix.image.build import CELL_REPO
from audiomatrix.image.engine import LABEL, client, engine_call, find_image, first_line
from audiomatrix.lock import cell_lock
from audiomatrix.lock.installers import installer
from audiomatrix.records.compatibility import Compatibility, Row
from audiomatrix.records.publication import Published, Sbom

REPOSITORY = "audiomatrix/cell"
"""The path of the cell images under the registry (and its namespace, if any)."""
SBOM_MEDIA_TYPE = "application/vnd.cyclonedx+json"
SBOM_DIR = "sboms"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    OCI_MANIFEST,
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
_REGISTRY = re.compile(r"^(?P<host>[A-Za-z0-9.-]+(?::\d{1,5})?)(?P<path>(?:/[a-z0-9._-]+)*)/?$")
# Run in the image (as its non-root user, no network): what is installed, as JSON.
_INVENTORY = r"""
import importlib.metadata, json, pathlib, sys
os_release = dict(
    line.split("=", 1) for line in pathlib.Path("/etc/os-release").read_text().splitlines()
    if "=" in line
)
debs = []
status = pathlib.Path("/var/lib/dpkg/status")
for stanza in status.read_text().split("\n\n") if status.exists() else []:
    fields = dict(
        line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
    )
    if fields.get("Status", "").endswith(" installed"):
        debs.append([fields["Package"], fields["Version"], fields.get("Architecture", "")])
python = sorted({(d.metadata["Name"], d.version) for d in importlib.metadata.distributions()})
print(json.dumps({
    "os": {k: v.strip('"') for k, v in os_release.items()},
    "python_version": sys.version.split()[0],
    "python": python,
    "deb": sorted(debs),
}))
"""


class PublishError(AudiomatrixError):
    """One line saying what went wrong with a registry or an image, and where."""


@dataclass(frozen=True)
class Registry:
    """A registry address from configuration: host[:port] and an optional namespace."""

    host: str
    namespace: str = ""

    @classmethod
    def parse(cls, text: str) -> Registry:
        match = _REGISTRY.match(text.strip().removeprefix("https://").removeprefix("http://"))
        if not text.strip() or match is None:
            raise PublishError(
                f"registry {text!r}: expected host[:port][/namespace], e.g. localhost:5000/team"
            )
        return cls(match["host"], match["path"].strip("/"))

    @property
    def repository(self) -> str:
        return "/".join(p for p in (self.host, self.namespace, REPOSITORY) if p)

    @property
    def path(self) -> str:
        """The repository's name as the registry API spells it (no host)."""
        return self.repository.split("/", 1)[1]

    @property
    def api(self) -> str:
        """Docker talks plain HTTP to a registry on loopback only; so does this."""
        name = self.host.rsplit(":", 1)[0]
        loopback = name == "localhost" or name.startswith("127.") or name == "[::1]"
        return f"{'http' if loopback else 'https'}://{self.host}/v2/{self.path}"


@dataclass(frozen=True)
class Outcome:
    cell: str
    status: str
    """published, unchanged, skipped or failed."""
    detail: str = ""
    published: Published | None = None


# --------------------------------------------------------------------------- pure parts


def image_rows(table: Compatibility, cells: Iterable[str] = ()) -> list[Row]:
    """The rows that ran in an image (the ones there is something to push), optionally only
    the given cells."""
    wanted = set(cells)
    return [
        r
        for r in table.rows
        if r.where.kind == "image" and r.where.image and (not wanted or r.cell in wanted)
    ]


def content_tag(local_tag: str) -> str:
    """`audiomatrix/cell:<cell>-<hash12>` -> `<cell>-<hash12>`."""
    return local_tag.rsplit(":", 1)[1]


def sbom_tag(digest: str) -> str:
    return digest.replace(":", "-") + ".sbom"


def native_install(cell: cell_lock.CellLock, venv: str = ".venv") -> list[str]:
    """The commands that make this cell's environment natively from its committed lock, as
    its installer gives them (a conda cell's: conda-lock's own install, which takes the lock's
    pip part too)."""
    folder = Path("environments", cell.cell)
    steps = installer(cell.installer).install_commands(folder, cell.record, Path(venv))
    return [shlex.join(step) for step in steps]


# --------------------------------------------------------------------------- the registry


def _check(response: requests.Response, what: str) -> requests.Response:
    if response.status_code >= 400:
        text = " ".join(response.text.split())[:200]
        raise PublishError(f"{what}: HTTP {response.status_code} {text}".rstrip())
    return response


def manifest_head(registry: Registry, ref: str) -> tuple[str, str, int] | None:
    """(digest, media type, size) of a manifest in the registry, or None if it is not there."""
    try:
        response = requests.head(
            f"{registry.api}/manifests/{ref}", headers={"Accept": ", ".join(MANIFEST_TYPES)},
            timeout=30,
        )  # fmt: skip
    except requests.RequestException as exc:
        raise PublishError(f"registry {registry.host}: {first_line(exc)}") from None
    if response.status_code == 404:
        return None
    _check(response, f"registry {registry.host}: manifest {ref}")
    return (
        response.headers["Docker-Content-Digest"],
        response.headers["Content-Type"].split(";")[0],
        int(response.headers["Content-Length"]),
    )


def _upload_blob(session: requests.Session, registry: Registry, data: bytes) -> str:
    digest = "sha256:" + sha256_bytes(data)
    if session.head(f"{registry.api}/blobs/{digest}", timeout=30).status_code == 200:
        return digest
    start = _check(session.post(f"{registry.api}/blobs/uploads/", timeout=30), "blob upload")
    location = start.headers["Location"]
    if location.startswith("/"):
        location = registry.api.split("/v2/", 1)[0] + location
    _check(
        session.put(
            location, params={"digest": digest}, data=data,
            headers={"Content-Type": "application/octet-stream"}, timeout=120,
        ),
        "blob upload",
    )  # fmt: skip
    return digest


def push_sbom(
    registry: Registry, subject: tuple[str, str, int], text: str, title: str
) -> tuple[str, str]:
    """Push the SBOM as an OCI artifact whose subject is the image; (reference, digest)."""
    session = requests.Session()
    blob = text.encode()
    config = b"{}"
    try:
        config_digest = _upload_blob(session, registry, config)
        blob_digest = _upload_blob(session, registry, blob)
        digest, media_type, size = subject
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": SBOM_MEDIA_TYPE,
            "config": {"mediaType": EMPTY_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [
                {
                    "mediaType": SBOM_MEDIA_TYPE,
                    "digest": blob_digest,
                    "size": len(blob),
                    "annotations": {"org.opencontainers.image.title": title},
                }
            ],
            "subject": {"mediaType": media_type, "digest": digest, "size": size},
        }
        body = json.dumps(manifest, sort_keys=True).encode()
        tag = sbom_tag(digest)
        _check(
            session.put(
                f"{registry.api}/manifests/{tag}", data=body,
                headers={"Content-Type": OCI_MANIFEST}, timeout=60,
            ),
            f"SBOM manifest {tag}",
        )  # fmt: skip
    except requests.RequestException as exc:
        raise PublishError(f"registry {registry.host}: {first_line(exc)}") from None
    return f"{registry.repository}:{tag}", "sha256:" + sha256_bytes(body)


def fetch_sbom(registry: Registry, image_digest: str) -> dict[str, Any]:
    """The SBOM artifact pushed for an image, read back from the registry."""
    session = requests.Session()
    response = session.get(
        f"{registry.api}/manifests/{sbom_tag(image_digest)}",
        headers={"Accept": OCI_MANIFEST}, timeout=30,
    )  # fmt: skip
    layer = _check(response, "SBOM manifest").json()["layers"][0]
    blob = _check(session.get(f"{registry.api}/blobs/{layer['digest']}", timeout=60), "SBOM")
    return json.loads(blob.content)


# --------------------------------------------------------------------------- the engine


def inventory(tag: str) -> dict[str, Any]:
    """What is installed in the image, read by its own Python, without network, non-root."""
    api = client()
    try:
        output = api.containers.run(
            tag, ["python", "-c", _INVENTORY], network_mode="none", user="10001:10001",
            read_only=True, remove=True, stdout=True, stderr=True, entrypoint=[],
        )  # fmt: skip
    except docker.errors.ContainerError as exc:
        raise PublishError(f"{tag}: listing its packages failed: {exc.stderr!r}") from None
    return json.loads(output.decode().strip().splitlines()[-1])


def _push(api: Any, repository: str, tag: str, echo: Callable[[str], None]) -> str:
    """docker push; the manifest digest the registry reported."""
    digest = ""
    for chunk in api.api.push(repository, tag=tag, stream=True, decode=True):
        if "error" in chunk:
            raise PublishError(f"push {repository}:{tag}: {str(chunk['error']).splitlines()[0]}")
        digest = (chunk.get("aux") or {}).get("Digest", digest)
        if chunk.get("status") and chunk.get("id") is None:
            echo(str(chunk["status"]))
    if not digest:
        raise PublishError(f"push {repository}:{tag}: the engine reported no digest")
    return digest


def publish_row(
    row: Row, registry: Registry, root: Path, echo: Callable[[str], None] = print
) -> Outcome:
    """Push one row's tested image and its SBOM; every outcome is an Outcome, only a
    vanished engine raises."""
    local_tag = row.where.image or ""
    with engine_call(f"the publication of {row.cell}"):
        api = client()
        found = find_image(api, local_tag)
    if found is None:
        return Outcome(row.cell, "skipped", f"{local_tag} is not on this machine")
    if found.id != row.where.image_digest:
        return Outcome(
            row.cell, "skipped",
            f"{local_tag} is not the image the table's run used (rerun the matrix first)",
        )  # fmt: skip
    tag = content_tag(local_tag)
    try:
        remote = manifest_head(registry, tag)
        previous = row.published
        if (
            remote
            and previous
            and previous.image_id == found.id
            and previous.digest == remote[0]
            and previous.reference.startswith(f"{registry.repository}@")
        ):
            return Outcome(row.cell, "unchanged", previous.reference, previous)
        with engine_call(f"the push of {row.cell}"):
            found.tag(registry.repository, tag=tag)
            found.tag(registry.repository, tag=row.cell)
            try:
                digest = _push(api, registry.repository, tag, echo)
                _push(api, registry.repository, row.cell, echo)
            finally:
                for name in (tag, row.cell):
                    api.images.remove(f"{registry.repository}:{name}", noprune=True)
            listing = inventory(local_tag)
        subject = manifest_head(registry, digest)
        if subject is None or subject[0] != digest:
            raise PublishError(f"{registry.repository}@{digest}: not in the registry after push")
        reference = f"{registry.repository}@{digest}"
        from audiomatrix.publish import sbom  # cyclonedx loads only when something is published

        bom = sbom.build(row, reference, found.labels, listing)
        text = sbom.to_json(bom)
        path = root / SBOM_DIR / f"{row.cell}.cdx.json"
        write_atomic(path, text)
        sbom_ref, sbom_digest = push_sbom(registry, subject, text, path.name)
    except (PublishError, docker.errors.APIError) as exc:
        return Outcome(row.cell, "failed", first_line(exc))
    published = Published(
        cell=row.cell,
        reference=reference,
        tags=[f"{registry.repository}:{tag}", f"{registry.repository}:{row.cell}"],
        digest=digest,
        image_id=found.id,
        pushed=datetime.now(UTC).replace(microsecond=0),
        sbom=Sbom(
            path=path.relative_to(root).as_posix(),
            reference=sbom_ref,
            digest=sbom_digest,
            components=len(bom.components),
        ),
    )
    return Outcome(row.cell, "published", reference, published)


def pull(row: Row, registry: Registry | None = None) -> str:
    """Pull the row's published image by digest (from `registry` when given: a mirror), check
    it is the cell and lock the table names, and tag it `audiomatrix/cell:<cell>`."""
    if row.published is None:
        raise PublishError(f"{row.cell}: no published image in the table (audiomatrix publish)")
    repository, digest = row.published.reference.split("@", 1)
    if registry is not None:
        repository = registry.repository
    api = client()
    with engine_call(f"the pull of {row.cell}"):
        try:
            for chunk in api.api.pull(repository, tag=digest, stream=True, decode=True):
                if "error" in chunk:
                    raise PublishError(f"pull {repository}@{digest}: {chunk['error']}")
            pulled = api.images.get(f"{repository}@{digest}")
        except docker.errors.APIError as exc:
            raise PublishError(f"pull {repository}@{digest}: {first_line(exc)}") from None
        labels = pulled.labels
        if (
            labels.get(f"{LABEL}.cell") != row.cell
            or labels.get(f"{LABEL}.lock-sha256") != row.lock_sha256
        ):
            raise PublishError(
                f"{repository}@{digest}: its labels name another cell or lock than {row.cell}"
            )
        local = f"{CELL_REPO}:{row.cell}"
        pulled.tag(CELL_REPO, tag=row.cell)
    return local


def environments_lock(environments: Path, cell: str) -> cell_lock.CellLock:
    """The committed lock of a row's cell, for the native install instructions."""
    try:
        return cell_lock.read_lock(environments, cell)
    except CellError as exc:
        raise PublishError(str(exc)) from None


def publication_path(folder: Path, cell: str) -> Path:
    return folder / f"{cell}.json"


def write_publication(folder: Path, published: Published) -> Path:
    """publications/<cell>.json: where this stage pushed a cell's tested image (its shape and
    reader: audiomatrix.records.publication; the report merges it into the row)."""
    path = publication_path(folder, published.cell)
    write_atomic(path, published.model_dump_json(indent=2) + "\n")
    return path
