"""The engine stopped in the middle of `audiomatrix smoke`: one clear line, no result for the
interrupted cell (and no half-written file), and the next run resumes where it stopped.

The engine stopped is a private one this test starts (its own socket, data and exec roots,
pid file and config; no bridge, no iptables, no forwarding change), with the base and uv
images copied into it from the machine's engine, which is only read. It is stopped the way
`systemctl stop docker` does (SIGTERM to dockerd), started again, and removed with all its
data at the end. Needs root and dockerd.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from audiomatrix.image import base, engine
from audiomatrix.image import build as imagebuild
from audiomatrix.spec import matrix as spec
from support import audiomatrix, small_cell, wait_until

pytestmark = pytest.mark.fault
REPO = Path(__file__).resolve().parents[1]


BRIDGE = "amtest0"
"""The private engine's own bridge. Not `--bridge=none`: a dockerd started so deletes the
machine's `docker0`, and with it the default network of the machine's engine."""


class PrivateEngine:
    """A dockerd of this test's own in `folder`, sharing nothing with the machine's engine:
    its own socket, roots, pid file, configuration and bridge."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.host = f"unix://{folder / 'docker.sock'}"
        self.proc: subprocess.Popen[bytes] | None = None
        (folder / "daemon.json").write_text("{}")

    def start(self, wait_s: float = 60) -> None:
        dockerd = shutil.which("dockerd")
        assert dockerd, "dockerd is missing: `make system` installs Debian's docker.io"
        if not Path(f"/sys/class/net/{BRIDGE}").exists():
            subprocess.run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=True)
        command = [
            dockerd, "--host", self.host, "--data-root", str(self.folder / "data"),
            "--exec-root", str(self.folder / "exec"), "--pidfile", str(self.folder / "pid"),
            "--config-file", str(self.folder / "daemon.json"), f"--bridge={BRIDGE}",
            "--iptables=false", "--ip-masq=false", "--ip-forward=false",
        ]  # fmt: skip
        with (self.folder / "dockerd.log").open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + wait_s
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.folder / "dockerd.log").read_text(errors="replace")[-800:]
                pytest.fail(f"the private dockerd did not start: {tail}")
            time.sleep(0.2)

    def answers(self) -> bool:
        try:
            return bool(self.client().version())
        except docker.errors.DockerException:
            return False

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, version="auto", timeout=600)

    def stop(self) -> None:
        """SIGTERM and wait, as the service manager stops it (it stops its containers)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=120)

    def remove(self) -> None:
        """Stop it, end what it left running (its containerd and shims name this folder),
        unmount what it left mounted, and delete all its data."""
        self.stop()
        for entry in os.scandir("/proc"):
            try:
                command = Path(entry.path, "cmdline").read_bytes()
            except OSError:
                continue
            if entry.name.isdigit() and str(self.folder).encode() in command:
                os.kill(int(entry.name), signal.SIGKILL)
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for point in sorted((m for m in mounts if m.startswith(str(self.folder))), reverse=True):
            subprocess.run(["umount", "--lazy", point], check=False)
        shutil.rmtree(self.folder)
        subprocess.run(["ip", "link", "delete", BRIDGE], check=False, capture_output=True)


@pytest.fixture
def private_engine() -> Iterator[PrivateEngine]:
    if os.geteuid() != 0:
        pytest.skip("a private dockerd needs root")
    if not shutil.which("dockerd"):
        pytest.fail("dockerd is missing: `make system` installs Debian's docker.io")
    # A short path: containerd's sockets live under the exec root (108 bytes at most).
    private = PrivateEngine(Path(tempfile.mkdtemp(prefix="am-engine-")))
    try:
        private.start()
        yield private
    finally:
        private.remove()


def _copy_build_images(private: PrivateEngine) -> None:
    """The base and uv images every build starts from, from the machine's engine (where the
    image tests keep them) into the private one, so no test bootstraps a base again."""
    shared = engine.client()
    wanted = [base.base_spec("debian:bookworm-slim").tag, imagebuild.ensure_uv_image().tag]
    present = [tag for tag in wanted if engine.find_image(shared, tag)]
    if not present:
        return
    save = subprocess.Popen(["docker", "save", *present], stdout=subprocess.PIPE)
    load = subprocess.run(
        ["docker", "--host", private.host, "load", "--quiet"], stdin=save.stdout,
        capture_output=True, text=True,
    )  # fmt: skip
    assert save.wait() == 0 and load.returncode == 0, load.stderr


def _result_files(root: Path, cell: str) -> list[Path]:
    return sorted((root / "results" / cell).glob("*.json"))


def test_the_machines_default_bridge_survives_a_private_engine(private_engine) -> None:
    """The machine's engine keeps its default network while a private engine comes and goes
    (a `--bridge=none` dockerd would have deleted it)."""
    had = Path("/sys/class/net/docker0").exists()
    private_engine.stop()
    private_engine.start()
    assert Path("/sys/class/net/docker0").exists() == had


def test_engine_stopped_mid_run_then_resumed(private_engine: PrivateEngine, tmp_path: Path) -> None:
    _copy_build_images(private_engine)
    shutil.copy(REPO / "tests" / "matrices" / "small.yaml", tmp_path / "matrix.yaml")
    matrix = spec.load(tmp_path / "matrix.yaml")
    first, second = [c.id for c in matrix.cells if c.buildable][:2]
    for cell in (first, second):
        small_cell(tmp_path / "environments", cell)  # a small lock under the matrix's id
    args = ("smoke", first, second, "--matrix", "matrix.yaml", "--mode", "raw")
    api = private_engine.client()

    def running(cell: str) -> bool:
        return bool(api.containers.list(filters={"label": f"{engine.LABEL}.cell={cell}"}))

    run = audiomatrix(tmp_path, *args, DOCKER_HOST=private_engine.host)
    try:
        wait_until(lambda: _result_files(tmp_path, first) and running(second), f"{second} to run")
        private_engine.stop()
        stdout, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    output = stdout + stderr

    assert run.returncode == 1, output
    stopped = [line for line in output.splitlines() if f"smoke run of {second}" in line]
    assert len(stopped) == 1 and "rerun to resume" in stopped[0], output
    assert "Traceback" not in output
    assert len(_result_files(tmp_path, first)) == 1
    assert _result_files(tmp_path, second) == []  # nothing recorded for the interrupted cell
    assert not (tmp_path / "results" / second).exists()  # and no logs of it either
    leftovers = [p for p in (tmp_path / "results").rglob("*") if p.name.startswith(".")]
    assert leftovers == []

    private_engine.start()
    again = audiomatrix(tmp_path, *args, DOCKER_HOST=private_engine.host)
    stdout, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stdout + stderr
    assert f"{first} smoke unchanged" in stdout  # resumed: the finished cell is not rerun
    assert len(_result_files(tmp_path, first)) == 1
    (written,) = _result_files(tmp_path, second)
    assert json.loads(written.read_text())["cell"] == second
