"""tox.ini generated from the locks: one env per locked cell, installed from its lock."""

from __future__ import annotations

import configparser
import json

from audiomatrix import tox


def _cell(environments, cell_id, python, status="locked"):
    folder = environments / cell_id
    folder.mkdir(parents=True)
    record = {"status": status, "cell": {"id": cell_id, "python": python}}
    (folder / "cell.json").write_text(json.dumps(record))


def test_one_env_per_locked_cell(tmp_path) -> None:
    envs = tmp_path / "environments"
    _cell(envs, "bookworm-py3.11-torch2.9.1-cu128-maintained", "3.11")
    _cell(envs, "bookworm-py3.10-torch2.6.0-cu124-legacy", "3.10")
    _cell(envs, "bookworm-py3.11-torch2.9.1-cpu-maintained", "3.11", status="index unreachable")
    path = tox.write(tmp_path, envs)
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(path)
    assert ini["tox"]["requires"].startswith("tox-uv")
    assert ini["tox"]["env_list"].split() == [
        "bookworm-py3.10-torch2.6.0-cu124-legacy",
        "bookworm-py3.11-torch2.9.1-cu128-maintained",
    ]
    env = ini["testenv:bookworm-py3.10-torch2.6.0-cu124-legacy"]
    assert env["base_python"] == "python3.10"
    assert env["deps"] == "-r environments/bookworm-py3.10-torch2.6.0-cu124-legacy/requirements.txt"
    assert "tests/smoke/run.py" in ini["testenv"]["commands"]
    assert "testenv:bookworm-py3.11-torch2.9.1-cpu-maintained" not in ini
