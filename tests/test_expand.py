"""`expansion.expand` against GitHub Actions' matrix semantics.

The examples and their documented results come from GitHub's documentation:
https://docs.github.com/en/actions/writing-workflows/choosing-what-your-workflow-does/running-variations-of-jobs-in-a-workflow
(sections "Adding a matrix strategy", "Expanding or adding matrix configurations" and
"Excluding matrix configurations") and the `jobs.<job_id>.strategy.matrix.include` /
`.exclude` reference with its "Expanding configurations" and "Adding configurations" examples:
https://docs.github.com/en/actions/writing-workflows/workflow-syntax-for-github-actions#jobsjob_idstrategymatrixinclude
"""

from __future__ import annotations

from typing import Any

from audiomatrix.spec.expansion import Combination, expand


def values(combos: list[Combination]) -> list[dict[str, Any]]:
    return [c.values for c in combos]


# --------------------------------------------------------------------------- the docs' examples


def test_docs_product_order_first_axis_slowest() -> None:
    # "The above matrix will create the jobs in the following order."
    combos = expand({"version": [10, 12, 14], "os": ["ubuntu-latest", "windows-latest"]})
    assert values(combos) == [
        {"version": 10, "os": "ubuntu-latest"},
        {"version": 10, "os": "windows-latest"},
        {"version": 12, "os": "ubuntu-latest"},
        {"version": 12, "os": "windows-latest"},
        {"version": 14, "os": "ubuntu-latest"},
        {"version": 14, "os": "windows-latest"},
    ]
    assert all(c.include is None for c in combos)


def test_docs_fruit_animal_include_example_gives_the_documented_six() -> None:
    combos = expand(
        {"fruit": ["apple", "pear"], "animal": ["cat", "dog"]},
        include=[
            {"color": "green"},
            {"color": "pink", "animal": "cat"},
            {"fruit": "apple", "shape": "circle"},
            {"fruit": "banana"},
            {"fruit": "banana", "animal": "cat"},
        ],
    )
    # The documented result, in the documented order.
    assert values(combos) == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]
    # The two banana entries are include[3] and include[4]; the product ones came from no include.
    assert [c.include for c in combos] == [None, None, None, None, 3, 4]


def test_docs_expanding_configurations_npm_6() -> None:
    # "four jobs ... When the job for the os value of windows-latest and node value of 16 runs,
    # an additional variable called npm with the value of 6 will be included in the job."
    combos = expand(
        {"os": ["windows-latest", "ubuntu-latest"], "node": [14, 16]},
        include=[{"os": "windows-latest", "node": 16, "npm": 6}],
    )
    assert values(combos) == [
        {"os": "windows-latest", "node": 14},
        {"os": "windows-latest", "node": 16, "npm": 6},
        {"os": "ubuntu-latest", "node": 14},
        {"os": "ubuntu-latest", "node": 16},
    ]
    assert [c.include for c in combos] == [None] * 4


def test_docs_adding_configurations_windows_17() -> None:
    # "this matrix will run 10 jobs, one for each combination of os and version in the matrix,
    # plus a job for the os value of windows-latest and version value of 17."
    combos = expand(
        {"os": ["macos-latest", "windows-latest", "ubuntu-latest"], "version": [12, 14, 16]},
        include=[{"os": "windows-latest", "version": 17}],
    )
    assert len(combos) == 10
    assert combos[-1] == Combination({"os": "windows-latest", "version": 17}, include=0)
    assert all(c.values["version"] != 17 for c in combos[:-1])


def test_docs_include_only_matrix_site_datacenter() -> None:
    # "If you don't specify any matrix variables, all configurations under include will run."
    combos = expand(
        {},
        include=[
            {"site": "production", "datacenter": "site-a"},
            {"site": "staging", "datacenter": "site-b"},
        ],
    )
    assert combos == [
        Combination({"site": "production", "datacenter": "site-a"}, include=0),
        Combination({"site": "staging", "datacenter": "site-b"}, include=1),
    ]


def test_docs_exclude_example_runs_nine_jobs() -> None:
    # "nine jobs: one job for each of the 12 configurations, minus the one excluded job that
    # matches {os: macos-latest, version: 12, environment: production}, and the two excluded
    # jobs that match {os: windows-latest, version: 16}."
    combos = expand(
        {
            "os": ["macos-latest", "windows-latest"],
            "version": [12, 14, 16],
            "environment": ["staging", "production"],
        },
        exclude=[
            {"os": "macos-latest", "version": 12, "environment": "production"},
            {"os": "windows-latest", "version": 16},
        ],
    )
    assert len(combos) == 9
    got = values(combos)
    assert {"os": "macos-latest", "version": 12, "environment": "production"} not in got
    assert {"os": "macos-latest", "version": 12, "environment": "staging"} in got
    assert not [c for c in got if c["os"] == "windows-latest" and c["version"] == 16]
    # The remaining jobs keep the product's order.
    assert got[:3] == [
        {"os": "macos-latest", "version": 12, "environment": "staging"},
        {"os": "macos-latest", "version": 14, "environment": "staging"},
        {"os": "macos-latest", "version": 14, "environment": "production"},
    ]


def test_docs_fail_fast_example_adds_version_9() -> None:
    # "the following workflow will start four jobs"
    combos = expand(
        {"version": [6, 7, 8], "experimental": [False]},
        include=[{"version": 9, "experimental": True}],
    )
    assert values(combos) == [
        {"version": 6, "experimental": False},
        {"version": 7, "experimental": False},
        {"version": 8, "experimental": False},
        {"version": 9, "experimental": True},
    ]


# --------------------------------------------------------------------------- the rules, one by one


def test_excludes_apply_before_includes_so_an_include_adds_an_excluded_one_back() -> None:
    # "All include combinations are processed after exclude. This allows you to use include to
    # add back combinations that were previously excluded."
    combos = expand(
        {"os": ["linux", "macos"], "py": ["3.11", "3.12"]},
        include=[{"os": "macos", "py": "3.12"}],
        exclude=[{"os": "macos"}],
    )
    assert combos == [
        Combination({"os": "linux", "py": "3.11"}),
        Combination({"os": "linux", "py": "3.12"}),
        Combination({"os": "macos", "py": "3.12"}, include=0),
    ]


def test_exclude_is_a_partial_match_and_ignores_what_no_combination_has() -> None:
    axes = {"os": ["linux", "macos"], "py": ["3.11", "3.12"]}
    assert values(expand(axes, exclude=[{"py": "3.11"}])) == [
        {"os": "linux", "py": "3.12"},
        {"os": "macos", "py": "3.12"},
    ]
    # A pattern with a key no combination has matches nothing.
    assert len(expand(axes, exclude=[{"py": "3.11", "arch": "arm64"}])) == 4
    assert len(expand(axes, exclude=[{"py": "3.13"}])) == 4


def test_include_never_overwrites_an_original_value() -> None:
    combos = expand(
        {"os": ["linux", "macos"], "py": ["3.11"]},
        include=[{"os": "linux", "py": "3.12", "extra": "x"}],
    )
    # py=3.12 would overwrite the original py=3.11: so it extends nothing and is a new one.
    assert combos == [
        Combination({"os": "linux", "py": "3.11"}),
        Combination({"os": "macos", "py": "3.11"}),
        Combination({"os": "linux", "py": "3.12", "extra": "x"}, include=0),
    ]


def test_later_include_overwrites_a_value_an_earlier_include_added() -> None:
    combos = expand(
        {"os": ["linux", "macos"]},
        include=[{"runner": "generic"}, {"os": "macos", "runner": "macos-14"}],
    )
    assert values(combos) == [
        {"os": "linux", "runner": "generic"},
        {"os": "macos", "runner": "macos-14"},
    ]


def test_include_does_not_extend_a_combination_another_include_added() -> None:
    # As {fruit: banana, animal: cat} in the docs: added combinations are not originals.
    combos = expand(
        {"os": ["linux"]},
        include=[{"os": "windows"}, {"os": "windows", "arch": "arm64"}, {"arch": "x86_64"}],
    )
    assert combos == [
        Combination({"os": "linux", "arch": "x86_64"}),
        Combination({"os": "windows"}, include=0),
        Combination({"os": "windows", "arch": "arm64"}, include=1),
    ]


def test_include_extends_every_matching_original_and_records_no_index() -> None:
    combos = expand(
        {"os": ["linux", "macos"], "py": ["3.11", "3.12"]},
        include=[{"py": "3.12", "note": "newest"}],
    )
    assert combos == [
        Combination({"os": "linux", "py": "3.11"}),
        Combination({"os": "linux", "py": "3.12", "note": "newest"}),
        Combination({"os": "macos", "py": "3.11"}),
        Combination({"os": "macos", "py": "3.12", "note": "newest"}),
    ]


def test_include_that_equals_an_original_adds_nothing() -> None:
    combos = expand({"os": ["linux", "macos"]}, include=[{"os": "linux"}])
    assert combos == [Combination({"os": "linux"}), Combination({"os": "macos"})]


def test_every_combination_excluded_then_an_include_stands_alone() -> None:
    combos = expand({"os": ["linux"]}, include=[{"extra": 1}], exclude=[{"os": "linux"}])
    assert combos == [Combination({"extra": 1}, include=0)]


def test_expand_does_not_mutate_its_inputs() -> None:
    axes = {"os": ["linux", "macos"]}
    include = [{"runner": "generic"}, {"os": "windows"}]
    exclude = [{"os": "macos"}]
    combos = expand(axes, include, exclude)
    combos[-1].values["touched"] = True
    assert axes == {"os": ["linux", "macos"]}
    assert include == [{"runner": "generic"}, {"os": "windows"}]
    assert exclude == [{"os": "macos"}]


def test_no_axes_and_no_include_is_empty() -> None:
    assert expand({}) == []


def test_ordering_with_three_axes() -> None:
    combos = expand({"a": [1, 2], "b": ["x", "y"], "c": [True, False]})
    assert [tuple(c.values.values()) for c in combos] == [
        (1, "x", True),
        (1, "x", False),
        (1, "y", True),
        (1, "y", False),
        (2, "x", True),
        (2, "x", False),
        (2, "y", True),
        (2, "y", False),
    ]
    assert [list(c.values) for c in combos] == [["a", "b", "c"]] * 8
