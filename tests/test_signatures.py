"""The failure catalog against real error texts captured from the matrix's own runs.

Each file in tests/data/errors/ is named after the signature its text must be classified
as (`<id>.txt` or `<id>--<variant>.txt`), so adding a captured failure adds a test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from audiomatrix.catalog import signatures

CAPTURED = sorted((Path(__file__).parent / "data" / "errors").glob("*.txt"))


@pytest.mark.parametrize("path", CAPTURED, ids=[p.stem for p in CAPTURED])
def test_captured_error_is_classified_as_its_signature(path: Path) -> None:
    expected = path.stem.split("--")[0]
    assert signatures.classify(path.read_text()) == expected


def test_every_signature_is_well_formed() -> None:
    catalog = signatures.catalog()
    assert len({s.id for s in catalog}) == len(catalog)
    for signature in catalog:
        assert signature.sources and all(u.startswith("https://") for u in signature.sources)
        assert signature.remedy.strip() and signature.title.strip()
        assert "weights_only=False" not in signature.remedy.replace(
            "never set weights_only=False", ""
        )


def test_unknown_failure_is_unclassified() -> None:
    assert signatures.classify("ZeroDivisionError: division by zero") == "unclassified"


def test_specific_weights_only_signatures_win_over_the_general_one() -> None:
    head = "_pickle.UnpicklingError: Weights only load failed. ...\n  WeightsUnpickler error: "
    assert signatures.classify(head + "Unsupported global: GLOBAL demucs.htdemucs.HTDemucs") == (
        "weights-only-demucs"
    )
    assert signatures.classify(
        head + "Unsupported global: GLOBAL TTS.tts.models.xtts.XttsArgs"
    ) == ("weights-only-xtts")
    # A class no signature names is not guessed at.
    assert signatures.classify(head + "Unsupported global: GLOBAL fractions.Fraction") == (
        "unclassified"
    )
    assert signatures.by_id("weights-only-xtts") is not None
    assert signatures.by_id("nope") is None
