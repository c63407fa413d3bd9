"""A local conda channel of small real packages, and conda-lock.yml files solved from it (not a
test module).

The packages are built with conda-package-handling (.conda files with info/index.json and
info/paths.json) and indexed with rattler; they stand in for conda-forge's: a python, a pytorch
with a CPU and a CUDA build (the CUDA one needs __cuda through cuda-version, as conda-forge's
do), torchaudio, TorchCodec, FFmpeg, libsndfile, pip, pytest. A lock is solved from a plan's
own environment.yml and virtual packages by rattler, then written with conda-lock's models and
its content hash: the file `conda-lock lock` writes, with rattler in the solver's place.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from audiomatrix.lock.installers import conda

SUBDIRS = ("linux-64", "osx-arm64", "win-64")
TIMESTAMP_MS = 1_700_000_000_000

AXES = """\
version: 1
smoke_requirements: [pytest]
smoke_requirements_conda: [pytest]
os:
  bookworm: {family: linux, base: "debian:bookworm-slim", platform: x86_64-manylinux_2_36,
             runner: ubuntu-24.04}
  macos: {family: macos, platform: aarch64-apple-darwin, runner: macos-14}
python: ["3.11"]
torch:
  "2.9.1": {torchaudio: "2.9.1", torchcodec: "0.9.1"}
accelerator:
  cpu: {device: cpu, variant: cpu, index: "https://download.pytorch.org/whl/cpu"}
  cu128:
    device: cuda
    variant: cu128
    index: "https://download.pytorch.org/whl/cu128"
    requires:
      - os_family: [linux, windows]
        reason: CUDA builds exist for Linux and Windows only
        source: https://pytorch.org/get-started/locally/
"""
"""The conda tests' axes: Linux and macOS, Python 3.11, torch 2.9.1, a CPU and a CUDA build."""


def matrix_text(stacks: str, product: str) -> str:
    """A conda test matrix: AXES, these stacks and this `matrix:` block (YAML lines)."""
    return f"{AXES}stack:\n{stacks}matrix:\n{product}"


def package(
    channel: Path,
    name: str,
    version: str,
    build: str,
    subdir: str = "noarch",
    depends: Sequence[str] = (),
    files: dict[str, str] | None = None,
    **index: Any,
) -> Path:
    """One .conda package in `channel/subdir`, its files given as {path: text}."""
    from conda_package_handling import api

    source = channel.parent / f".build-{channel.name}" / subdir / f"{name}-{version}-{build}"
    (source / "info").mkdir(parents=True)
    files = files or {f"share/{name}/{build}.txt": f"{name} {version} {build}\n"}
    paths = []
    for rel, text in files.items():
        path = source / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if rel.startswith("bin/"):
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        data = text.encode()
        paths.append(
            {
                "_path": rel,
                "path_type": "hardlink",
                "sha256": hashlib.sha256(data).hexdigest(),
                "size_in_bytes": len(data),
            }
        )
    meta = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": int(build.rsplit("_", 1)[-1]),
        "subdir": subdir,
        "depends": list(depends),
        "license": "MIT",
        "timestamp": TIMESTAMP_MS,
        **index,
    }
    (source / "info" / "index.json").write_text(json.dumps(meta))
    (source / "info" / "paths.json").write_text(json.dumps({"paths": paths, "paths_version": 1}))
    out = channel / subdir
    out.mkdir(parents=True, exist_ok=True)
    file_name = f"{name}-{version}-{build}.conda"
    api.create(str(source), ["info/index.json", "info/paths.json", *files], file_name, str(out))
    return out / file_name


def build_channel(channel: Path) -> Path:
    """The stand-in channel, indexed (repodata.json per platform)."""
    import rattler

    for sub in SUBDIRS:
        python = "python.exe" if sub.startswith("win-") else "bin/python"
        package(channel, "python", "3.11.9", "h0_0", sub, files={python: "#!/bin/sh\n"})
        torch = ["python >=3.11,<3.12"]
        package(channel, "pytorch", "2.9.1", "cpu_py311_0", sub, torch)
        if not sub.startswith("osx-"):
            # Preferred where __cuda allows it (its higher build number), as conda-forge's are.
            cuda = [*torch, "cuda-version >=12.6,<13", "__cuda"]
            package(channel, "pytorch", "2.9.1", "cuda126_py311_200", sub, cuda)
        package(channel, "torchaudio", "2.9.1", "py311_0", sub, ["pytorch 2.9.1.*"])
        package(channel, "torchcodec", "0.9.1", "py311_0", sub, ["pytorch 2.9.1.*"])
        package(channel, "ffmpeg", "7.1.1", "h0_0", sub)
        package(channel, "libsndfile", "1.2.2", "h0_0", sub)
    package(channel, "cuda-version", "12.8", "h0_0", constrains=["__cuda >=12"])
    pure = {"noarch": "python"}
    package(channel, "pip", "24.0", "pyh0_0", depends=["python >=3.8"], **pure)
    package(channel, "pytest", "8.3.3", "pyh0_0", depends=["python >=3.8"], **pure)
    asyncio.run(rattler.index.index_fs(channel, write_zst=False, write_shards=False))
    return channel


def virtual(plan: conda.CondaPlan, platform: str, without: Sequence[str] = ()) -> list[Any]:
    """The plan's virtual packages for one platform as rattler's, less `without`."""
    from rattler import BuildString, GenericVirtualPackage, PackageName, Version

    found = []
    for name, text in plan.virtual_packages["subdirs"][platform]["packages"].items():
        version, _, build = text.partition(" ")
        if name not in without:
            found.append(
                GenericVirtualPackage(
                    PackageName(name), Version(version), BuildString(build or "0")
                )
            )
    return found


def solve(plan: conda.CondaPlan, platform: str, without: Sequence[str] = ()) -> list[Any]:
    """rattler's solution of the plan's conda specs for one platform, as conda-lock reads
    them from its environment.yml, with its virtual packages."""
    with conda.lock_spec(plan) as (spec, _):
        specs = [
            f"{d.name} {d.version} {d.build or ''}".strip()
            for d in spec.dependencies[platform]
            if d.manager == "conda"
        ]
        channels = [c.url for c in spec.channels]
    return solve_specs(channels, specs, platform, virtual(plan, platform, without))


def solve_specs(channels: Sequence[str], specs: Sequence[str], platform: str, offered: Any) -> Any:
    """rattler's solve, offline against local channels."""
    import rattler

    # conda-lock writes `name ==1.2` as conda's exact `name 1.2`, which only lenient parsing takes.
    matched = [rattler.MatchSpec(s, strict=False) for s in specs]
    solved = rattler.solve(
        channels, matched, platforms=[platform, "noarch"], virtual_packages=offered
    )
    return asyncio.run(solved)


def _locked(record: Any, platform: str) -> Any:
    from conda_lock.lockfile.v2prelim.models import HashModel, LockedDependency

    return LockedDependency(
        name=record.name.source,
        version=str(record.version),
        manager="conda",
        platform=platform,
        dependencies=dict(d.split(" ", 1) if " " in d else (d, "") for d in record.depends),
        url=record.url,
        hash=HashModel(md5=record.md5.hex(), sha256=record.sha256.hex()),
        build=str(record.build),
        categories={"main"},
    )


def pip_package(name: str, version: str, url: str, data: bytes, platform: str) -> Any:
    """A PyPI package of a lock's pip part, as conda-lock records it."""
    from conda_lock.lockfile.v2prelim.models import HashModel, LockedDependency

    return LockedDependency(
        name=name,
        version=version,
        manager="pip",
        platform=platform,
        url=url,
        hash=HashModel(sha256=hashlib.sha256(data).hexdigest()),
        categories={"main"},
    )


def write_lock(plan: conda.CondaPlan, path: Path, extra: Sequence[Any] = ()) -> Path:
    """The conda-lock.yml of the plan: each platform solved by rattler, written by conda-lock's
    own writer with conda-lock's content hashes of the plan's environment.yml."""
    from conda_lock.content_hash import compute_content_hashes
    from conda_lock.lockfile import write_conda_lock_file
    from conda_lock.lockfile.v2prelim.models import Lockfile, LockMeta

    packages = [_locked(r, p) for p in plan.platforms for r in solve(plan, p)]
    with conda.lock_spec(plan) as (spec, repo):
        meta = LockMeta(
            content_hash=compute_content_hashes(spec, repo),
            channels=spec.channels,
            platforms=spec.platforms,
            sources=[conda.ENVIRONMENT_FILE],
        )
    lockfile = Lockfile(package=[*packages, *extra], metadata=meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_conda_lock_file(lockfile, path, metadata_choices=None)
    return path


def wheel(folder: Path, name: str = "demo_pkg", version: str = "1.0") -> Path:
    """A minimal pure wheel (one module), for a lock's pip part."""
    import base64
    import zipfile

    files = {
        f"{name}/__init__.py": "VALUE = 1\n",
        f"{name}-{version}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n"
        ),
        f"{name}-{version}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{name}-{version}.dist-info/RECORD,,")
    files[f"{name}-{version}.dist-info/RECORD"] = "\n".join(record) + "\n"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as out:
        for member, text in files.items():
            out.writestr(member, text)
    return path
