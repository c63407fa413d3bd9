"""The command line as a user meets it: exit codes, one-line errors, JSON that matches."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SMALL = Path(__file__).parent / "matrices" / "small.yaml"
SHIPPED = Path(__file__).parents[1] / "matrix.yaml"


def audiomatrix(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audiomatrix", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def test_bad_matrix_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "matrix.yaml"
    bad.write_text(SMALL.read_text().replace("  bookworm:\n    family", "  bookworm:\n    famly"))
    proc = audiomatrix("cells", "--matrix", str(bad))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip() == f"{bad}:7:5: unknown key 'famly' (did you mean 'family'?)"


def test_missing_matrix_file_is_one_line(tmp_path):
    proc = audiomatrix("lock", "--matrix", str(tmp_path / "nope.yaml"))
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == f"{tmp_path / 'nope.yaml'}:1:1: cannot read: No such file or directory"
    )


def test_bad_select_is_one_line_and_exit_2():
    proc = audiomatrix("cells", "--matrix", str(SMALL), "--select", "tourch=2.9.1")
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "--select 'tourch=2.9.1': unknown axis 'tourch' (did you mean 'torch'?)"
    )
    proc = audiomatrix("cells", "--matrix", str(SMALL), "--select", "torch=1.0")
    assert (
        proc.stderr.strip() == "--select 'torch=1.0' matches no cell; torch is one of 2.5.1, 2.9.1"
    )


def test_selects_that_together_match_nothing_are_one_line_and_exit_2():
    proc = audiomatrix(
        "cells", "--matrix", str(SMALL), "-s", "stack=impossible", "-s", "accelerator=cu124"
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip() == (
        "--select 'stack=impossible' 'accelerator=cu124': each matches a cell, but no cell"
        " matches them all (terms on different axes must all hold); drop one"
    )


def test_cells_json_lists_every_cell_with_reasons():
    proc = audiomatrix("cells", "--matrix", str(SMALL), "--json")
    assert proc.returncode == 0, proc.stderr
    cells = json.loads(proc.stdout)
    assert len(cells) == 6
    unbuildable = [c for c in cells if not c["buildable"]]
    assert [c["id"] for c in unbuildable] == ["bookworm-py3.11-torch2.9.1-cu124-bare"]
    assert unbuildable[0]["reason"].startswith("accelerator cu124 needs torch <2.7")


def test_global_and_command_selects_combine():
    proc = audiomatrix(
        "--matrix",
        str(SMALL),
        "--select",
        "torch=2.9.1",
        "cells",
        "--select",
        "accelerator=cu128",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    ids = [c["id"] for c in json.loads(proc.stdout)]
    assert ids == [
        "bookworm-py3.11-torch2.9.1-cu128-bare",
        "bookworm-py3.11-torch2.9.1-cu128-impossible",
    ]


def test_shipped_matrix_lists_not_buildable_cells_with_reasons():
    proc = audiomatrix("cells", "--matrix", str(SHIPPED))
    assert proc.returncode == 0, proc.stderr
    assert "not buildable:" in proc.stdout
    assert "TTS 0.22 declares" in proc.stdout
