"""Recorded boundaries re-verified against the package index for real (marked `boundary`):
each edge's two releases are still adjacent there, and installed into a throwaway venv the
`good` one works and the `bad` one fails with the entry's own error. The cheap edges only
(no torch); `audiomatrix boundaries` remeasures them all."""

from __future__ import annotations

import pytest

from audiomatrix.catalog import probe_runs, probes, signatures

pytestmark = pytest.mark.boundary

CHEAP = [
    ("setuptools-pkg-resources-removed", "setuptools"),
    ("transformers-beamsearchscorer", "transformers"),
]


@pytest.mark.parametrize(("entry_id", "package"), CHEAP, ids=[e for e, _ in CHEAP])
def test_a_recorded_boundary_still_holds_on_the_index(entry_id: str, package: str) -> None:
    entry = signatures.by_id(entry_id)
    assert entry is not None
    (edge,) = [b for b in entry.measured if b.package == package]
    assert edge.unmeasured is None, edge.unmeasured
    probe = probes.probe_for(entry_id, package)
    assert probe is not None and probe.id == edge.probe
    try:
        problems = probe_runs.recheck(probe_runs.ProbeVenvs(), probe, entry, edge)
    except probe_runs.IndexUnreachable as exc:
        pytest.skip(f"the package index cannot be reached: {exc}")
    except probe_runs.DiskLow as exc:
        pytest.skip(str(exc))
    assert problems == []
