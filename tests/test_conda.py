"""Conda cells against a local channel, offline: environment.yml and virtual packages from the
cell, a real solve (rattler) selecting the CPU or CUDA build through __cuda, conda-lock's own
lock file, content hash and renderer, the lock stage's rules, and a real install (rattler)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from audiomatrix.core.errors import CellError
from audiomatrix.core.files import sha256_file
from audiomatrix.lock import cell_lock
from audiomatrix.lock import run as lock_run
from audiomatrix.lock import stage as lock
from audiomatrix.lock.installers import cell_data, conda
from audiomatrix.records import cell as cell_file
from audiomatrix.smoke import runner as smoke
from audiomatrix.spec import matrix as spec
from condachannel import (
    build_channel,
    matrix_text,
    pip_package,
    solve,
    solve_specs,
    virtual,
    wheel,
    write_lock,
)

STACKS = """\
  tiny-conda: {installer: conda, channels: ["%(channel)s"], packages: [], torchcodec: true,
               ffmpeg: true}
  pip-conda: {installer: conda, channels: ["%(channel)s"], packages: ["demo-pkg==1.0"],
              torchcodec: false, ffmpeg: false}
  wheels: {packages: [demucs], torchcodec: false, ffmpeg: false}
"""
PRODUCT = """\
  os: [bookworm]
  python: ["3.11"]
  torch: ["2.9.1"]
  accelerator: [cpu, cu128]
  stack: [tiny-conda, pip-conda, wheels]
  include:
    - {os: macos, python: "3.11", torch: "2.9.1", accelerator: cpu, stack: tiny-conda}
"""
CPU = "bookworm-py3.11-torch2.9.1-cpu-tiny-conda"
CUDA = "bookworm-py3.11-torch2.9.1-cu128-tiny-conda"
PIP = "bookworm-py3.11-torch2.9.1-cpu-pip-conda"
MAC = "macos-py3.11-torch2.9.1-cpu-tiny-conda"


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_channel(tmp_path_factory.mktemp("conda") / "channel")


def matrix_for(channel: str) -> spec.Matrix:
    return spec.parse(matrix_text(STACKS % {"channel": channel}, PRODUCT), "conda.yaml")


@pytest.fixture(scope="module")
def matrix(channel: Path) -> spec.Matrix:
    return matrix_for(channel.as_uri())


def plan(matrix: spec.Matrix, cell_id: str) -> conda.CondaPlan:
    (cell,) = matrix.select([cell_id])
    return conda.plan_for(cell, matrix)


def conda_channels(matrix: spec.Matrix) -> list[str]:
    return list(matrix.file.stack["tiny-conda"].channels)


def no_solver(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine's PATH without conda-lock's solvers, wherever the tests run."""
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    monkeypatch.delenv("MAMBA_EXE", raising=False)
    assert conda.solver() is None


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# --------------------------------------------------------------------------- the cell


def test_ids_say_conda_and_uv_cells_are_as_before(matrix: spec.Matrix) -> None:
    by_id = {c.id: c for c in matrix.cells}
    assert by_id[CUDA].installer == "conda" and by_id[CUDA].id.endswith("-conda")
    uv = by_id["bookworm-py3.11-torch2.9.1-cpu-wheels"]
    assert uv.installer == "uv"
    assert not {"installer", "channels", "conda"} & set(cell_data(uv))
    data = cell_data(by_id[CUDA])
    assert (data["installer"], data["channels"]) == ("conda", conda_channels(matrix))
    # A native conda cell's FFmpeg comes with its environment.
    assert cell_data(by_id[MAC])["ffmpeg"] is True


def test_environment_yml_for_cuda_cpu_and_pip(matrix: spec.Matrix, channel: Path) -> None:
    cuda = plan(matrix, CUDA)
    assert cuda.platforms == ["linux-64", "win-64"]  # the accelerator's facts: no macOS
    env = yaml.safe_load(cuda.environment_text)
    assert env["channels"] == [channel.as_uri(), "nodefaults"]
    assert env["dependencies"] == [
        "python 3.11.*",
        "pytorch ==2.9.1 cuda*",
        "cuda-version 12.8.*",
        "torchaudio ==2.9.1",
        "torchcodec ==0.9.1",
        "ffmpeg",
        "libsndfile",
        "pytest",
    ]
    cpu = yaml.safe_load(plan(matrix, CPU).environment_text)
    assert cpu["platforms"] == ["linux-64", "osx-arm64", "win-64"]
    assert "pytorch ==2.9.1 cpu*" in cpu["dependencies"]
    assert not any(str(d).startswith("cuda-version") for d in cpu["dependencies"])
    pip = yaml.safe_load(plan(matrix, PIP).environment_text)
    assert pip["dependencies"][-2:] == ["pip", {"pip": ["demo-pkg==1.0"]}]
    assert "ffmpeg" not in pip["dependencies"] and "torchcodec ==0.9.1" not in pip["dependencies"]


def test_virtual_packages_give_cuda_only_to_cuda_cells(matrix: spec.Matrix) -> None:
    from conda_lock.virtual_package import virtual_package_repo_from_specification

    cuda = plan(matrix, CUDA).virtual_packages["subdirs"]
    assert cuda["linux-64"]["packages"] == {
        "__unix": "0",
        "__linux": "5.10",
        "__glibc": "2.36",  # the cell's base, x86_64-manylinux_2_36
        "__archspec": "1 x86_64",
        "__cuda": "12.8",
    }
    assert cuda["win-64"]["packages"]["__cuda"] == "12.8"
    cpu = plan(matrix, CPU).virtual_packages["subdirs"]
    assert not any("__cuda" in s["packages"] for s in cpu.values())
    assert cpu["osx-arm64"]["packages"]["__archspec"] == "1 arm64"
    assert cpu["win-64"]["packages"]["__win"] == "0"
    # conda-lock reads the file audiomatrix writes.
    with conda.lock_spec(plan(matrix, CUDA)) as (_, repo):
        assert {p.name for p in repo.packages_by_subdir} >= {"__cuda", "__glibc", "__linux"}
    path = Path(__file__)  # any file will not do: the spec must be conda-lock's schema
    with pytest.raises(Exception):  # noqa: B017 - pydantic or YAML, whichever comes first
        virtual_package_repo_from_specification(path)


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("x86_64-manylinux_2_36", "linux-64"),
        ("aarch64-manylinux_2_28", "linux-aarch64"),
        ("aarch64-apple-darwin", "osx-arm64"),
        ("x86_64-apple-darwin", "osx-64"),
        ("x86_64-pc-windows-msvc", "win-64"),
        ("linux", "linux-64"),
        ("riscv64-unknown-linux-gnu", None),
    ],
)
def test_conda_platform_of_a_uv_target(platform: str, expected: str | None) -> None:
    assert conda.subdir(platform) == expected


# --------------------------------------------------------------------------- solving


def test_cuda_build_is_selected_through_the_cuda_virtual_package(
    matrix: spec.Matrix, channel: Path
) -> None:
    cuda = plan(matrix, CUDA)
    for platform in cuda.platforms:
        builds = {str(r.name.normalized): str(r.build) for r in solve(cuda, platform)}
        assert builds["pytorch"] == "cuda126_py311_200", platform
        assert builds["cuda-version"] == "h0_0"
    # Without __cuda (what a lock made without telling conda-lock gets) no CUDA build fits.
    with pytest.raises(Exception, match="__cuda"):
        solve(cuda, "linux-64", without=["__cuda"])
    cpu = plan(matrix, CPU)
    for platform in cpu.platforms:
        assert {str(r.name.normalized): str(r.build) for r in solve(cpu, platform)}[
            "pytorch"
        ] == "cpu_py311_0"
    # Unselected, the solver takes the CUDA build exactly where __cuda is offered.
    offered = solve_specs([channel.as_uri()], ["pytorch"], "linux-64", [])
    assert {str(r.name.normalized): str(r.build) for r in offered}["pytorch"] == "cpu_py311_0"
    with_cuda = solve_specs([channel.as_uri()], ["pytorch"], "linux-64", virtual(cuda, "linux-64"))
    assert {str(r.name.normalized): str(r.build) for r in with_cuda}["pytorch"].startswith("cuda")


def test_lock_file_round_trips_and_is_current_by_content_hash(
    matrix: spec.Matrix, tmp_path: Path
) -> None:
    from conda_lock.lockfile import parse_conda_lock_file

    cuda = plan(matrix, CUDA)
    path = write_lock(cuda, tmp_path / conda.LOCK_FILE)
    back = parse_conda_lock_file(path)
    assert sorted(back.metadata.platforms) == ["linux-64", "win-64"]
    torch = {p.platform: p.build for p in back.package if p.name == "pytorch"}
    assert torch == {"linux-64": "cuda126_py311_200", "win-64": "cuda126_py311_200"}
    assert conda.is_current(cuda, path)
    # Another environment (the CPU cell) or a damaged hash is not current.
    assert not conda.is_current(plan(matrix, CPU), path)
    text = path.read_text()
    hashes = back.metadata.content_hash
    path.write_text(text.replace(hashes["win-64"], "0" * 64))
    assert not conda.is_current(cuda, path)
    path.write_text("version: 2\npackage: [\n")
    assert not conda.is_current(cuda, path)
    assert not conda.is_current(cuda, tmp_path / "absent.yml")


def test_render_is_conda_lock_render_without_pip_lines(matrix: spec.Matrix, tmp_path: Path) -> None:
    pip = plan(matrix, PIP)
    built = wheel(tmp_path)
    extra = [
        pip_package("demo-pkg", "1.0", built.as_uri(), built.read_bytes(), p) for p in pip.platforms
    ]
    path = write_lock(pip, tmp_path / "lock" / conda.LOCK_FILE, extra)
    explicit, requirements = conda.render(path, "linux-64")
    subprocess.run(
        [sys.executable, "-m", "conda_lock", "render", "--kind", "explicit",
         "--platform", "linux-64", "--filename-template", "rendered-{platform}.lock", str(path)],
        cwd=tmp_path, check=True, capture_output=True,
    )  # fmt: skip
    cli = (tmp_path / "rendered-linux-64.lock").read_text()
    assert [line for line in cli.splitlines() if line.startswith("# pip ")]
    assert explicit.splitlines() == [ln for ln in cli.splitlines() if not ln.startswith("# pip ")]
    assert "@EXPLICIT" in explicit.splitlines()
    urls = [line for line in explicit.splitlines() if "://" in line]
    assert any("/linux-64/pytorch-2.9.1-cpu_py311_0.conda#" in u for u in urls)
    lines = [line for line in requirements.splitlines() if not line.startswith("#")]
    sha = sha256_file(built)
    assert lines == [f"demo-pkg @ {built.as_uri()} --hash=sha256:{sha}"]
    assert not any(name in requirements for name in ("torch ", "pytorch"))


# --------------------------------------------------------------------------- the lock stage


def test_lock_stage_adopts_a_current_lock_then_leaves_it(
    matrix: spec.Matrix, tmp_path: Path
) -> None:
    cuda = plan(matrix, CUDA)
    folder = tmp_path / CUDA
    write_lock(cuda, folder / conda.LOCK_FILE)
    result = conda.lock_cell(cuda, folder, lock.Stopper())
    assert result.status is lock.Status.LOCKED, result.detail
    assert result.detail.startswith("adopted, current by content hash")
    assert sorted(files(folder)) == [
        "cell.json", "conda-linux-64.lock", "conda-lock.yml", "environment.yml",
        "pip-linux-64.txt", "virtual-packages.yml",
    ]  # fmt: skip
    record = cell_file.read_record(folder)
    assert record is not None
    assert (record.status, record.lock) == ("locked", "conda-lock.yml")
    assert record.lock_sha256 == sha256_file(folder / conda.LOCK_FILE)
    assert record.inputs["installer"] == "conda"
    assert record.cell.installer == "conda"
    assert (folder / "environment.yml").read_text() == cuda.environment_text
    explicit, _ = conda.render(folder / conda.LOCK_FILE, "linux-64")
    assert (folder / "conda-linux-64.lock").read_text() == explicit
    before = files(folder)
    again = conda.lock_cell(cuda, folder, lock.Stopper())
    assert again.status is lock.Status.UNCHANGED
    assert files(folder) == before


def test_tool_failure_and_silent_channel(
    matrix: spec.Matrix, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cuda = plan(matrix, CUDA)
    folder = tmp_path / CUDA
    write_lock(cuda, folder / conda.LOCK_FILE)
    assert conda.lock_cell(cuda, folder, lock.Stopper()).status is lock.Status.LOCKED
    before = files(folder)
    # The environment changed: a relock is due, the channel answers, no solver here.
    no_solver(monkeypatch)
    changed = conda.CondaPlan(
        cuda.cell,
        {**cuda.environment, "dependencies": [*cuda.environment["dependencies"], "ffmpeg 7.*"]},
        cuda.virtual_packages,
        cuda.subdir,
    )
    result = conda.lock_cell(changed, folder, lock.Stopper())
    assert result.status is lock.Status.ERROR
    assert result.detail.endswith("nothing changed") and "micromamba" in result.detail
    assert files(folder) == before
    # A silent channel keeps the previous lock byte-identical...
    silent = matrix_for("http://127.0.0.1:9/channel")
    (cell,) = silent.select([CUDA])
    moved = conda.plan_for(cell, silent)
    kept = conda.lock_cell(moved, folder, lock.Stopper())
    assert kept.status is lock.Status.CHANNEL_UNREACHABLE
    assert kept.detail.startswith("channel http://127.0.0.1:9/channel does not answer")
    assert kept.detail.endswith("kept the previous lock")
    assert files(folder) == before
    # ...and with none, records why, with the environment.yml to lock once it answers.
    fresh = tmp_path / "fresh" / CUDA
    found = conda.lock_cell(moved, fresh, lock.Stopper())
    assert found.status is lock.Status.CHANNEL_UNREACHABLE
    assert sorted(files(fresh)) == ["cell.json", "environment.yml", "virtual-packages.yml"]
    record = json.loads((fresh / "cell.json").read_text())
    assert (record["status"], record["lock"], record["lock_sha256"]) == (
        "channel unreachable",
        None,
        None,
    )
    assert (fresh / "environment.yml").read_text() == moved.environment_text


def test_lock_cells_dispatches_by_installer(
    matrix: spec.Matrix, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_solver(monkeypatch)
    silent = matrix_for("http://127.0.0.1:9/channel")
    results = lock_run.lock_cells(silent.select([CPU]), silent, tmp_path)
    assert [(r.cell, r.status) for r in results] == [(CPU, lock.Status.CHANNEL_UNREACHABLE)]
    manifest = cell_file.read_manifest(tmp_path)
    assert {c.id for c in manifest.cells} == {c.id for c in silent.cells}


# --------------------------------------------------------------------------- installs


def test_native_install_links_the_lock_with_rattler(matrix: spec.Matrix, tmp_path: Path) -> None:
    cuda = plan(matrix, CUDA)
    folder = tmp_path / "environments" / CUDA
    write_lock(cuda, folder / conda.LOCK_FILE)
    assert conda.lock_cell(cuda, folder, lock.Stopper()).status is lock.Status.LOCKED
    cell = cell_lock.read_lock(tmp_path / "environments", CUDA)
    assert cell.installer == "conda" and cell.subdir == "linux-64"
    prefix = tmp_path / "prefix"
    python = smoke.ensure_conda_environment(cell, prefix)
    assert python == prefix / "bin" / "python" and python.is_file()
    linked = sorted(p.name for p in (prefix / "conda-meta").glob("*.json"))
    assert "pytorch-2.9.1-cuda126_py311_200.json" in linked
    assert "ffmpeg-7.1.1-h0_0.json" in linked and "libsndfile-1.2.2-h0_0.json" in linked
    # An unchanged lock reuses the environment as it is.
    (prefix / "share" / "ffmpeg" / "h0_0.txt").unlink()
    assert smoke.ensure_conda_environment(cell, prefix) == python
    assert not (prefix / "share" / "ffmpeg" / "h0_0.txt").exists()


def test_read_lock_wants_the_rendered_files(matrix: spec.Matrix, tmp_path: Path) -> None:
    cpu = plan(matrix, CPU)
    folder = tmp_path / CPU
    write_lock(cpu, folder / conda.LOCK_FILE)
    conda.lock_cell(cpu, folder, lock.Stopper())
    assert cell_lock.read_lock(tmp_path, CPU).lock_files == [
        folder / "conda-linux-64.lock",
        folder / "pip-linux-64.txt",
    ]
    (folder / "pip-linux-64.txt").unlink()
    with pytest.raises(CellError, match="not locked"):
        cell_lock.read_lock(tmp_path, CPU)
