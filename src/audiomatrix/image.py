"""environments/<cell>/ -> a Docker image per Linux cell, and the smoke suite run inside it.

Four steps, each idempotent: an engine that answers (started here as root when none runs);
a base image (pulled, else built from the distribution's packages with debootstrap and
imported, the way official Debian images are made); the cell image from docker/Dockerfile,
tagged by the hash of everything it is made of so an unchanged cell is never rebuilt; and the
smoke run in a container with no network, as a non-root user, on a read-only root filesystem.

Downloads happen once per machine, not once per image: the classic builder has no cache
mounts, so the host fills one wheelhouse with exactly the files each lock names (hash-checked),
serves it on loopback, and builds use the host network to install from it with `--no-index`.
The packages are installed once, in the image's own stage, torch first: identical torch lines
in two locks make an identical torch layer, which the images share.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import http.server
import io
import json
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from audiomatrix import lock, results
from audiomatrix.files import cache_dir, sha256_bytes
from audiomatrix.smoke import CellLock, SmokeError, collect
from audiomatrix.suite import probe, schema
from audiomatrix.suite.schema import MODES

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = "docker/Dockerfile"
INSTALLER = "docker/install.sh"
PACKAGE_FILES = ("src/audiomatrix/__init__.py", "src/audiomatrix/compat.py")
CA_PATH = "_audiomatrix/proxy-ca.pem"
"""Where the wheelhouse server offers a build's extra CA bundle (the Dockerfile's CA_URL): a
fixed address, since build args are part of the layer cache key."""
BASE_REPO = "audiomatrix/base"
CELL_REPO = "audiomatrix/cell"
UV_REPO = "audiomatrix/uv"
SMOKE_USER = "smoke"
DEFAULT_PORT = 47391
"""The wheelhouse's loopback port. Build args are part of the layer cache key, so the
find-links address must not change between runs (AUDIOMATRIX_WHEELHOUSE_PORT overrides)."""
LABEL = "org.audiomatrix"
DOCKERD_PIDFILE = Path("/var/run/docker.pid")
STOPPED_EXIT = 143
"""A smoke container's exit code after SIGTERM (its init passes the signal on): the engine
shutting down or `docker stop`, never the runner's own doing (the OOM killer gives 137)."""
TORCH_LINE = re.compile(r"^(torch|triton|pytorch-triton|nvidia-[a-z0-9-]+)==")
Echo = Callable[[str], None]


class EngineError(Exception):
    """No Docker Engine answers, or it went away: one line saying what to do."""


class BaseUnavailable(Exception):
    """The cell's base image can be neither pulled nor bootstrapped here, with why."""


# --------------------------------------------------------------------------- engine


def client(timeout: int = 600) -> docker.DockerClient:
    """The engine from DOCKER_HOST or the default socket, API version negotiated."""
    try:
        return docker.from_env(version="auto", timeout=timeout)
    except docker.errors.DockerException as exc:
        raise EngineError(_engine_hint(exc)) from None


def _engine_hint(exc: BaseException) -> str:
    where = os.environ.get("DOCKER_HOST", "the default socket")
    first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return (
        f"no Docker Engine answers at {where} ({first}): run `audiomatrix engine` as root, "
        "or start Docker (`sudo systemctl start docker`) or set DOCKER_HOST"
    )


def engine_version() -> str | None:
    try:
        return str(client(timeout=10).version()["Version"])
    except (EngineError, docker.errors.DockerException, requests.exceptions.RequestException):
        return None


def ensure_engine(wait_s: float = 60) -> str:
    """A Docker Engine that answers, and its version. As root with none running and no
    DOCKER_HOST, start dockerd in the background (once, even if called concurrently)."""
    version = engine_version()
    if version:
        return version
    if os.environ.get("DOCKER_HOST"):
        raise EngineError(f"no Docker Engine answers at DOCKER_HOST={os.environ['DOCKER_HOST']}")
    if os.geteuid() != 0:
        raise EngineError(
            "no Docker Engine answers: start it (`sudo systemctl start docker`, or "
            "`sudo audiomatrix engine`), or set DOCKER_HOST"
        )
    dockerd = shutil.which("dockerd")
    if not dockerd:
        raise EngineError(
            "no Docker Engine answers and dockerd is not installed: "
            "`apt-get install docker.io` (as root), then `audiomatrix engine`"
        )
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "dockerd.log"
    with (folder / "dockerd.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        version = engine_version()
        if version:
            return version
        deadline = time.monotonic() + wait_s
        while stopping_dockerd() and time.monotonic() < deadline:
            time.sleep(0.2)
        with log.open("ab") as sink:
            proc = subprocess.Popen(
                [dockerd], stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            version = engine_version()
            if version:
                return version
            if proc.poll() is not None:
                break
            time.sleep(0.5)
    tail = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:]
    raise EngineError(f"dockerd did not start (see {log}): {tail[0][:300] if tail else '?'}")


def stopping_dockerd(pidfile: Path = DOCKERD_PIDFILE) -> int | None:
    """The pid of a dockerd that no longer answers but still runs (shutting down): a new
    one refuses to start while its pid file names a live process."""
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def find_image(api: docker.DockerClient, ref: str) -> Any | None:
    try:
        return api.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


# --------------------------------------------------------------------------- base images


@dataclass(frozen=True)
class BaseSpec:
    """A base image as debootstrap makes it: distribution, suite and the packages added."""

    distro: str
    suite: str
    variant: str = "minbase"
    include: tuple[str, ...] = ("python3",)

    @property
    def tag(self) -> str:
        digest = sha256_bytes(
            json.dumps([self.distro, self.suite, self.variant, self.include]).encode()
        )
        return f"{BASE_REPO}:{self.suite}-{digest[:12]}"


def base_spec(base: str) -> BaseSpec:
    """`debian:bookworm-slim` -> debian bookworm (the suite is the tag's first word)."""
    name, _, tag = base.partition(":")
    return BaseSpec(distro=name.rsplit("/", 1)[-1], suite=re.split(r"[-.]", tag or "latest")[0])


def apt_mirror(suite: str, sources: Path = Path("/etc/apt")) -> str | None:
    """The first archive this machine's apt sources use for `suite` (deb822 or one-line)."""
    files = [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*"))]
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.MULTILINE))
                if (
                    "deb" in fields.get("Types", "").split()
                    and suite in fields.get("Suites", "").split()
                ):
                    return fields["URIs"].split()[0]
        for line in text.splitlines():
            words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                return words[1]
    return None


def image_python(image: Any) -> str | None:
    """The base image's python3 as `3.11`, recorded as a label when it was bootstrapped."""
    return (image.labels or {}).get(f"{LABEL}.python")


def ensure_base(base: str, echo: Echo = print) -> str:
    """The tag of a local base image for `base` (e.g. debian:bookworm-slim): an existing
    bootstrap, else a pull, else a debootstrap build. Raises BaseUnavailable with why."""
    if base in _BASE_FAILURES:
        raise BaseUnavailable(_BASE_FAILURES[base])
    api = client()
    spec = base_spec(base)
    for ref in (spec.tag, base):
        if find_image(api, ref):
            return ref
    try:
        api.images.pull(base)
        return base
    except docker.errors.APIError as exc:
        pulled = f"pull failed: {first_line(exc)}"
    echo(f"{base}: {pulled}; bootstrapping from packages")
    try:
        return bootstrap_base(spec, echo)
    except BaseUnavailable as exc:
        _BASE_FAILURES[base] = f"{base}: {pulled}; {exc}"
        raise BaseUnavailable(_BASE_FAILURES[base]) from None


_BASE_FAILURES: dict[str, str] = {}
"""Bases that failed in this process, so N cells on one base try once."""


def first_line(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return str(text).strip().splitlines()[0][:300] if str(text).strip() else type(exc).__name__


def bootstrap_base(spec: BaseSpec, echo: Echo = print) -> str:
    """debootstrap the suite into a folder, tar it and `docker import` it as spec.tag."""
    debootstrap = shutil.which("debootstrap")
    if not debootstrap:
        raise BaseUnavailable("debootstrap is not installed (`apt-get install debootstrap`)")
    scripts = Path(debootstrap).resolve().parent.parent / "share" / "debootstrap" / "scripts"
    if scripts.is_dir() and not (scripts / spec.suite).exists():
        raise BaseUnavailable(f"this debootstrap has no script for {spec.suite}")
    if os.geteuid() != 0:
        raise BaseUnavailable("debootstrap needs root")
    mirror = os.environ.get(f"AUDIOMATRIX_MIRROR_{spec.suite.upper()}") or apt_mirror(spec.suite)
    work = cache_dir() / "base"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix=f"{spec.suite}-") as tmp:
        root = Path(tmp) / "rootfs"
        command = [
            debootstrap, f"--variant={spec.variant}", f"--include={','.join(spec.include)}",
            spec.suite, str(root), *([mirror] if mirror else []),
        ]  # fmt: skip
        echo(f"debootstrap {spec.suite} from {mirror or 'its default mirror'}")
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
            raise BaseUnavailable(f"debootstrap {spec.suite} failed: {lines[-1] if lines else '?'}")
        _tidy_rootfs(root)
        python = _rootfs_python(root)
        archive = Path(tmp) / "rootfs.tar"
        subprocess.run(
            ["tar", "-C", str(root), "--numeric-owner", "-cf", str(archive), "."], check=True
        )
        repository, _, tag = spec.tag.partition(":")
        changes = [
            f'LABEL {LABEL}.python="{python}" {LABEL}.suite="{spec.suite}"',
            "ENV LANG=C.UTF-8",
            'CMD ["bash"]',
        ]
        client().api.import_image_from_file(
            str(archive), repository=repository, tag=tag, changes=changes
        )
    return spec.tag


def _tidy_rootfs(root: Path) -> None:
    """What official images drop: downloaded packages and lists; recommends stay off."""
    for folder in (root / "var/cache/apt/archives", root / "var/lib/apt/lists"):
        for entry in folder.glob("*"):
            if entry.is_file():
                entry.unlink()
    (root / "etc/apt/apt.conf.d/90audiomatrix").write_text(
        'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n'
    )


def _rootfs_python(root: Path) -> str:
    found = sorted(p.name for p in (root / "usr/bin").glob("python3.*") if p.name[8:].isdigit())
    return found[-1].removeprefix("python") if found else ""


# --------------------------------------------------------------------------- wheelhouse


@dataclass(frozen=True)
class Pin:
    """One lock entry: a name, its exact version and the hashes it may have."""

    name: str
    version: str
    hashes: frozenset[str]


def parse_lock(text: str) -> list[Pin]:
    """The entries of a `uv pip compile --generate-hashes` requirements file."""
    pins = []
    for entry in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", entry)
        if head:
            hashes = frozenset(re.findall(r"--hash=sha256:([0-9a-f]{64})", entry))
            pins.append(Pin(head.group(1), head.group(2), hashes))
    return pins


def split_lock(text: str) -> tuple[str, str]:
    """(torch part, the rest), line for line as docker/Dockerfile's awk split does: a
    requirement line and its `--hash` lines go to the part the requirement belongs to,
    comments are dropped, so the torch part's text is the same in every cell with that torch."""
    parts: tuple[list[str], list[str]] = ([], [])
    torch = False
    for line in text.splitlines():
        starts = re.match(r"[A-Za-z0-9]", line)
        if starts:
            torch = bool(TORCH_LINE.match(line))
        if starts or re.match(r" +--hash", line):
            parts[0 if torch else 1].append(line + "\n")
    return "".join(parts[0]), "".join(parts[1])


def default_index() -> str:
    """uv's own default index (the code names none): what `--emit-index-url` prints."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "in.txt").write_text("")
        proc = subprocess.run(
            [lock.uv_binary(), "pip", "compile", "in.txt", "--emit-index-url", "--no-config",
             "--quiet", "--no-header"],
            cwd=tmp, capture_output=True, text=True, env=lock.clean_environment(os.environ),
        )  # fmt: skip
    found = re.search(r"--index-url (\S+)", proc.stdout)
    if not found:
        raise SmokeError(f"cannot learn uv's default index: {lock.one_line(proc.stderr)}")
    return found.group(1)


_LINK = re.compile(r'<a [^>]*href="([^"#]+)#sha256=([0-9a-f]{64})"[^>]*>([^<]+)</a>', re.I)


def _links(index: str, name: str) -> dict[str, tuple[str, str]]:
    """sha256 -> (filename, url) from a PEP 503 project page (PyPI and PyTorch alike)."""
    import urllib.error
    import urllib.parse
    import urllib.request

    from packaging.utils import canonicalize_name

    page = f"{index.rstrip('/')}/{canonicalize_name(name)}/"
    try:
        with urllib.request.urlopen(page, timeout=60) as response:
            html = response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return {}
        raise
    return {
        sha: (urllib.parse.unquote(text.strip()), urllib.parse.urljoin(page, href))
        for href, sha, text in _LINK.findall(html)
    }


def target_tags(python: str, platform_tag: str) -> list[str]:
    """Wheel tags a cell's interpreter accepts, best first (uv's --python-platform form)."""
    from packaging import tags

    arch, _, libc = platform_tag.partition("-")
    major, minor = (int(x) for x in re.findall(r"\d+", libc)[:2]) if libc else (2, 17)
    platforms = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 4, -1)]
    platforms += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    platforms.append(f"linux_{arch}")
    version = tuple(int(x) for x in python.split("."))
    found = [*tags.cpython_tags(version, platforms=platforms)]
    found += [*tags.compatible_tags(version, platforms=platforms)]
    return [str(t) for t in found]


def _choose(pin: Pin, links: Mapping[str, tuple[str, str]], ranks: Mapping[str, int]) -> tuple:
    """The lock's best file for the target: the best-ranked wheel, else the sdist."""
    from packaging.utils import parse_wheel_filename

    best: tuple[int, str, tuple[str, str]] | None = None
    for sha in pin.hashes & links.keys():
        filename, url = links[sha]
        if filename.endswith(".whl"):
            rank = min(ranks.get(str(t), 10**6) for t in parse_wheel_filename(filename)[3])
        else:
            rank = 10**7
        fits = rank < 10**6 or rank == 10**7
        if fits and (best is None or rank < best[0]):
            best = (rank, sha, (filename, url))
    if best is None:
        raise SmokeError(f"{pin.name}=={pin.version}: no file with a locked hash fits the target")
    return best[1], best[2][0], best[2][1]


def _download(url: str, sha: str, target: Path) -> None:
    import urllib.request

    partial = target.with_name(f".{target.name}.partial")
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=300) as response, partial.open("wb") as sink:
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            sink.write(chunk)
    if digest.hexdigest() != sha:
        partial.unlink()
        raise SmokeError(f"{target.name}: sha256 mismatch (locked {sha[:12]})")
    os.replace(partial, target)


def fill_wheelhouse(
    cell: CellLock, wheelhouse: Path, echo: Echo = print, workers: int = 4
) -> list[str]:
    """Download the files the cell's lock names for its target, each once per machine.

    Exactly one file per entry (the wheel uv would pick, or the sdist), checked against the
    lock's hashes; plus the build requirements of any sdist. Returns the file names.
    """
    from concurrent.futures import ThreadPoolExecutor

    done = wheelhouse / ".locks" / cell.lock_sha256
    if done.is_file():
        return done.read_text().split()
    wheelhouse.mkdir(parents=True, exist_ok=True)
    pins = parse_lock(cell.requirements.read_text())
    ranks = {t: i for i, t in enumerate(target_tags(cell.python, cell.record["cell"]["platform"]))}
    indexes = [*([cell.index] if cell.index else []), default_index()]

    def fetch(pin: Pin) -> str:
        links: dict[str, tuple[str, str]] = {}
        for index in indexes:
            links.update({k: v for k, v in _links(index, pin.name).items() if k not in links})
        sha, filename, url = _choose(pin, links, ranks)
        target = wheelhouse / filename
        if not target.is_file():
            echo(f"download {filename}")
            _download(url, sha, target)
        return filename

    with ThreadPoolExecutor(max_workers=workers) as pool:
        names = list(pool.map(fetch, pins))
    names += _build_requirements(
        [wheelhouse / n for n in names if not n.endswith(".whl")], wheelhouse, indexes[-1], echo
    )
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_text("\n".join(names) + "\n")
    return names


def _sdist_build_requires(sdist: Path) -> list[str]:
    """build-system.requires of an sdist (PEP 518's default when it declares none)."""
    import tomllib

    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            if member.name.count("/") == 1 and member.name.endswith("/pyproject.toml"):
                data = tomllib.loads(archive.extractfile(member).read().decode())  # type: ignore[union-attr]
                return list(data.get("build-system", {}).get("requires", ["setuptools>=40.8.0"]))
    return ["setuptools>=40.8.0", "wheel"]


def _build_requirements(sdists: Sequence[Path], wheelhouse: Path, index: str, echo: Echo) -> list:
    """Newest pure wheels meeting the sdists' build requirements, with their own requirements
    (uv builds sdists in isolation from the same --find-links)."""
    import zipfile

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name, parse_wheel_filename

    queue = [Requirement(r) for s in sdists for r in _sdist_build_requires(s)]
    seen: set[str] = set()
    names: list[str] = []
    while queue:
        req = queue.pop()
        key = canonicalize_name(req.name)
        if key in seen or (req.marker and not req.marker.evaluate()):
            continue
        seen.add(key)
        candidates = []
        for sha, (filename, url) in _links(index, req.name).items():
            if filename.endswith("-py3-none-any.whl"):
                version = parse_wheel_filename(filename)[1]
                if not version.is_prerelease and version in req.specifier:
                    candidates.append((version, filename, url, sha))
        if not candidates:
            raise SmokeError(f"no pure wheel for the build requirement {req}")
        _, filename, url, sha = max(candidates)
        target = wheelhouse / filename
        if not target.is_file():
            echo(f"download {filename} (build requirement)")
            _download(url, sha, target)
        names.append(filename)
        with zipfile.ZipFile(target) as wheel:
            meta = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
            for line in wheel.read(meta).decode().splitlines():
                if line.startswith("Requires-Dist:"):
                    dep = Requirement(line.split(":", 1)[1].strip())
                    if not (dep.marker and "extra" in str(dep.marker)):
                        queue.append(dep)
    return names


@contextlib.contextmanager
def serve(
    folder: Path, port: int | None = None, files: Mapping[str, Path] | None = None
) -> Iterator[str]:
    """Serve `folder` read-only on loopback for the builds (the --find-links address), and
    each of `files` at its own path under the same address (not listed in the folder's page).

    The port is fixed (it is part of the layer cache key), so builds on one machine take
    turns: a file lock beside the cache serialises them across processes."""
    port = port or int(os.environ.get("AUDIOMATRIX_WHEELHOUSE_PORT", DEFAULT_PORT))
    extra = {f"/{name.lstrip('/')}": path for name, path in (files or {}).items()}

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path: str) -> str:
            found = extra.get(urllib.parse.urlsplit(path).path)
            return str(found) if found else super().translate_path(path)

        def log_message(self, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    cache_dir().mkdir(parents=True, exist_ok=True)
    with (cache_dir() / f"wheelhouse-{port}.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        try:
            server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as exc:
            raise SmokeError(
                f"cannot serve the wheelhouse on 127.0.0.1:{port} ({exc.strerror}): "
                "set AUDIOMATRIX_WHEELHOUSE_PORT to a free port"
            ) from None
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{port}/"
        finally:
            server.shutdown()
            server.server_close()


# --------------------------------------------------------------------------- cell images


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
    (no registry needed; the official ghcr.io/astral-sh/uv image has the same layout)."""
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
    """What the build context holds, by path in the context (mirrors the repository). Never
    a CA bundle: a build fetches that from the loopback server (see `build`)."""
    files = {
        DOCKERFILE: REPO / DOCKERFILE,
        INSTALLER: REPO / INSTALLER,
        lock_path(cell): cell.requirements,
    }
    for name in PACKAGE_FILES:
        files[name] = REPO / name
    for path in probe.suite_files():
        files[str(path.relative_to(REPO))] = path
    return files


def lock_path(cell: CellLock) -> str:
    return f"environments/{cell.cell}/{lock.LOCK_FILE}"


def _context_tar(files: Mapping[str, Path]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        for name, path in sorted(files.items()):
            out.add(path, arcname=name, filter=_normalise)
    buffer.seek(0)
    return buffer


def content_hash(cell: CellLock, base_id: str, uv_id: str, ffmpeg: bool) -> str:
    """The hash an image is tagged by: everything it is made of, nothing about when."""
    files = context_files(cell)
    parts = {
        "base": base_id,
        "uv": uv_id,
        "python": cell.python,
        "ffmpeg": ffmpeg,
        "files": {
            name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in files.items()
        },
    }
    return sha256_bytes(json.dumps(parts, sort_keys=True).encode())


def cell_tag(cell: str, digest: str) -> str:
    return f"{CELL_REPO}:{cell}-{digest[:12]}"


def git_revision() -> str:
    proc = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty", "--abbrev=40"],
        capture_output=True, text=True,
    )  # fmt: skip
    return proc.stdout.strip() if proc.returncode == 0 else ""


def engine_call(what: str) -> contextlib.AbstractContextManager[None]:
    """Turn a vanished engine into EngineError, so the caller stops with one line."""

    @contextlib.contextmanager
    def guard() -> Iterator[None]:
        try:
            yield
        except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
            if isinstance(exc, docker.errors.APIError) or engine_version():
                raise
            hint = _engine_hint(exc)
            raise EngineError(
                f"the Docker Engine went away during {what}, nothing recorded for it "
                f"(start it and rerun to resume): {hint}"
            ) from None

    return guard()


def build(
    cell: CellLock,
    *,
    wheelhouse: Path | None = None,
    ca_bundle: Path | None = None,
    echo: Echo = print,
    progress: Callable[[str], None] = lambda _: None,
    force: bool = False,
) -> BuildResult:
    """Build (or find) the image of one locked Linux cell. Every outcome is a BuildResult;
    only a vanished engine raises (EngineError), since then no other cell can build either.
    `ca_bundle` is served beside the wheelhouse and passed as CA_URL: each install step
    fetches it, uses it and deletes it, so no layer holds it. `force` rebuilds with the layer
    cache off (the benchmark's cold build)."""
    started = time.monotonic()
    info = cell.record["cell"]

    def result(status: str, tag: str | None = None, detail: str = "") -> BuildResult:
        return BuildResult(cell.cell, status, tag, detail, round(time.monotonic() - started, 2))

    with engine_call(f"the build of {cell.cell}"):
        try:
            base = ensure_base(info["base"], echo)
        except BaseUnavailable as exc:
            return result("base unavailable", detail=str(exc))
        api = client()
        base_image = api.images.get(base)
        has = image_python(base_image)
        if has and has != cell.python:
            return result(
                "python unavailable in base",
                detail=f"{base} has Python {has}, the cell needs {cell.python} "
                "(no Python downloads here; only the base's own python3 is used)",
            )
        uv_image = ensure_uv_image()
        ffmpeg = bool(info.get("ffmpeg"))
        digest = content_hash(cell, base_image.id, api.images.get(uv_image).id, ffmpeg)
        tag = cell_tag(cell.cell, digest)
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
            "LOCK": lock_path(cell),
            "FFMPEG": "1" if ffmpeg else "0",
            "CELL": cell.cell,
            "LOCK_SHA256": cell.lock_sha256,
            "REVISION": git_revision(),
            "SOURCE": os.environ.get("AUDIOMATRIX_SOURCE_URL", ""),
            "CREATED": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if ca_bundle and not ca_bundle.is_file():
            return result("failed", detail=f"the CA bundle {ca_bundle} is not a readable file")
        context = _context_tar(context_files(cell))
        extra = {CA_PATH: ca_bundle} if ca_bundle else {}
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


# --------------------------------------------------------------------------- smoke in the image


def checks_in_suite(names: Sequence[str] = ()) -> list[str]:
    """The suite's check names (only the named ones, when names are given)."""
    return [c.name for c in schema.CHECKS if not names or c.name in names]


def unmeasured_environment() -> schema.Environment:
    """For a run whose container never reported: the host as seen from outside, and no fact
    about the image's environment (so the report shows the run apart from its cell)."""
    return schema.Environment(
        schema=schema.SCHEMA,
        versions={},
        host=schema.Host(os=platform.platform(), machine=platform.machine(), cpu=probe.cpu_name()),
        facts=schema.Facts(python="", libpython=False),
        provenance=probe.provenance(),
    )


def crash_result(
    cell: CellLock,
    reason: str,
    where: Mapping[str, Any],
    started: datetime,
    results_root: Path,
    modes: Sequence[str] = MODES,
    checks: Sequence[str] = (),
) -> results.RunResult:
    """Every check `crash` with the one-line reason, written like any other result."""
    finished = datetime.now(UTC)
    crashed = [
        schema.CheckOutcome(check=c, status="crash", duration_s=0.0, first_error=reason[:500])
        for c in checks_in_suite(checks)
    ]
    result = results.RunResult(
        cell=cell.cell,
        run=results.run_id(started),
        started=started,
        finished=finished,
        where=results.Where(**where),
        lock_sha256=cell.lock_sha256,
        environment=unmeasured_environment(),
        modes={m: crashed for m in modes},  # type: ignore[misc]
    )
    results.write(results_root, result)
    return result


def has_nvidia_runtime(api: docker.DockerClient) -> bool:
    return "nvidia" in (api.info().get("Runtimes") or {})


def container_options(out: Path, mem_limit: str = "8g", gpu: bool = False) -> dict[str, Any]:
    """How smoke containers run: no network, the image's non-root user, read-only root,
    writable only /tmp (tmpfs) and /out (the host folder `out`), no capabilities. An init
    process passes SIGTERM on to the runner, so a stopped container exits 143."""
    return {
        "init": True,
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {"/tmp": "rw,exec,nosuid,size=4g"},
        "mem_limit": mem_limit,
        "volumes": {str(out): {"bind": "/out", "mode": "rw"}},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": 4096,
        "device_requests": [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
        if gpu
        else None,
    }


def remove_leftovers(api: docker.DockerClient, cell: str) -> None:
    """Remove the cell's stopped smoke containers: what a run the engine's stop interrupted
    could not clean up (running ones belong to another run and stay)."""
    for old in api.containers.list(all=True, filters={"label": f"{LABEL}.cell={cell}"}):
        if old.status != "running":
            with contextlib.suppress(docker.errors.APIError):
                old.remove(force=True)


def smoke_in_image(
    image_tag: str,
    cell: CellLock,
    results_root: Path,
    *,
    modes: Sequence[str] = MODES,
    checks: Sequence[str] = (),
    mem_limit: str = "8g",
    timeout_s: float = 3 * 3600,
    echo: Echo = print,
) -> results.RunResult:
    """Run the suite in a container of the cell's image and write results/<cell>/<run>.json.

    No network, the image's non-root user, a read-only root filesystem (tmpfs /tmp), a memory
    limit; the runner writes into a bind-mounted folder that is read back here. A container
    that cannot start or dies without results gives every check `crash` with the reason.
    """
    started = datetime.now(UTC)
    with engine_call(f"the smoke run of {cell.cell}"):
        api = client()
        image = api.images.get(image_tag)
        where = {"kind": "image", "image": image_tag, "image_digest": image.id}
        remove_leftovers(api, cell.cell)
        command = ["python", "-m", "audiomatrix.suite.run", "--out", "/out"]
        command += [a for m in modes for a in ("--mode", m)]
        command += [a for c in checks for a in ("--check", c)]
        gpu = cell.record["cell"].get("device") == "cuda" and has_nvidia_runtime(api)
        with tempfile.TemporaryDirectory(prefix=f"smoke-{cell.cell}-") as tmp:
            out = Path(tmp) / "out"
            out.mkdir()
            out.chmod(0o777)  # the image's user writes here; the folder is private to tmp
            container = None
            try:
                options = container_options(out, mem_limit, gpu=gpu)
                options["labels"] = {f"{LABEL}.cell": cell.cell}
                container = api.containers.run(image_tag, command, detach=True, **options)
                for line in container.logs(stream=True, follow=True):
                    echo(line.decode(errors="replace").rstrip())
                status = container.wait(timeout=timeout_s)
            except docker.errors.APIError as exc:
                return crash_result(
                    cell, f"the container did not start: {first_line(exc)}", where, started,
                    results_root, modes, checks,
                )  # fmt: skip
            except requests.exceptions.ReadTimeout:
                status = {"StatusCode": None, "Error": {"Message": f"over {timeout_s:.0f} s"}}
            finally:
                if container is not None:
                    with contextlib.suppress(docker.errors.DockerException):
                        container.remove(force=True)
            if status.get("StatusCode") == STOPPED_EXIT or not engine_version():
                raise EngineError(
                    f"the smoke run of {cell.cell} was stopped from outside (the engine shut "
                    "down, or `docker stop`): nothing recorded for it; rerun to resume"
                )
            if not (out / "environment.json").exists():
                code = status.get("StatusCode")
                why = (status.get("Error") or {}).get("Message") or f"exit code {code}"
                if code == 137:
                    why = f"killed (exit 137: out of memory at {mem_limit}, or a hang)"
                return crash_result(
                    cell, f"the smoke runner wrote nothing: {why}", where, started,
                    results_root, modes, checks,
                )  # fmt: skip
            return collect(cell, out, results_root, where, started)
