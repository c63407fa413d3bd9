"""The smoke suite's pure pieces: the lossy round-trip measure and the checks' wiring."""

from __future__ import annotations

import ast
import math

import numpy as np
import pytest

from audiomatrix.suite import probe, schema
from audiomatrix.suite.smokelib import aligned_snr_db, tone

RATE = 44100


def _noisy(signal: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    """`signal` plus white noise at `snr_db` below its power."""
    power = float(np.mean(signal.astype(np.float64) ** 2))
    noise = np.random.default_rng(seed).standard_normal(signal.shape)
    return signal + noise * math.sqrt(power / 10 ** (snr_db / 10))


def test_a_copy_delayed_like_an_mp3_decoder_is_found_at_its_lag() -> None:
    written = tone(0.5, RATE, channels=2)
    delayed = np.concatenate([np.zeros((2, 1105)), _noisy(written, 30.0)], axis=1)
    lag, snr = aligned_snr_db(written, delayed, max_lag=2304)
    assert lag == 1105
    assert 29.0 < snr < 31.0


def test_an_exact_copy_is_infinitely_clean() -> None:
    written = tone(0.1, RATE, channels=2)
    assert aligned_snr_db(written, written.copy(), max_lag=10) == (0, math.inf)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda w: w[::-1], id="channels swapped"),
        pytest.param(lambda w: np.clip(w * 8, -1, 1), id="saturated"),
        pytest.param(lambda w: np.zeros_like(w), id="silence"),
        pytest.param(lambda w: w[:, ::2], id="half the rate"),
    ],
)
def test_a_damaged_decode_measures_far_below_the_mp3_floor(damage) -> None:  # type: ignore[no-untyped-def]
    written = tone(0.5, RATE, channels=2)
    _, snr = aligned_snr_db(written, damage(written), max_lag=2304)
    assert snr < 10.0, snr  # test_demucs.MP3_MIN_SNR_DB is 20


def test_a_delay_beyond_the_allowed_lag_is_not_aligned() -> None:
    written = tone(0.5, RATE, channels=2)
    late = np.concatenate([np.zeros((2, 5000)), written], axis=1)
    _, snr = aligned_snr_db(written, late, max_lag=2304)
    assert snr < 10.0


def test_another_channel_count_never_matches() -> None:
    written = tone(0.1, RATE, channels=2)
    assert aligned_snr_db(written, written[:1], max_lag=10)[1] == -math.inf


def test_every_check_is_a_test_function_of_its_module() -> None:
    for check in schema.CHECKS:
        source = (probe.SUITE_DIR / f"{check.module}.py").read_text()
        functions = {n.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)}
        assert f"test_{check.name}" in functions, check.node
