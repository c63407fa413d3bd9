"""publish and pull: the pure parts fast; the round trip against a real local registry
(Debian's docker-registry, started here on loopback) with a real Docker Engine."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import docker.errors
import pytest
import requests
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from typer.testing import CliRunner

from audiomatrix.cli.app import app
from audiomatrix.image import engine
from audiomatrix.image.build import CELL_REPO
from audiomatrix.image.wheelhouse import parse_lock
from audiomatrix.publish import registry as publish
from audiomatrix.publish import sbom
from audiomatrix.records import compatibility, publication
from audiomatrix.records import run as run_record
from audiomatrix.smoke import container
from audiomatrix.table import report
from audiomatrix.views import markdown, writers
from support import TrackedImages, environment, small_cell, start_registry

REPO = Path(__file__).resolve().parents[1]
DIGEST = "sha256:" + "ab" * 32
INVENTORY = {
    "os": {"ID": "debian", "VERSION_ID": "12"},
    "python_version": "3.11.2",
    "python": [["numpy", "2.3.5"], ["soundfile", "0.13.1"]],
    "deb": [["python3", "3.11.2-1+b1", "amd64"], ["tzdata", "2025b-0+deb12u1", "all"]],
}


def _valid_cyclonedx(text: str) -> None:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, error


def _row(cell: str = "bookworm-py3.11-torch2.9.1-cpu-maintained", image_id: str = "sha256:1"):
    now = datetime(2026, 11, 25, tzinfo=UTC)
    where = run_record.Where(
        kind="image", image=f"audiomatrix/cell:{cell}-0123456789ab", image_digest=image_id
    )
    measured = environment()
    return compatibility.Row(
        cell=cell, axes=report.axes_from_id(cell), versions={}, lock_sha256="f" * 64,
        where=where, host=measured.host, facts=measured.facts, run="r1", started=now,
        finished=now, source="results/x.json", checks={},
    )  # fmt: skip


def _published(image_id: str) -> publication.Published:
    return publication.Published(
        cell="bookworm-py3.11-torch2.9.1-cpu-maintained",
        reference=f"localhost:5000/audiomatrix/cell@{DIGEST}",
        tags=["localhost:5000/audiomatrix/cell:x"],
        digest=DIGEST,
        image_id=image_id,
        pushed=datetime(2026, 11, 25, tzinfo=UTC),
        sbom=publication.Sbom(path="sboms/x.cdx.json", reference="r", digest=DIGEST, components=4),
    )


# --------------------------------------------------------------------------- fast


@pytest.mark.parametrize(
    ("text", "repository", "api"),
    [
        ("localhost:5000", "localhost:5000/audiomatrix/cell",
         "http://localhost:5000/v2/audiomatrix/cell"),
        ("127.0.0.1:41000/team/", "127.0.0.1:41000/team/audiomatrix/cell",
         "http://127.0.0.1:41000/v2/team/audiomatrix/cell"),
        ("registry.example:443/a/b", "registry.example:443/a/b/audiomatrix/cell",
         "https://registry.example:443/v2/a/b/audiomatrix/cell"),
    ],
)  # fmt: skip
def test_registry_addresses(text: str, repository: str, api: str) -> None:
    parsed = publish.Registry.parse(text)
    assert (parsed.repository, parsed.api) == (repository, api)


@pytest.mark.parametrize("text", ["", "host:port", "localhost:5000/Upper", "a b"])
def test_a_bad_registry_is_one_line(text: str) -> None:
    with pytest.raises(publish.PublishError, match="expected host"):
        publish.Registry.parse(text)


def test_sbom_is_valid_cyclonedx_with_package_urls() -> None:
    row = _row()
    reference = f"localhost:5000/audiomatrix/cell@{DIGEST}"
    labels = {"org.audiomatrix.cell": row.cell, "maintainer": "x"}
    text = sbom.to_json(sbom.build(row, reference, labels, INVENTORY))
    _valid_cyclonedx(text)
    doc = json.loads(text)
    purls = {c["purl"] for c in doc["components"]}
    assert "pkg:pypi/numpy@2.3.5" in purls
    assert "pkg:deb/debian/python3@3.11.2-1%2Bb1?arch=amd64&distro=debian-12" in purls
    root = doc["metadata"]["component"]
    assert (root["type"], root["version"]) == ("container", DIGEST)
    props = {p["name"]: p["value"] for p in root["properties"]}
    assert props["audiomatrix:lock-sha256"] == row.lock_sha256
    assert props["label:org.audiomatrix.cell"] == row.cell and "label:maintainer" not in props
    depends = next(d for d in doc["dependencies"] if d["ref"] == reference)["dependsOn"]
    assert len(depends) == len(doc["components"]) == 4


def test_a_publication_belongs_to_the_row_of_the_same_image_only() -> None:
    same, other = _row(image_id="sha256:1"), _row(image_id="sha256:2")
    found = {same.cell: _published("sha256:1")}
    assert report.publication_for(found, same) == _published("sha256:1")
    assert report.publication_for(found, other) is None
    native = same.model_copy(
        update={"where": same.where.model_copy(update={"kind": "native", "image": None})}
    )
    assert report.publication_for(found, native) is None
    table = compatibility.Compatibility(
        provenance=report.current_provenance(), checks=[], workloads={},
        rows=[same.model_copy(update={"published": found[same.cell]}), native], apart=[],
        missing=[], damaged=[], signatures=[],
    )  # fmt: skip
    assert publish.image_rows(table) == [table.rows[0]]
    assert "localhost:5000/audiomatrix/cell@" in markdown.markdown(table)


def test_publish_needs_a_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDIOMATRIX_REGISTRY", raising=False)
    outcome = CliRunner().invoke(app, ["publish", "--table", str(tmp_path / "c.json")])
    assert outcome.exit_code == 2
    assert "no registry: pass --registry" in outcome.output


def test_pull_without_an_image_prints_the_native_install() -> None:
    cell = "bookworm-py3.11-torch2.9.1-cu128-maintained"
    outcome = CliRunner().invoke(
        app, ["pull", cell, "--table", str(REPO / compatibility.JSON_FILE)], catch_exceptions=False
    )
    table = compatibility.load(REPO / compatibility.JSON_FILE)
    if any(r.cell == cell and r.published for r in table.rows):
        pytest.skip("the committed table has a published image for the cell")
    assert outcome.exit_code == 0, outcome.output
    lines = [line.strip() for line in outcome.output.splitlines()]
    assert f"uv venv --quiet --clear --python 3.11 .venv-{cell}" in lines
    sync = next(line for line in lines if line.startswith("uv pip sync"))
    assert "--require-hashes" in sync and sync.endswith(f"environments/{cell}/requirements.txt")


# --------------------------------------------------------------------------- a real registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[publish.Registry]:
    proc, host, _ = start_registry(tmp_path_factory.mktemp("registry"))
    yield publish.Registry.parse(f"{host}/test")
    proc.terminate()
    proc.wait(timeout=30)


@pytest.mark.image
def test_publish_and_pull_round_trip(
    registry: publish.Registry, images: TrackedImages, tmp_path: Path
) -> None:
    api = engine.client()
    root = tmp_path / "repo"
    cell = small_cell(root / "environments", f"test-pub-{uuid.uuid4().hex[:6]}")
    built = images.build(cell)
    assert built.ok and built.tag, built.detail
    try:
        container.smoke_in_image(
            built.tag, cell, root / "results", modes=["raw"], checks=["torch_load"],
            echo=lambda _: None,
        )  # fmt: skip
        table = report.build(root / "results", root / "environments", root / "publications")
        assert [r.cell for r in table.rows] == [cell.cell], table.apart
        writers.write_all(table, root)
        table_path = root / compatibility.JSON_FILE
        runner = CliRunner()
        args = ["publish", "--registry", f"{registry.host}/test", "--table", str(table_path)]
        first = runner.invoke(app, args, catch_exceptions=False)
        assert first.exit_code == 0, first.output
        assert f"{cell.cell} published" in first.output

        row = next(r for r in compatibility.load(table_path).rows if r.cell == cell.cell)
        assert row.published is not None
        tested = api.images.get(built.tag).id
        assert row.published.image_id == tested == row.where.image_digest
        # The registry holds the recorded digest under both tags.
        for tag in (publish.content_tag(built.tag), cell.cell):
            head = publish.manifest_head(registry, tag)
            assert head is not None and head[0] == row.published.digest
        # The pushed image carries the labels; its config digest is the tested image id.
        manifest = requests.get(
            f"{registry.api}/manifests/{row.published.digest}",
            headers={"Accept": ", ".join(publish.MANIFEST_TYPES)}, timeout=30,
        ).json()  # fmt: skip
        assert manifest["config"]["digest"] == tested
        config = requests.get(f"{registry.api}/blobs/{tested}", timeout=30).json()
        assert config["config"]["Labels"]["org.audiomatrix.lock-sha256"] == cell.lock_sha256

        # The SBOM beside it: valid CycloneDX, the lock's versions, the Debian packages.
        fetched = publish.fetch_sbom(registry, row.published.digest)
        text = (root / row.published.sbom.path).read_text()
        assert json.loads(text) == fetched
        _valid_cyclonedx(text)
        pins = {p.name: p.version for p in parse_lock(cell.requirements.read_text())}
        found = {
            re.sub(r"[-_.]+", "-", c["name"]).lower(): c["version"] for c in fetched["components"]
        }
        assert all(found.get(name) == version for name, version in pins.items()), pins
        assert any(c["purl"].startswith("pkg:deb/debian/python3@") for c in fetched["components"])
        assert fetched["metadata"]["component"]["version"] == row.published.digest
        assert row.published.reference in (root / markdown.MD_FILE).read_text()
        assert (root / publication.FOLDER / f"{cell.cell}.json").is_file()

        # Nothing changed: nothing pushed again. A row whose image changed is not pushed.
        again = runner.invoke(app, args, catch_exceptions=False)
        assert f"{cell.cell} unchanged" in again.output
        stale = row.model_copy(
            update={"where": row.where.model_copy(update={"image_digest": "sha256:0"})}
        )
        assert publish.publish_row(stale, registry, root).status == "skipped"

        # Pull: with the local image gone, the digest brings back the very image tested.
        api.images.remove(built.tag, force=True)
        pulled = runner.invoke(
            app, ["pull", cell.cell, "--table", str(table_path)], catch_exceptions=False
        )
        assert pulled.exit_code == 0, pulled.output
        assert api.images.get(f"{CELL_REPO}:{cell.cell}").id == tested
    finally:
        # The pulled tag; `images` removes the built one.
        with contextlib.suppress(docker.errors.APIError):
            api.images.remove(f"{CELL_REPO}:{cell.cell}", force=True)
