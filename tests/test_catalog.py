"""signatures.yaml as its authors and `audiomatrix boundaries --write` edit it: each mistake
in a `measured` block is one line naming the file and the place, and a write changes nothing
but the measured blocks it was asked to."""

from __future__ import annotations

import datetime

import pytest

from audiomatrix import signatures
from audiomatrix.signatures import CatalogError

ENTRY = """\
# a comment that must survive
- id: old-torch
  title: t
  pattern: "boom"
  affects: {torch: ">=2.6", TTS: "==0.22.0"}
  measured:
    - package: torch
      bound: ">=2.6"
{fields}
  remedy: r
  sources: []
"""
MEASURED = """\
      good: "2.5.1"
      bad: "2.6.0"
      probe: "p"
      python: "3.11"
      date: 2026-11-28"""
FIX = "; fix it, or remeasure: audiomatrix boundaries --entry old-torch --write"


def error(fields: str, replace: dict[str, str] | None = None) -> str:
    """The one-line error for ENTRY with `fields` in its measured block and `replace` done."""
    text = ENTRY.replace("{fields}", fields)
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    with pytest.raises(CatalogError) as exc:
        signatures.parse(text, "signatures.yaml")
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_a_complete_measurement_and_an_unmeasured_reason_both_parse():
    (entry,) = signatures.parse(ENTRY.replace("{fields}", MEASURED), "signatures.yaml")
    assert entry.measured[0].good == "2.5.1"
    assert entry.measured[0].date == datetime.date(2026, 11, 28)
    (entry,) = signatures.parse(ENTRY.replace("{fields}", "      unmeasured: no FFmpeg"), "s.yaml")
    assert entry.measured[0].unmeasured == "no FFmpeg"


def test_a_measured_block_that_lacks_fields_is_one_line():
    assert error('      good: "2.5.1"') == (
        "signatures.yaml:7:7: entry 'old-torch': measured.0: lacks bad, probe, python, date "
        f"(or `unmeasured: why`){FIX}"
    )
    both = MEASURED + "\n      unmeasured: no FFmpeg"
    assert error(both).startswith(
        "signatures.yaml:7:7: entry 'old-torch': measured.0: has both `unmeasured` and good, bad"
    )


def test_a_bad_version_or_date_points_at_the_value():
    assert error(MEASURED.replace('"2.5.1"', '"two"')) == (
        f"signatures.yaml:9:13: entry 'old-torch': measured.0.good: 'two' is not a version "
        f"like '2.6.0'{FIX}"
    )
    assert error(MEASURED.replace("2026-11-28", "2026-13-01")).startswith(
        "signatures.yaml:13:13: entry 'old-torch': measured.0.date: "
    )


def test_a_bound_that_is_no_edge_of_affects_is_one_line():
    message = error(MEASURED, {'bound: ">=2.6"': 'bound: ">=2.7"'})
    assert message == (
        "signatures.yaml:7:7: entry 'old-torch': measured.0: torch >=2.7 is no edge of "
        f"affects (its edges: >=2.6){FIX}"
    )
    assert "is no edge of affects (its edges: none)" in error(
        MEASURED, {"package: torch": "package: TTS", 'bound: ">=2.6"': 'bound: ">=0.22"'}
    )
    assert error(MEASURED, {'bound: ">=2.6"': 'bound: "==2.6"'}) == (
        "signatures.yaml:8:14: entry 'old-torch': measured.0.bound: '==2.6' is not an edge "
        f"(one of >=, >, <=, <){FIX}"
    )


def test_good_and_bad_on_the_wrong_side_of_the_bound_are_one_line():
    swapped = MEASURED.replace('"2.5.1"', "X").replace('"2.6.0"', '"2.5.1"').replace("X", '"2.6.0"')
    assert error(swapped) == (
        "signatures.yaml:7:7: entry 'old-torch': measured.0: good 2.6.0 is inside >=2.6, "
        f"the side that fails{FIX}"
    )
    assert "bad 2.4.0 is outside >=2.6, the side that works" in error(
        MEASURED.replace('"2.6.0"', '"2.4.0"')
    )


def test_an_edge_measured_twice_and_a_bad_range_are_one_line():
    twice = MEASURED + '\n    - package: torch\n      bound: ">=2.6"\n      unmeasured: x'
    assert error(twice) == (
        f"signatures.yaml:14:7: entry 'old-torch': measured.1: torch >=2.6 is measured twice{FIX}"
    )
    assert error(MEASURED, {'">=2.6", TTS': '"2.6+", TTS'}).startswith(
        "signatures.yaml:5:3: entry 'old-torch': affects: torch: '2.6+' is not a range"
    )
