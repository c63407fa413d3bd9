"""The matrix corpus: every file under matrices/bad is refused with one positioned line, fast
and in bounded memory; every file under matrices/good is accepted.

Adding a case is dropping a file. A bad file's first line says what it expects,
`# expect: LINE:COL text in the message`; a file whose first line cannot say it (empty,
UTF-16, binary) has the same line in a sidecar `<name>.expect`. A good file's first line is
`# cells: N`, the number of cells it expands to.
"""

from __future__ import annotations

import codecs
import os
import re
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml

from audiomatrix.spec import matrix as spec
from audiomatrix.spec import yamlpos

CORPUS = Path(__file__).parent / "matrices"
BAD = sorted(p for p in (CORPUS / "bad").iterdir() if p.suffix == ".yaml")
GOOD = sorted((CORPUS / "good").glob("*.yaml"))
README = Path(__file__).parents[1] / "README.md"

SECONDS = 5.0
"""Each bad file fails well within this (most in milliseconds), traced allocations included."""
PEAK_BYTES = 64 * 2**20
"""Python allocations while refusing one bad file: an alias bomb or a million cells is not
built, so none comes near this."""


def _header(path: Path, sidecar_suffix: str | None = None) -> str:
    source = path.with_suffix(sidecar_suffix) if sidecar_suffix else path
    first = source.read_bytes().removeprefix(codecs.BOM_UTF8).split(b"\n", 1)[0]
    return first.decode("ascii").rstrip("\r")


def expectation(path: Path) -> tuple[int, int, str]:
    sidecar = path.with_suffix(".expect").exists()
    header = _header(path, ".expect" if sidecar else None)
    match = re.fullmatch(r"# expect: (\d+):(\d+) (.+)", header)
    assert match, f"{path.name}: its first line (or {path.stem}.expect) needs # expect: L:C text"
    return int(match[1]), int(match[2]), match[3]


def test_the_corpus_is_big_enough() -> None:
    assert len(BAD) >= 40
    assert len(GOOD) >= 10


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_matrix_is_one_positioned_line(path: Path) -> None:
    line, col, expected = expectation(path)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(spec.YamlFileError) as info:
            spec.load(path)
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    error = info.value
    assert str(error).splitlines() == [str(error)], "one line, whatever the file held"
    assert str(error).startswith(f"{path}:{line}:{col}: "), str(error)
    assert expected in error.message
    assert elapsed < SECONDS
    assert peak < PEAK_BYTES


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_matrix_is_accepted(path: Path) -> None:
    match = re.fullmatch(r"# cells: (\d+)", _header(path))
    assert match, f"{path.name}: its first line needs # cells: N"
    assert len(spec.load(path).cells) == int(match[1])


def test_a_quoted_and_an_unquoted_date_are_the_same_day() -> None:
    quoted = spec.load(CORPUS / "good" / "quoted-date.yaml")
    unquoted = spec.load(CORPUS / "good" / "unquoted-date.yaml")
    assert quoted.exclude_newer == unquoted.exclude_newer == "2026-11-20T00:00:00Z"


def test_a_file_over_the_size_limit_is_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "matrix.yaml"
    path.write_bytes(b"# padding\n" * (yamlpos.MAX_BYTES // 10 + 1))
    with pytest.raises(spec.YamlFileError) as info:
        spec.load(path)
    assert str(info.value) == (
        f"{path}:1:1: the file is over 512 KiB, the most a matrix file may be;"
        " is it the right file?"
    )


def test_the_cell_limit_is_the_callers(tmp_path: Path) -> None:
    small = CORPUS / "small.yaml"
    assert len(spec.load(small, max_cells=6).cells) == 6
    with pytest.raises(spec.YamlFileError) as info:
        spec.load(small, max_cells=5)
    assert "up to 6 cells" in info.value.message
    assert "over the limit of 5" in info.value.message


def test_readme_schema_example_is_a_valid_matrix() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("\n## The matrix schema\n") :]
    example = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert example, "README's matrix schema section has a ```yaml example"
    matrix = spec.parse(example[1], "README.md")
    assert [c.id for c in matrix.select(["ci"])] == ["bookworm-py3.11-torch2.9.1-cu128-maintained"]


# --------------------------------------------------------------------------- the command line


def audiomatrix(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audiomatrix", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


@pytest.mark.parametrize("name", ["latin1-byte", "utf16-with-bom", "binary", "alias-bomb"])
def test_cli_refuses_a_bad_file_with_one_line(name: str) -> None:
    path = CORPUS / "bad" / f"{name}.yaml"
    line, col, expected = expectation(path)
    proc = audiomatrix("cells", "--matrix", str(path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.rstrip("\n")]
    assert proc.stderr.startswith(f"{path}:{line}:{col}: ")
    assert expected in proc.stderr


def test_cli_cell_limit_from_the_environment() -> None:
    small = str(CORPUS / "small.yaml")
    proc = audiomatrix("cells", "--matrix", small, AUDIOMATRIX_MAX_CELLS="5")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"{small}:47:1: the matrix makes up to 6 cells (1 os x 1 python x 2 torch x"
        " 2 accelerator x 1 stack, plus 2 include), over the limit of 5; drop axis values,"
        " or allow more with --max-cells or AUDIOMATRIX_MAX_CELLS"
    )
    proc = audiomatrix("--max-cells", "6", "cells", "--matrix", small, "--json")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "path",
    [
        *BAD,
        *GOOD,
        README.parent / "matrix.yaml",
        README.parent / "src/audiomatrix/catalog/signatures.yaml",
    ],
    ids=lambda p: p.name,
)
def test_libyaml_reads_what_the_python_parser_reads(path: Path) -> None:
    """The fast parse (libyaml's events, the same composer) accepts only what the pure-Python
    parse accepts, and reads the same values at the same places; anything else goes to the
    Python parse, whose words the corpus checks."""
    if yamlpos._CParser is yaml.parser.Parser:
        pytest.skip("this PyYAML has no libyaml: every file takes the Python parse")
    try:
        text = yamlpos.decode(path.read_bytes(), path.name)
    except yamlpos.YamlFileError:
        return  # not UTF-8: refused before either parser sees it
    fast = yamlpos._load_fast(text, path.name)
    try:
        python = yamlpos._load_python(text, path.name)
    except yamlpos.YamlFileError:
        assert fast is None
        return
    assert fast is not None and fast == python
