"""Real conda-lock solves against conda-forge with micromamba (marked `conda`; the generated
workflow runs them on GitHub's runners, which reach the channel): the CPU and CUDA builds
chosen through __cuda, a lock current by its content hash, a pip part without a second torch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audiomatrix.cli.app import app
from audiomatrix.lock.installers import conda
from audiomatrix.spec import matrix as spec
from condachannel import matrix_text

pytestmark = pytest.mark.conda

# julius (PyPI) needs torch: conda-forge's pytorch must satisfy it, not a second torch.
MATRIX = matrix_text(
    "  tiny-conda: {installer: conda, channels: [conda-forge], packages: [julius],"
    " torchcodec: false, ffmpeg: true}\n",
    '  {os: [bookworm], python: ["3.11"], torch: ["2.9.1"], accelerator: [cpu, cu128],'
    " stack: [tiny-conda]}\n",
)


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if conda.solver() is None:
        pytest.fail("no micromamba, mamba or conda on PATH: the conda tests need a solver")
    root = tmp_path_factory.mktemp("conda-real")
    (root / "matrix.yaml").write_text(MATRIX)
    result = CliRunner().invoke(app, ["lock", "--matrix", str(root / "matrix.yaml")])
    assert result.exit_code == 0, result.output
    return root


@pytest.mark.parametrize(("accelerator", "build"), [("cpu", "cpu"), ("cu128", "cuda")])
def test_conda_forge_lock_picks_the_build_through_cuda(
    locked: Path, accelerator: str, build: str
) -> None:
    from conda_lock.lockfile import parse_conda_lock_file

    cell = f"bookworm-py3.11-torch2.9.1-{accelerator}-tiny-conda"
    folder = locked / "environments" / cell
    record = json.loads((folder / "cell.json").read_text())
    assert record["status"] == "locked", record["reason"]
    lockfile = parse_conda_lock_file(folder / conda.LOCK_FILE)
    torch = {p.platform: p for p in lockfile.package if p.name == "pytorch"}
    assert set(torch) == set(lockfile.metadata.platforms)
    assert all((p.build or "").startswith(build) for p in torch.values()), torch
    assert all(p.version == "2.9.1" for p in torch.values())
    matrix = spec.load(locked / "matrix.yaml")
    (chosen,) = matrix.select([cell])
    assert conda.is_current(conda.plan_for(chosen, matrix), folder / conda.LOCK_FILE)
    pip = (folder / "pip-linux-64.txt").read_text().splitlines()
    assert any(line.startswith("julius @ ") for line in pip)
    assert not any(line.startswith(("torch ", "torchaudio ", "nvidia-")) for line in pip)


def test_relocking_a_current_lock_is_unchanged(locked: Path) -> None:
    before = (locked / "environments").rglob(conda.LOCK_FILE)
    texts = {p: p.read_bytes() for p in before}
    result = CliRunner().invoke(app, ["lock", "--matrix", str(locked / "matrix.yaml")])
    assert result.exit_code == 0, result.output
    assert "2 unchanged" in result.output
    assert {p: p.read_bytes() for p in texts} == texts
