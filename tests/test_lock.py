"""The lock stage's pure parts and its incremental skip (no network, no uv run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audiomatrix.core.files import sha256_file
from audiomatrix.lock import stage as lock
from audiomatrix.lock import uvtool
from audiomatrix.lock.installers import uv
from audiomatrix.records import cell as cell_file
from audiomatrix.spec.matrix import load

SMALL = Path(__file__).parent / "matrices" / "small.yaml"

# uv 0.13.9's answers, captured from real runs (stderr, not a terminal).
UV_NO_SOLUTION = """\
error: No solution found when resolving dependencies
  cause: Because there is no version of demucs==999 and you require demucs==999, \
we can conclude that your requirements are unsatisfiable.
"""
UV_NO_INDEX = """\
error: Request failed after 3 retries in 7.9s
  cause: Failed to fetch: https://download.pytorch.org/whl/cu128/torch/
  cause: error sending request for url (https://download.pytorch.org/whl/cu128/torch/)
  cause: client error (Connect)
  cause: dns error
  cause: error resolving DNS
  cause: failed to lookup address information: Name or service not known
"""


@pytest.fixture(scope="module")
def small():
    return load(SMALL)


def _cell(matrix, cell_id):
    (cell,) = matrix.select([cell_id])
    return cell


def test_requirements_pin_torch_and_its_pairs(small):
    cell = _cell(small, "bookworm-py3.11-torch2.9.1-cu128-bare")
    assert uv.requirements_for(cell, ["soundfile"]) == (
        "torch==2.9.1",
        "torchaudio==2.9.1",
        "torchcodec==0.8.1",
        "soundfile",
    )
    old = _cell(small, "bookworm-py3.11-torch2.5.1-cu124-bare")
    assert "torchcodec" not in " ".join(uv.requirements_for(old, []))


def test_default_index_only_where_it_serves_that_build(small):
    assert uv.index_for(_cell(small, "bookworm-py3.11-torch2.5.1-cu124-bare")) is None
    assert uv.index_for(_cell(small, "bookworm-py3.11-torch2.9.1-cu128-bare")) is None
    # torch 2.5.1's default wheels are CUDA 12.4, so a cu128 build needs the PyTorch index.
    assert (
        uv.index_for(_cell(small, "bookworm-py3.11-torch2.5.1-cu128-bare"))
        == "https://download.pytorch.org/whl/cu128"
    )


def test_uv_arguments_target_the_cell_not_this_machine(small):
    plan = uv.plan_for(_cell(small, "bookworm-py3.11-torch2.5.1-cu128-bare"), small)
    args = uv.uv_compile_args(plan, "out.txt")
    assert args[:3] == ["pip", "compile", "requirements.in"]
    for flag, value in [
        ("--python-version", "3.11"),
        ("--python-platform", "x86_64-manylinux_2_36"),
        ("--exclude-newer", "2026-11-20T00:00:00Z"),
        ("--extra-index-url", "https://download.pytorch.org/whl/cu128"),
        ("--output-file", "out.txt"),
    ]:
        assert args[args.index(flag) + 1] == value
    assert "--no-config" in args and "--generate-hashes" in args
    assert "--no-python-downloads" in args  # a lock is for a Python, not made with one
    assert "--emit-index-url" not in args


def test_machine_index_settings_never_reach_uv():
    env = {
        "PATH": "/bin",
        "SSL_CERT_FILE": "ca.pem",
        "UV_INDEX_URL": "http://mirror.invalid/simple",
        "UV_EXTRA_INDEX_URL": "x",
        "UV_FIND_LINKS": "/wheels",
        "PIP_INDEX_URL": "y",
        "PIP_FIND_LINKS": "/wheels",
        "UV_CACHE_DIR": "/cache",
    }
    assert uvtool.clean_environment(env) == {
        "PATH": "/bin",
        "SSL_CERT_FILE": "ca.pem",
        "UV_CACHE_DIR": "/cache",
    }


def test_uv_failure_becomes_one_line():
    line = uvtool.one_line(UV_NO_SOLUTION)
    assert "\n" not in line
    assert line == (
        "Because there is no version of demucs==999 and you require demucs==999, "
        "we can conclude that your requirements are unsatisfiable."
    )
    assert len(uvtool.one_line("x " * 1000, limit=50)) == 50
    network = uvtool.one_line(UV_NO_INDEX)
    assert network.startswith("Request failed after 3 retries in 7.9s Failed to fetch: https://")
    assert network.endswith("failed to lookup address information: Name or service not known")


def test_input_hash_changes_with_every_input(small):
    cell = _cell(small, "bookworm-py3.11-torch2.9.1-cu128-bare")
    plan = uv.plan_for(cell, small)
    other_reqs = uv.LockPlan(cell, (*plan.requirements, "numpy"), plan.index, None)
    other_date = uv.LockPlan(cell, plan.requirements, plan.index, "2020-01-01T00:00:00Z")
    other_index = uv.LockPlan(cell, plan.requirements, "https://example.invalid", None)
    hashes = {p.input_sha256 for p in (plan, other_reqs, other_date, other_index)}
    assert len(hashes) == 4


def _fake_lock(plan: uv.LockPlan, folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / uv.LOCK_FILE).write_text("soundfile==0.13.1 \\\n    --hash=sha256:00\n")
    lock_sha = sha256_file(folder / uv.LOCK_FILE)
    record = lock.new_record(plan, lock.Status.LOCKED, None, lock_sha)
    (folder / cell_file.CELL_FILE).write_text(json.dumps(record))


def test_unchanged_cell_is_not_relocked(small, tmp_path):
    plan = uv.plan_for(_cell(small, "bookworm-py3.11-torch2.9.1-cu128-bare"), small)
    folder = tmp_path / plan.cell.id
    _fake_lock(plan, folder)
    # uv does not exist here: reaching it would be an error result, not `unchanged`.
    result = uv.lock_cell(plan, folder, uv=str(tmp_path / "no-uv"))
    assert result.status is lock.Status.UNCHANGED


def test_an_unchanged_cell_leaves_its_record_untouched(small, tmp_path):
    """cell.json is the report's input: rewriting it unchanged would make every no-op
    `make matrix` write the report again."""
    plan = uv.plan_for(_cell(small, "bookworm-py3.11-torch2.9.1-cu128-bare"), small)
    folder = tmp_path / plan.cell.id
    _fake_lock(plan, folder)
    record = folder / cell_file.CELL_FILE
    uv.lock_cell(plan, folder, uv=str(tmp_path / "no-uv"))  # fills the record's defaults
    before = (record.read_bytes(), record.stat().st_mtime_ns)
    assert uv.lock_cell(plan, folder, uv=str(tmp_path / "no-uv")).status is lock.Status.UNCHANGED
    assert (record.read_bytes(), record.stat().st_mtime_ns) == before


def test_edited_lock_or_changed_inputs_relock(small, tmp_path):
    plan = uv.plan_for(_cell(small, "bookworm-py3.11-torch2.9.1-cu128-bare"), small)
    folder = tmp_path / plan.cell.id
    _fake_lock(plan, folder)
    no_uv = str(tmp_path / "no-uv")  # reaching uv at all means the cell is relocked
    changed = uv.LockPlan(plan.cell, (*plan.requirements, "numpy"), None, None)
    with pytest.raises(FileNotFoundError):
        uv.lock_cell(changed, folder, uv=no_uv)
    (folder / uv.LOCK_FILE).write_text("soundfile==0.12.0\n")
    with pytest.raises(FileNotFoundError):
        uv.lock_cell(plan, folder, uv=no_uv)
    (folder / cell_file.CELL_FILE).write_text('{"schema": 1, "cell": "truncated')
    with pytest.raises(FileNotFoundError):
        uv.lock_cell(plan, folder, uv=no_uv)


def test_not_buildable_cell_writes_nothing(small, tmp_path):
    cell = _cell(small, "bookworm-py3.11-torch2.9.1-cu124-bare")
    result = uv.lock_cell(uv.plan_for(cell, small), tmp_path / cell.id, uv="unused")
    assert result.status is lock.Status.NOT_BUILDABLE
    assert "CUDA 12.4 builds end at torch 2.6" in result.detail
    assert not (tmp_path / cell.id).exists()


def test_unreachable_index_is_reported_and_recorded(small, tmp_path):
    cell = _cell(small, "bookworm-py3.11-torch2.9.1-unreachable-bare")
    folder = tmp_path / cell.id
    result = uv.lock_cell(uv.plan_for(cell, small), folder, uv="unused")
    assert result.status is lock.Status.INDEX_UNREACHABLE
    assert result.detail.startswith("https://127.0.0.1:9/whl/cu999 does not answer")
    record = json.loads((folder / cell_file.CELL_FILE).read_text())
    assert record["status"] == "index unreachable" and record["lock"] is None
    assert not (folder / uv.LOCK_FILE).exists()


def test_unreachable_index_keeps_a_previous_lock_byte_identical(small, tmp_path):
    cell = _cell(small, "bookworm-py3.11-torch2.9.1-unreachable-bare")
    plan = uv.plan_for(cell, small)
    folder = tmp_path / cell.id
    _fake_lock(uv.LockPlan(cell, ("soundfile",), None, None), folder)  # older inputs
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = uv.lock_cell(plan, folder, uv="unused")
    assert result.status is lock.Status.INDEX_UNREACHABLE
    assert result.detail.endswith("kept the previous lock")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: {**r, "cell": "bookworm"}, "field 'cell': input should be an object"),
        (
            lambda r: {**r, "cell": {**r["cell"], "gpu_arch": "sm_90"}},
            "field 'cell.gpu_arch': input should be a valid array",
        ),
        (lambda r: {**r, "reason": ["a", "b"]}, "field 'reason': input should be a valid string"),
    ],
)
def test_a_damaged_cell_json_is_named_with_its_field(small, tmp_path, edit, message):
    plan = uv.plan_for(_cell(small, "bookworm-py3.11-torch2.9.1-cu128-bare"), small)
    folder = tmp_path / plan.cell.id
    _fake_lock(plan, folder)
    record = json.loads((folder / cell_file.CELL_FILE).read_text())
    (folder / cell_file.CELL_FILE).write_text(json.dumps(edit(record)))
    with pytest.raises(cell_file.RecordError) as caught:
        cell_file.read_record(folder)
    text = str(caught.value)
    assert text.startswith(f"{folder / cell_file.CELL_FILE}: {message}")
    assert text.endswith(f"rerun `audiomatrix lock --select {folder.name}`")
    assert "\n" not in text


def test_a_truncated_or_binary_cell_json_is_named_not_missing(tmp_path):
    folder = tmp_path / "cell"
    folder.mkdir()
    (folder / cell_file.CELL_FILE).write_text('{"schema": 1, "cell": {"id": "x", ')
    with pytest.raises(
        cell_file.RecordError, match=r"cell.json: not valid JSON: EOF while parsing"
    ):
        cell_file.read_record(folder)
    (folder / cell_file.CELL_FILE).write_bytes(b'{"schema": 1, "reason": "caf\xe9"}')
    with pytest.raises(
        cell_file.RecordError, match=r"cell.json: not UTF-8 text \(byte 28 is 0xe9\)"
    ):
        cell_file.read_record(folder)
    assert cell_file.read_record(tmp_path / "absent") is None
