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

from audiomatrix.core.versions import version_key
from audiomatrix.lock.installers import installer
from audiomatrix.records.compatibility import Compatibility
from audiomatrix.spec.cells import Cell
from audiomatrix.spec.conda_checks import CONDA_SUFFIX
from audiomatrix.spec.matrix import Matrix

WORKFLOW_PATH = ".github/workflows/matrix.yml"
BAKE_PATH = "docker-bake.hcl"
MAX_JOBS = 256
"""GitHub's limit on the jobs one matrix may generate."""

TOOL_PYTHON = "3.11"
"""The interpreter audiomatrix itself runs on in CI."""

GPU_RUNNERS = ("sm_120",)
"""The GPU architectures with labelled self-hosted runners (`self-hosted, linux, gpu, sm_120`):
each CUDA cell goes to those its measured wheel has kernels for, plus, per runner, one cell
whose wheel has none there (a negative control: it must report no kernel image)."""

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


def gpu_runner(arch: str) -> list[str]:
    return ["self-hosted", "linux", "gpu", arch]


def measured_kernels(table: Compatibility | None) -> dict[str, dict[str, str]]:
    """Each cell's measured verdict per GPU architecture (cell -> arch -> verdict), from its
    table rows (a row in an image first)."""
    found: dict[str, dict[str, str]] = {}
    rows = sorted(table.rows + table.apart, key=lambda r: r.where.kind != "image") if table else []
    for row in rows:
        if row.gpu and row.cell not in found:
            found[row.cell] = {arch: k.verdict for arch, k in row.gpu.items()}
    return found


def gpu_entries(
    cells: Sequence[Cell], table: Compatibility | None, runners: Sequence[str] = GPU_RUNNERS
) -> list[dict[str, Any]]:
    """The GPU jobs, driven by the measured kernels: each CUDA Linux cell on every runner its
    wheel has kernels for (expecting the accelerator check to pass), and per runner the
    oldest cell whose wheel has none there (expecting no kernel image). A cell never measured
    has no GPU job: nothing says which GPUs it can run on."""
    kernels = measured_kernels(table)
    cuda = [
        c for c in cells
        if c.buildable and not c.os_value.native and c.accelerator_value.device == "cuda"
        and c.id in kernels
    ]  # fmt: skip
    entries = []
    for arch in runners:
        for cell in cuda:
            verdict = kernels[cell.id].get(arch)
            if verdict in ("native", "ptx-jit"):
                entries.append(_entry(cell, arch, verdict))
        lacking = [c for c in cuda if kernels[c.id].get(arch) == "no-kernel-image"]
        if lacking:
            control = min(lacking, key=lambda c: (version_key(c.torch), c.id))
            entries.append(_entry(control, arch, "no-kernel-image"))
    return entries


def shards(cells: Sequence[Cell], shard_size: int = MAX_JOBS) -> list[list[Cell]]:
    """The buildable cells in chunks of at most `shard_size`, in matrix order."""
    if not 1 <= shard_size <= MAX_JOBS:
        raise ValueError(f"shard_size must be 1 to {MAX_JOBS}, not {shard_size}")
    buildable = [c for c in cells if c.buildable]
    return [buildable[i : i + shard_size] for i in range(0, len(buildable), shard_size)]


def _entry(cell: Cell, gpu: str = "", expect: str = "") -> dict[str, Any]:
    """A job: the cell on its OS's runner, or on a GPU runner expecting a verdict there."""
    return {
        "cell": cell.id,
        "artifact": f"{cell.id}@{gpu}" if gpu else cell.id,
        "python": cell.python,
        "native": cell.os_value.native,
        "conda": installer(cell.installer).LOCKED_IN_CI,
        "runs-on": gpu_runner(gpu) if gpu else cell.os_value.runner,
        "gpu": gpu,
        "expect": expect,
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


PUBLISHING = (
    "${{ !matrix.native && matrix.gpu == '' && github.event_name == 'push' "
    "&& github.ref == 'refs/heads/main' && vars.AUDIOMATRIX_REGISTRY != '' }}"
)
"""A pushed commit on main publishes its tested images where the repository says
(the variable AUDIOMATRIX_REGISTRY: host[/namespace], e.g. the repository's own registry)."""
PUBLISH = """\
echo "$TOKEN" | docker login "${REGISTRY%%/*}" -u "$ACTOR" --password-stdin
.venv/bin/audiomatrix report
.venv/bin/audiomatrix publish "$CELL" --registry "$REGISTRY"
"""


def _shard_job(output: str) -> dict[str, Any]:
    linux = "${{ !matrix.native }}"
    native = "${{ matrix.native }}"
    with_conda = "${{ matrix.conda }}"
    return {
        "name": "${{ matrix.artifact }}",
        "needs": "plan",
        "runs-on": "${{ matrix.runs-on }}",
        "timeout-minutes": 180,
        "permissions": {"contents": "read", "packages": "write"},
        "strategy": {
            "fail-fast": False,
            "matrix": {"include": f"${{{{ fromJSON(needs.plan.outputs.{output}) }}}}"},
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
                "name": "publish the tested image",
                "if": PUBLISHING,
                "run": PUBLISH,
                "env": {
                    "CELL": "${{ matrix.cell }}",
                    "REGISTRY": "${{ vars.AUDIOMATRIX_REGISTRY }}",
                    "TOKEN": "${{ secrets.GITHUB_TOKEN }}",
                    "ACTOR": "${{ github.actor }}",
                },
            },
            {
                "name": "upload results",
                "if": "${{ always() }}",
                "uses": UPLOAD,
                "with": {
                    # Paths from the repository root: the report job merges every job's files.
                    "name": "${{ matrix.artifact }}",
                    "path": "results/${{ matrix.cell }}/\npublications/${{ matrix.cell }}.json\n"
                    "sboms/${{ matrix.cell }}.cdx.json\n",
                    "if-no-files-found": "warn",
                },
            },
        ],
    }


def _plan_job(groups: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Each shard's jobs as a step output, so no job matrix is written out past 256."""
    env = {name.upper(): json.dumps(g, separators=(",", ":")) for name, g in groups.items()}
    lines = "".join(f'  echo "{name}=${name.upper()}"\n' for name in groups)
    script = f'{{\n{lines}}} >> "$GITHUB_OUTPUT"\n'  # one redirect (shellcheck SC2129)
    return {
        "if": NOT_SCHEDULED,
        "runs-on": "ubuntu-24.04",
        "outputs": {name: f"${{{{ steps.cells.outputs.{name} }}}}" for name in groups},
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
        "if": "${{ always() && github.event_name != 'schedule' }}",
        "runs-on": "ubuntu-24.04",
        "permissions": {"contents": "write", "pages": "write"},
        "steps": [
            *_setup(),
            {"run": "make setup"},
            {
                "uses": DOWNLOAD,
                "with": {"pattern": CELL_ARTIFACTS, "path": ".", "merge-multiple": True},
            },
            *(conda_locks if conda_cells else []),
            # Fails when a GPU observed other than the wheel's code predicted.
            {"run": ".venv/bin/audiomatrix report --check-gpu"},
            {"uses": UPLOAD_PAGES, "with": {"path": "site/"}},
            {
                "uses": UPLOAD,
                "with": {
                    "name": "compatibility",
                    "path": "COMPATIBILITY.md\ncompatibility.json\n",
                },
            },
            {
                # So that `audiomatrix pull` works for anyone: the publications (digests,
                # SBOMs) and the table they belong to land on main.
                "name": "commit the table and the publications",
                "if": "${{ github.event_name == 'push' && github.ref == 'refs/heads/main' }}",
                "run": COMMIT_TABLE,
            },
        ],
    }


COMMIT_TABLE = """\
git config user.name "github-actions[bot]"
git config user.email "github-actions[bot]@users.noreply.github.com"
git add results publications sboms environments COMPATIBILITY.md compatibility.json site
if ! git diff --cached --quiet; then
  git commit -m "matrix: results, table and publications" && git push
fi
"""


NOT_SCHEDULED = "${{ github.event_name != 'schedule' }}"
"""The fan-out's jobs run on pushes, pull requests and by hand; the schedule runs the refresh."""
WEEKLY = "17 5 * * 1"
"""Mondays at 05:17 UTC: the week's releases relocked, the moved cells run, a pull request."""
REFRESH_BRANCH = "audiomatrix/refresh"

REFRESH = """\
git show HEAD:compatibility.json > "$RUNNER_TEMP/previous.json"
.venv/bin/audiomatrix refresh --as-of today | tee "$RUNNER_TEMP/refresh.txt"
mapfile -t moved < <(git ls-files --modified --others -- 'environments/*/requirements.txt' \\
  | cut -d/ -f2)
if [ "${#moved[@]}" -eq 0 ]; then
  echo "moved=false" >> "$GITHUB_OUTPUT"
  exit 0
fi
echo "moved=true" >> "$GITHUB_OUTPUT"
chosen=()
for cell in "${moved[@]}"; do chosen+=(--select "$cell"); done
.venv/bin/audiomatrix sweep "${chosen[@]}" || echo "the sweep failed for a cell: see above"
"""
"""Relock every cell as of today; where a lock moved, run exactly the moved Linux cells (the
sweep skips what it already ran: the native cells run on the pull request's merge)."""

REFRESH_PR = """\
.venv/bin/audiomatrix report --check-index --previous "$RUNNER_TEMP/previous.json"
.venv/bin/audiomatrix diff "$RUNNER_TEMP/previous.json" compatibility.json \\
  > "$RUNNER_TEMP/diff.txt" || [ $? -eq 1 ]
{
  echo "The week's releases, relocked by \\`audiomatrix refresh\\`; the moved cells ran here."
  echo
  echo '### What moved under the table'
  echo '```'
  sed -n '/^by what moved under them:$/,$p' "$RUNNER_TEMP/diff.txt"
  echo '```'
  echo '### The locks that moved'
  echo '```'
  cat "$RUNNER_TEMP/refresh.txt"
  echo '```'
} | head -c 60000 > "$RUNNER_TEMP/body.md"
git config user.name "github-actions[bot]"
git config user.email "github-actions[bot]@users.noreply.github.com"
git switch -C "$BRANCH"
git add matrix.yaml environments results COMPATIBILITY.md compatibility.json site
git commit -m "refresh: the locks as of $(date -u +%F), the moved cells run, the table"
git push --force origin "$BRANCH"
open=$(gh pr list --head "$BRANCH" --state open --json number --jq '.[0].number')
if [ -n "$open" ]; then
  gh pr edit "$open" --body-file "$RUNNER_TEMP/body.md"
else
  gh pr create --head "$BRANCH" --base "$BASE" --title "refresh: this week's releases" \\
    --body-file "$RUNNER_TEMP/body.md"
fi
"""
"""The new locks, results and table on one branch, and its pull request opened or updated
with the grouped diff and the moves; the workflow's token is passed only as GH_TOKEN."""


def _refresh_job() -> dict[str, Any]:
    return {
        "if": "${{ github.event_name == 'schedule' }}",
        "runs-on": "ubuntu-24.04",
        "timeout-minutes": 360,
        "permissions": {"contents": "write", "pull-requests": "write"},
        "defaults": {"run": {"shell": "bash"}},
        "steps": [
            *_setup(),
            {"run": "make setup"},
            {"name": "system packages", "run": "sudo make system"},
            {"name": "engine", "run": "make engine"},
            {"name": "refresh, and run the moved cells", "id": "refresh", "run": REFRESH},
            {
                "name": "the table, its diff and the pull request",
                "if": "${{ always() && steps.refresh.outputs.moved == 'true' }}",
                "run": REFRESH_PR,
                "env": {
                    "BRANCH": REFRESH_BRANCH,
                    "BASE": "${{ github.event.repository.default_branch }}",
                    "GH_TOKEN": "${{ secrets.GITHUB_TOKEN }}",
                },
            },
        ],
    }


def _conda_tests_job() -> dict[str, Any]:
    """The project's tests that need a conda channel (marked `conda`): real conda-lock solves
    against conda-forge, which GitHub's runners reach."""
    return {
        "if": NOT_SCHEDULED,
        "runs-on": "ubuntu-24.04",
        "steps": [*_setup(), _micromamba(), {"run": "make setup"}, {"run": "make test-conda"}],
    }


def chunks(entries: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [entries[i : i + size] for i in range(0, len(entries), size)]


def workflow(
    matrix: Matrix,
    cells: Sequence[Cell],
    shard_size: int = MAX_JOBS,
    table: Compatibility | None = None,
    runners: Sequence[str] = GPU_RUNNERS,
) -> dict[str, Any]:
    """The workflow as data: every buildable cell on its OS's runner, then the GPU jobs the
    measured kernels call for (`table`: the committed compatibility.json)."""
    cpu = shards(cells, shard_size)
    gpu = chunks(gpu_entries(cells, table, runners), shard_size)
    groups = {f"shard_{i}": [_entry(c) for c in g] for i, g in enumerate(cpu)}
    groups |= {f"gpu_{i}": g for i, g in enumerate(gpu)}
    conda_cells = any(installer(c.installer).LOCKED_IN_CI and c.buildable for c in cells)
    jobs: dict[str, Any] = {"plan": _plan_job(groups)}
    names = list(groups)
    for name in names:
        jobs[name] = _shard_job(name)
    if conda_cells:
        jobs["conda-tests"] = _conda_tests_job()
    jobs["report"] = _report_job(["plan", *names], conda_cells)
    jobs["refresh"] = _refresh_job()
    return {
        "name": "matrix",
        "on": {
            "push": {"branches": ["main"]},
            "pull_request": {},
            "workflow_dispatch": {},
            "schedule": [{"cron": WEEKLY}],
        },
        "permissions": {"contents": "read"},
        "jobs": jobs,
    }


def github_workflow(
    matrix: Matrix,
    cells: list[Cell],
    shard_size: int = MAX_JOBS,
    table: Compatibility | None = None,
    runners: Sequence[str] = GPU_RUNNERS,
) -> str:
    """The text of .github/workflows/matrix.yml for these cells (unbuildable ones left out)."""
    header = (
        "# generated by `audiomatrix ci github`, do not edit\n"
        f"# from {matrix.path}: edit it and run `audiomatrix ci github` again.\n"
    )
    body = yaml.safe_dump(
        workflow(matrix, cells, shard_size, table, runners),
        sort_keys=False,
        width=1 << 30,
        allow_unicode=True,
    )
    return header + body
