"""audiomatrix.suite.golden against the real torch of a cell: fixed weights, the tolerance
float32 arithmetic allows, and the control that must exceed it.

Runs inside the CI cells' venvs (it needs torch), started by tests/test_native_smoke.py.
"""

from __future__ import annotations

import numpy as np
import torch

from audiomatrix.suite import golden


def _net() -> torch.nn.Module:
    """A small audio-shaped network: convolutions, a norm, a linear head."""
    return torch.nn.Sequential(
        torch.nn.Conv1d(2, 48, 7, padding=3),
        torch.nn.GroupNorm(4, 48),
        torch.nn.GELU(),
        torch.nn.Conv1d(48, 48, 5, padding=2),
        torch.nn.Tanh(),
        torch.nn.Conv1d(48, 2, 3, padding=1),
    )


def _fixed(shift: float = 0.0, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = _net()
    golden.fixed_weights(model, shift)
    return model.eval()


def _input() -> torch.Tensor:
    return torch.from_numpy(golden.stable_uniform("input", 2 * 4000, 0.5).reshape(1, 2, 4000))


def _estimate(output: torch.Tensor, reference: torch.Tensor) -> float:
    """The relative error as the report estimates it, from the two outputs' sketches."""
    ours = np.array(golden.sketch(output.detach().double().numpy()))
    theirs = np.array(golden.sketch(reference.detach().double().numpy()))
    return float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))


def test_fixed_weights_do_not_depend_on_torchs_random_state() -> None:
    first, second = _fixed(seed=0), _fixed(seed=1234)
    for (name, a), (_, b) in zip(first.named_parameters(), second.named_parameters(), strict=True):
        assert torch.equal(a, b), name
    norm = dict(first.named_parameters())
    assert torch.equal(norm["1.weight"], torch.ones(48))  # set by the library, kept
    assert torch.equal(norm["1.bias"], torch.zeros(48))
    bound = 1 / np.sqrt(2 * 7)
    assert float(norm["0.weight"].abs().max()) <= bound


def test_float32_rounding_stays_inside_the_tolerance_and_the_control_leaves_it() -> None:
    model = _fixed()
    tolerance = golden.tolerance(model, "cpu")
    layers = 2 * 7 + 48 * 5 + 48 * 3  # the fan-ins of the three convolutions
    assert tolerance == layers * golden.UNIT_ROUNDOFF
    with torch.no_grad():
        single = model(_input())
        exact = model.double()(_input().double())
        control = _fixed(golden.CONTROL_SHIFT)(_input())
    true_error = float((single.double() - exact).norm() / exact.norm())
    assert 0 < true_error < tolerance
    assert _estimate(single, exact) < tolerance
    assert _estimate(control, exact) > 10 * tolerance


def test_record_keeps_a_tensors_fingerprint_for_the_check() -> None:
    golden.RECORDED.clear()
    output = _fixed()(_input())
    golden.record("out", output, 1e-4)
    recorded = golden.RECORDED.pop("out")
    assert recorded["shape"] == [1, 2, 4000] and len(recorded["sketch"]) == golden.SKETCH_ROWS
    assert recorded["sketch"] == golden.sketch(output.detach().numpy())
