"""torch_load: torch.load of a pickled model package with torch's default `weights_only`.

The package is a Demucs one (tiny_demucs: klass, args, kwargs with a fractions.Fraction segment,
a half-precision state, training_args), which is what pickled audio-model checkpoints look like.
torch < 2.6 loads it (weights_only defaulted to False); torch >= 2.6 defaults to weights_only=True
and refuses it with "Weights only load failed ... Unsupported global: GLOBAL
demucs.htdemucs.HTDemucs" unless the exact globals are allow-listed
(torch.serialization.add_safe_globals), which is what audiomatrix.compat does.
"""

from __future__ import annotations

import pytest


@pytest.mark.timeout(60)
def test_torch_load(tmp_path):
    import torch
    from demucs.htdemucs import HTDemucs

    from audiomatrix.suite import tiny_demucs

    model = tiny_demucs.build_model()
    path = tiny_demucs.save_package(model, tmp_path)

    package = torch.load(str(path), map_location="cpu")  # the default weights_only, on purpose

    assert isinstance(package, dict), type(package)
    assert package["klass"] is HTDemucs, package["klass"]
    assert package["kwargs"] == tiny_demucs.TINY_KWARGS, package["kwargs"]
    expected = model.state_dict()
    assert set(package["state"]) == set(expected), "state keys differ"
    for key, value in package["state"].items():
        assert value.dtype == torch.half, f"{key}: {value.dtype}"
        assert torch.equal(value, expected[key].half()), f"{key}: values differ"

    rebuilt = package["klass"](*package["args"], **package["kwargs"])
    rebuilt.load_state_dict(package["state"])
