"""Probes run for real: each release installed with uv into a throwaway venv of this machine's
CPython, the probe run there, the venv deleted. The index is uv's and pip's default (this
machine's index settings are dropped, as for locks); wheels come through uv's cache, whose
hardlinks keep a venv of torch cheap. The search itself is audiomatrix.catalog.boundaries.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from packaging.specifiers import Specifier
from packaging.version import Version

from audiomatrix.catalog.boundaries import (
    Found,
    NoVerdict,
    Verdict,
    oriented,
    parse_versions,
    read_verdict,
    search,
    start,
)
from audiomatrix.catalog.probes import Probe
from audiomatrix.catalog.signatures import Boundary, Signature
from audiomatrix.core.errors import AudiomatrixError
from audiomatrix.image import interpreters
from audiomatrix.lock import uvtool

PROBE_TIMEOUT_S = 600
INSTALL_TIMEOUT_S = 1800
MIN_FREE_BYTES = 12 * 10**9
"""Free space a probe's install needs where venvs and uv's cache live (torch with its CUDA
libraries is about 3 GB in the cache on first download)."""
_AVUTIL = ("libavutil.so.59", "libavutil.so.58", "libavutil.so.57", "libavutil.so.56")
"""libavutil's sonames for FFmpeg 7, 6, 5 and 4: what TorchCodec loads."""


class Unmeasurable(NoVerdict):
    """This machine lacks what the probe needs (FFmpeg, or its absence; a CPython): a fact
    about the machine, recorded as the edge's `unmeasured` reason."""


class IndexUnreachable(NoVerdict):
    """The package index did not answer."""


class DiskLow(AudiomatrixError):
    """Too little free disk for another install: the run stops, nothing recorded for the edge."""


@dataclass
class ProbeVenvs:
    min_free_bytes: int = MIN_FREE_BYTES
    _releases: dict[tuple[str, str], list[Version]] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {**uvtool.clean_environment(os.environ), "UV_PYTHON_DOWNLOADS": "never"}
        env |= {"PIP_CONFIG_FILE": os.devnull, "PYTHONNOUSERSITE": "1"}
        env.pop("PYTHONPATH", None)
        return env

    @cached_property
    def uv_cache(self) -> Path:
        out = subprocess.run([uvtool.uv_binary(), "cache", "dir"], capture_output=True, text=True)
        return Path(out.stdout.strip() or tempfile.gettempdir())

    def check_disk(self) -> None:
        for place in (Path(tempfile.gettempdir()), self.uv_cache):
            where = place if place.exists() else place.parent
            free = shutil.disk_usage(where).free
            if free < self.min_free_bytes:
                raise DiskLow(
                    f"{free / 1e9:.1f} GB free where {place.name or place} is, under the "
                    f"{self.min_free_bytes / 1e9:.0f} GB an install needs; free some and rerun"
                )

    def interpreter(self, minor: str) -> str:
        found = interpreters.find(minor)
        if found is None:
            raise Unmeasurable(f"no CPython {minor} on the measuring machine")
        return str(found.executable)

    def _run(self, args: Sequence[str], timeout: int, what: str) -> str:
        try:
            proc = subprocess.run(
                args, capture_output=True, text=True, env=self.env(), timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise NoVerdict(f"{what} took over {timeout} s") from None
        if proc.returncode != 0:
            output = proc.stderr or proc.stdout
            kind = IndexUnreachable if uvtool.UNREACHABLE.search(output) else NoVerdict
            raise kind(f"{what} failed: {uvtool.one_line(output)}")
        return proc.stdout

    def _venv(self, root: Path, minor: str, seed: bool = False) -> Path:
        args = [uvtool.uv_binary(), "venv", "--quiet", "--python", self.interpreter(minor)]
        self._run([*args, *(["--seed"] if seed else []), str(root)], 300, "uv venv")
        return root / "bin" / "python"

    def releases(self, package: str, minor: str) -> list[Version]:
        """The index's releases of `package` that install on CPython `minor` here (pip index
        versions, run by pip in a throwaway venv of that Python)."""
        if (package, minor) not in self._releases:
            with tempfile.TemporaryDirectory(prefix="audiomatrix-releases-") as tmp:
                python = self._venv(Path(tmp) / "venv", minor, seed=True)
                args = [str(python), "-m", "pip", "index", "versions", package]
                args += ["--retries", "1", "--timeout", "30"]
                text = self._run(args, 300, f"pip index versions {package}")
            try:
                self._releases[(package, minor)] = parse_versions(text)
            except ValueError as exc:
                raise NoVerdict(f"pip index versions {package}: {exc}") from None
        return self._releases[(package, minor)]

    def ffmpeg_present(self, minor: str) -> bool:
        """Whether FFmpeg's libavutil loads for a fresh interpreter with this environment."""
        code = f"import ctypes\nfor n in {_AVUTIL!r}:\n    try: ctypes.CDLL(n); break\n"
        code += "    except OSError: pass\nelse: raise SystemExit(1)\n"
        return subprocess.run([self.interpreter(minor), "-c", code], env=self.env()).returncode == 0

    def verdict(self, probe: Probe, signature: Signature, version: Version) -> Verdict:
        """Install `probe.package==version` with the probe's pins into a fresh venv and read
        the probe's verdict there; the venv is deleted after."""
        if probe.ffmpeg != "indifferent" and self.ffmpeg_present(probe.python) != (
            probe.ffmpeg == "needed"
        ):
            lacking = "FFmpeg's shared libraries" if probe.ffmpeg == "needed" else "no FFmpeg"
            raise Unmeasurable(f"probe {probe.id} needs {lacking}; the measuring machine lacks it")
        self.check_disk()
        root = Path(tempfile.mkdtemp(prefix="audiomatrix-probe-"))
        try:
            python = self._venv(root / "venv", probe.python)
            base = [uvtool.uv_binary(), "pip", "install", "--quiet", "--python", str(python)]
            wanted = {p: str(version) for p in (probe.package, *probe.paired)} | probe.pins
            first = [f"{k}=={v}" for k, v in wanted.items() if k not in probe.no_deps]
            what = f"installing {probe.package} {version}"
            self._run([*base, *first, *probe.also], INSTALL_TIMEOUT_S, what)
            later = [f"{k}=={wanted[k]}" for k in probe.no_deps]
            if later:
                self._run([*base, "--no-deps", *later], INSTALL_TIMEOUT_S, what)
            try:
                proc = subprocess.run(
                    [str(python), "-c", probe.snippet], capture_output=True, text=True,
                    env=self.env(), cwd=root, timeout=PROBE_TIMEOUT_S,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                raise NoVerdict(f"probe {probe.id} took over {PROBE_TIMEOUT_S} s") from None
            return read_verdict(proc.returncode, proc.stdout + proc.stderr, signature.matches)
        finally:
            shutil.rmtree(root, ignore_errors=True)


def measure(
    venvs: ProbeVenvs,
    probe: Probe,
    signature: Signature,
    clause: Specifier,
    on_verdict: Callable[[Version, Verdict], None] = lambda version, verdict: None,
) -> Found:
    """The edge of `clause` for `probe.package`, searched from the catalogued one."""
    versions = oriented(venvs.releases(probe.package, probe.python), clause)
    good, bad = start(versions, clause)

    def verdict(version: Version) -> Verdict:
        result = venvs.verdict(probe, signature, version)
        on_verdict(version, result)
        return result

    return search(versions, verdict, good, bad)


def recheck(venvs: ProbeVenvs, probe: Probe, signature: Signature, edge: Boundary) -> list[str]:
    """What no longer holds of a recorded edge (empty when all does): its two releases are
    still adjacent on the index, `good` works and `bad` fails, with the recorded pins."""
    assert edge.good and edge.bad and edge.python, "a measured edge"
    probe = replace(probe, pins=dict(edge.pins), python=edge.python)
    good, bad = Version(edge.good), Version(edge.bad)
    between = [
        v
        for v in venvs.releases(probe.package, probe.python)
        if min(good, bad) < v < max(good, bad)
    ]
    problems = (
        [f"released between {good} and {bad}: {', '.join(map(str, between))}"] if between else []
    )
    for version, expected in ((good, "works"), (bad, "fails")):
        got = venvs.verdict(probe, signature, version)
        if got != expected:
            problems.append(f"{probe.package} {version} {got}, recorded as {expected}")
    return problems
