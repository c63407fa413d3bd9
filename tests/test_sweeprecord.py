"""The sweep's record adds up across resumed runs and selections: a cell skipped as done keeps
the entry that did it, a cell not selected keeps its entry, wall time and peak disk
accumulate."""

from __future__ import annotations

from audiomatrix.records import sweep
from audiomatrix.smoke import sweep as pipeline
from audiomatrix.smoke import sweep_record as sweeprecord


def test_a_resumed_sweep_keeps_what_earlier_runs_did(tmp_path) -> None:
    first = [
        pipeline.Step("a", "smoked", tag="img:a", seconds=600.0, layers=(("l1", 5), ("l2", 7))),
        pipeline.Step("b", "python unavailable", "no CPython 3.14 here", seconds=1.0),
    ]
    path = tmp_path / "sweep.json"
    sweeprecord.write(path, None, first, 601.0, 12_000_000_000)
    earlier = sweep.read(path)
    second = [
        pipeline.Step("a", "smoke unchanged", tag="img:a", seconds=2.0),
        pipeline.Step("c", "smoked", tag="img:c", seconds=500.0, layers=(("l1", 5),)),
    ]
    record = sweeprecord.merged(earlier, second, 502.0, 9_000_000_000)
    # b, not selected this time, keeps its entry: a sweep of another selection adds to the
    # record instead of replacing it.
    assert [e.cell for e in record.per_cell] == ["a", "b", "c"]
    assert record.per_cell[0].seconds == 600.0 and record.per_cell[0].layers
    assert record.statuses == {"smoked": 2, "python unavailable": 1}
    assert record.wall_s == 1103.0 and record.runs == 2 and record.peak_disk_gb == 12.0
    (tmp_path / "damaged.json").write_text("{")
    assert sweep.read(tmp_path / "damaged.json") is None
