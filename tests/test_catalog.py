"""signatures.yaml as its authors and `audiomatrix boundaries --write` edit it: each mistake
in a `measured` block is one line naming the file and the place, and a write changes nothing
but the measured blocks it was asked to."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import pytest

from audiomatrix.catalog import edit as catalogedit
from audiomatrix.catalog import signatures
from audiomatrix.catalog.signatures import Boundary, CatalogError

ENTRY = """\
# a comment that must survive
- id: old-torch
  title: t
  pattern: "boom"
  affects: {torch: ">=2.6", TTS: ">=0.17"}
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
        MEASURED, {"package: torch": "package: demucs", 'bound: ">=2.6"': 'bound: ">=4.1"'}
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


def test_a_package_without_a_range_and_an_entry_without_packages_are_one_line():
    assert error(MEASURED, {'TTS: ">=0.17"': 'TTS: "==0.22.0"'}) == (
        "signatures.yaml:5:3: entry 'old-torch': affects: TTS: '==0.22.0' has no edge: give "
        "the releases the failure spans (>=, >, <=, <) and measure them"
    )
    bare = {'{torch: ">=2.6", TTS: ">=0.17"}': "{}"}
    assert error(MEASURED, bare).startswith(
        "signatures.yaml:2:3: entry 'old-torch': affects is empty: name each package whose "
        "version moves the failure, or say why none does with `unversioned: why`"
    )
    both = {"  remedy: r": "  unversioned: hardware\n  remedy: r"}
    assert error(MEASURED, both).startswith(
        "signatures.yaml:2:3: entry 'old-torch': has both `affects` and `unversioned`: keep one"
    )


def test_a_broken_catalog_is_one_line_from_the_command_and_exit_2(tmp_path: Path):
    path = tmp_path / "signatures.yaml"
    path.write_text(ENTRY.replace("{fields}", '      good: "2.5.1"'))
    proc = subprocess.run(
        [sys.executable, "-m", "audiomatrix", "boundaries", "--catalog", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"{path}:7:7: entry 'old-torch': measured.0: lacks bad, probe, python, date "
        f"(or `unmeasured: why`){FIX}"
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "audiomatrix", "boundaries", "--entry", "weights-only-xts"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "no catalog entry 'weights-only-xts' (did you mean 'weights-only-xtts'?)"
    )


SMALL = """\
# Known failures (a comment the write keeps)

- id: first
  title: t
  pattern: "boom"
  affects:
    torch: "<2.6"  # a comment inside the entry
  remedy: r
  sources: []

# Between the entries.
- id: second
  title: t
  pattern: "bang"
  affects: {}
  unversioned: u
  remedy: r
  sources: []
"""
EDGE = Boundary(
    package="torch",
    bound="<2.6",
    good="2.6.0",
    bad="2.5.1",
    pins={"transformers": "5.23.0"},
    probe="transformers-masking-utils",
    python="3.11",
    date=datetime.date(2026, 11, 28),
)


def test_writing_adds_the_measured_block_after_affects_and_nothing_else(tmp_path: Path):
    path = tmp_path / "signatures.yaml"
    path.write_text(SMALL, encoding="utf-8")
    catalogedit.write(path, {"first": [EDGE]})
    written = path.read_text(encoding="utf-8")
    block = (
        "  measured:\n"
        '    - package: "torch"\n'
        '      bound: "<2.6"\n'
        '      good: "2.6.0"\n'
        '      bad: "2.5.1"\n'
        '      pins: {"transformers": "5.23.0"}\n'
        '      probe: "transformers-masking-utils"\n'
        '      python: "3.11"\n'
        "      date: 2026-11-28\n"
    )
    anchor = '    torch: "<2.6"  # a comment inside the entry\n'
    assert written == SMALL.replace(anchor, anchor + block)
    assert signatures.load(path)[0].measured == [EDGE]
    # The same measurement again changes nothing; a newer one replaces it in place.
    catalogedit.write(path, {"first": [EDGE]})
    assert path.read_text(encoding="utf-8") == written
    catalogedit.write(
        path, {"first": [EDGE.model_copy(update={"date": datetime.date(2027, 1, 2)})]}
    )
    assert path.read_text(encoding="utf-8") == written.replace("2026-11-28", "2027-01-02")


def test_writing_the_shipped_catalog_changes_only_the_entry_asked_for(tmp_path: Path):
    path = tmp_path / "signatures.yaml"
    original = signatures.catalog_path().read_text(encoding="utf-8")
    path.write_text(original, encoding="utf-8")
    entry_id = "transformers-needs-newer-torch"
    catalogedit.write(
        path, {entry_id: [EDGE.model_copy(update={"date": datetime.date(2000, 1, 1)})]}
    )
    written = path.read_text(encoding="utf-8")
    assert "date: 2000-01-01" in written
    stripped = catalogedit.with_measured(written, entry_id, [])
    assert stripped == catalogedit.with_measured(original, entry_id, [])
    before = [e for e in signatures.parse(original, "a") if e.id != entry_id]
    assert [e for e in signatures.parse(written, "a") if e.id != entry_id] == before
