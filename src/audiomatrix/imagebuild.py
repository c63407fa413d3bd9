"""A cell's image from docker/Dockerfile, tagged by the hash of everything it is made of (base,
uv, the build context: lock parts, interpreter, suite; FFmpeg's packages) so an unchanged cell
is never rebuilt.

Packages come from the loopback wheelhouse (wheels) and the machine's Debian package cache
(FFmpeg), installed once, in the image's own stage, in layers ordered by how widely they are
shared (imageplan, layers): identical parts make identical layers, which the images share.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
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

from audiomatrix import imageplan, interpreters, lock
from audiomatrix.base import BaseUnavailable, ensure_base
from audiomatrix.engine import client, engine_call, find_image
from audiomatrix.files import cache_dir, sha256_bytes
from audiomatrix.imageplan import Plan
from audiomatrix.smoke import CellLock, SmokeError
from audiomatrix.suite import probe
from audiomatrix.wheelhouse import fill_wheelhouse, serve

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = "docker/Dockerfile"
INSTALLER = "docker/install.sh"
PACKAGE_FILES = ("src/audiomatrix/__init__.py", "src/audiomatrix/compat.py")
CA_PATH = "_audiomatrix/proxy-ca.pem"
"""Where the wheelhouse server offers a build's extra CA bundle (the Dockerfile's CA_URL): a
fixed address, since build args are part of the layer cache key."""
CELL_REPO = "audiomatrix/cell"
UV_REPO = "audiomatrix/uv"


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


def ensure_uv_image() -> str:
    """The uv this project locks with, as a one-file image for the Dockerfile's UV_IMAGE
    (no registry needed; the official uv image has the same layout)."""
    api = client()
    version = lock.uv_version()
    tag = f"{UV_REPO}:{version}"
    if find_image(api, tag):
        return tag
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "uv.tar"
        with tarfile.open(archive, "w") as out:
            out.add(lock.uv_binary(), arcname="uv", filter=_normalise)
        api.api.import_image_from_file(str(archive), repository=UV_REPO, tag=version)
    return tag


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def context_files(cell: CellLock) -> dict[str, Path]:
    """The repository's files in every build context, by path in the context (it mirrors the
    repository). Never a CA bundle: a build fetches that from the loopback server."""
    files = {DOCKERFILE: REPO / DOCKERFILE, INSTALLER: REPO / INSTALLER}
    for name in PACKAGE_FILES:
        files[name] = REPO / name
    for path in probe.suite_files():
        files[str(path.relative_to(REPO))] = path
    return files


def generated_files(plan: Plan) -> dict[str, bytes]:
    """What the host prepared for this cell: its lock parts."""
    parts = plan.parts
    return {"parts/cuda.txt": parts.cuda.encode(), "parts/torch.txt": parts.torch.encode(),
            "parts/rest.txt": parts.rest.encode()}  # fmt: skip


def write_context(out: tarfile.TarFile, files: Mapping[str, Path], plan: Plan) -> None:
    """The build context: the repository's files, the generated parts and python/ (the copied
    interpreter's tree, or empty)."""
    for name, path in sorted(files.items()):
        out.add(path, arcname=name, filter=_normalise)
    for name, data in sorted(generated_files(plan).items()):
        info = _normalise(tarfile.TarInfo(name))
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
    folder = _normalise(tarfile.TarInfo("python"))
    folder.type, folder.mode = tarfile.DIRTYPE, 0o755
    out.addfile(folder)
    if plan.python.archive is not None:
        with tarfile.open(plan.python.archive) as interpreter:
            for member in interpreter.getmembers():
                data = interpreter.extractfile(member) if member.isfile() else None
                member.name = f"python/{member.name}"
                out.addfile(member, data)


def _context_tar(files: Mapping[str, Path], plan: Plan) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        write_context(out, files, plan)
    buffer.seek(0)
    return buffer


def content_hash(cell: CellLock, base_id: str, uv_id: str, plan: Plan) -> str:
    """The hash an image is tagged by: everything it is made of, nothing about when."""
    files = context_files(cell)
    made_of = {
        "base": base_id,
        "uv": uv_id,
        "python": cell.python,
        "interpreter": interpreters.manifest(plan.python.archive) if plan.python.archive else None,
        "debs": [p.name for p in plan.debs],
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
    uv_image: str
    plan: Plan
    tag: str


def prepare(cell: CellLock, echo: Callable[[str], None] = print) -> Prepared | BuildResult:
    """The cell's base, uv image, plan and content tag, without building: enough to know
    whether a result for exactly this image exists. A BuildResult says why it cannot be."""
    started = time.monotonic()

    def refused(status: str, detail: str) -> BuildResult:
        return BuildResult(cell.cell, status, None, detail, round(time.monotonic() - started, 2))

    with engine_call(f"the build of {cell.cell}"):
        try:
            base = ensure_base(cell.record["cell"]["base"], echo)
        except BaseUnavailable as exc:
            return refused("base unavailable", str(exc))
        api = client()
        base_image = api.images.get(base)
        try:
            made = imageplan.plan(cell, base, base_image, echo)
        except imageplan.PlanError as exc:
            return refused(exc.status, exc.detail)
        uv_image = ensure_uv_image()
        digest = content_hash(cell, base_image.id, api.images.get(uv_image).id, made)
    return Prepared(cell, base, uv_image, made, cell_tag(cell.cell, digest))


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
    cache off (the benchmark's cold build)."""
    started = time.monotonic()
    ready = prepared or prepare(cell, echo)
    if isinstance(ready, BuildResult):
        return ready

    def result(status: str, tag: str | None = None, detail: str = "") -> BuildResult:
        return BuildResult(cell.cell, status, tag, detail, round(time.monotonic() - started, 2))

    base, uv_image, made, tag = ready.base, ready.uv_image, ready.plan, ready.tag
    with engine_call(f"the build of {cell.cell}"):
        api = client()
        if find_image(api, tag) and not force:
            return result("unchanged", tag)
        try:
            names = fill_wheelhouse(cell, wheelhouse or cache_dir() / "wheelhouse", echo)
        except (SmokeError, OSError) as exc:
            return result("failed", detail=f"downloading the lock's files: {exc}")
        progress(f"{len(names)} files in the wheelhouse")
        args = {
            "BASE": base,
            "UV_IMAGE": uv_image,
            "PYTHON": cell.python,
            "PYTHON_SOURCE": made.python.source,
            "DEBS": " ".join(p.name for p in made.debs),
            "CELL": cell.cell,
            "LOCK_SHA256": cell.lock_sha256,
            "REVISION": git_revision(),
            "SOURCE": os.environ.get("AUDIOMATRIX_SOURCE_URL", ""),
            "CREATED": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if ca_bundle and not ca_bundle.is_file():
            return result("failed", detail=f"the CA bundle {ca_bundle} is not a readable file")
        context = _context_tar(context_files(cell), made)
        extra = {f"debs/{p.name}": p for p in made.debs}
        extra |= {CA_PATH: ca_bundle} if ca_bundle else {}
        try:
            with serve(wheelhouse or cache_dir() / "wheelhouse", files=extra) as url:
                args["WHEELS"] = url
                if ca_bundle:
                    args["CA_URL"] = url + CA_PATH
                error = _run_build(api, context, tag, args, progress, nocache=force)
        except SmokeError as exc:
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
    nocache: bool = False,
) -> str | None:
    """Run the classic builder; None on success, else one line: the failing step, its exit
    code and the last line it printed."""
    step, last = "", ""
    stream = api.api.build(
        fileobj=context, custom_context=True, dockerfile=DOCKERFILE, tag=tag,
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
