"""The report stage: results/ -> which runs stand for their cells -> Markdown, JSON, HTML."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from audiomatrix.catalog import signatures
from audiomatrix.lock import run as lock_run
from audiomatrix.publish import registry
from audiomatrix.records import cell as cell_file
from audiomatrix.records import compatibility, json_schemas, publication
from audiomatrix.smoke import results
from audiomatrix.spec import matrix as spec
from audiomatrix.table import report
from audiomatrix.views import markdown, writers
from audiomatrix.views import page as page_view
from support import LOCK, run_result, write_cell_json

REPO = Path(__file__).resolve().parents[1]

ALL_PASS = {c: "pass" for c in report.CHECKS} | {"accelerator": "skip"}
WEIGHTS = "Weights only load failed. ... Unsupported global: GLOBAL demucs.htdemucs.HTDemucs"
CODEC = "ImportError: TorchCodec is required for save_with_torchcodec."
OLD = "bookworm-py3.11-torch2.5.1-cu124-legacy-pinned"
NEW = "bookworm-py3.11-torch2.9.1-cu128-legacy-pinned"
BROKEN = "bookworm-py3.11-torch2.9.1-cu128-maintained"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """results/ and environments/ for three cells, one also run in an image, plus no-shows,
    a run measured without the FFmpeg its cell declares, and a damaged run file."""
    root, envs = tmp_path / "results", tmp_path / "environments"
    failing = ALL_PASS | {"demucs": "fail", "diffrhythm_write": "fail"}
    results.write(root, run_result(OLD, ALL_PASS))
    results.write(root, run_result(OLD, ALL_PASS, kind="image", run="20261125T150000Z"))
    results.write(root, run_result(NEW, ALL_PASS | {"demucs": "fail"}, run="20261125T100000Z"))
    results.write(
        root,
        run_result(NEW, failing, ALL_PASS, errors={"demucs": WEIGHTS, "diffrhythm_write": CODEC}),
    )
    hung = ALL_PASS | {"xtts": "hang", "xtts_service": "crash"}
    results.write(root, run_result(BROKEN, hung, kind="image", ffmpeg="5", torchcodec="0.9.1"))
    no_ffmpeg = run_result(BROKEN, ALL_PASS, run="20261125T170000Z", torchcodec="0.9.1")
    results.write(root, no_ffmpeg)
    (root / BROKEN / "20261126T000000Z.json").write_text("{ damaged")
    for cell in (OLD, NEW):
        write_cell_json(envs, cell)
    write_cell_json(envs, BROKEN, ffmpeg=True, torchcodec="0.9.1")
    write_cell_json(
        envs,
        "bookworm-py3.12-torch2.9.1-cu130-maintained",
        "index unreachable",
        "https://download.pytorch.org/whl/cu130 does not answer",
    )
    write_cell_json(envs, "bookworm-py3.10-torch2.6.0-cpu-legacy")
    return tmp_path


def table(repo: Path) -> compatibility.Compatibility:
    return report.build(repo / "results", repo / "environments", repo / "publications")


def test_rows_are_runs_in_the_declared_environment(repo: Path) -> None:
    t = table(repo)
    assert [(r.cell, r.where.kind, r.run) for r in t.rows] == [
        (OLD, "image", "20261125T150000Z"),
        (OLD, "native", "20261125T160000Z"),
        (NEW, "native", "20261125T160000Z"),
        (BROKEN, "image", "20261125T160000Z"),
    ]
    new = t.rows[2]
    assert new.gpu_arch == ["sm_80", "sm_90", "sm_120"]
    assert new.source == f"results/{NEW}/20261125T160000Z.json"
    assert new.checks["demucs"].raw.signature == "weights-only-demucs"
    assert new.checks["demucs"].compat.status == "pass"
    assert new.checks["demucs"].raw.log == f"results/{NEW}/logs/20261125T160000Z/raw/demucs.log"
    assert not any(r.stale or r.differs for r in t.rows)


def test_a_run_without_the_declared_environment_is_shown_apart(repo: Path) -> None:
    t = table(repo)
    [apart] = t.apart
    assert (apart.cell, apart.where.kind) == (BROKEN, "native")
    assert apart.differs == ["FFmpeg: declared FFmpeg 5, measured none"]
    # Every other declared fact is compared too, each named when it differs.
    other = run_result(
        NEW, ALL_PASS, run="20261127T000000Z", python="3.12.1", distribution="ubuntu 24.04 "
        "(noble)", cuda=None, torchcodec="0.9.1",
    ).model_copy(update={"lock_sha256": "f" * 64})  # fmt: skip
    results.write(repo / "results", other)
    differs = next(r for r in table(repo).apart if r.cell == NEW).differs
    assert differs == [
        "OS: declared debian bookworm, measured ubuntu noble",
        "Python: declared 3.11, measured 3.12",
        "TorchCodec: declared none, measured 0.9.1",
        "accelerator build: declared CUDA 12.8, torch.version.cuda is none",
        f"lock: ran ffffffffffff, the cell's lock is {LOCK[:12]}",
    ]


def test_failures_are_classified_at_report_time_from_the_log(repo: Path) -> None:
    """A result stores no signature: the current catalog reads the first error and the log,
    so a catalog fix reclassifies old runs."""
    run = run_result(OLD, ALL_PASS | {"torch_load": "fail"}, run="20261127T000000Z")
    path = results.write(repo / "results", run)
    assert "signature" not in path.read_text()
    log = repo / "results" / OLD / "logs/20261127T000000Z/raw/torch_load.log"
    log.parent.mkdir(parents=True)
    log.write_text(f"E   _pickle.UnpicklingError: {WEIGHTS}\n")
    row = next(r for r in table(repo).rows if r.cell == OLD and r.where.kind == "native")
    assert row.checks["torch_load"].raw.signature == "weights-only-demucs"
    assert row.checks["torch_load"].raw.first_error == "boom"


def test_a_run_of_another_suite_is_stale(repo: Path) -> None:
    results.write(repo / "results", run_result(NEW, ALL_PASS, run="20261127T000000Z",
                                               suite_sha256="e" * 64))  # fmt: skip
    row = next(r for r in table(repo).rows if r.cell == NEW)
    assert row.stale
    assert "(stale: older suite)" in markdown.markdown(table(repo))


def test_damaged_and_foreign_files_are_listed_not_dropped(repo: Path) -> None:
    foreign = repo / "results" / NEW / "20261127T000000Z.json"
    foreign.write_text((repo / "results" / OLD / "20261125T160000Z.json").read_text())
    (repo / "results" / OLD / "20261128T000000Z.json").write_bytes(b"\xff\xfe{}")
    (repo / "environments" / NEW / "cell.json").write_text('{"schema": 1, "cell": 3}')
    t = table(repo)
    damaged = {d.path: d.reason for d in t.damaged}
    assert damaged[f"results/{BROKEN}/20261126T000000Z.json"].startswith("not valid JSON")
    assert damaged[f"results/{NEW}/20261127T000000Z.json"].startswith(f"names cell '{OLD}'")
    assert damaged[f"results/{OLD}/20261128T000000Z.json"].startswith("not UTF-8 text")
    assert damaged[f"environments/{NEW}/cell.json"].startswith("field 'cell'")
    # The foreign file adds no row; the cell with a damaged declaration stands for nothing.
    assert [r.cell for r in t.rows].count(OLD) == 2
    assert NEW not in {r.cell for r in t.rows}
    md = markdown.markdown(t)
    assert "## Files the report could not use" in md and f"`results/{NEW}/" in md


def test_markdown_table_legend_and_missing_cells(repo: Path) -> None:
    md = markdown.markdown(table(repo))
    results_part = md.split("## Results")[1].split("\n## ")[0]
    rows = [line for line in results_part.splitlines() if line.startswith("| `bookworm")]
    assert len(rows) == 4
    new = next(r for r in rows if NEW in r)
    assert "fail → pass ([weights-only-demucs](#weights-only-demucs))" in new
    assert "fail → pass ([torchcodec-missing](#torchcodec-missing))" in new
    assert f"[20261125T160000Z](results/{NEW}/20261125T160000Z.json)" in new
    assert "`ab12cd34ef56`" in new and LOCK not in md
    image = next(r for r in rows if OLD in r and "| image 0123456789ab @999999999999 |" in r)
    assert "CPU" in image and "cu124 (CUDA 12.4)" in image
    assert "TTS 0.22.0 + demucs 4.0.1" in image
    broken = next(r for r in rows if BROKEN in r)
    assert "hang → hang ([unclassified](#unclassified))" in broken
    kernels = md.split("## GPU kernels")[1].split("\n## ")[0]
    old_gpu = next(line for line in kernels.splitlines() if line.startswith("| torch 2.5.1 cu124"))
    assert "| ✓ ✓ ✓ | ✓ ✓ ✓ | ✓ ✓ | ✓ | ✓ ✓ ✓ ✓ | ✓ | ✓ | ✗ ✗ ✗ ✗ ✗ ✗ ✗ |" in old_gpu
    assert "| Maxwell (sm_50 sm_52 sm_53) | Pascal (sm_60 sm_61 sm_62) |" in kernels
    assert "- cu124 builds of torch 2.5.1: no kernel image for Blackwell; native on Maxwell" in (
        kernels
    )
    apart = md.split("## Runs measured elsewhere")[1].split("## Signatures")[0]
    assert f"| `{BROKEN}` | native |" in apart and "FFmpeg: declared FFmpeg 5" in apart
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
    assert "## Made with" in md


def test_json_has_its_version_and_the_declared_gpu_architectures(repo: Path) -> None:
    """(Its schema's staleness: tests/test_records.py.)"""
    generated = json_schemas.schema("compatibility")
    data = json.loads(report.table_json(table(repo)))
    assert data["schema_version"] == 2
    assert data["rows"][2]["gpu_arch"] == ["sm_80", "sm_90", "sm_120"]
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(generated)
    jsonschema.validate(data, generated)
    data["rows"][0]["checks"]["xtts"]["raw"]["status"] = "ok"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, generated)
    assert compatibility.load_text(report.table_json(table(repo))) == table(repo)


def test_a_damaged_table_is_one_line_naming_the_field(repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "compatibility.json"
    data = json.loads(report.table_json(table(repo)))
    data["rows"][1]["where"]["kind"] = "cloud"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"^field 'rows\.1\.where\.kind': input should be"):
        compatibility.load(path)
    path.write_text(report.table_json(table(repo))[:100])
    with pytest.raises(ValueError, match=r"^not valid JSON"):
        compatibility.load(path)


def test_outputs_are_deterministic(repo: Path, tmp_path: Path) -> None:
    first = [p.read_bytes() for p in writers.write_all(table(repo), tmp_path / "a")]
    copy = tmp_path / "copy"
    for name in ("results", "environments"):  # a different creation order on disk
        shutil.copytree(repo / name, copy / name)
    second = [p.read_bytes() for p in writers.write_all(table(copy), tmp_path / "b")]
    assert first == second
    assert [p.name for p in writers.write_all(table(repo), tmp_path / "c")] == [
        "COMPATIBILITY.md",
        "compatibility.json",
        "index.html",
    ]
    assert writers.output_paths(tmp_path / "c") == writers.write_all(table(repo), tmp_path / "c")


def test_the_report_never_reads_its_own_output(repo: Path) -> None:
    (repo / compatibility.JSON_FILE).write_text("{ not even JSON")
    (repo / markdown.MD_FILE).write_text("# stale")
    assert table(repo) == table(repo)
    writers.write_all(table(repo), repo)
    assert json.loads((repo / compatibility.JSON_FILE).read_text())["schema_version"] == 2


def test_html_is_offline_escaped_and_embeds_the_table(repo: Path) -> None:
    root = repo / "results"
    evil = "</script><img src=x onerror=alert(1)>"
    results.write(
        root,
        run_result(
            BROKEN, ALL_PASS | {"xtts": "fail"}, errors={"xtts": evil}, run="20261125T170000Z",
            kind="image", ffmpeg="5", torchcodec="0.9.1",
        ),
    )  # fmt: skip
    page = page_view.html(table(repo))
    assert "<img src=x" not in page
    assert page.count("<script") == 4 and "</script><img" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "must not load anything"
    assert "<link" not in page
    embedded = page.split('<script type="application/json" id="data">')[1].split("</script>")[0]
    data = json.loads(embedded)
    assert data == json.loads(report.table_json(table(repo)))
    assert data["rows"][3]["checks"]["xtts"]["raw"]["first_error"] == evil
    assert page.count('class="row"') == 4
    assert '<option value="2.9.1">2.9.1</option>' in page
    catalog = page.split('<script type="application/json" id="catalog-data">')[1]
    assert json.loads(catalog.split("</script>")[0]) == page_view.catalog_data()
    assert [e["id"] for e in page_view.catalog_data()["entries"]] == [
        s.id for s in signatures.catalog()
    ]


def test_empty_results_still_render(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    write_cell_json(tmp_path / "environments", OLD, "unresolvable", "no solution")
    t = table(tmp_path)
    assert t.rows == [] and t.missing[0].status == "unresolvable"
    assert "No failures." in markdown.markdown(t)
    assert 'class="row"' not in page_view.html(t)


def test_cells_the_matrix_rules_out_are_listed_with_their_reason(repo: Path) -> None:
    """Unbuildable cells never get a folder; the lock stage's manifest still names them."""
    matrix = spec.load(REPO / "matrix.yaml")
    envs = repo / "environments"
    lock_run.write_manifest(matrix, envs)
    built = table(repo)
    ruled_out = [c for c in matrix.cells if not c.buildable]
    listed = {m.cell: m for m in built.missing if m.status == report.NOT_BUILDABLE}
    assert ruled_out and set(listed) == {c.id for c in ruled_out}
    assert all(listed[c.id].reason == c.unbuildable for c in ruled_out)
    # Cells with a folder keep their own status; cells with results are not "missing".
    statuses = {m.cell: m.status for m in built.missing}
    assert statuses["bookworm-py3.12-torch2.9.1-cu130-maintained"] == "index unreachable"
    assert OLD not in statuses
    md = markdown.markdown(built)
    assert f"### Not buildable ({len(ruled_out)} cells)" in md
    reason = ruled_out[0].unbuildable
    assert reason and markdown._md(reason) in md


def test_a_damaged_cell_json_of_an_undeclared_cell_is_listed(repo: Path) -> None:
    envs = repo / "environments"
    lock_run.write_manifest(spec.load(REPO / "matrix.yaml"), envs)
    (envs / "gone-cell").mkdir()
    (envs / "gone-cell" / cell_file.CELL_FILE).write_text("{ damaged")
    built = table(repo)
    assert {m.cell: m.status for m in built.missing}["gone-cell"] == "not run"
    assert "environments/gone-cell/cell.json" in {d.path for d in built.damaged}


def test_a_publication_shows_only_on_the_row_of_its_image(repo: Path) -> None:
    image_row = next(r for r in table(repo).rows if r.cell == OLD and r.where.kind == "image")
    published = publication.Published(
        cell=OLD, reference="registry.test/audiomatrix/cell@sha256:" + "1" * 64,
        tags=[], digest="sha256:" + "1" * 64, image_id=image_row.where.image_digest or "",
        pushed=image_row.started,
        sbom=publication.Sbom(path=f"sboms/{OLD}.cdx.json", reference="r", digest="d",
                               components=3),
    )  # fmt: skip
    folder = repo / publication.FOLDER
    registry.write_publication(folder, published)
    rows = {(r.cell, r.where.kind): r.published for r in table(repo).rows}
    assert rows[(OLD, "image")] == published and rows[(OLD, "native")] is None
    rebuilt = published.model_copy(update={"image_id": "sha256:" + "2" * 64})
    registry.write_publication(folder, rebuilt)
    assert all(r.published is None for r in table(repo).rows)
    (folder / f"{NEW}.json").write_text(rebuilt.model_dump_json())
    assert f"publications/{NEW}.json" in {d.path for d in table(repo).damaged}
