"""tox.ini generated from the locks: one env per locked cell, installed from its lock."""

from __future__ import annotations

import configparser

from audiomatrix.publish import tox
from support import write_cell_json


def test_one_env_per_locked_cell(tmp_path) -> None:
    envs = tmp_path / "environments"
    write_cell_json(envs, "bookworm-py3.11-torch2.9.1-cu128-maintained")
    write_cell_json(envs, "bookworm-py3.10-torch2.6.0-cu124-legacy")
    write_cell_json(envs, "bookworm-py3.11-torch2.9.1-cpu-maintained", "index unreachable")
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
    assert "python -m audiomatrix.suite.run" in ini["testenv"]["commands"]
    assert "testenv:bookworm-py3.11-torch2.9.1-cpu-maintained" not in ini
