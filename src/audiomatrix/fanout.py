"""CI fan-out: the GitHub Actions workflow and the docker-bake.hcl generated from the cells.

The workflow embeds the cells in a `plan` job whose outputs feed each shard's
`strategy.matrix.include` through `fromJSON`, so that no matrix passes GitHub's 256-job limit;
a final `report` job merges every cell's `results/<cell>/` and publishes the table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import yaml

from audiomatrix import lock
from audiomatrix.spec import Cell, Matrix

WORKFLOW_PATH = ".github/workflows/matrix.yml"
BAKE_PATH = "docker-bake.hcl"
MAX_JOBS = 256
"""GitHub's limit on the jobs one matrix may generate."""

TOOL_PYTHON = "3.11"
"""The interpreter audiomatrix itself runs on in CI."""

GPU_ARCH = "sm_120"
"""Cells whose CUDA build targets this architecture run on a labelled self-hosted GPU runner."""

CHECKOUT = "actions/checkout@v5"
SETUP_PYTHON = "actions/setup-python@v6"
UPLOAD = "actions/upload-artifact@v6"
DOWNLOAD = "actions/download-artifact@v7"
UPLOAD_PAGES = "actions/upload-pages-artifact@v4"
CELL_ARTIFACTS = "*-py*-torch*"
"""Matches every cell id (each cell's artifact is named by its id) and nothing else."""


def runs_on(cell: Cell) -> str | list[str]:
    """The runner a cell's job needs: its OS's runner, or a self-hosted GPU one for sm_120."""
    acc = cell.accelerator_value
    if acc.device == "cuda" and GPU_ARCH in acc.gpu_arch:
        return ["self-hosted", cell.os_value.family, "gpu", GPU_ARCH]
    return cell.os_value.runner


def shards(cells: Sequence[Cell], shard_size: int = MAX_JOBS) -> list[list[Cell]]:
    """The buildable cells in chunks of at most `shard_size`, in matrix order."""
    if not 1 <= shard_size <= MAX_JOBS:
        raise ValueError(f"shard_size must be 1 to {MAX_JOBS}, not {shard_size}")
    buildable = [c for c in cells if c.buildable]
    return [buildable[i : i + shard_size] for i in range(0, len(buildable), shard_size)]


def _entry(cell: Cell) -> dict[str, Any]:
    return {
        "cell": cell.id,
        "python": cell.python,
        "native": cell.os_value.native,
        "runs-on": runs_on(cell),
    }


def _setup(python: str = TOOL_PYTHON) -> list[dict[str, Any]]:
    return [
        {"uses": CHECKOUT},
        {"uses": SETUP_PYTHON, "with": {"python-version": python}},
        {"run": "python -m pip install uv"},
    ]


def _shard_job(index: int) -> dict[str, Any]:
    linux = "${{ !matrix.native }}"
    native = "${{ matrix.native }}"
    return {
        "name": "${{ matrix.cell }}",
        "needs": "plan",
        "runs-on": "${{ matrix.runs-on }}",
        "timeout-minutes": 180,
        "strategy": {
            "fail-fast": False,
            "matrix": {"include": f"${{{{ fromJSON(needs.plan.outputs.shard_{index}) }}}}"},
        },
        "defaults": {"run": {"shell": "bash"}},
        "steps": [
            {"uses": CHECKOUT},
            {
                "uses": SETUP_PYTHON,
                "with": {
                    # The cell's interpreter for its venv, then audiomatrix's (the default).
                    "python-version": f"${{{{ matrix.python }}}}\n{TOOL_PYTHON}\n",
                    "allow-prereleases": True,
                },
            },
            {"run": "python -m pip install uv"},
            {"name": "setup (image cells)", "if": linux, "run": "make setup"},
            {"name": "system packages", "if": linux, "run": "sudo make system"},
            {"name": "engine", "if": linux, "run": "make engine"},
            {
                "name": "smoke in the image",
                "if": linux,
                "run": '.venv/bin/audiomatrix smoke --select "$CELL"',
                "env": {"CELL": "${{ matrix.cell }}"},
            },
            {
                "name": "setup (native cells)",
                "if": native,
                "run": "python -m uv venv .venv --python "
                f"{TOOL_PYTHON}\npython -m uv pip install --python .venv -e '.[dev]'\n",
            },
            {
                "name": "smoke natively",
                "if": native,
                "run": '"$AM" smoke --native "$CELL"',
                "env": {
                    "CELL": "${{ matrix.cell }}",
                    "AM": "${{ runner.os == 'Windows' && '.venv/Scripts/audiomatrix'"
                    " || '.venv/bin/audiomatrix' }}",
                },
            },
            {
                "name": "upload results",
                "if": "${{ always() }}",
                "uses": UPLOAD,
                "with": {
                    # Named by the cell id: the report job downloads each into results/<id>/.
                    "name": "${{ matrix.cell }}",
                    "path": "results/${{ matrix.cell }}/",
                    "if-no-files-found": "warn",
                },
            },
        ],
    }


def _plan_job(groups: list[list[Cell]]) -> dict[str, Any]:
    env = {
        f"SHARD_{i}": json.dumps([_entry(c) for c in g], separators=(",", ":"))
        for i, g in enumerate(groups)
    }
    script = "".join(
        f'echo "shard_{i}=$SHARD_{i}" >> "$GITHUB_OUTPUT"\n' for i in range(len(groups))
    )
    return {
        "runs-on": "ubuntu-24.04",
        "outputs": {
            f"shard_{i}": f"${{{{ steps.cells.outputs.shard_{i} }}}}" for i in range(len(groups))
        },
        "steps": [{"id": "cells", "env": env, "run": script}],
    }


def _report_job(needs: list[str]) -> dict[str, Any]:
    return {
        "needs": needs,
        "if": "${{ always() }}",
        "runs-on": "ubuntu-24.04",
        "steps": [
            *_setup(),
            {"run": "make setup"},
            {
                "uses": DOWNLOAD,
                "with": {"pattern": CELL_ARTIFACTS, "path": "results"},
            },
            {"run": ".venv/bin/audiomatrix report"},
            {"uses": UPLOAD_PAGES, "with": {"path": "site/"}},
            {
                "uses": UPLOAD,
                "with": {
                    "name": "compatibility",
                    "path": "COMPATIBILITY.md\ncompatibility.json\n",
                },
            },
        ],
    }


def workflow(matrix: Matrix, cells: Sequence[Cell], shard_size: int = MAX_JOBS) -> dict[str, Any]:
    """The workflow as data."""
    groups = shards(cells, shard_size)
    jobs: dict[str, Any] = {"plan": _plan_job(groups)}
    names = [f"shard_{i}" for i in range(len(groups))]
    for i, name in enumerate(names):
        jobs[name] = _shard_job(i)
    jobs["report"] = _report_job(["plan", *names])
    return {
        "name": "matrix",
        "on": {"push": {"branches": ["main"]}, "pull_request": {}, "workflow_dispatch": {}},
        "permissions": {"contents": "read"},
        "jobs": jobs,
    }


def github_workflow(matrix: Matrix, cells: list[Cell], shard_size: int = MAX_JOBS) -> str:
    """The text of .github/workflows/matrix.yml for these cells (unbuildable ones left out)."""
    header = (
        "# generated by `audiomatrix ci github`, do not edit\n"
        f"# from {matrix.path}: edit it and run `audiomatrix ci github` again.\n"
    )
    body = yaml.safe_dump(
        workflow(matrix, cells, shard_size), sort_keys=False, width=1 << 30, allow_unicode=True
    )
    return header + body


def _hcl(value: str) -> str:
    return json.dumps(value)  # an HCL string literal is a JSON one for these characters


def bake_target(cell: Cell) -> str:
    """A bake target name: cell ids have dots, which bake does not allow in names."""
    return cell.id.replace(".", "_")


def bake_file(cells: Sequence[Cell]) -> str:
    """docker-bake.hcl: one target per buildable Linux cell and a `default` group of them all."""
    linux = [c for c in cells if c.buildable and not c.os_value.native]
    lines = ["# generated by `audiomatrix ci bake`, do not edit", ""]
    names = [bake_target(c) for c in linux]
    lines += ["group " + _hcl("default") + " {", "  targets = ["]
    lines += [f"    {_hcl(n)}," for n in names]
    lines += ["  ]", "}", ""]
    for cell, name in zip(linux, names, strict=True):
        data = cell.to_dict()
        args = {
            "BASE": data["base"],
            "PYTHON": data["python"],
            "LOCK": f"environments/{cell.id}/{lock.LOCK_FILE}",
            "FFMPEG": "1" if data["ffmpeg"] else "0",
            "CELL": data["id"],
        }
        lines += [
            f"target {_hcl(name)} {{",
            '  context = "."',
            '  dockerfile = "docker/Dockerfile"',
            "  args = {",
            *(f"    {key} = {_hcl(value)}" for key, value in args.items()),
            "  }",
            f"  tags = [{_hcl('audiomatrix/cell:' + cell.id)}]",
            "}",
            "",
        ]
    return "\n".join(lines)
