"""Helpers shared by the tests: small real cells, and results, records and tables as the
stages write them (not a test module)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import requests

from audiomatrix.core.files import sha256_file
from audiomatrix.image.base import BASE_REPO
from audiomatrix.image.build import UV_REPO, BuildResult, build
from audiomatrix.image.engine import find_image
from audiomatrix.lock import cell_lock, uvtool
from audiomatrix.records import run as run_record
from audiomatrix.records.cell import CellRecord
from audiomatrix.smoke.container import container_options
from audiomatrix.spec import declared
from audiomatrix.suite import fatbin, probe, schema

STEP_IMAGE = re.compile(r"---> ([0-9a-f]{12})")
"""A build step's image in the classic builder's output."""


def small_cell(root: Path, cell: str, python: str = "3.11") -> cell_lock.CellLock:
    """A cell without torch (soundfile, numpy, pytest), locked for real with uv: its image
    builds in seconds once the base exists."""
    folder = root / cell
    folder.mkdir(parents=True)
    (folder / "requirements.in").write_text("soundfile\nnumpy\npytest\npytest-timeout\n")
    subprocess.run(
        [
            uvtool.uv_binary(),
            "pip",
            "compile",
            "requirements.in",
            "-o",
            "requirements.txt",
            "--generate-hashes",
            "--no-config",
            "--quiet",
            "--python-version",
            python,
            "--python-platform",
            "x86_64-manylinux_2_36",
        ],
        cwd=folder,
        check=True,
        env=uvtool.clean_environment(os.environ),
    )
    record = cell_record(f"bookworm-py{python}-torch2.9.1-cpu-small")
    record["cell"].update(id=cell, device="cpu", gpu_arch=[])
    record["lock_sha256"] = sha256_file(folder / "requirements.txt")
    (folder / "cell.json").write_text(json.dumps(record))
    return cell_lock.read_lock(root, cell)


def environment(
    *,
    python: str = "3.11.7",
    distribution: str | None = "debian 12 (bookworm)",
    torch: str = "2.9.1",
    cuda: str | None = "12.8",
    torchcodec: str | None = None,
    ffmpeg: str | None = None,
    versions: dict[str, str | None] | None = None,
    suite_sha256: str | None = None,
    gpu_arch: dict[str, Any] | None = None,
    compute_capability: str | None = None,
) -> schema.Environment:
    """An Environment as the suite would measure it (the current suite's hashes unless told)."""
    made = probe.provenance()
    return schema.Environment(
        schema=schema.SCHEMA,
        versions=versions
        or {
            "python": python,
            "torch": torch,
            "torchaudio": torch,
            "torchcodec": torchcodec,
            "TTS": "0.22.0",
            "demucs": "4.0.1",
        },
        host=schema.Host(
            os="Linux-6.1-x86_64",
            machine="x86_64",
            cpu="EPYC",
            distribution=distribution,
            gpu="NVIDIA test GPU" if compute_capability else None,
            compute_capability=compute_capability,
        ),
        facts=schema.Facts(
            python=python,
            libpython=True,
            torch=f"{torch}+cu128" if cuda else torch,
            cuda=cuda,
            torchcodec=torchcodec,
            ffmpeg=ffmpeg,
            libavutil=str(int(ffmpeg) + 52) if ffmpeg else None,
            gpu_arch=gpu_arch or {},
        ),
        provenance=schema.Provenance(
            suite_sha256=suite_sha256 or made.suite_sha256, compat_sha256=made.compat_sha256
        ),
    )


LOCK = "ab12cd34ef56" + "0" * 52
CELL_ID = re.compile(
    r"^(?P<os>.+?)-py(?P<python>3\.\d+)-torch(?P<torch>\d+\.\d+\.\d+)"
    r"-(?P<accelerator>[a-z0-9._]+)-(?P<stack>.+)$"
)


def cell_record(
    cell: str,
    status: str = "locked",
    reason: str | None = None,
    *,
    ffmpeg: bool = False,
    torchcodec: str | None = None,
) -> dict:
    """A valid cell.json for a cell id (a Debian bookworm cell; the accelerator names its
    variant), locked with LOCK unless another status is given."""
    axes = CELL_ID.match(cell)
    assert axes, cell
    arch = ["sm_80", "sm_90", "sm_120"] if axes["accelerator"] == "cu128" else ["sm_80", "sm_90"]
    locked = status == "locked"
    return {
        "schema": 1,
        "cell": {
            **axes.groupdict(),
            "id": cell,
            "family": "linux",
            "platform": "x86_64-manylinux_2_36",
            "base": "debian:bookworm-slim",
            "runner": "ubuntu-24.04",
            "torchaudio": axes["torch"],
            "torchcodec": torchcodec,
            "ffmpeg": ffmpeg,
            "ffmpeg_major": "5" if ffmpeg else None,
            "ffmpeg_packages": ["libavutil57", "libavcodec59"] if ffmpeg else [],
            "device": "cuda",
            "variant": axes["accelerator"],
            "gpu_arch": arch,
            "packages": [],
            "buildable": True,
            "reason": None,
        },
        "status": status,
        "reason": reason,
        "lock": "requirements.txt" if locked else None,
        "lock_sha256": LOCK if locked else None,
        "input_sha256": "0" * 64,
        "inputs": {"index": None},
    }


def record_model(cell: str, *args: Any, **kwargs: Any) -> CellRecord:
    """cell_record(cell, ...) as the lock stage's reader returns it."""
    return CellRecord.model_validate(cell_record(cell, *args, **kwargs))


def write_cell_json(envs: Path, cell: str, *args: Any, **kwargs: Any) -> None:
    (envs / cell).mkdir(parents=True, exist_ok=True)
    (envs / cell / "cell.json").write_text(json.dumps(cell_record(cell, *args, **kwargs)))


WHEEL_SASS = {
    "cu124": ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"],
    "cu128": ["sm_70", "sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"],
}
"""What torch's PyPI wheels of these CUDA lines carry (their _cuda_getArchFlags())."""


def gpu_code(*libraries: tuple[str, list[list[str]]]) -> dict[str, Any]:
    """A fatbin measurement as the suite writes it (fatbin.summarize per library, the first
    one primary): each library by its path in the wheel and its containers' SASS targets."""

    def container(targets: list[str]) -> fatbin.Container:
        entries = []
        for target in targets:
            number = target.removeprefix("sm_").rstrip("af")
            variant = target[len("sm_") + len(number) :]
            entries.append(fatbin.Entry("sass", int(number), variant, "1.0", 0, 0, 0, 0))
        return fatbin.Container(0, tuple(entries))

    files = []
    for path, containers in libraries:
        section = fatbin.Section(fatbin.RUNNABLE_SECTION, 0, 0, "section")
        section.containers = [container(c) for c in containers]
        files.append(fatbin.summarize(path, 0, [section]))
    sass = sorted({t for f in files for t in f["sass"]}, key=lambda t: int(t[3:].rstrip("af")))
    return {"files": files, "primary": files[0]["path"], "sass": sass, "ptx": [],
            "predictions": files[0]["predictions"]}  # fmt: skip


def wheel_gpu_code(variant: str) -> dict[str, Any]:
    """A fatbin measurement as the suite writes it, for a wheel whose libtorch_cuda.so carries
    WHEEL_SASS[variant] in every container."""
    sass = WHEEL_SASS.get(variant)
    if sass is None:
        return {}
    return gpu_code(("torch/lib/libtorch_cuda.so", [sass]))


def run_result(
    cell: str,
    raw: dict[str, str],
    compat: dict[str, str] | None = None,
    *,
    run: str = "20261125T160000Z",
    kind: str = "native",
    errors: dict[str, str] | None = None,
    **measured: Any,
) -> run_record.RunResult:
    """A run of `cell` measured in the environment its cell_record declares, unless
    `measured` says otherwise (environment()'s keywords)."""
    axes = CELL_ID.match(cell)
    assert axes, cell

    def checks(statuses: dict[str, str]) -> list[schema.CheckOutcome]:
        return [
            schema.CheckOutcome(
                check=name,
                status=status,
                duration_s=1.0,
                first_error=(errors or {}).get(name, "boom") if status in schema.FAILED else None,
                log=f"logs/{run}/raw/{name}.log",
            )
            for name, status in sorted(statuses.items())
        ]

    started = datetime.strptime(run, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    image = kind == "image"
    cuda = declared.cuda_of_variant(axes["accelerator"])
    measured.setdefault("gpu_arch", wheel_gpu_code(axes["accelerator"]))
    return run_record.RunResult(
        cell=cell,
        run=run,
        started=started,
        finished=started + timedelta(minutes=2),
        where=run_record.Where(
            kind=kind,
            image=f"audiomatrix/cell:{cell}-0123456789ab" if image else None,
            image_digest="sha256:" + "9" * 64 if image else None,
        ),
        lock_sha256=LOCK,
        environment=environment(
            **{"python": f"{axes['python']}.7", "torch": axes["torch"], "cuda": cuda, **measured}
        ),
        modes={"raw": checks(raw), "compat": checks(compat or raw)},
    )


class TrackedContainer:
    """One test's container, in the spirit of jupyter/docker-stacks' TrackedContainer: run from
    an image with the smoke containers' options, its output kept, and removed with its anonymous
    volumes when the `with` block ends, whether the test passed or not."""

    def __init__(self, api: docker.DockerClient, image: str, out: Path, **options: Any) -> None:
        self.api = api
        self.image = image
        self.options = {**container_options(out), **options}
        self.container: Any | None = None

    def __enter__(self) -> TrackedContainer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def run(self, command: Sequence[str], timeout_s: float = 300) -> tuple[int, str]:
        """Run `command` to its end in a new container: (exit code, stdout and stderr)."""
        self.remove()
        self.container = self.api.containers.run(
            self.image, list(command), detach=True, **self.options
        )
        status = self.container.wait(timeout=timeout_s)
        return status["StatusCode"], self.container.logs().decode(errors="replace")

    def remove(self) -> None:
        if self.container is not None:
            with contextlib.suppress(docker.errors.NotFound):
                self.container.remove(force=True, v=True)
            self.container = None


class TrackedImages:
    """The images a test session builds, removed when it ends: each cell image it built that
    was not there before, and the untagged step images its builds left behind (the split
    stage's last step, a failed build's steps). An image that was there before is never
    touched, nor one another build made meanwhile; the base and uv images stay, since every
    build needs them (the next run would bootstrap the base again). Listings are single
    engine calls, so an image that another build on a shared engine removes meanwhile does
    not break them."""

    def __init__(self, api: docker.DockerClient) -> None:
        self.api = api
        self.before = set(api.api.images(all=True, quiet=True))
        self.tags: list[str] = []
        self.steps: list[str] = []

    def build(self, cell: cell_lock.CellLock, **options: Any) -> BuildResult:
        """imagebuild.build, quiet, recording the tag and the step images it makes."""
        result = build(cell, echo=lambda _: None, progress=self._step, **options)
        if result.tag:
            self.tags.append(result.tag)
        return result

    def _step(self, line: str) -> None:
        found = STEP_IMAGE.fullmatch(line)
        if found:
            self.steps.append(found.group(1))

    def remove(self) -> list[str]:
        """Remove the cell images, then the untagged step images the builds made, newest first.
        The ids of the dangling ones still here after: none, since nothing depends on them."""
        for ref in [*reversed(self.tags), *reversed(self.steps)]:
            found = find_image(self.api, ref)
            made = found is not None and found.id not in self.before
            if made and (ref in self.tags or not found.tags):  # type: ignore[union-attr]
                with contextlib.suppress(docker.errors.APIError):
                    self.api.images.remove(ref)
        dangling = self.api.api.images(quiet=True, filters={"dangling": True})
        return [i for i in dangling if i not in self.before and i[7:19] in self.steps]

    def new(self) -> list[str]:
        """Images here now that were not when the session began, less the base and uv images:
        what another build on this engine made meanwhile, or what the cleanup missed."""
        kept = (f"{BASE_REPO}:", f"{UV_REPO}:")
        listed = [(i["Id"], i.get("RepoTags") or []) for i in self.api.api.images(all=True)]
        return [
            ", ".join(tags) or image
            for image, tags in listed
            if image not in self.before and not any(t.startswith(kept) for t in tags)
        ]


INTERRUPTIONS = [
    pytest.param(lambda pid: os.killpg(pid, signal.SIGINT), id="ctrl-c-to-the-group"),
    pytest.param(lambda pid: os.kill(pid, signal.SIGTERM), id="sigterm-to-audiomatrix"),
]
"""How a run is interrupted: Ctrl-C (SIGINT to its process group) and SIGTERM to it alone."""


def this_host() -> tuple[str | None, str | None]:
    """What this machine gives a native run by itself: its distribution as a declaration
    names it (`debian bookworm`), and the FFmpeg major its dynamic linker finds (None: none)."""
    libavutil = probe.linked_libavutil()
    ffmpeg = str(probe.ffmpeg_major(int(libavutil))) if libavutil else None
    return declared.comparable_distribution(probe.distribution()), ffmpeg


def declare_this_host(cell: cell_lock.CellLock) -> cell_lock.CellLock:
    """The cell declaring this machine's distribution and FFmpeg (or none), so that a native
    run of it stands for it here, whatever the host has installed."""
    distribution, ffmpeg = this_host()
    name, _, codename = (distribution or "").partition(" ")
    record = json.loads((cell.folder / "cell.json").read_text())
    record["cell"].update(base=f"{name}:{codename}", ffmpeg=bool(ffmpeg), ffmpeg_major=ffmpeg)
    (cell.folder / "cell.json").write_text(json.dumps(record))
    return cell_lock.read_lock(cell.folder.parent, cell.cell)


def add_smoke_requirement(matrix: Path, package: str) -> None:
    """Add a smoke requirement to a matrix file: its cells' locks are out of date, so uv
    resolves them again."""
    text = matrix.read_text()
    matrix.write_text(text.replace("smoke_requirements: [", f"smoke_requirements: [{package}, ", 1))


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file under a folder and its bytes, hidden ones (scratch, temp files) included."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def children(pid: int) -> dict[int, str]:
    """The live child processes of `pid` and their command lines, from /proc."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            state, parent = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[:2]
            command = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if int(parent) == pid and state != "Z":
            found[int(entry.name)] = command
    return found


def wait_for_child(pid: int, marker: str, timeout_s: float = 120) -> int:
    """The pid of the first child of `pid` whose command line holds `marker`, as soon as it
    runs (polled every few milliseconds)."""
    found: list[int] = []

    def started() -> bool:
        found.extend(c for c, command in children(pid).items() if marker in command)
        return bool(found)

    wait_until(started, f"a child of pid {pid} running `{marker}`", timeout_s, every_s=0.005)
    return found[0]


def audiomatrix(cwd: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """The real entry point (`python -m audiomatrix`) in its own process group, as a shell
    runs a foreground job, with `env` added to this environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "audiomatrix", *args], cwd=cwd, text=True,
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_registry(folder: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    """Debian's docker-registry on a free loopback port, storing under `folder`: the process,
    its host:port and its log (every request is logged). AssertionError when it is missing
    or does not start."""
    binary = shutil.which("docker-registry")
    assert binary, "docker-registry is missing: `make system` installs Debian's package"
    port = free_port()
    config = folder / "config.yml"
    config.write_text(
        f"version: 0.1\nlog:\n  level: info\n"
        f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = folder / "registry.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([binary, "serve", str(config)], stdout=sink, stderr=sink)
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code == 200:
                return proc, f"127.0.0.1:{port}", log
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"docker-registry did not start: {log.read_text()[-500:]}")
        time.sleep(0.2)


def wait_until(
    condition: Callable[[], object], what: str, timeout_s: float = 600, every_s: float = 0.05
) -> None:
    """Poll `condition` until it holds; AssertionError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every_s)


def cuobjdump_targets(cuobjdump: str, library: str) -> tuple[Counter[str], Counter[str]]:
    """How many cubins (SASS) and PTX files NVIDIA's cuobjdump lists in a library per target,
    named as the fatbin reader names them: cuobjdump calls a family cubin sm_100 and PTX
    sm_90 (compute_90 here)."""
    found = []
    for option, suffix in (("--list-elf", "cubin"), ("--list-ptx", "ptx")):
        listing = subprocess.run([cuobjdump, option, library], capture_output=True, text=True)
        found.append(Counter(re.findall(rf"\.(sm_\d+[af]?)\.{suffix}$", listing.stdout, re.M)))
    sass, ptx = found
    return sass, Counter({name.replace("sm_", "compute_"): n for name, n in ptx.items()})


def cuobjdump_lists(cuobjdump: str, library: str) -> tuple[list[str], list[str]]:
    """cuobjdump's SASS and PTX targets of a library (cuobjdump_targets), sorted."""
    sass, ptx = cuobjdump_targets(cuobjdump, library)
    return sorted(sass), sorted(ptx)
