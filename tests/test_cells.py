"""Cells: ids, buildability from the facts, TorchCodec, selection, and the shipped matrix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from audiomatrix.lock.installers import cell_data
from audiomatrix.spec import matrix as spec
from audiomatrix.spec.cells import Cell, cell_id, unbuildable_reason
from audiomatrix.spec.schema import AcceleratorValue, Fact, OsValue, StackValue, TorchValue
from audiomatrix.spec.selection import SelectError

SHIPPED = Path(__file__).resolve().parents[1] / "matrix.yaml"
TAG_SAFE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")

TTS_REASON = (
    "stack legacy needs python <3.12: TTS 0.22 declares python_requires >=3.9,<3.12"
    " (https://github.com/coqui-ai/TTS/blob/v0.22.0/setup.py)"
)


@pytest.fixture(scope="module")
def matrix() -> spec.Matrix:
    return spec.load(SHIPPED)


@pytest.fixture(scope="module")
def cells(matrix: spec.Matrix) -> dict[str, Cell]:
    return {c.id: c for c in matrix.cells}


def ids(selected: list[Cell]) -> list[str]:
    return [c.id for c in selected]


# --------------------------------------------------------------------------- ids


def test_cell_id_format() -> None:
    assert (
        cell_id("bookworm", "3.11", "2.9.1", "cu128", "maintained")
        == "bookworm-py3.11-torch2.9.1-cu128-maintained"
    )


def test_every_shipped_id_is_tag_and_folder_safe_and_unique(matrix: spec.Matrix) -> None:
    all_ids = [c.id for c in matrix.cells]
    assert len(all_ids) == len(set(all_ids))
    for each in all_ids:
        assert TAG_SAFE.match(each), each
        assert each == each.lower()  # one folder on case-insensitive disks too
        assert "/" not in each and ".." not in each


def test_id_is_made_of_the_axes_in_order(cells: dict[str, Cell]) -> None:
    cell = cells["bookworm-py3.11-torch2.9.1-cu128-maintained"]
    assert [cell.axis(a) for a in spec.AXES] == ["bookworm", "3.11", "2.9.1", "cu128", "maintained"]
    assert cell.id == cell_id(*(cell.axis(a) for a in spec.AXES))


def test_ids_are_stable_across_parses() -> None:
    first = [c.id for c in spec.load(SHIPPED).cells]
    second = [c.id for c in spec.parse(SHIPPED.read_text(encoding="utf-8")).cells]
    assert first == second


# --------------------------------------------------------------------------- facts


LINUX = OsValue(family="linux", platform="x86_64-manylinux_2_36", runner="r", base="debian")
MACOS = OsValue(family="macos", platform="aarch64-apple-darwin", runner="macos-14")
TORCH = TorchValue(torchaudio="2.5.1")
CPU = AcceleratorValue(device="cpu", variant="cpu", index="https://example.org/cpu")
STACK = StackValue(packages=["demucs"], torchcodec=False, ffmpeg=False)
MPS = AcceleratorValue(
    device="mps",
    variant="cpu",
    index="https://example.org/cpu",
    requires=[Fact(os_family=["macos"], reason="Apple only", source="https://example.org/mps")],
)


def values(os: str = "bookworm", python: str = "3.11", torch: str = "2.5.1") -> dict[str, str]:
    return {"os": os, "python": python, "torch": torch, "accelerator": "cpu", "stack": "s"}


def test_no_fact_no_reason() -> None:
    assert unbuildable_reason(values(), LINUX, TORCH, CPU, STACK) is None


def test_os_family_fact_names_the_reason_and_source() -> None:
    reason = unbuildable_reason(values() | {"accelerator": "mps"}, LINUX, TORCH, MPS, STACK)
    assert reason == "accelerator mps needs os family macos: Apple only (https://example.org/mps)"
    assert unbuildable_reason(values(os="mac"), MACOS, TORCH, MPS, STACK) is None


def test_version_fact_uses_specifier_semantics() -> None:
    fact = Fact(python=">=3.10,<3.14", reason="wheels", source="https://example.org/w")
    torch = TorchValue(torchaudio="2.5.1", requires=[fact])
    assert unbuildable_reason(values(python="3.13"), LINUX, torch, CPU, STACK) is None
    assert (
        unbuildable_reason(values(python="3.14"), LINUX, torch, CPU, STACK)
        == "torch 2.5.1 needs python >=3.10,<3.14: wheels (https://example.org/w)"
    )
    # 3.10 is not 3.1: versions compare as versions, not as strings or floats.
    assert unbuildable_reason(values(python="3.10"), LINUX, torch, CPU, STACK) is None
    assert unbuildable_reason(values(python="3.9"), LINUX, torch, CPU, STACK) is not None


def test_accelerator_and_stack_name_facts() -> None:
    fact = Fact(accelerator=["cu128", "cu130"], reason="needs CUDA", source="https://example.org/c")
    stack = StackValue(packages=["x"], torchcodec=False, ffmpeg=False, requires=[fact])
    assert (
        unbuildable_reason(values(), LINUX, TORCH, CPU, stack)
        == "stack s needs accelerator cu128 or cu130: needs CUDA (https://example.org/c)"
    )


def test_first_broken_fact_wins_in_axis_order() -> None:
    # os facts, then torch, accelerator, stack: one reason per cell.
    torch_fact = Fact(python="<3.11", reason="torch says", source="https://example.org/t")
    stack_fact = Fact(python="<3.11", reason="stack says", source="https://example.org/s")
    torch = TorchValue(torchaudio="2.5.1", requires=[torch_fact])
    stack = StackValue(packages=["x"], torchcodec=False, ffmpeg=False, requires=[stack_fact])
    reason = unbuildable_reason(values(), LINUX, torch, CPU, stack)
    assert reason is not None and "torch says" in reason and "stack says" not in reason


def test_shipped_unbuildable_reasons_cite_reason_and_source(cells: dict[str, Cell]) -> None:
    cell = cells["bookworm-py3.11-torch2.5.1-cu128-legacy"]
    assert not cell.buildable
    assert cell.unbuildable == (
        "accelerator cu128 needs torch >=2.7: CUDA 12.8 builds, the first with Blackwell"
        " (sm_120) kernels, start at torch 2.7 (https://github.com/pytorch/pytorch/releases/tag/v2.7.0)"
    )
    cu130 = cells["bookworm-py3.12-torch2.8.0-cu130-maintained"]
    assert cu130.unbuildable == (
        "accelerator cu130 needs torch >=2.9: CUDA 13.0 builds start at torch 2.9"
        " (https://github.com/pytorch/pytorch/releases/tag/v2.9.0)"
    )
    for cell in cells.values():
        if not cell.buildable:
            assert re.search(r" needs .+: .+ \(https://\S+\)$", cell.unbuildable or ""), cell.id


def test_python_312_with_legacy_stack_is_never_buildable(cells: dict[str, Cell]) -> None:
    legacy_312 = [c for c in cells.values() if c.python == "3.12" and c.stack == "legacy"]
    assert legacy_312
    assert not any(c.buildable for c in legacy_312)
    assert cells["bookworm-py3.12-torch2.5.1-cpu-legacy"].unbuildable == TTS_REASON
    assert cells["noble-py3.12-torch2.9.1-cu128-legacy"].unbuildable == TTS_REASON
    data = cell_data(cells["bookworm-py3.12-torch2.5.1-cpu-legacy"])
    assert (data["buildable"], data["reason"]) == (False, TTS_REASON)


# --------------------------------------------------------------------------- torchcodec


def test_torchcodec_when_stack_wants_it_and_torch_pairs_one(cells: dict[str, Cell]) -> None:
    assert cells["bookworm-py3.11-torch2.9.1-cu128-maintained"].torchcodec == "0.9.1"
    assert cells["bookworm-py3.11-torch2.9.1-cu128-maintained-noffmpeg"].torchcodec == "0.9.1"
    assert cells["bookworm-py3.12-torch2.10.0-cu130-maintained"].torchcodec == "0.10.0"


def test_no_torchcodec_when_the_stack_does_not_want_it(cells: dict[str, Cell]) -> None:
    assert cells["bookworm-py3.11-torch2.9.1-cu128-maintained-nocodec"].torchcodec is None
    assert cells["bookworm-py3.11-torch2.9.1-cu128-legacy"].torchcodec is None


def test_no_torchcodec_when_torch_pairs_none(cells: dict[str, Cell]) -> None:
    # The maintained stack wants TorchCodec, but torch 2.5.1 pairs none.
    cell = cells["bookworm-py3.11-torch2.5.1-cu124-maintained"]
    assert cell.stack_value.torchcodec is True
    assert cell.torchcodec is None
    assert cell_data(cell)["torchcodec"] is None


def test_ffmpeg_only_in_images(cells: dict[str, Cell]) -> None:
    assert cell_data(cells["bookworm-py3.11-torch2.9.1-cu128-maintained"])["ffmpeg"] is True
    assert (
        cell_data(cells["bookworm-py3.11-torch2.9.1-cu128-maintained-noffmpeg"])["ffmpeg"] is False
    )
    # Native cells build no image, so no FFmpeg goes into one.
    assert cell_data(cells["macos-py3.11-torch2.9.1-mps-maintained"])["ffmpeg"] is False


# --------------------------------------------------------------------------- select


def test_select_no_terms_is_every_cell(matrix: spec.Matrix) -> None:
    assert matrix.select([]) == list(matrix.cells)


def test_select_same_axis_terms_are_alternatives(matrix: spec.Matrix) -> None:
    got = matrix.select(["torch=2.9.1", "torch=2.10.0"])
    assert got and {c.torch for c in got} == {"2.9.1", "2.10.0"}
    assert len(got) == len(matrix.select(["torch=2.9.1"])) + len(matrix.select(["torch=2.10.0"]))


def test_select_different_axes_must_all_hold(matrix: spec.Matrix) -> None:
    got = matrix.select(["torch=2.9.1", "stack=maintained", "os=bookworm", "python=3.11"])
    assert ids(got) == [
        "bookworm-py3.11-torch2.9.1-cpu-maintained",
        "bookworm-py3.11-torch2.9.1-cu124-maintained",
        "bookworm-py3.11-torch2.9.1-cu128-maintained",
        "bookworm-py3.11-torch2.9.1-cu130-maintained",
    ]


def test_select_axis_values_are_globs(matrix: spec.Matrix) -> None:
    got = matrix.select(["stack=maintained*", "torch=2.9.1", "python=3.11", "accelerator=cu128"])
    assert ids(got) == [
        "bookworm-py3.11-torch2.9.1-cu128-maintained",
        "bookworm-py3.11-torch2.9.1-cu128-maintained-nocodec",
        "bookworm-py3.11-torch2.9.1-cu128-maintained-noffmpeg",
        "bookworm-py3.11-torch2.9.1-cu128-maintained-conda",
    ]


def test_select_by_id_globs(matrix: spec.Matrix) -> None:
    assert ids(matrix.select(["bookworm-py3.11-torch2.9.1-cu128-maintained"])) == [
        "bookworm-py3.11-torch2.9.1-cu128-maintained"
    ]
    got = matrix.select(["macos-*", "windows-*"])  # ids are alternatives
    assert {c.os for c in got} == {"macos", "windows"}
    assert ids(got) == ids(matrix.select(["native"]))


def test_select_named_selection_and_an_axis(matrix: spec.Matrix) -> None:
    assert ids(matrix.select(["ci", "torch=2.9.1"])) == [
        "bookworm-py3.11-torch2.9.1-cu128-maintained"
    ]
    # A named selection and an id glob are alternatives.
    got = ids(matrix.select(["ci", "macos-py3.11-*"]))
    assert got == [
        "bookworm-py3.11-torch2.9.1-cu128-maintained",
        "bookworm-py3.11-torch2.5.1-cu124-legacy-pinned",
        "macos-py3.11-torch2.5.1-mps-legacy",
        "macos-py3.11-torch2.9.1-mps-maintained",
        "macos-py3.11-torch2.9.1-mps-maintained-conda",
    ]


def test_select_keeps_matrix_order(matrix: spec.Matrix) -> None:
    got = matrix.select(["windows-*", "bookworm-*"])
    order = [c.id for c in matrix.cells]
    assert [order.index(c.id) for c in got] == sorted(order.index(c.id) for c in got)


def test_select_unknown_axis(matrix: spec.Matrix) -> None:
    with pytest.raises(SelectError) as info:
        matrix.select(["stak=legacy"])
    assert str(info.value) == "--select 'stak=legacy': unknown axis 'stak' (did you mean 'stack'?)"


def test_select_term_that_matches_no_cell(matrix: spec.Matrix) -> None:
    with pytest.raises(SelectError) as info:
        matrix.select(["torch=2.9.1", "torch=1.13.1"])
    assert str(info.value) == (
        "--select 'torch=1.13.1' matches no cell;"
        " torch is one of 2.5.1, 2.6.0, 2.8.0, 2.9.1, 2.10.0, 2.11.0"
    )


def test_select_hints_one_equals_sign(matrix: spec.Matrix) -> None:
    with pytest.raises(SelectError) as info:
        matrix.select(["torch==2.9.1"])
    assert (
        str(info.value) == "--select 'torch==2.9.1' matches no cell; write one '=': 'torch=2.9.1'"
    )


def test_select_terms_that_together_match_no_cell(matrix: spec.Matrix) -> None:
    # macOS cells exist and CUDA 12.8 cells exist, but no macOS cell is a CUDA one.
    assert matrix.select(["os=macos"]) and matrix.select(["accelerator=cu128"])
    with pytest.raises(SelectError) as info:
        matrix.select(["os=macos", "accelerator=cu128"])
    assert str(info.value) == (
        "--select 'os=macos' 'accelerator=cu128': each matches a cell, but no cell matches"
        " them all (terms on different axes must all hold); drop one"
    )


def test_select_rejects_what_is_no_term(matrix: spec.Matrix) -> None:
    with pytest.raises(SelectError) as info:
        matrix.select(["torch 2.9.1"])
    assert str(info.value) == (
        "--select 'torch 2.9.1': not a cell id glob, an axis=value or a selection"
    )


# --------------------------------------------------------------------------- the shipped matrix


def test_shipped_matrix_parses(matrix: spec.Matrix) -> None:
    assert len(matrix.cells) > 100
    assert any(c.buildable for c in matrix.cells)
    assert matrix.exclude_newer == "2026-12-08T00:00:00Z"
    assert set(matrix.file.python) >= {"3.10", "3.11", "3.12", "3.13"}
    assert set(matrix.file.torch) >= {"2.5.1", "2.6.0", "2.9.1", "2.11.0"}
    assert any(t.startswith("2.8.") for t in matrix.file.torch)
    assert any(t.startswith("2.10.") for t in matrix.file.torch)
    assert set(matrix.file.accelerator) >= {"cpu", "cu128", "cu130", "mps"}
    assert {"legacy", "maintained"} <= set(matrix.file.stack)
    assert {c.os_value.family for c in matrix.cells} == {"linux", "macos", "windows"}


def test_shipped_ci_selection_is_two_buildable_linux_cells(matrix: spec.Matrix) -> None:
    ci = matrix.select(["ci"])
    assert len(ci) == 2
    assert all(c.buildable and c.os_value.family == "linux" for c in ci)
    # The old pinned stack and the current one.
    assert {(c.torch, c.stack) for c in ci} == {("2.5.1", "legacy-pinned"), ("2.9.1", "maintained")}


def test_shipped_old_pinned_stack(cells: dict[str, Cell]) -> None:
    cell = cells["bookworm-py3.11-torch2.5.1-cu124-legacy"]
    assert cell.buildable
    assert cell.torch_value.torchaudio == "2.5.1"
    assert "TTS==0.22.0" in cell.stack_value.packages


def test_shipped_torch_291_with_and_without_torchcodec(cells: dict[str, Cell]) -> None:
    with_codec = [c for c in cells.values() if c.torch == "2.9.1" and c.torchcodec and c.buildable]
    without = [
        c
        for c in cells.values()
        if c.torch == "2.9.1"
        and c.buildable
        and "coqui-tts" in c.stack_value.packages
        and c.torchcodec is None
    ]
    assert with_codec and without
    assert "bookworm-py3.11-torch2.9.1-cu128-maintained" in {c.id for c in with_codec}
    assert "bookworm-py3.11-torch2.9.1-cu128-maintained-nocodec" in {c.id for c in without}


def test_shipped_blackwell_cell(cells: dict[str, Cell]) -> None:
    cell = cells["bookworm-py3.12-torch2.10.0-cu130-maintained"]
    assert cell.buildable
    assert "sm_120" in cell_data(cell)["gpu_arch"]
    assert cell_data(cell)["base"] == "debian:bookworm-slim"


def test_shipped_diffrhythm_pin(matrix: spec.Matrix) -> None:
    pinned = matrix.select(["torch=2.6.0", "python=3.10"])
    assert [c for c in pinned if c.buildable]
    assert ids(matrix.select(["diffrhythm"])) == ids(matrix.select(["torch=2.6.0", "python=3.10"]))


def test_shipped_macos_mps_maintained(cells: dict[str, Cell]) -> None:
    cell = cells["macos-py3.11-torch2.9.1-mps-maintained"]
    assert cell.buildable
    data = cell_data(cell)
    assert (data["family"], data["device"], data["base"]) == ("macos", "mps", None)
    assert data["platform"] == "aarch64-apple-darwin"


def test_shipped_windows(matrix: spec.Matrix) -> None:
    windows = matrix.select(["os=windows"])
    assert [c for c in windows if c.buildable]
    assert all(cell_data(c)["platform"] == "x86_64-pc-windows-msvc" for c in windows)


def test_shipped_facts_hold_on_buildable_cells(matrix: spec.Matrix) -> None:
    for cell in matrix.cells:
        if not cell.buildable:
            continue
        assert cell.accelerator != "mps" or cell.os_value.family == "macos", cell.id
        if cell.accelerator_value.device == "cuda":
            assert cell.os_value.family != "macos", cell.id
        if cell.accelerator == "cu130":
            assert tuple(int(p) for p in cell.torch.split(".")[:2]) >= (2, 9), cell.id
        assert cell.torch_value.torchaudio.split(".")[:2] == cell.torch.split(".")[:2]
