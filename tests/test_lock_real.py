"""Real uv resolution against the package index (marked `lock`; CI runs it), and a relock
interrupted for real while uv resolves."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audiomatrix.cli import app as cli
from audiomatrix.cli.app import app
from audiomatrix.lock import sdist_metadata
from support import (
    INTERRUPTIONS,
    add_smoke_requirement,
    audiomatrix,
    files_under,
    wait_for_child,
)

pytestmark = pytest.mark.lock

SMALL = Path(__file__).parent / "matrices" / "small.yaml"
CELL = "bookworm-py3.11-torch2.9.1-cu128-bare"


@pytest.fixture
def workdir(tmp_path):
    shutil.copy(SMALL, tmp_path / "matrix.yaml")
    return tmp_path


def _lock(workdir: Path, *select: str):
    args = ["lock", "--matrix", str(workdir / "matrix.yaml")]
    for term in select:
        args += ["--select", term]
    return CliRunner().invoke(app, args)


def test_real_lock_of_a_cell_is_pinned_hashed_and_portable(workdir, monkeypatch):
    # This machine's own index settings must not reach the lock: point them at nothing.
    monkeypatch.setenv("UV_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("UV_FIND_LINKS", str(workdir / "no-such-wheels"))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    result = _lock(workdir, CELL)
    assert result.exit_code == 0, result.output
    folder = workdir / "environments" / CELL
    text = (folder / "requirements.txt").read_text()
    pins = dict(re.findall(r"^([a-z0-9._-]+)==(\S+) \\$", text, re.MULTILINE))
    assert pins["torch"] == "2.9.1" and pins["torchaudio"] == "2.9.1"
    assert pins["torchcodec"] == "0.8.1"
    # torch 2.9.1 from the default index is the CUDA 12.8 build the cell asks for.
    assert pins["nvidia-cuda-runtime-cu12"].startswith("12.8.")
    assert text.count("--hash=sha256:") >= len(pins)
    assert not re.search(r"https?://|file:|--index-url|--find-links|/tmp/|/root/", text)
    record = json.loads((folder / "cell.json").read_text())
    assert record["status"] == "locked"
    assert record["cell"]["id"] == CELL and record["inputs"]["index"] is None

    again = _lock(workdir, CELL)
    assert again.exit_code == 0
    assert "1 unchanged" in again.output
    assert (folder / "requirements.txt").read_text() == text


def test_bad_cells_do_not_stop_the_good_one(workdir):
    result = _lock(
        workdir,
        "bookworm-py3.11-torch2.9.1-cu128-*",
        "bookworm-py3.11-torch2.9.1-unreachable-bare",
    )
    assert result.exit_code == 0, result.output
    envs = workdir / "environments"
    impossible = json.loads(
        (envs / "bookworm-py3.11-torch2.9.1-cu128-impossible/cell.json").read_text()
    )
    assert impossible["status"] == "unresolvable"
    assert "soundfile==0.0.1" in impossible["reason"] and "\n" not in impossible["reason"]
    unreachable = json.loads(
        (envs / "bookworm-py3.11-torch2.9.1-unreachable-bare/cell.json").read_text()
    )
    assert unreachable["status"] == "index unreachable"
    assert (envs / CELL / "requirements.txt").is_file()


def test_a_relock_takes_an_sdists_dependencies_from_its_first_build(workdir, monkeypatch):
    # docopt 0.6.2 is an sdist only, whose PKG-INFO (1.1) does not say its dependencies.
    monkeypatch.setenv("AUDIOMATRIX_CACHE", str(workdir / "cache"))
    monkeypatch.setenv("UV_CACHE_DIR", str(workdir / "uv-first"))
    add_smoke_requirement(workdir / "matrix.yaml", "docopt==0.6.2")
    assert _lock(workdir, CELL).exit_code == 0
    folder = workdir / "environments" / CELL
    lock = (folder / "requirements.txt").read_bytes()
    (sha256,) = sdist_metadata.hashed_pins(lock.decode())["docopt"].hashes
    kept = workdir / "cache" / "sdist-metadata" / "files" / f"{sha256}.json"
    assert json.loads(kept.read_text()) == {
        "kind": "sdist",
        "name": "docopt",
        "version": "0.6.2",
        "metadata": {"name": "docopt", "version": "0.6.2", "requires-dist": [],
                     "provides-extras": []},
    }  # fmt: skip
    assert list((workdir / "uv-first").glob("sdists-*/**/docopt")), "uv built it"

    # The same cell resolved again, with uv's own cache empty: the same bytes, nothing built.
    shutil.rmtree(folder)
    monkeypatch.setenv("UV_CACHE_DIR", str(workdir / "uv-again"))
    assert _lock(workdir, CELL).exit_code == 0
    assert (folder / "requirements.txt").read_bytes() == lock
    assert not list((workdir / "uv-again").glob("sdists-*/**/docopt")), "uv built it again"

    # An entry for other bytes of that version (here: made up, with a dependency docopt does not
    # declare) is not borne out by the lock's one hash: the cell is resolved again without it.
    key = sdist_metadata.resolution_key(json.loads((folder / "cell.json").read_text())["inputs"])
    other = "0" * 64
    hint = workdir / "cache" / "sdist-metadata" / "cells" / f"{key}.json"
    assert json.loads(hint.read_text()) == [sha256]
    made_up = {"name": "docopt", "version": "0.6.2", "requires-dist": ["six"],
               "provides-extras": []}  # fmt: skip
    kept.with_name(f"{other}.json").write_text(
        json.dumps({"kind": "sdist", "name": "docopt", "version": "0.6.2", "metadata": made_up})
    )
    hint.write_text(json.dumps([other]))
    shutil.rmtree(folder)
    assert _lock(workdir, CELL).exit_code == 0
    assert (folder / "requirements.txt").read_bytes() == lock
    assert "six" not in sdist_metadata.hashed_pins(lock.decode())
    assert json.loads(hint.read_text()) == [sha256]


# --------------------------------------------------------------------------- interruptions


@pytest.mark.parametrize("interrupt", INTERRUPTIONS)
def test_an_interrupted_relock_keeps_the_previous_lock(workdir, interrupt):
    assert _lock(workdir, CELL).exit_code == 0
    folder = workdir / "environments" / CELL
    add_smoke_requirement(workdir / "matrix.yaml", "six")  # uv really resolves again
    before = files_under(folder)
    args = ("lock", "--matrix", str(workdir / "matrix.yaml"), "--select", CELL)
    # uv's own cache, cold: uv resolves for a second or more, so the signal finds it busy.
    cache = str(workdir / "uv-cache")

    run = audiomatrix(workdir, *args, UV_CACHE_DIR=cache)
    uv = wait_for_child(run.pid, " pip compile ")
    interrupt(run.pid)
    stdout, stderr = run.communicate(timeout=60)

    assert run.returncode == 130, stdout + stderr
    assert [line for line in stderr.splitlines() if line.strip()] == [cli.INTERRUPTED]
    assert "Traceback" not in stdout + stderr
    assert files_under(folder) == before  # byte-identical, no scratch folder or temp file left
    assert sorted(p.name for p in folder.iterdir()) == ["cell.json", "requirements.in",
                                                        "requirements.txt"]  # fmt: skip
    assert not Path(f"/proc/{uv}").exists(), "uv still runs after the interruption"

    again = audiomatrix(workdir, *args, UV_CACHE_DIR=cache)
    stdout, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stdout + stderr
    assert "1 locked" in stdout
    assert re.search(r"^six==", (folder / "requirements.txt").read_text(), re.MULTILINE)
