"""Golden outputs: fixed weights every cell makes alike, and fingerprints of what a model gave.

A pass that only says "finite and of the right length" cannot see a numerics regression, so
each model check also records fingerprints of its outputs, which the report compares with the
same check's in a reference cell. Three things make that comparison mean something:

- The weights are the same in every cell: drawn from PCG64's raw 64-bit stream (the one part
  of numpy's random API whose output is fixed across numpy versions), keyed by the parameter's
  name, not from torch's initialisers, whose draws change with torch and with the order a
  library creates its modules.
- A fingerprint is a random projection of the output: 64 sums of its samples with fixed
  pseudo-random signs, scaled by 1/8, so that the distance of two fingerprints estimates the
  distance of the outputs (Johnson-Lindenstrauss) from 64 numbers instead of the samples.
- The tolerance comes from the arithmetic that made the output: a float32 dot product of
  length n is off by at most n*u (u = 2^-24), and the errors of a model's layers add up, so
  the bound is u times the sum of its layers' fan-ins (plus 2^-11 per layer where cuDNN rounds
  convolution inputs to TF32). Another code path, kernel or library that changes the result
  beyond that is `drift`; rounding alone stays inside it.

Every check that fingerprints also fingerprints a control: the same model with its weights
moved by 1% of their scale, which must drift, so a comparison that cannot fail shows up.

Only numpy here; torch is imported by the functions that take a model.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

SKETCH_ROWS = 64
UNIT_ROUNDOFF = 2.0**-24  # float32
TF32_ROUNDOFF = 2.0**-11  # cuDNN's default for float32 convolutions on Ampere and later
CONTROL_SHIFT = 1e-2
"""How far the control's weights move, relative to their scale: a regression-sized change."""

RECORDED: dict[str, dict[str, Any]] = {}
"""The fingerprints the running check recorded, by name; the plugin stores them with it."""


def raw_stream(key: str, count: int) -> np.ndarray:
    """`count` uint64 words of PCG64 seeded from `key`: the same words in every numpy."""
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    return np.random.PCG64(seed).random_raw(count)


def stable_uniform(key: str, count: int, bound: float) -> np.ndarray:
    """`count` float32 values uniform in [-bound, bound), the same in every cell."""
    unit = (raw_stream(key, count) >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return ((2.0 * unit - 1.0) * bound).astype(np.float32)


def fixed_weights(model: Any, shift: float = 0.0) -> None:
    """Overwrite `model`'s randomly initialised parameters with stable values in place.

    A parameter whose elements are all equal (a norm's 1s and 0s, a layer scale) was set by
    the library, not drawn, and is kept. The others get uniform values at the scale of torch's
    default initialisation, 1/sqrt(fan-in). `shift` moves every value by that fraction of the
    scale, with another stable draw: the negative control.
    """
    import torch

    with torch.no_grad():
        for name, parameter in model.named_parameters():
            flat = parameter.detach().reshape(-1)
            if flat.numel() > 1 and bool((flat == flat[0]).all()):
                continue
            fan_in = flat.numel() // parameter.shape[0] if parameter.dim() >= 2 else flat.numel()
            bound = 1.0 / math.sqrt(max(1, fan_in))
            values = stable_uniform(name, flat.numel(), bound)
            if shift:
                values = values + stable_uniform(f"control:{name}", flat.numel(), shift * bound)
            parameter.copy_(torch.from_numpy(values).reshape(parameter.shape))


def _fan_in(module: Any) -> int:
    """The length of the dot products a layer computes, from its weight's shape."""
    weight = module.weight
    if type(module).__name__ == "Conv1D":  # transformers' GPT-2 layer stores [in, out]
        return int(weight.shape[0])
    return int(weight[0].numel())


def tolerance(model: Any, device: str) -> float:
    """The relative error float32 arithmetic allows `model`'s output: u times the sum of its
    layers' fan-ins, plus TF32's input rounding per layer where cuDNN applies it."""
    import torch

    layers = [
        m
        for m in model.modules()
        if isinstance(getattr(m, "weight", None), torch.Tensor)
        and m.weight.dim() >= 2
        and not isinstance(m, torch.nn.Embedding)
    ]
    tf32 = device == "cuda" and torch.backends.cudnn.allow_tf32
    per_layer = TF32_ROUNDOFF if tf32 else 0.0
    return sum(_fan_in(m) for m in layers) * UNIT_ROUNDOFF + len(layers) * per_layer


def sketch(samples: np.ndarray) -> list[float]:
    """SKETCH_ROWS signed sums of `samples` over sqrt(SKETCH_ROWS): row r takes bit r of the
    stable word drawn for each sample as that sample's sign."""
    flat = np.asarray(samples, dtype=np.float64).reshape(-1)
    words = raw_stream("sketch", flat.size)
    rows = []
    for row in range(SKETCH_ROWS):
        bits = ((words >> np.uint64(row)) & np.uint64(1)).astype(np.float64)
        rows.append(float(np.dot(1.0 - 2.0 * bits, flat)) / math.sqrt(SKETCH_ROWS))
    return rows


def record(name: str, samples: Any, tolerance: float, control_of: str | None = None) -> None:
    """Keep `samples`' fingerprint for the running check's outcome; a control names the
    fingerprint it must drift from."""
    if hasattr(samples, "detach"):
        samples = samples.detach().float().cpu().numpy()
    samples = np.asarray(samples)
    RECORDED[name] = {
        "shape": list(samples.shape),
        "sketch": sketch(samples),
        "tolerance": tolerance,
        "control_of": control_of,
    }
