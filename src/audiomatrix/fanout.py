"""CI fan-out: the GitHub Actions workflow and the docker-bake.hcl generated from the cells.

The workflow embeds the cells in a `plan` job whose outputs feed each shard's
`strategy.matrix.include` through `fromJSON`, so that no matrix passes GitHub's 256-job limit;
a final `report` job merges every cell's `results/<cell>/` and publishes the table. Conda cells
are locked in their own job (GitHub's runners reach the channel; micromamba is set up there for
conda-lock and the image), and their lock travels back with their results to the report job.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import yaml

from audiomatrix import conda, lock
from audiomatrix.condacheck import CONDA_SUFFIX
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
SETUP_MICROMAMBA = "mamba-org/setup-micromamba@v2"
CELL_ARTIFACTS = "*-py*-torch*"
"""Matches every cell id (each cell's artifact is named by its id) and nothing else."""

CONDA_LOCK_IN_RESULTS = "lock"
"""Where a conda cell's job puts the lock it locked and ran, inside its results artifact; the
report job moves it back to environments/<cell>/."""

AUDIOMATRIX = (
    "${{ runner.os == 'Windows' && '.venv/Scripts/audiomatrix' || '.venv/bin/audiomatrix' }}"
)
"""The project's command in the shard's venv, on every runner."""


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
        "conda": cell.installer == "conda",
        "runs-on": runs_on(cell),
    }


def _setup(python: str = TOOL_PYTHON) -> list[dict[str, Any]]:
    return [
        {"uses": CHECKOUT},
        {"uses": SETUP_PYTHON, "with": {"python-version": python}},
        {"run": "python -m pip install uv"},
    ]


def _micromamba() -> dict[str, Any]:
    """micromamba alone (no environment, no shell init): conda-lock's solver and the binary
    a conda image installs its lock with."""
    return {
        "name": "micromamba (conda cells)",
        "uses": SETUP_MICROMAMBA,
        "with": {"init-shell": "none", "post-cleanup": "none"},
    }


def _shard_job(index: int) -> dict[str, Any]:
    linux = "${{ !matrix.native }}"
    native = "${{ matrix.native }}"
    with_conda = "${{ matrix.conda }}"
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
            {**_micromamba(), "if": with_conda},
            {"name": "setup (image cells)", "if": linux, "run": "make setup"},
            {"name": "system packages", "if": linux, "run": "sudo make system"},
            {"name": "engine", "if": linux, "run": "make engine"},
            {
                "name": "setup (native cells)",
                "if": native,
                "run": "python -m uv venv .venv --python "
                f"{TOOL_PYTHON}\npython -m uv pip install --python .venv -e '.[dev]'\n",
            },
            {
                # Unchanged where the committed lock is current (by its content hash).
                "name": "lock (conda cells)",
                "if": with_conda,
                "run": '"$AM" lock --select "$CELL"',
                "env": {"CELL": "${{ matrix.cell }}", "AM": AUDIOMATRIX},
            },
            {
                "name": "smoke in the image",
                "if": linux,
                "run": '.venv/bin/audiomatrix smoke --select "$CELL"',
                "env": {"CELL": "${{ matrix.cell }}"},
            },
            {
                "name": "smoke natively",
                "if": native,
                "run": '"$AM" smoke --native "$CELL"',
                "env": {"CELL": "${{ matrix.cell }}", "AM": AUDIOMATRIX},
            },
            {
                "name": "keep the conda lock with the results",
                "if": "${{ always() && matrix.conda }}",
                "run": f'mkdir -p "results/$CELL/{CONDA_LOCK_IN_RESULTS}"\n'
                f'cp environments/"$CELL"/* "results/$CELL/{CONDA_LOCK_IN_RESULTS}/"\n',
                "env": {"CELL": "${{ matrix.cell }}"},
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


CONDA_LOCKS_BACK = f"""\
for made in results/*/{CONDA_LOCK_IN_RESULTS}; do
  [ -d "$made" ] || continue
  cell=$(basename "$(dirname "$made")")
  rm -rf "environments/$cell"
  mv "$made" "environments/$cell"
done
"""


def _report_job(needs: list[str], conda_cells: bool) -> dict[str, Any]:
    conda_locks = [
        {"name": "conda locks back into environments/", "run": CONDA_LOCKS_BACK},
        {
            # For committing: the conda cells' locks as their jobs made and ran them.
            "uses": UPLOAD,
            "with": {
                "name": "conda-locks",
                "path": f"environments/*{CONDA_SUFFIX}/\n",
                "if-no-files-found": "ignore",
            },
        },
    ]
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
            *(conda_locks if conda_cells else []),
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


def _conda_tests_job() -> dict[str, Any]:
    """The project's tests that need a conda channel (marked `conda`): real conda-lock solves
    against conda-forge, which GitHub's runners reach."""
    return {
        "runs-on": "ubuntu-24.04",
        "steps": [*_setup(), _micromamba(), {"run": "make setup"}, {"run": "make test-conda"}],
    }


def workflow(matrix: Matrix, cells: Sequence[Cell], shard_size: int = MAX_JOBS) -> dict[str, Any]:
    """The workflow as data."""
    groups = shards(cells, shard_size)
    conda_cells = any(c.installer == "conda" for g in groups for c in g)
    jobs: dict[str, Any] = {"plan": _plan_job(groups)}
    names = [f"shard_{i}" for i in range(len(groups))]
    for i, name in enumerate(names):
        jobs[name] = _shard_job(i)
    if conda_cells:
        jobs["conda-tests"] = _conda_tests_job()
    jobs["report"] = _report_job(["plan", *names], conda_cells)
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
        folder = f"environments/{cell.id}"
        files = {"LOCK": f"{folder}/{lock.LOCK_FILE}", "FFMPEG": "1" if data["ffmpeg"] else "0"}
        dockerfile = "docker/Dockerfile"
        if cell.installer == "conda":  # its environment brings its own FFmpeg
            sub = conda.subdir(cell.os_value.platform) or ""
            files = {
                "CONDA_LOCK": f"{folder}/{conda.explicit_file(sub)}",
                "PIP_LOCK": f"{folder}/{conda.pip_file(sub)}",
            }
            dockerfile = "docker/conda.Dockerfile"
        args = {"BASE": data["base"], "PYTHON": data["python"], **files, "CELL": data["id"]}
        lines += [
            f"target {_hcl(name)} {{",
            '  context = "."',
            f"  dockerfile = {_hcl(dockerfile)}",
            "  args = {",
            *(f"    {key} = {_hcl(value)}" for key, value in args.items()),
            "  }",
            f"  tags = [{_hcl('audiomatrix/cell:' + cell.id)}]",
            "}",
            "",
        ]
    return "\n".join(lines)
