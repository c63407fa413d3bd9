"""A cell's record data: the resolved cell as cell.json, environments/cells.json and `cells
--json` hold it. Written here, by the lock stage, since what a cell records depends on its
installer (lock.installers.cell_data asks it for its additions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from audiomatrix.spec.cells import AXES, Cell, cell_id, stack_change


def resolved_cell(cell: Cell, additions: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved cell as data, with its installer's `additions` (which may replace a value,
    in place) and, for a remedy, its parent cell."""
    return {
        "id": cell.id,
        **{axis: cell.axis(axis) for axis in AXES},
        "family": cell.os_value.family,
        "platform": cell.os_value.platform,
        "base": cell.os_value.base,
        "runner": cell.os_value.runner,
        "torchaudio": cell.torch_value.torchaudio,
        "torchcodec": cell.torchcodec,
        "ffmpeg": cell.ffmpeg is not None,
        "ffmpeg_major": cell.ffmpeg.major if cell.ffmpeg else None,
        "ffmpeg_packages": list(cell.ffmpeg.packages) if cell.ffmpeg else [],
        "device": cell.accelerator_value.device,
        "variant": cell.accelerator_value.variant,
        "gpu_arch": list(cell.accelerator_value.gpu_arch),
        "packages": list(cell.stack_value.packages),
        "buildable": cell.buildable,
        "reason": cell.unbuildable,
        **additions,
        **_remedy_data(cell),
    }


def _remedy_data(cell: Cell) -> dict[str, Any]:
    """A remedy cell's parent cell and the change between them; nothing for other cells,
    so that their cell.json stays as it was."""
    parent = cell.stack_value.remedy_of
    if parent is None or cell.parent_stack is None:
        return {}
    return {
        "remedy_of": {
            "cell": cell_id(cell.os, cell.python, cell.torch, cell.accelerator, parent),
            "change": stack_change(cell.parent_stack, cell.stack_value),
        }
    }
