"""site/index.html: the offline page, rendered with jinja2 from templates/.

It opens on how each workload passes (as installed, with compat, with a proven fix: fixes.py),
then grid.py's grid per workload; it lists the rows, and says what changed since a previous
table when it is given one (diff.py's changes). Its "paste your error" box ranks a pasted error
against the catalog offline, as `check --log` does (catalog.matching, ported to matching.js).
Rendered from the Compatibility model and the catalog alone, so the same table always gives the
same page.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from audiomatrix.catalog import matching
from audiomatrix.catalog.signatures import catalog
from audiomatrix.core.versions import version_key
from audiomatrix.records.compatibility import Compatibility, Missing, Row
from audiomatrix.spec.cells import AXES
from audiomatrix.table import gpu_data
from audiomatrix.views import fixes, gpu_table, grid
from audiomatrix.views.age import age_text
from audiomatrix.views.diff import Change
from audiomatrix.views.labels import GPU_WORDS, where_label

if TYPE_CHECKING:
    import jinja2

SITE_FILE = "site/index.html"


def _environment() -> jinja2.Environment:
    import jinja2  # only where a page is rendered: a no-op `make matrix` renders nothing

    return jinja2.Environment(
        loader=jinja2.PackageLoader("audiomatrix.views", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def mark_title(mark: grid.Mark) -> str:
    """A mark's tooltip: where it ran, raw and compat with their signatures, what changed."""

    def said(verdict: grid.Verdict) -> str:
        sigs = f" ({', '.join(verdict.signatures)})" if verdict.signatures else ""
        return verdict.status + sigs

    lines = [f"{mark.cell} ({mark.where or 'declared'})"]
    if mark.row is None:
        lines.append(mark.reason or grid.NOT_RUN)
    else:
        lines += [f"raw: {said(mark.raw)}", f"with compat: {said(mark.compat)}"]
    if mark.fix:
        lines.append(f"passes with {fixes.label(mark.fix)}: {fixes.evidence(mark.fix)}")
    return "\n".join(lines + [f"since the previous table: {c}" for c in mark.changes])


def _filters(table: Compatibility) -> dict[str, list[str]]:
    """Each filter's values, over the rows and the declared cells the grid shows as not run."""
    cells: list[Row | Missing] = [*table.rows, *grid.not_run(table)]

    def values(axis: str) -> list[str]:
        found = {getattr(c.axes, axis) for c in cells}
        return sorted(found, key=version_key) if axis in ("python", "torch") else sorted(found)

    return {
        **{axis: values(axis) for axis in AXES},
        "installer": sorted({grid.installer_of(c) for c in cells}),
        "where": sorted({r.where.kind for r in table.rows}),
    }


def runs_on(row: Row) -> str:
    """The architectures the row's wheel has kernels for (all but no-kernel-image), for the
    GPU filter: the rows `recommend --gpu-arch` admits."""
    return " ".join(a for a, k in row.gpu.items() if k.verdict != "no-kernel-image")


def check_fixes(table: Compatibility) -> list[dict[str, str]]:
    """Per row, each check's proven fix as the list and the details name it: a remedy cell's
    change (`+six`), or the compat remedies the split proved."""
    remedies = fixes.remedies_of(table)
    found = []
    for row in table.rows:
        siblings = remedies.get((row.cell, row.where.kind), [])
        proven = {c: fixes.workload_fix(row, [c], siblings) for c in row.checks}
        found.append({c: fixes.label(f) for c, f in proven.items() if f})
    return found


def change_records(changes: Sequence[Change]) -> list[dict[str, Any]]:
    """diff.diff's changes as JSON, each with whether it is a regression."""
    return [{**dataclasses.asdict(c), "regression": c.regression} for c in changes]


def catalog_data() -> dict[str, Any]:
    """What site.js needs to rank a pasted error as catalog.matching does: each entry (in the
    catalog's order, which ranks them) with its pattern's first part, and matching's own
    expressions for colours and warnings, so the page reads them from one place."""
    return {
        "entries": [
            {
                "id": s.id,
                "title": s.title,
                "pattern": s.pattern,
                "first_part": matching.first_part(s.pattern),
                "affects": s.affects,
                "remedy": s.remedy,
            }
            for s in catalog()
        ],
        "colour": matching.COLOUR.pattern,
        "warning_line": matching.WARNING_LINE.pattern,
        "warning_end": matching.WARNING_END.pattern,
        "warning_source": matching.WARNING_SOURCE.pattern,
    }


def html(table: Compatibility, changes: Sequence[Change] | None = None) -> str:
    """site/index.html: one offline page (inline CSS/JS, the table embedded as JSON): a grid
    per workload, the list of rows, the GPU table by build and generation, and what changed
    since the previous table when given."""
    builds = gpu_table.builds(table.rows)
    return (
        _environment()
        .get_template("index.html.j2")
        .render(
            table=table,
            filters=_filters(table),
            data=table.model_dump(mode="json"),
            catalog_data=catalog_data(),
            grids=grid.grids(table, changes or ()),
            fixed=check_fixes(table),
            changes=changes,
            change_data=None if changes is None else change_records(changes),
            palette={**grid.PALETTE, grid.OTHER: grid.OTHER_COLOUR},
            tone=grid.tone,
            glyph=grid.glyph,
            mark_title=mark_title,
            mark_label=grid.mark_label,
            steps=grid.steps,
            fix_label=fixes.label,
            passing_text=grid.passing_text,
            not_run_text=grid.not_run_text,
            installer_of=grid.installer_of,
            where_label=where_label,
            age=age_text(table),
            runs_on=runs_on,
            gpu_generations=gpu_data.by_generation(gpu_data.arch_names()),
            gpu_builds=builds,
            gpu_columns=gpu_table.columns(builds),
            gpu_drops=gpu_table.drops(table.rows),
            gpu_glyphs=gpu_table.GLYPHS,
            gpu_glyph=gpu_table.glyph,
            gpu_words=GPU_WORDS,
        )
    )
