"""The report stage: results/ -> Markdown, JSON (with its schema), HTML; diff; recommend."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audiomatrix import lock, report, results, signatures, spec

REPO = Path(__file__).resolve().parents[1]

LOCK = "ab12cd34ef56" + "0" * 52
ALL_PASS = {c: "pass" for c in report.CHECKS} | {"accelerator": "skip"}


def run_result(
    cell: str,
    raw: dict[str, str],
    compat: dict[str, str] | None = None,
    *,
    run: str = "20261125T160000Z",
    kind: str = "native",
    versions: dict[str, str | None] | None = None,
    errors: dict[str, str] | None = None,
) -> results.RunResult:
    """A RunResult whose failures carry the signature the catalog gives their error text."""

    def checks(statuses: dict[str, str]) -> list[results.CheckResult]:
        out = []
        for name, status in sorted(statuses.items()):
            error = (errors or {}).get(name, "boom") if status in results.FAILED else None
            out.append(
                results.CheckResult(
                    check=name,
                    status=status,
                    duration_s=1.0,
                    signature=signatures.classify(error) if error else None,
                    first_error=error,
                    log=f"logs/{run}/raw/{name}.log",
                )
            )
        return out

    started = datetime.strptime(run, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    torch = re.search(r"torch([\d.]+)", cell).group(1)
    image = kind == "image"
    return results.RunResult(
        cell=cell,
        run=run,
        started=started,
        finished=started + timedelta(minutes=2),
        where=results.Where(
            kind=kind,
            image=f"audiomatrix/cell:{cell}-0123456789ab" if image else None,
            image_digest="sha256:" + "9" * 64 if image else None,
            os="Linux-6.1-x86_64",
            machine="x86_64",
            cpu="EPYC",
            cuda="12.8",
        ),
        lock_sha256=LOCK,
        versions=versions
        or {
            "python": "3.11.7",
            "torch": torch,
            "torchaudio": torch,
            "TTS": "0.22.0",
            "demucs": "4.0.1",
            "torchcodec": None,
            "ffmpeg": None,
        },
        modes={"raw": checks(raw), "compat": checks(compat or raw)},
    )


def cell_json(envs: Path, cell: str, status: str = "locked", reason: str | None = None) -> None:
    m = report.CELL_ID.match(cell)
    assert m, cell
    arch = ["sm_80", "sm_90", "sm_120"] if m["accelerator"] == "cu128" else ["sm_80", "sm_90"]
    data = {
        "cell": {
            **m.groupdict(),
            "id": cell,
            "family": "linux",
            "device": "cuda",
            "gpu_arch": arch,
            "buildable": True,
            "reason": None,
        },
        "status": status,
        "reason": reason,
    }
    (envs / cell).mkdir(parents=True, exist_ok=True)
    (envs / cell / "cell.json").write_text(json.dumps(data))


WEIGHTS = "Weights only load failed. ... Unsupported global: GLOBAL demucs.htdemucs.HTDemucs"
CODEC = "ImportError: TorchCodec is required for save_with_torchcodec."
OLD = "bookworm-py3.11-torch2.5.1-cu124-legacy-pinned"
NEW = "bookworm-py3.11-torch2.9.1-cu128-legacy-pinned"
BROKEN = "bookworm-py3.11-torch2.9.1-cu128-maintained"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """results/ and environments/ for three cells, one also run in an image, plus no-shows."""
    root, envs = tmp_path / "results", tmp_path / "environments"
    failing = ALL_PASS | {"demucs": "fail", "diffrhythm_write": "fail"}
    results.write(root, run_result(OLD, ALL_PASS))
    results.write(root, run_result(OLD, ALL_PASS, kind="image", run="20261125T150000Z"))
    results.write(root, run_result(NEW, ALL_PASS | {"demucs": "fail"}, run="20261125T100000Z"))
    results.write(
        root,
        run_result(NEW, failing, ALL_PASS, errors={"demucs": WEIGHTS, "diffrhythm_write": CODEC}),
    )
    results.write(root, run_result(BROKEN, ALL_PASS | {"xtts": "hang", "xtts_service": "crash"}))
    (root / BROKEN / "20261126T000000Z.json").write_text("{ damaged")
    for cell in (OLD, NEW, BROKEN):
        cell_json(envs, cell)
    cell_json(
        envs,
        "bookworm-py3.12-torch2.9.1-cu130-maintained",
        "index unreachable",
        "https://download.pytorch.org/whl/cu130 does not answer",
    )
    cell_json(envs, "bookworm-py3.10-torch2.6.0-cpu-legacy")
    return tmp_path


def table(repo: Path) -> report.Compatibility:
    return report.build(repo / "results", repo / "environments")


def test_rows_are_latest_run_per_cell_and_where(repo: Path) -> None:
    t = table(repo)
    assert [(r.cell, r.where.kind, r.run) for r in t.rows] == [
        (OLD, "image", "20261125T150000Z"),
        (OLD, "native", "20261125T160000Z"),
        (NEW, "native", "20261125T160000Z"),
        (BROKEN, "native", "20261125T160000Z"),
    ]
    new = t.rows[2]
    assert new.gpu_arch == ["sm_80", "sm_90", "sm_120"]
    assert new.source == f"results/{NEW}/20261125T160000Z.json"
    assert new.checks["demucs"].raw.signature == "weights-only-demucs"
    assert new.checks["demucs"].compat.status == "pass"
    assert new.checks["demucs"].raw.log == f"results/{NEW}/logs/20261125T160000Z/raw/demucs.log"


def test_markdown_table_legend_and_missing_cells(repo: Path) -> None:
    md = report.markdown(table(repo))
    results_part = md.split("## Signatures")[0]
    rows = [line for line in results_part.splitlines() if line.startswith("| `bookworm")]
    assert len(rows) == 4
    new = next(r for r in rows if NEW in r)
    assert "fail → pass ([weights-only-demucs](#weights-only-demucs))" in new
    assert "fail → pass ([torchcodec-missing](#torchcodec-missing))" in new
    assert f"[20261125T160000Z](results/{NEW}/20261125T160000Z.json)" in new
    assert "`ab12cd34ef56`" in new and LOCK not in md
    image = next(r for r in rows if "| image 0123456789ab @999999999999 |" in r)
    assert "CPU" in image and "cu124 (CUDA 12.8)" in image
    assert "TTS 0.22.0 + demucs 4.0.1" in image
    broken = next(r for r in rows if BROKEN in r)
    assert "hang → hang ([unclassified](#unclassified))" in broken
    # The legend has exactly the signatures that appear, each an anchor target with its remedy.
    legend = re.findall(r"^### (\S+)$", md, re.MULTILINE)
    assert legend == ["torchcodec-missing", "unclassified", "weights-only-demucs"]
    assert signatures.by_id("weights-only-demucs").remedy in md
    assert "- <https://github.com/pytorch/audio/issues/4182>" in md
    missing = md.split("## Cells without results")[1]
    assert "| `bookworm-py3.10-torch2.6.0-cpu-legacy` | not run |" in missing
    assert "| index unreachable | https://download.pytorch.org/whl/cu130 does not answer |" in (
        missing
    )


def test_json_matches_the_committed_schema(repo: Path) -> None:
    generated = report.schema()
    assert report.committed_schema() == generated, (
        "src/audiomatrix/compatibility.schema.json is stale: write report.schema_text() to it"
    )
    data = json.loads(report.table_json(table(repo)))
    assert data["schema_version"] == 1
    assert data["rows"][2]["gpu_arch"] == ["sm_80", "sm_90", "sm_120"]
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(generated)
    jsonschema.validate(data, generated)
    data["rows"][0]["checks"]["xtts"]["raw"]["status"] = "ok"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, generated)
    assert report.load_text(report.table_json(table(repo))) == table(repo)


def test_outputs_are_deterministic(repo: Path, tmp_path: Path) -> None:
    first = [p.read_bytes() for p in report.write_all(table(repo), tmp_path / "a")]
    copy = tmp_path / "copy"
    for name in ("results", "environments"):  # a different creation order on disk
        shutil.copytree(repo / name, copy / name)
    second = [p.read_bytes() for p in report.write_all(table(copy), tmp_path / "b")]
    assert first == second
    assert [p.name for p in report.write_all(table(repo), tmp_path / "c")] == [
        "COMPATIBILITY.md",
        "compatibility.json",
        "index.html",
    ]


def test_html_is_offline_escaped_and_embeds_the_table(repo: Path) -> None:
    root = repo / "results"
    evil = "</script><img src=x onerror=alert(1)>"
    results.write(
        root,
        run_result(
            BROKEN, ALL_PASS | {"xtts": "fail"}, errors={"xtts": evil}, run="20261125T170000Z"
        ),
    )
    page = report.html(table(repo))
    assert "<img src=x" not in page
    assert page.count("<script") == 2 and "</script><img" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "must not load anything"
    assert "<link" not in page
    embedded = page.split('<script type="application/json" id="data">')[1].split("</script>")[0]
    data = json.loads(embedded)
    assert data == json.loads(report.table_json(table(repo)))
    assert data["rows"][3]["checks"]["xtts"]["raw"]["first_error"] == evil
    assert page.count('class="row"') == 4
    assert '<option value="2.9.1">2.9.1</option>' in page


def test_diff_flags_what_went_red(repo: Path, tmp_path: Path) -> None:
    old = table(repo)
    results.write(repo / "results", run_result(NEW, ALL_PASS, run="20261125T180000Z"))
    results.write(
        repo / "results",
        run_result(OLD, ALL_PASS | {"xtts": "fail"}, ALL_PASS, run="20261125T180000Z"),
    )
    shutil.rmtree(repo / "results" / BROKEN)
    new = table(repo)
    changes = report.diff(old, new)
    red = report.regressions(changes)
    assert [(c.cell, c.where, c.check, c.mode, c.old, c.new) for c in red] == [
        (OLD, "native", "xtts", "raw", "pass", "fail")
    ]
    assert str(red[0]).startswith("RED ")
    green = [c for c in changes if c.new == "pass" and c.old != "pass"]
    assert {(c.cell, c.check, c.mode) for c in green} == {
        (NEW, "demucs", "raw"),
        (NEW, "diffrhythm_write", "raw"),
    }
    gone = [c for c in changes if c.cell == BROKEN]
    assert gone and all(c.new is None and not c.regression for c in gone)
    assert report.diff(new, new) == []


def test_diff_counts_a_vanished_check_in_a_kept_row(repo: Path) -> None:
    old = table(repo)
    results.write(
        repo / "results",
        run_result(
            OLD, {k: v for k, v in ALL_PASS.items() if k != "demucs"}, run="20261125T180000Z"
        ),
    )
    red = report.regressions(report.diff(old, table(repo)))
    assert {(c.check, c.mode, c.new) for c in red} == {
        ("demucs", "raw", None),
        ("demucs", "compat", None),
    }


def test_recommend_prefers_raw_then_newest_torch(repo: Path) -> None:
    t = table(repo)
    r = report.recommend(t, ["xtts", "demucs", "diffrhythm"])
    assert (r.row.cell, r.row.where.kind, r.mode) == (OLD, "image", "raw")
    assert "newest torch" in r.explanation and "pass as installed (raw)" in r.explanation
    assert f"a newer torch also works: {NEW}" in r.explanation
    assert f"results/{OLD}/20261125T150000Z.json" in r.explanation

    r = report.recommend(t, ["xtts"])
    assert (r.row.cell, r.mode) == (NEW, "raw")


def test_recommend_falls_back_to_compat_and_filters(repo: Path) -> None:
    t = table(repo)
    r = report.recommend(t, ["xtts", "demucs", "diffrhythm"], gpu_arch="sm_120")
    assert (r.row.cell, r.mode) == (NEW, "compat")
    assert "No matching row passes them all raw" in r.explanation
    assert "sm_120" in r.explanation and "unverified" in r.explanation

    r = report.recommend(t, ["xtts"], gpu_arch="sm_120", python="3.11", os="linux")
    assert r.row.cell == NEW

    none = report.recommend(t, ["xtts"], python="3.13")
    assert none.row is None and "no tested cell matches with Python 3.13" in none.explanation

    only_broken = t.model_copy(update={"rows": [r for r in t.rows if r.cell == BROKEN]})
    none = report.recommend(only_broken, ["xtts"])
    assert none.row is None and "xtts, xtts_service never passes" in none.explanation

    bad = report.recommend(t, ["karaoke"])
    assert bad.row is None and "unknown workload 'karaoke'" in bad.explanation


def test_empty_results_still_render(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    cell_json(tmp_path / "environments", OLD, "unresolvable", "no solution")
    t = table(tmp_path)
    assert t.rows == [] and t.missing[0].status == "unresolvable"
    assert "No failures." in report.markdown(t)
    assert 'class="row"' not in report.html(t)
    assert report.recommend(t, ["xtts"]).row is None


def test_cells_the_matrix_rules_out_are_listed_with_their_reason(repo: Path) -> None:
    """Unbuildable cells never get a folder; the lock stage's manifest still names them."""
    matrix = spec.load(REPO / "matrix.yaml")
    envs = repo / "environments"
    lock.write_manifest(matrix, envs)
    built = report.build(repo / "results", envs)
    ruled_out = [c for c in matrix.cells if not c.buildable]
    listed = {m.cell: m for m in built.missing if m.status == report.NOT_BUILDABLE}
    assert ruled_out and set(listed) == {c.id for c in ruled_out}
    assert all(listed[c.id].reason == c.unbuildable for c in ruled_out)
    # Cells with a folder keep their own status; cells with results are not "missing".
    statuses = {m.cell: m.status for m in built.missing}
    assert statuses["bookworm-py3.12-torch2.9.1-cu130-maintained"] == "index unreachable"
    assert OLD not in statuses
    md = report.markdown(built)
    assert f"### Not buildable ({len(ruled_out)} cells)" in md
    reason = ruled_out[0].unbuildable
    assert reason and report._md(reason) in md


def test_a_damaged_cell_json_of_an_undeclared_cell_is_still_listed(repo: Path) -> None:
    envs = repo / "environments"
    lock.write_manifest(spec.load(REPO / "matrix.yaml"), envs)
    (envs / "gone-cell").mkdir()
    (envs / "gone-cell" / lock.CELL_FILE).write_text("{ damaged")
    missing = {m.cell: m.status for m in report.build(repo / "results", envs).missing}
    assert missing["gone-cell"] == "not run"
