"""The split of the compat run: AUDIOMATRIX_COMPAT's values and the subset search (pure)."""

from __future__ import annotations

import pytest

from audiomatrix.suite import split
from audiomatrix.suite.smokelib import compat_selection

APPLICABLE = ["torchaudio_save", "checkpoint_globals", "torchaudio_info"]


@pytest.mark.parametrize(
    ("value", "selection"),
    [
        ("1", None),
        (" 1 ", None),
        ("0", ()),
        (None, ()),
        ("", ()),
        (" , ", ()),
        ("checkpoint_globals", ("checkpoint_globals",)),
        ("torchaudio_save, checkpoint_globals,", ("checkpoint_globals", "torchaudio_save")),
        ("torchaudio_save,torchaudio_save", ("torchaudio_save",)),
        ("1,checkpoint_globals", ("1", "checkpoint_globals")),  # compat refuses the `1` there
    ],
)
def test_compat_values_select_all_none_or_the_named_remedies(value, selection) -> None:
    assert compat_selection(value) == selection


def test_the_search_starts_with_every_remedy_alone() -> None:
    assert split.next_subsets(APPLICABLE, {}) == [
        ("checkpoint_globals",), ("torchaudio_info",), ("torchaudio_save",),
    ]  # fmt: skip


def test_the_search_stops_at_the_first_size_where_a_subset_passes() -> None:
    tried = {("checkpoint_globals",): "fail", ("torchaudio_info",): "pass",
             ("torchaudio_save",): "corrupt"}  # fmt: skip
    assert split.next_subsets(APPLICABLE, tried) == []
    assert split.minimal_sets(tried.items()) == [("torchaudio_info",)]


def test_when_none_passes_alone_the_pairs_come_next_then_all() -> None:
    singles = {(name,): "fail" for name in APPLICABLE}
    pairs = split.next_subsets(APPLICABLE, singles)
    assert pairs == [
        ("checkpoint_globals", "torchaudio_info"),
        ("checkpoint_globals", "torchaudio_save"),
        ("torchaudio_info", "torchaudio_save"),
    ]
    failed = singles | {pair: "hang" for pair in pairs}
    assert split.next_subsets(APPLICABLE, failed) == [tuple(sorted(APPLICABLE))]
    everything = failed | {tuple(sorted(APPLICABLE)): "fail"}
    assert split.next_subsets(APPLICABLE, everything) == []
    assert split.minimal_sets(everything.items()) == []


def test_every_passing_subset_of_the_smallest_size_is_minimal() -> None:
    tried = {("a",): "fail", ("b",): "fail", ("c",): "fail",
             ("a", "b"): "pass", ("a", "c"): "fail", ("b", "c"): "pass"}  # fmt: skip
    assert split.minimal_sets(tried.items()) == [("a", "b"), ("b", "c")]
    assert split.minimal_sets([(("c", "a", "b"), "pass"), (("b", "a"), "pass")]) == [("a", "b")]


def test_nothing_applicable_means_nothing_to_try() -> None:
    assert split.next_subsets([], {}) == []


def test_a_subset_names_its_folder() -> None:
    assert split.label(("checkpoint_globals", "torchaudio_save")) == (
        "checkpoint_globals+torchaudio_save"
    )
