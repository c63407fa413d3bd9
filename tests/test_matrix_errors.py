"""Malformed matrices: each ends in one `matrix.yaml:LINE:COL: message` line.

Every case is BASE with one targeted edit, so the line numbers below are BASE's (line 1 is
`version: 1`) unless the edit adds or removes lines before the mistake.
"""

from __future__ import annotations

import pytest

from audiomatrix.spec import matrix as spec

BASE = """\
version: 1
smoke_requirements: [pytest, "numpy>=1.24"]
os:
  bookworm:
    family: linux
    base: debian:bookworm-slim
    platform: x86_64-manylinux_2_36
    runner: ubuntu-24.04
  macos:
    family: macos
    platform: aarch64-apple-darwin
    runner: macos-14
python: ["3.11", "3.12"]
torch:
  "2.5.1":
    torchaudio: "2.5.1"
  "2.9.1":
    torchaudio: "2.9.1"
    torchcodec: "0.8.1"
    requires:
      - python: ">=3.10"
        reason: torch 2.9 ships wheels for CPython 3.10 to 3.14
        source: https://github.com/pytorch/pytorch/blob/main/RELEASE.md
accelerator:
  cpu:
    device: cpu
    variant: cpu
    index: https://download.pytorch.org/whl/cpu
    pypi: {macos: ">=2"}
  cu128:
    device: cuda
    variant: cu128
    index: https://download.pytorch.org/whl/cu128
    gpu_arch: [sm_90, sm_120]
    requires:
      - torch: ">=2.7"
        reason: CUDA 12.8 builds start at torch 2.7
        source: https://github.com/pytorch/pytorch/releases/tag/v2.7.0
      - os_family: [linux, windows]
        reason: CUDA builds exist for Linux and Windows only
        source: https://pytorch.org/get-started/locally/
stack:
  legacy:
    packages: ["TTS==0.22.0", "demucs==4.0.1"]
    torchcodec: false
    ffmpeg: false
    requires:
      - python: "<3.12"
        reason: TTS 0.22 declares python_requires >=3.9,<3.12
        source: https://github.com/coqui-ai/TTS/blob/v0.22.0/setup.py
  maintained:
    packages: [coqui-tts, "demucs==4.1.0"]
    torchcodec: true
    ffmpeg: true
matrix:
  os: [bookworm]
  python: ["3.11", "3.12"]
  torch: ["2.5.1", "2.9.1"]
  accelerator: [cpu, cu128]
  stack: [legacy, maintained]
  exclude:
    - {python: "3.12", stack: legacy}
  include:
    - {os: macos, python: "3.11", torch: "2.9.1", accelerator: cpu, stack: maintained}
selections:
  ci: [bookworm-py3.11-torch2.5.1-cpu-legacy, bookworm-py3.11-torch2.9.1-cu128-maintained]
"""

MACOS_INCLUDE = (
    '    - {os: macos, python: "3.11", torch: "2.9.1", accelerator: cpu, stack: maintained}\n'
)


def edit(old: str, new: str) -> str:
    """BASE with its only occurrence of `old` replaced by `new`."""
    assert BASE.count(old) == 1, f"{old!r} must occur exactly once in BASE"
    return BASE.replace(old, new)


def block(start: str, end: str) -> str:
    """BASE's text from the line `start` up to the line `end` (excluded)."""
    return BASE[BASE.index(start) : BASE.index(end)]


CASES: list[tuple[str, str, str]] = [
    # ---- broken YAML
    (
        "unclosed-bracket",
        edit('\npython: ["3.11", "3.12"]\n', '\npython: ["3.11", "3.12"\n'),
        "14:1: invalid YAML: expected ',' or ']', but got '<scalar>'"
        " (while parsing a flow sequence started at line 13, column 9)",
    ),
    (
        "bad-indentation",
        edit("    runner: macos-14\n", "   runner: macos-14\n"),
        "12:4: invalid YAML: expected <block end>, but found '<block mapping start>';"
        " check the indentation (while parsing a block mapping started at line 4, column 3)",
    ),
    (
        "over-indented",
        edit("    runner: macos-14\n", "      runner: macos-14\n"),
        "12:13: invalid YAML: mapping values are not allowed here;"
        " check the indentation, or quote a value that contains ': '",
    ),
    (
        "tab",
        edit("    runner: macos-14\n", "\trunner: macos-14\n"),
        "12:1: invalid YAML: found character '\\t' that cannot start any token;"
        " indent with spaces, YAML does not allow tabs",
    ),
    (
        "control-character",
        edit("runner: macos-14", "runner: macos\x07-14"),
        "12:18: invalid YAML: unacceptable character #x0007: special characters are not allowed;"
        " delete it",
    ),
    (
        "unknown-tag",
        edit("    family: macos\n", "    family: !os macos\n"),
        "10:13: unsupported tag '!os': a matrix holds plain mappings, lists, strings, numbers"
        " and booleans; remove the tag",
    ),
    ("empty-file", "", "1:1: the file is empty"),
    ("only-comments", "# nothing yet\n", "1:1: the file is empty"),
    (
        "top-level-list",
        "- version: 1\n",
        "1:1: the top level must be a mapping of keys, got [{'version': 1}]",
    ),
    (
        "duplicate-yaml-key",
        edit("    runner: macos-14\n", "    runner: macos-14\n    runner: macos-15\n"),
        "13:5: duplicate key 'runner'",
    ),
    (
        "merge-key",
        edit("  macos:\n    family: macos\n", "  macos:\n    <<: {family: macos}\n"),
        "10:5: merge keys (<<) are not supported",
    ),
    # ---- wrong types
    (
        "unquoted-python-version",
        edit('\npython: ["3.11", "3.12"]\n', '\npython: [3.10, "3.12"]\n'),
        "13:10: python.0: input should be a valid string, got 3.1;"
        " write versions in quotes (YAML reads 3.1 as a number)",
    ),
    (
        "unquoted-python-in-matrix",
        edit('  python: ["3.11", "3.12"]\n  torch', '  python: [3.11, "3.12"]\n  torch'),
        "57:12: matrix.python.0: input should be a valid string, got 3.11;"
        " write versions in quotes (YAML reads 3.11 as a number)",
    ),
    (
        "unquoted-torch-key",
        edit('  "2.5.1":\n', "  2.5:\n"),
        "15:3: torch: key 2.5 is not valid: input should be a valid string;"
        " write versions in quotes (YAML reads 2.5 as a number)",
    ),
    (
        "unquoted-torch-in-include",
        edit('torch: "2.9.1", accelerator: cpu', "torch: 2.9, accelerator: cpu"),
        "64:42: torch value must be a string, got 2.9;"
        " write versions in quotes (YAML reads 2.9 as a number)",
    ),
    (
        "list-where-mapping-expected",
        edit('pypi: {macos: ">=2"}', "pypi: [macos]"),
        "29:11: accelerator.cpu.pypi: input should be a mapping of keys, got ['macos']",
    ),
    (
        "empty-os-value",
        edit(block("  macos:\n", "python:"), "  macos:\n"),
        "9:9: os.macos: input should be a mapping of keys, got None",
    ),
    (
        "string-where-list-expected",
        edit('packages: [coqui-tts, "demucs==4.1.0"]', "packages: coqui-tts"),
        "52:15: stack.maintained.packages: input should be a valid list, got 'coqui-tts'",
    ),
    (
        "string-matrix-axis",
        edit("  stack: [legacy, maintained]\n", "  stack: legacy\n"),
        "60:10: matrix.stack: input should be a valid list, got 'legacy'",
    ),
    (
        "bad-family",
        edit("    family: macos\n", "    family: darwin\n"),
        "10:13: os.macos.family: input should be 'linux', 'macos' or 'windows', got 'darwin'",
    ),
    (
        "boolean",
        edit("    ffmpeg: true\n", "    ffmpeg: maybe\n"),
        "54:13: stack.maintained.ffmpeg: input should be a valid boolean, got 'maybe'",
    ),
    (
        "index-not-https",
        edit("index: https://download.pytorch.org/whl/cu128", "index: download.pytorch.org/whl"),
        "33:12: accelerator.cu128.index: input should be an https:// URL,"
        " got 'download.pytorch.org/whl'",
    ),
    (
        "bad-gpu-arch",
        edit("gpu_arch: [sm_90, sm_120]", "gpu_arch: [sm_90, blackwell]"),
        "34:23: accelerator.cu128.gpu_arch.1: input should be a GPU architecture like 'sm_120',"
        " got 'blackwell'",
    ),
    (
        "python-not-a-version",
        edit('\npython: ["3.11", "3.12"]\n', '\npython: ["3.11", "py3.12"]\n'),
        "13:18: python.1: input should be a Python version like '3.11', got 'py3.12'",
    ),
    (
        "torch-key-not-a-full-version",
        edit('  "2.5.1":\n', '  "2.5":\n'),
        "15:3: torch: key '2.5' is not valid: input should be a version like '2.9.1'",
    ),
    (
        "wrong-schema-version",
        edit("version: 1\n", "version: 2\n"),
        "1:10: version: input should be 1, got 2",
    ),
    (
        "bad-date",
        edit("version: 1\n", "version: 1\nexclude_newer: soon\n"),
        "2:16: exclude_newer: 'soon' is not a date; write it as YYYY-MM-DD",
    ),
    # ---- unknown and missing keys
    (
        "unknown-top-level-key",
        edit("selections:\n", "selection:\n"),
        "65:1: unknown key 'selection' (did you mean 'selections'?)",
    ),
    (
        "unknown-key-no-suggestion",
        edit("version: 1\n", "version: 1\nfoo: bar\n"),
        "2:1: unknown key 'foo'",
    ),
    (
        "unknown-key-in-os",
        edit("    runner: macos-14\n", "    runners: macos-14\n"),
        "12:5: unknown key 'runners' (did you mean 'runner'?)",
    ),
    (
        "unknown-key-in-accelerator",
        edit("    gpu_arch: [sm_90, sm_120]\n", "    gpu_arches: [sm_90, sm_120]\n"),
        "34:5: unknown key 'gpu_arches' (did you mean 'gpu_arch'?)",
    ),
    (
        "unknown-key-in-fact",
        edit("        reason: CUDA 12.8 builds", "        reasons: CUDA 12.8 builds"),
        "37:9: unknown key 'reasons' (did you mean 'reason'?)",
    ),
    (
        "unknown-key-in-matrix",
        edit("  include:\n", "  includes:\n"),
        "63:3: unknown key 'includes' (did you mean 'include'?)",
    ),
    ("missing-version", edit("version: 1\n", ""), "1:1: missing key 'version'"),
    ("missing-runner", edit("    runner: macos-14\n", ""), "9:3: missing key 'runner'"),
    (
        "missing-torchaudio",
        edit('    torchaudio: "2.5.1"\n', '    torchcodec: "0.1.0"\n'),
        "15:3: missing key 'torchaudio'",
    ),
    (
        "missing-fact-source",
        edit("        source: https://github.com/pytorch/pytorch/releases/tag/v2.7.0\n", ""),
        "36:9: missing key 'source'",
    ),
    # ---- axes, include and exclude
    (
        "unknown-axis-in-include",
        edit("    - {os: macos, python", "    - {oss: macos, python"),
        "64:8: unknown axis 'oss' in include (did you mean 'os'?)",
    ),
    (
        "unknown-axis-in-exclude",
        edit('    - {python: "3.12", stack: legacy}', '    - {pyton: "3.12", stack: legacy}'),
        "62:8: unknown axis 'pyton' in exclude (did you mean 'python'?)",
    ),
    (
        "unknown-value-in-matrix-axis",
        edit("  accelerator: [cpu, cu128]\n", "  accelerator: [cpu, cu12]\n"),
        "59:22: unknown accelerator 'cu12' (did you mean 'cu128'?)",
    ),
    (
        "unknown-value-in-include",
        edit("stack: maintained}", "stack: maintaned}"),
        "64:76: unknown stack 'maintaned' (did you mean 'maintained'?)",
    ),
    (
        "unknown-value-in-exclude",
        edit('    - {python: "3.12", stack: legacy}', '    - {python: "3.12", stack: legasy}'),
        "62:31: unknown stack 'legasy' (did you mean 'legacy'?)",
    ),
    (
        "unknown-value-in-fact",
        edit("      - os_family: [linux, windows]\n", "      - accelerator: [cu129]\n"),
        "39:23: unknown accelerator 'cu129' (did you mean 'cu128'?)",
    ),
    (
        "empty-axis-in-matrix",
        edit("  accelerator: [cpu, cu128]\n", "  accelerator: []\n"),
        "59:3: matrix.accelerator is empty",
    ),
    (
        "axis-with-no-values",
        edit('\npython: ["3.11", "3.12"]\n', "\npython: []\n"),
        "13:1: python defines no values",
    ),
    (
        "axis-with-no-definitions",
        edit(block("accelerator:\n", "stack:\n"), "accelerator: {}\n"),
        "24:1: accelerator defines no values",
    ),
    (
        "duplicate-value-in-matrix-axis",
        edit("  stack: [legacy, maintained]\n", "  stack: [legacy, maintained, legacy]\n"),
        "60:31: duplicate value 'legacy' in matrix.stack",
    ),
    (
        "duplicate-python",
        edit('\npython: ["3.11", "3.12"]\n', '\npython: ["3.11", "3.12", "3.11"]\n'),
        "13:26: duplicate value '3.11' in python",
    ),
    (
        "empty-include-entry",
        edit("  include:\n", "  include:\n    - {}\n"),
        "64:7: matrix.include[0] is empty",
    ),
    (
        "include-entry-not-a-mapping",
        edit(MACOS_INCLUDE, '    - [macos, "3.11"]\n'),
        "64:7: matrix.include.0: input should be a mapping of keys, got ['macos', '3.11']",
    ),
    (
        "duplicate-cell-id",
        edit(MACOS_INCLUDE, MACOS_INCLUDE * 2),
        "65:7: duplicate cell id 'macos-py3.11-torch2.9.1-cpu-maintained'",
    ),
    (
        "incomplete-include-cell",
        edit("accelerator: cpu, stack: maintained}", "accelerator: cpu}"),
        "64:7: a cell lacks stack: every cell needs os, python, torch, accelerator, stack",
    ),
    # ---- the values' attributes and facts
    (
        "torch-torchaudio-do-not-pair",
        edit('torchaudio: "2.5.1"', 'torchaudio: "2.6.0"'),
        "16:17: torchaudio 2.6.0 does not pair with torch 2.5.1:"
        " a torchaudio release ships with the torch of the same major.minor",
    ),
    (
        "torchcodec-not-a-version",
        edit('torchcodec: "0.8.1"', "torchcodec: latest"),
        "19:17: torchcodec 'latest' is not a version",
    ),
    (
        "bad-specifier-in-fact",
        edit('      - python: "<3.12"', '      - python: "3.12+"'),
        "48:17: '3.12+' is not a version specifier (e.g. '>=2.7')",
    ),
    (
        "bad-specifier-in-pypi",
        edit('pypi: {macos: ">=2"}', 'pypi: {macos: "=>2"}'),
        "29:19: '=>2' is not a version specifier (e.g. '>=2.7')",
    ),
    (
        "bad-requirement",
        edit('"demucs==4.0.1"', '"demucs=4.0.1"'),
        "44:31: 'demucs=4.0.1' is not a requirement:"
        " Expected semicolon (after name with no version specifier) or end",
    ),
    (
        "fact-without-constraint",
        edit("      - os_family: [linux, windows]\n        reason:", "      - reason:"),
        "39:9: accelerator.cu128.requires.1: a fact needs at least one of python, torch,"
        " os_family, accelerator, stack",
    ),
    (
        "fact-source-not-a-url",
        edit("source: https://pytorch.org/get-started/locally/", "source: pytorch.org"),
        "41:17: accelerator.cu128.requires.1.source: input should be an https:// URL,"
        " got 'pytorch.org'",
    ),
    (
        "linux-without-base",
        edit("    base: debian:bookworm-slim\n", ""),
        "4:3: os.bookworm: a linux os needs `base`, the image its cells build on",
    ),
    (
        "macos-with-base",
        edit("    family: macos\n", "    family: macos\n    base: debian:bookworm-slim\n"),
        "9:3: os.macos: a macos os runs natively and takes no `base`",
    ),
    # ---- names
    (
        "uppercase-name",
        edit("  macos:\n", "  MacOS:\n"),
        "9:3: os: key 'MacOS' is not valid:"
        " input should be a lowercase name (a-z, 0-9, '.', '_', '-')",
    ),
    (
        "uppercase-value-in-matrix",
        edit("  accelerator: [cpu, cu128]\n", "  accelerator: [CPU, cu128]\n"),
        "59:17: matrix.accelerator.0: input should be a lowercase name (a-z, 0-9, '.', '_', '-'),"
        " got 'CPU'",
    ),
    # ---- selections
    (
        "selection-unknown-axis",
        edit("  ci: [bookworm", "  ci: [tourch=2.9.1, bookworm"),
        "66:8: selections.ci: 'tourch=2.9.1': unknown axis 'tourch' (did you mean 'torch'?)",
    ),
    (
        "selection-matches-no-cell",
        edit("  ci: [bookworm-py3.11-torch2.5.1-cpu-legacy,", "  ci: [bookworm-py3.13-*,"),
        "66:8: selections.ci: 'bookworm-py3.13-*' matches no cell;"
        " `audiomatrix cells` lists the cell ids",
    ),
]


def test_base_is_valid() -> None:
    matrix = spec.parse(BASE, "matrix.yaml")
    assert len(matrix.cells) == 13
    assert [c.id for c in matrix.select(["ci"])] == [
        "bookworm-py3.11-torch2.5.1-cpu-legacy",
        "bookworm-py3.11-torch2.9.1-cu128-maintained",
    ]


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 30
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_matrix(text: str, expected: str) -> None:
    with pytest.raises(spec.YamlFileError) as info:
        spec.parse(text, "matrix.yaml")
    assert str(info.value) == f"matrix.yaml:{expected}"
    # One line, and the parts agree with the text.
    assert "\n" not in str(info.value)
    line, col, message = expected.split(":", 2)
    assert (info.value.file, info.value.line, info.value.col) == (
        "matrix.yaml",
        int(line),
        int(col),
    )
    assert info.value.message == message.strip()


def test_error_names_the_file_it_was_given() -> None:
    with pytest.raises(spec.YamlFileError) as info:
        spec.parse("", "configs/other.yaml")
    assert str(info.value) == "configs/other.yaml:1:1: the file is empty"


def test_load_of_a_missing_file(tmp_path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(spec.YamlFileError) as info:
        spec.load(path)
    assert str(info.value) == f"{path}:1:1: cannot read: No such file or directory"
