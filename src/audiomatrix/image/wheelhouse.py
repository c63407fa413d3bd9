"""The wheelhouse: the files each lock names, downloaded once per machine (hash-checked) and
served read-only on loopback while a cell builds.

The classic builder has no cache mounts, so a build on the host network installs from this
folder with `--no-index`: downloads happen once per machine, not once per image.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import http.server
import os
import re
import subprocess
import tarfile
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiomatrix.core.errors import CellError
from audiomatrix.core.files import cache_dir
from audiomatrix.lock import uvtool
from audiomatrix.lock.cell_lock import CellLock

DEFAULT_PORT = 47391
"""The wheelhouse's loopback port. Build args are part of the layer cache key, so the
find-links address must not change between runs (AUDIOMATRIX_WHEELHOUSE_PORT overrides)."""


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


def default_index() -> str:
    """uv's own default index (the code names none): what `--emit-index-url` prints."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "in.txt").write_text("")
        proc = subprocess.run(
            [uvtool.uv_binary(), "pip", "compile", "in.txt", "--emit-index-url", "--no-config",
             "--quiet", "--no-header"],
            cwd=tmp, capture_output=True, text=True, env=uvtool.clean_environment(os.environ),
        )  # fmt: skip
    found = re.search(r"--index-url (\S+)", proc.stdout)
    if not found:
        raise CellError(f"cannot learn uv's default index: {uvtool.one_line(proc.stderr)}")
    return found.group(1)


_LINK = re.compile(r'<a [^>]*href="([^"#]+)#sha256=([0-9a-f]{64})"[^>]*>([^<]+)</a>', re.I)


def _links(index: str, name: str) -> dict[str, tuple[str, str]]:
    """sha256 -> (filename, url) from a PEP 503 project page (PyPI and PyTorch alike)."""
    import urllib.error
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
        raise CellError(f"{pin.name}=={pin.version}: no file with a locked hash fits the target")
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
        raise CellError(f"{target.name}: sha256 mismatch (locked {sha[:12]})")
    os.replace(partial, target)


def fill_wheelhouse(
    cell: CellLock, wheelhouse: Path, echo: Callable[[str], None] = print, workers: int = 4
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
    ranks = {t: i for i, t in enumerate(target_tags(cell.python, cell.record.cell.platform))}
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


def _build_requirements(
    sdists: Sequence[Path], wheelhouse: Path, index: str, echo: Callable[[str], None]
) -> list:
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
            raise CellError(f"no pure wheel for the build requirement {req}")
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
            raise CellError(
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
