"""A cell's image from docker/Dockerfile, tagged by the hash of everything it is made of (base,
uv, the build context: lock parts, interpreter, suite; FFmpeg's packages) so an unchanged cell
is never rebuilt.

Packages come from the loopback wheelhouse (wheels) and the machine's Debian package cache
(FFmpeg), installed once, in the image's own stage, in layers ordered by how widely they are
shared (imageplan, layers): identical parts make identical layers, which the images share.
A conda cell's image comes from docker/conda.Dockerfile instead: micromamba installs the
explicit list rendered from its lock, the environment's pip the lock's pip part, both from the
lock's own URLs (the channel and PyPI); the conda environment brings its own Python.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import docker
import docker.errors

from audiomatrix.core.errors import CellError
from audiomatrix.core.files import cache_dir, kept_answer, sha256_bytes
from audiomatrix.image import interpreters
from audiomatrix.image import plan as imageplan
from audiomatrix.image.base import BaseUnavailable, ensure_base
from audiomatrix.image.engine import client, engine_call, find_image
from audiomatrix.image.plan import Plan
from audiomatrix.image.wheelhouse import fill_wheelhouse, serve
from audiomatrix.lock import uvtool
from audiomatrix.lock.cell_lock import CellLock
from audiomatrix.lock.installers import conda, installer
from audiomatrix.lock.installers.steps import ImageSteps, repository_path
from audiomatrix.suite import probe

REPO = Path(__file__).resolve().parents[3]
PACKAGE_FILES = ("src/audiomatrix/__init__.py", "src/audiomatrix/compat.py")
CA_PATH = "_audiomatrix/proxy-ca.pem"
"""Where the wheelhouse server offers a build's extra CA bundle (the Dockerfile's CA_URL): a
fixed address, since build args are part of the layer cache key."""
CELL_REPO = "audiomatrix/cell"
UV_REPO = "audiomatrix/uv"
MICROMAMBA_REPO = "audiomatrix/micromamba"


@dataclass(frozen=True)
class BuildResult:
    cell: str
    status: str
    """built, unchanged, failed, base unavailable, python unavailable in base."""
    tag: str | None = None
    detail: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("built", "unchanged")


@dataclass(frozen=True)
class Tool:
    """A tool's one-file image: its tag (a build arg) and its id (part of the content tag)."""

    tag: str
    id: str


def _one_file_image(binary: str, arcname: str, repository: str, version: str) -> Tool:
    """A tool's binary as an image of that one file, at the path its official image has it
    (no registry needed)."""
    api = client()
    tag = f"{repository}:{version}"
    found = find_image(api, tag)
    if found:
        return Tool(tag, found.id)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "tool.tar"
        with tarfile.open(archive, "w") as out:
            out.add(binary, arcname=arcname, filter=_normalise)
        api.api.import_image_from_file(str(archive), repository=repository, tag=version)
    return Tool(tag, api.images.get(tag).id)


def ensure_uv_image() -> Tool:
    """The uv this project locks with, for the Dockerfile's UV_IMAGE."""
    return _one_file_image(uvtool.uv_binary(), "uv", UV_REPO, uvtool.uv_version())


def ensure_micromamba_image() -> Tool | None:
    """The micromamba on PATH (the one conda-lock solves with in CI) for conda.Dockerfile's
    MICROMAMBA_IMAGE; None where there is none."""
    binary = conda.micromamba()
    if binary is None:
        return None

    def ask() -> str:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
        return done.stdout.strip()

    version = str(kept_answer(Path(binary), "version", ask))
    return _one_file_image(binary, "bin/micromamba", MICROMAMBA_REPO, version)


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


TOOL_IMAGES: dict[str, Callable[[], Tool | None]] = {
    "uv": ensure_uv_image,
    "micromamba": ensure_micromamba_image,
}
"""The one-file image of each tool an installer's image copies (ImageSteps.tool); None where
this machine has no such tool."""


def image_steps(cell: CellLock) -> ImageSteps:
    return installer(cell.installer).IMAGE


def dockerfile(cell: CellLock) -> str:
    return image_steps(cell).dockerfile


def context_path(cell: CellLock, path: Path) -> str:
    """A lock file's path in the context: environments/<cell>/<name>, as in the repository."""
    return repository_path(cell.cell, path.name)


def context_files(cell: CellLock) -> dict[str, Path]:
    """The repository's files in the cell's build context, by path in the context (it mirrors
    the repository): the lock files too where the installer's image reads them as they are (a
    conda cell's; a uv cell's lock comes as parts, see generated_files). Never a CA bundle: a
    build fetches that from the loopback server."""
    steps = image_steps(cell)
    files = {name: REPO / name for name in (steps.dockerfile, steps.install_script)}
    if not steps.prepared_by_host:
        files.update({context_path(cell, path): path for path in cell.lock_files})
    for name in PACKAGE_FILES:
        files[name] = REPO / name
    for path in probe.suite_files():
        files[str(path.relative_to(REPO))] = path
    return files


def generated_files(plan: Plan | None) -> dict[str, bytes]:
    """What the host prepared for a uv cell: its lock parts (a conda cell: nothing)."""
    if plan is None:
        return {}
    parts = plan.parts
    return {"parts/cuda.txt": parts.cuda.encode(), "parts/torch.txt": parts.torch.encode(),
            "parts/rest.txt": parts.rest.encode()}  # fmt: skip


def write_context(out: tarfile.TarFile, files: Mapping[str, Path], plan: Plan | None) -> None:
    """The build context: the repository's files, the generated parts and python/ (the copied
    interpreter's tree, or empty)."""
    for name, path in sorted(files.items()):
        out.add(path, arcname=name, filter=_normalise)
    for name, data in sorted(generated_files(plan).items()):
        info = _normalise(tarfile.TarInfo(name))
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
    if plan is None:
        return
    folder = _normalise(tarfile.TarInfo("python"))
    folder.type, folder.mode = tarfile.DIRTYPE, 0o755
    out.addfile(folder)
    if plan.python.archive is not None:
        with tarfile.open(plan.python.archive) as interpreter:
            for member in interpreter.getmembers():
                data = interpreter.extractfile(member) if member.isfile() else None
                member.name = f"python/{member.name}"
                out.addfile(member, data)


def _context_tar(files: Mapping[str, Path], plan: Plan | None) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        write_context(out, files, plan)
    buffer.seek(0)
    return buffer


def content_hash(cell: CellLock, base_id: str, tool_id: str, plan: Plan | None) -> str:
    """The hash an image is tagged by: everything it is made of, nothing about when. The tool
    is the image its installer's tool (uv, or a conda cell's micromamba) is copied from, keyed
    by the tool's name."""
    files = context_files(cell)
    archive = plan.python.archive if plan else None
    made_of = {
        "base": base_id,
        image_steps(cell).tool: tool_id,
        "python": cell.python,
        "interpreter": interpreters.manifest(archive) if archive else None,
        "debs": [p.name for p in plan.debs] if plan else [],
        "files": {
            name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in files.items()
        },
        "generated": {name: sha256_bytes(data) for name, data in generated_files(plan).items()},
    }
    return sha256_bytes(json.dumps(made_of, sort_keys=True).encode())


def cell_tag(cell: str, digest: str) -> str:
    return f"{CELL_REPO}:{cell}-{digest[:12]}"


def git_revision() -> str:
    proc = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty", "--abbrev=40"],
        capture_output=True, text=True,
    )  # fmt: skip
    return proc.stdout.strip() if proc.returncode == 0 else ""


@dataclass(frozen=True)
class Prepared:
    """A cell ready to build: what its image will be made of, and so its content tag."""

    cell: CellLock
    base: str
    tool: str
    """The image the installer's tool (uv, a conda cell's micromamba) is copied from."""
    plan: Plan | None
    """A uv cell's lock parts, interpreter and FFmpeg packages; None for a conda cell."""
    tag: str


def prepare(cell: CellLock, echo: Callable[[str], None] = print) -> Prepared | BuildResult:
    """The cell's base, uv image, plan and content tag, without building: enough to know
    whether a result for exactly this image exists. A BuildResult says why it cannot be."""
    started = time.monotonic()

    def refused(status: str, detail: str) -> BuildResult:
        return BuildResult(cell.cell, status, None, detail, round(time.monotonic() - started, 2))

    with engine_call(f"the build of {cell.cell}"):
        try:
            base, base_image = ensure_base(cell.record.cell.base, echo)
        except BaseUnavailable as exc:
            return refused("base unavailable", str(exc))
        steps, made = image_steps(cell), None
        if steps.prepared_by_host:
            try:
                made = imageplan.plan(cell, base, base_image, echo)
            except imageplan.PlanError as exc:
                return refused(exc.status, exc.detail)
        tool = TOOL_IMAGES[steps.tool]()
        if tool is None:
            missing = f"no {steps.tool} on PATH: a {cell.installer} cell's image installs its lock"
            return refused("failed", f"{missing} with it; install {steps.tool}")
        digest = content_hash(cell, base_image.id, tool.id, made)
    return Prepared(cell, base, tool.tag, made, cell_tag(cell.cell, digest))


def lock_args(cell: CellLock) -> dict[str, str]:
    """The build args that name the cell's lock files in the context (what conda.Dockerfile
    COPYs); none where the host prepared the image (a uv cell's lock comes as parts)."""
    return image_steps(cell).lock_build_args(cell.cell, (p.name for p in cell.lock_files))


def build_args(ready: Prepared) -> dict[str, str]:
    """The cell's build args, but for the loopback server's (WHEELS, CA_URL)."""
    cell, made = ready.cell, ready.plan
    own = {image_steps(cell).tool_arg: ready.tool}
    if made is None:
        own |= lock_args(cell)
    else:
        own |= {"PYTHON_SOURCE": made.python.source, "DEBS": " ".join(p.name for p in made.debs)}
    return {
        "BASE": ready.base,
        "PYTHON": cell.python,
        **own,
        "CELL": cell.cell,
        "LOCK_SHA256": cell.lock_sha256,
        "REVISION": git_revision(),
        "SOURCE": os.environ.get("AUDIOMATRIX_SOURCE_URL", ""),
        "CREATED": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def write_context_folder(ready: Prepared, folder: Path) -> Path:
    """The cell's build context as a folder, with build-args.json beside it: what `docker
    build` (or a bake target) needs, the packages aside. WHEELS must then name a server with
    the lock's files and, for FFmpeg, the Debian packages under debs/ (the layout of the
    wheelhouse `audiomatrix build` serves: DEBS names the files)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".context-") as tmp:
        staged = Path(tmp) / "context"
        staged.mkdir()
        archive = _context_tar(context_files(ready.cell), ready.plan)
        with tarfile.open(fileobj=archive) as context:
            context.extractall(staged, filter="data")
        (staged / "build-args.json").write_text(json.dumps(build_args(ready), indent=2) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staged, folder)
    return folder


def build(
    cell: CellLock,
    *,
    wheelhouse: Path | None = None,
    ca_bundle: Path | None = None,
    echo: Callable[[str], None] = print,
    progress: Callable[[str], None] = lambda _: None,
    force: bool = False,
    prepared: Prepared | None = None,
) -> BuildResult:
    """Build (or find) the image of one locked Linux cell. Every outcome is a BuildResult;
    only a vanished engine raises (EngineError), since then no other cell can build either.
    `ca_bundle` is served beside the wheelhouse and passed as CA_URL: each install step
    fetches it, uses it and deletes it, so no layer holds it. `force` rebuilds with the layer
    cache off (the benchmark's cold build). A conda cell needs micromamba on PATH and no
    wheelhouse: its packages come from the lock's own URLs."""
    started = time.monotonic()
    ready = prepared or prepare(cell, echo)
    if isinstance(ready, BuildResult):
        return ready

    def result(status: str, tag: str | None = None, detail: str = "") -> BuildResult:
        return BuildResult(cell.cell, status, tag, detail, round(time.monotonic() - started, 2))

    made, tag = ready.plan, ready.tag
    with engine_call(f"the build of {cell.cell}"):
        api = client()
        if find_image(api, tag) and not force:
            return result("unchanged", tag)
        if made is not None:
            try:
                names = fill_wheelhouse(cell, wheelhouse or cache_dir() / "wheelhouse", echo)
            except (CellError, OSError) as exc:
                return result("failed", detail=f"downloading the lock's files: {exc}")
            progress(f"{len(names)} files in the wheelhouse")
        args = build_args(ready)
        if ca_bundle and not ca_bundle.is_file():
            return result("failed", detail=f"the CA bundle {ca_bundle} is not a readable file")
        context = _context_tar(context_files(cell), made)
        extra = {f"debs/{p.name}": p for p in made.debs} if made else {}
        extra |= {CA_PATH: ca_bundle} if ca_bundle else {}
        try:
            with serve(wheelhouse or cache_dir() / "wheelhouse", files=extra) as url:
                if made is not None:
                    args["WHEELS"] = url
                if ca_bundle:
                    args["CA_URL"] = url + CA_PATH
                error = _run_build(api, context, tag, args, progress, dockerfile(cell), force)
        except CellError as exc:
            error = str(exc)
        if error:
            return result("failed", detail=error)
        remove_stale(api, cell.cell, keep=tag)
        return result("built", tag)


def remove_stale(api: docker.DockerClient, cell: str, keep: str) -> list[str]:
    """Untag the cell's older content tags (what it was made of changed): their unique
    layers go, the layers they share with the new image stay."""
    pattern = re.compile(rf"^{re.escape(CELL_REPO)}:{re.escape(cell)}-[0-9a-f]{{12}}$")
    removed = []
    for old in api.images.list(name=CELL_REPO):
        for tag in old.tags:
            if tag != keep and pattern.match(tag):
                with contextlib.suppress(docker.errors.APIError):
                    api.images.remove(tag)
                    removed.append(tag)
    return removed


def _run_build(
    api: docker.DockerClient,
    context: io.BytesIO,
    tag: str,
    args: Mapping[str, str],
    progress: Callable[[str], None],
    file: str,
    nocache: bool = False,
) -> str | None:
    """Run the classic builder; None on success, else one line: the failing step, its exit
    code and the last line it printed."""
    step, last = "", ""
    stream = api.api.build(
        fileobj=context, custom_context=True, dockerfile=file, tag=tag,
        buildargs=dict(args), network_mode="host", rm=True, forcerm=True, decode=True,
        nocache=nocache,
    )  # fmt: skip
    for chunk in stream:
        if "error" in chunk:
            message = str(chunk["error"]).strip().splitlines()[0]
            code = re.search(r"returned a non-zero code: (\d+)", message)
            if code:
                message = f"exit code {code.group(1)}"
            where = re.sub(r"\s+", " ", step)[:120]
            return f"{where}: {message}" + (f": {last[:300]}" if last else "")
        for line in str(chunk.get("stream", "")).splitlines():
            line = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
            if line.startswith("Step "):
                step, last = line, ""
            elif line and not line.startswith(("--->", "Removing intermediate", "Running in")):
                last = line
            if line:
                progress(line)
    return None
