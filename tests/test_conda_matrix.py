"""The conda keys of matrix.yaml: each mistake is one `file:line:col: message` line, like the
rest of the schema; a valid conda stack makes cells whose ids say so."""

from __future__ import annotations

import pytest

from audiomatrix.spec import matrix as spec
from condachannel import matrix_text

BASE = matrix_text(
    """\
  maintained:
    packages: [coqui-tts]
    torchcodec: false
    ffmpeg: true
  maintained-conda:
    installer: conda
    channels: [conda-forge]
    conda: ["librosa >=0.10"]
    packages: [coqui-tts]
    torchcodec: false
    ffmpeg: true
""",
    """\
  os: [bookworm]
  python: ["3.11"]
  torch: ["2.9.1"]
  accelerator: [cpu]
  stack: [maintained, maintained-conda]
""",
)
UV_STACK = "  maintained:\n    packages: [coqui-tts]\n    torchcodec: false\n    ffmpeg: true\n"
CONDA_PACKAGES = "    packages: [coqui-tts]\n    torchcodec: false\n    ffmpeg: true\nmatrix"


def edit(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


CASES = [
    (
        "conda-without-suffix",
        edit("  maintained-conda:\n", "  maintained-cf:\n").replace(
            "[maintained, maintained-conda]", "[maintained, maintained-cf]"
        ),
        "26:3: stack maintained-cf installs with conda: end its name in '-conda' so that its"
        " cells' ids say so",
    ),
    (
        "suffix-without-conda",
        edit(
            UV_STACK,
            UV_STACK + "  plain-conda: {packages: [demucs], torchcodec: false, ffmpeg: false}\n",
        ),
        "26:3: stack plain-conda ends in '-conda' but installs with uv: add `installer: conda`"
        " and its channels, or rename it",
    ),
    (
        "channels-on-a-uv-stack",
        edit(
            UV_STACK,
            UV_STACK.replace("    torchcodec", "    channels: [conda-forge]\n    torchcodec"),
        ),
        "22:3: stack.maintained: channels and conda are for stacks with `installer: conda` (and"
        " a name ending in '-conda'); add it or drop them",
    ),
    (
        "no-channels",
        edit("    channels: [conda-forge]\n", ""),
        "26:3: stack.maintained-conda: a conda stack needs `channels`, e.g. [conda-forge]",
    ),
    (
        "defaults-channel",
        edit("channels: [conda-forge]", "channels: [conda-forge, defaults]"),
        "28:29: 'defaults': every environment.yml ends in nodefaults; list the channels to use"
        " (e.g. conda-forge)",
    ),
    (
        "channel-not-a-name",
        edit("channels: [conda-forge]", "channels: [Conda Forge]"),
        "28:16: stack.maintained-conda.channels.0: input should be a channel name or its URL,"
        " got 'Conda Forge'",
    ),
    (
        "torch-from-pypi",
        edit(CONDA_PACKAGES, CONDA_PACKAGES.replace("[coqui-tts]", '[coqui-tts, "torch==2.9.1"]')),
        "30:27: 'torch==2.9.1': a conda cell takes torch, torchaudio and torchcodec from its"
        " channels, never from PyPI; drop it from packages",
    ),
    (
        "pytorch-declared-by-hand",
        edit('conda: ["librosa >=0.10"]', 'conda: ["librosa >=0.10", "pytorch >=2"]'),
        "29:31: 'pytorch >=2': audiomatrix writes pytorch into every conda cell's"
        " environment.yml from its axes; drop it here",
    ),
    (
        "empty-match-spec",
        edit('conda: ["librosa >=0.10"]', 'conda: ["librosa >=0.10", ""]'),
        "29:31: '' is not a conda match spec: missing package name",
    ),
    (
        "no-conda-smoke-requirements",
        edit("smoke_requirements_conda: [pytest]\n", ""),
        "26:16: stack maintained-conda installs with conda: list the smoke suite's conda"
        " packages in smoke_requirements_conda (e.g. [pytest, numpy, pysoundfile])",
    ),
    (
        "ffmpeg-in-the-suite's-packages",
        edit("smoke_requirements_conda: [pytest]", "smoke_requirements_conda: [pytest, ffmpeg]"),
        "3:36: 'ffmpeg': audiomatrix writes ffmpeg into every conda cell's environment.yml from"
        " its axes; drop it here",
    ),
    (
        "unknown-installer",
        edit("installer: conda", "installer: pixi"),
        "27:16: stack.maintained-conda.installer: input should be 'uv' or 'conda', got 'pixi'",
    ),
]


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_conda_mistakes_are_one_line_with_their_place(name: str, text: str, expected: str) -> None:
    with pytest.raises(spec.YamlFileError) as caught:
        spec.parse(text, "matrix.yaml")
    assert str(caught.value) == f"matrix.yaml:{expected}"
    assert "\n" not in str(caught.value)


def test_a_conda_stack_makes_a_conda_cell_beside_its_uv_twin() -> None:
    matrix = spec.parse(BASE, "matrix.yaml")
    assert [(c.id, c.installer) for c in matrix.cells] == [
        ("bookworm-py3.11-torch2.9.1-cpu-maintained", "uv"),
        ("bookworm-py3.11-torch2.9.1-cpu-maintained-conda", "conda"),
    ]
    assert matrix.select(["stack=*-conda"]) == [matrix.cells[1]]
