"""Helpers shared by the tests: small real cells, and results, records and tables as the
stages write them (not a test module)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from audiomatrix import evidence, lock, results, smoke
from audiomatrix.files import sha256_file
from audiomatrix.suite import probe, schema


def small_cell(root: Path, cell: str, python: str = "3.11") -> smoke.CellLock:
    """A cell without torch (soundfile, numpy, pytest), locked for real with uv: its image
    builds in seconds once the base exists."""
    folder = root / cell
    folder.mkdir(parents=True)
    (folder / "requirements.in").write_text("soundfile\nnumpy\npytest\npytest-timeout\n")
    subprocess.run(
        [
            lock.uv_binary(),
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
        env=lock.clean_environment(os.environ),
    )
    record = {
        "schema": 1,
        "status": "locked",
        "lock": "requirements.txt",
        "lock_sha256": sha256_file(folder / "requirements.txt"),
        "inputs": {"index": None},
        "cell": {"id": cell, "python": python, "platform": "x86_64-manylinux_2_36",
                 "base": "debian:bookworm-slim", "ffmpeg": False, "device": "cpu"},
    }  # fmt: skip
    (folder / "cell.json").write_text(json.dumps(record))
    return smoke.read_lock(root, cell)


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
            os="Linux-6.1-x86_64", machine="x86_64", cpu="EPYC", distribution=distribution
        ),
        facts=schema.Facts(
            python=python,
            libpython=True,
            torch=f"{torch}+cu128" if cuda else torch,
            cuda=cuda,
            torchcodec=torchcodec,
            ffmpeg=ffmpeg,
            libavutil=str(int(ffmpeg) + 52) if ffmpeg else None,
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


def write_cell_json(envs: Path, cell: str, *args: Any, **kwargs: Any) -> None:
    (envs / cell).mkdir(parents=True, exist_ok=True)
    (envs / cell / "cell.json").write_text(json.dumps(cell_record(cell, *args, **kwargs)))


def run_result(
    cell: str,
    raw: dict[str, str],
    compat: dict[str, str] | None = None,
    *,
    run: str = "20261125T160000Z",
    kind: str = "native",
    errors: dict[str, str] | None = None,
    **measured: Any,
) -> results.RunResult:
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
    cuda = evidence.cuda_of_variant(axes["accelerator"])
    return results.RunResult(
        cell=cell,
        run=run,
        started=started,
        finished=started + timedelta(minutes=2),
        where=results.Where(
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
