"""A conda cell's image, as far as it can be checked without micromamba and a channel: the
build context holds the files rendered from the lock, docker/conda.Dockerfile installs exactly
those with conda-install.sh, every build arg is one it declares, and its pip branch installs
a lock's pip part for real (hashes required) into an environment's own Python."""

from __future__ import annotations

import re
import subprocess
import venv
from pathlib import Path

import pytest

from audiomatrix.image import build as imagebuild
from audiomatrix.lock import cell_lock
from audiomatrix.lock import stage as lock
from audiomatrix.lock.installers import conda
from audiomatrix.spec import matrix as spec
from condachannel import build_channel, matrix_text, pip_package, wheel, write_lock

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "docker" / "conda.Dockerfile").read_text()
INSTALL = ROOT / "docker" / "conda-install.sh"
STACK = """\
  pip-conda: {installer: conda, channels: ["%s"], packages: ["demo-pkg==1.0"],
              torchcodec: false, ffmpeg: true}
"""
PRODUCT = """\
  {os: [bookworm], python: ["3.11"], torch: ["2.9.1"], accelerator: [cpu], stack: [pip-conda]}
"""
CELL = "bookworm-py3.11-torch2.9.1-cpu-pip-conda"


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> cell_lock.CellLock:
    """The cell locked as the lock stage records it, its pip part a local wheel."""
    root = tmp_path_factory.mktemp("conda-image")
    channel = build_channel(root / "channel")
    matrix = spec.parse(matrix_text(STACK % channel.as_uri(), PRODUCT), "conda.yaml")
    plan = conda.plan_for(matrix.cells[0], matrix)
    built = wheel(root)
    extra = [
        pip_package("demo-pkg", "1.0", built.as_uri(), built.read_bytes(), p)
        for p in plan.platforms
    ]
    folder = root / "environments" / CELL
    write_lock(plan, folder / conda.LOCK_FILE, extra)
    assert conda.lock_cell(plan, folder, lock.Stopper()).status is lock.Status.LOCKED
    return cell_lock.read_lock(root / "environments", CELL)


def instructions(text: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


def test_context_holds_what_conda_lock_renders(locked: cell_lock.CellLock) -> None:
    args = imagebuild.lock_args(locked)
    assert args == {
        "CONDA_LOCK": f"environments/{CELL}/conda-linux-64.lock",
        "PIP_LOCK": f"environments/{CELL}/pip-linux-64.txt",
    }
    files = imagebuild.context_files(locked)
    assert imagebuild.dockerfile(locked) == "docker/conda.Dockerfile"
    assert "docker/conda.Dockerfile" in files and "docker/Dockerfile" not in files
    explicit, pip = conda.render(locked.folder / conda.LOCK_FILE, "linux-64")
    assert files[args["CONDA_LOCK"]].read_text() == explicit
    assert files[args["PIP_LOCK"]].read_text() == pip
    assert "@EXPLICIT" in explicit.splitlines()
    assert not any(line.startswith("# pip") for line in explicit.splitlines())


def test_dockerfile_installs_the_two_renders_in_order(locked: cell_lock.CellLock) -> None:
    steps = instructions(DOCKERFILE)
    order = [
        "COPY --from=micromamba /bin/micromamba /usr/local/bin/micromamba",
        "ENV CONDA_ENV=/opt/conda",
        "COPY docker/conda-install.sh /opt/audiomatrix/install.sh",
        "ARG CONDA_LOCK",
        "COPY ${CONDA_LOCK} /opt/audiomatrix/lock/conda.lock",
        "RUN /opt/audiomatrix/install.sh /opt/audiomatrix/lock/conda.lock",
        "ARG PIP_LOCK",
        "COPY ${PIP_LOCK} /opt/audiomatrix/lock/pip.txt",
        "RUN /opt/audiomatrix/install.sh /opt/audiomatrix/lock/pip.txt",
    ]
    assert [steps.index(s) for s in order] == sorted(steps.index(s) for s in order)
    assert steps[-1] == 'CMD ["python", "-m", "audiomatrix.suite.run", "--out", "/out"]'
    assert any(s.startswith("ENV PATH=/opt/conda/bin:$PATH") for s in steps)
    assert "USER 10001:10001" in steps
    # Every build arg audiomatrix passes is declared (none dropped with a warning), and the
    # labels are the ones publish checks.
    declared = {m.group(1) for s in steps if (m := re.match(r"ARG (\w+)", s))}
    ready = imagebuild.Prepared(locked, "debian:bookworm-slim", "mm:1", None, "cell:tag")
    passed = {*imagebuild.build_args(ready), "CA_URL"}
    assert passed <= declared, passed - declared
    labels = next(s for s in steps if s.startswith("LABEL "))
    for label in ("org.audiomatrix.cell", "org.audiomatrix.lock-sha256", "org.audiomatrix.python"):
        assert f"{label}=" in labels


def test_install_sh_conda_branches() -> None:
    conda_part = INSTALL.read_text()
    assert "grep -q '^@EXPLICIT'" in conda_part
    assert 'micromamba create --yes --quiet --prefix "$CONDA_ENV" --file "$part"' in conda_part
    assert "--require-hashes" in conda_part and "--no-deps" in conda_part


def test_install_sh_installs_the_pip_part_with_its_hashes(
    locked: cell_lock.CellLock, tmp_path: Path
) -> None:
    """The pip branch for real, into an environment's own Python: a venv here, whose pip (the
    base interpreter's, seen through its system site) stands in for the conda environment's."""
    env = tmp_path / "env"
    venv.create(env, system_site_packages=True)
    python = env / "bin" / "python"
    if subprocess.run([python, "-m", "pip", "--version"], capture_output=True).returncode:
        pytest.skip("this interpreter has no pip to stand in for the environment's")
    run = {"CONDA_ENV": str(env), "PATH": "/usr/bin:/bin"}
    _, pip = locked.lock_files
    tampered = tmp_path / "pip.txt"
    tampered.write_text(re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, pip.read_text()))
    refused = subprocess.run(
        ["sh", str(INSTALL), str(tampered)], env=run, capture_output=True, text=True
    )
    assert refused.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in refused.stderr
    subprocess.run(["sh", str(INSTALL), str(pip)], env=run, check=True, capture_output=True)
    done = subprocess.run(
        [python, "-c", "import demo_pkg, sys; print(demo_pkg.VALUE, demo_pkg.__file__)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    value, where = done.stdout.split()
    assert value == "1" and Path(where).is_relative_to(env)


def test_a_comments_only_pip_part_installs_nothing(tmp_path: Path) -> None:
    part = tmp_path / "pip.txt"
    part.write_text("# generated\n# nothing from PyPI\n")
    missing = tmp_path / "no-env"  # its python would fail if it were run
    done = subprocess.run(
        ["sh", str(INSTALL), str(part)],
        env={"CONDA_ENV": str(missing), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
