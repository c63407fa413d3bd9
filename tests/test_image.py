"""The image stage against a real Docker Engine: real builds, real containers, no mocks.

Most tests use a small cell (soundfile, numpy, pytest, no torch) locked for real with uv, so
they take seconds once the base image exists; one test builds a real torch cell.
"""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
import tempfile
import uuid
from pathlib import Path

import pytest

from audiomatrix.image import build as imagebuild
from audiomatrix.image import engine, interpreters
from audiomatrix.image.wheelhouse import fill_wheelhouse, parse_lock
from audiomatrix.lock import cell_lock
from audiomatrix.smoke import container, evidence
from audiomatrix.table import report
from support import TrackedContainer, TrackedImages, small_cell

pytestmark = pytest.mark.image
REPO = Path(__file__).resolve().parents[1]
CI_CELL = "bookworm-py3.11-torch2.9.1-cu128-maintained"


@pytest.fixture(scope="session")
def envs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("environments")


@pytest.fixture(scope="session")
def small(images: TrackedImages, envs: Path) -> tuple[cell_lock.CellLock, imagebuild.BuildResult]:
    cell = small_cell(envs, f"test-small-{uuid.uuid4().hex[:6]}")
    return cell, images.build(cell)


def test_builds_with_labels_and_a_non_root_user(small) -> None:
    cell, built = small
    assert built.status == "built", built.detail
    attrs = engine.client().images.get(built.tag).attrs
    labels = attrs["Config"]["Labels"]
    assert labels["org.audiomatrix.cell"] == cell.cell
    assert labels["org.audiomatrix.lock-sha256"] == cell.lock_sha256
    assert labels["org.opencontainers.image.created"]
    assert "org.opencontainers.image.revision" in labels
    assert attrs["Config"]["User"] not in ("", "root", "0", "0:0")


def test_content_tag_skips_a_rebuild(small, images: TrackedImages) -> None:
    cell, built = small
    again = images.build(cell)
    assert (again.status, again.tag) == ("unchanged", built.tag)
    assert again.seconds < 2


def test_smoke_container_has_no_network_and_is_not_root(small, tmp_path: Path) -> None:
    _, built = small
    probe = (
        "import os, socket; print(os.getuid(), [n for _, n in socket.if_nameindex()]);"
        "open('/out/ok', 'w').write('x');"
        "\ntry: open('/opt/x', 'w')\nexcept OSError: print('read-only')"
    )
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)
    with TrackedContainer(engine.client(), built.tag, out) as probed:
        code, logs = probed.run(["python", "-c", probe])
    assert code == 0, logs
    uid, rest = logs.split(" ", 1)
    assert uid != "0"
    assert "['lo']" in rest and "read-only" in rest
    assert (out / "ok").exists()


def test_smoke_in_image_writes_a_result(small, tmp_path: Path) -> None:
    cell, built = small
    result = container.smoke_in_image(
        built.tag, cell, tmp_path, modes=["raw"], checks=["torch_load"], echo=lambda _: None
    )
    assert result.where.kind == "image" and result.where.image_digest
    # No torch in the small cell: the check runs and fails, it does not vanish.
    assert result.modes["raw"][0].status in ("fail", "crash")
    assert list((tmp_path / cell.cell).glob("*.json"))


def test_a_container_that_dies_gives_crash_results(small, tmp_path: Path) -> None:
    cell, built = small
    result = container.smoke_in_image(
        built.tag, cell, tmp_path, modes=["raw"], mem_limit="6m", echo=lambda _: None
    )
    checks = result.modes["raw"]
    assert checks and all(c.status == "crash" and c.first_error for c in checks)


def test_no_ca_bundle_in_any_layer(images: TrackedImages, envs: Path, tmp_path: Path) -> None:
    marker = f"audiomatrix-test-ca-{uuid.uuid4().hex}"
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(f"# {marker}\n")
    cell = small_cell(envs, f"test-ca-{uuid.uuid4().hex[:6]}")
    built = images.build(cell, ca_bundle=bundle)
    assert built.status == "built", built.detail
    api = engine.client().api
    # The install steps did fetch it (only its address is in the history) ...
    history = json.dumps(api.history(built.tag))
    assert imagebuild.CA_PATH in history
    # ... and nothing of it stayed: not in a layer, the history or the image's config.
    assert marker not in history
    assert marker not in json.dumps(api.inspect_image(built.tag))
    saved = io.BytesIO(b"".join(engine.client().images.get(built.tag).save(named=False)))
    with tarfile.open(fileobj=saved) as outer:
        layers = [m for m in outer.getmembers() if m.name.endswith("layer.tar")]
        assert layers
        for member in outer.getmembers():
            if member.isfile():
                data = outer.extractfile(member).read()  # type: ignore[union-attr]
                assert marker.encode() not in data, member.name
        for member in layers:
            data = outer.extractfile(member).read()  # type: ignore[union-attr]
            with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                assert not [n for n in layer.getnames() if "ca-bundle" in n or "proxy-ca" in n]


def _install_steps(tag: str) -> list[tuple[str, str]]:
    """(layer id, step) of the image's steps from the base up to the install of the rest."""
    steps = [(s["Id"], s["CreatedBy"]) for s in reversed(engine.client().api.history(tag))]
    last = max(i for i, (_, by) in enumerate(steps) if "install.sh" in by and "rest.txt" in by)
    return steps[: last + 1]


def test_a_suite_change_rebuilds_only_the_top_layers(
    small, images: TrackedImages, envs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another cell with the same packages reuses every install layer, and so does a change to
    the smoke suite: only the layers above the installs are new."""
    _, built = small
    cell = small_cell(envs, f"test-suite-{uuid.uuid4().hex[:6]}")
    other = images.build(cell)
    assert other.status == "built", other.detail
    installs = _install_steps(built.tag)
    assert any("install.sh" in by and "torch.txt" in by for _, by in installs)
    assert "<missing>" not in dict(installs)
    assert _install_steps(other.tag) == installs

    changed = tmp_path / "run.py"
    suite_runner = "src/audiomatrix/suite/run.py"
    changed.write_text((REPO / suite_runner).read_text() + "\n# changed\n")
    files = imagebuild.context_files
    monkeypatch.setattr(imagebuild, "context_files", lambda c: {**files(c), suite_runner: changed})
    again = images.build(cell)
    assert again.status == "built" and again.tag != other.tag, again.detail
    assert _install_steps(again.tag) == installs
    history = engine.client().api.history(again.tag)
    suite = [
        s["Id"] for s in history if "COPY dir:" in s["CreatedBy"] and "suite" in s["CreatedBy"]
    ]
    assert suite and not set(suite) & {s["Id"] for s in engine.client().api.history(built.tag)}


def test_a_broken_cell_does_not_stop_the_next(small, images: TrackedImages, envs: Path) -> None:
    cell, _ = small
    broken = small_cell(envs, f"test-broken-{uuid.uuid4().hex[:6]}")
    text = broken.requirements.read_text()
    broken.requirements.write_text(text.replace("--hash=sha256:", "--hash=sha256:0", 1))
    results = [images.build(c) for c in (broken, cell)]
    assert results[0].status == "failed" and "\n" not in results[0].detail
    assert results[1].ok


def test_a_python_the_base_lacks_is_copied_from_this_machine(
    images: TrackedImages, envs: Path, tmp_path: Path
) -> None:
    if interpreters.find("3.10") is None:
        pytest.skip("this machine has no CPython 3.10 to copy")
    cell = small_cell(envs, f"test-py310-{uuid.uuid4().hex[:6]}", python="3.10")
    built = images.build(cell)
    assert built.ok, built.detail
    labels = engine.client().images.get(built.tag).labels
    assert labels["org.audiomatrix.python"] == "3.10"
    assert labels["org.audiomatrix.python-source"].startswith("CPython 3.10.")
    api = engine.client()
    with TrackedContainer(api, built.tag, tmp_path) as box:
        probe = "import ssl, sqlite3, ctypes, sys; ctypes.CDLL('libpython3.10.so.1.0');"
        code, logs = box.run(["python", "-c", probe + "print(sys.version)"])
    assert code == 0 and logs.startswith("3.10."), logs


def test_a_python_this_machine_cannot_give_is_a_status(images: TrackedImages, envs: Path) -> None:
    cell = small_cell(envs, f"test-py399-{uuid.uuid4().hex[:6]}")
    declared = cell.record.cell.model_copy(update={"python": "3.99"})
    cell = dataclasses.replace(cell, record=cell.record.model_copy(update={"cell": declared}))
    result = images.build(cell)
    assert result.status == "python unavailable"
    assert "the cell needs 3.99" in result.detail and "\n" not in result.detail


@pytest.mark.skipif(
    not (REPO / "environments" / CI_CELL / "cell.json").exists(), reason="no CI cell lock"
)
def test_a_real_torch_cell(images: TrackedImages, tmp_path: Path) -> None:
    cell = cell_lock.read_lock(REPO / "environments", CI_CELL)
    built = images.build(cell)
    assert built.ok, built.detail
    result = container.smoke_in_image(
        built.tag, cell, tmp_path, checks=["torch_load"], echo=lambda _: None
    )
    assert str(result.environment.versions["torch"]).startswith(cell.record.cell.torch)
    # Measured inside, the image is the environment its cell declares, package for package.
    pins = report.lock_pins(REPO / "environments", cell.cell)
    declared = evidence.declaration(cell.record)
    facts, host = result.environment.facts, result.environment.host
    assert evidence.differences(declared, facts, host, result.lock_sha256, pins) == []
    # torch 2.6+ refuses the pickled package by default; compat's allow-list loads it.
    assert result.status("raw", "torch_load").status == "fail"
    assert result.status("compat", "torch_load").status == "pass"


def test_wheelhouse_names_one_file_per_pin(small) -> None:
    cell, _ = small
    pins = parse_lock(cell.requirements.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        names = fill_wheelhouse(cell, Path(tmp), echo=lambda _: None)
    assert len(names) >= len(pins)
