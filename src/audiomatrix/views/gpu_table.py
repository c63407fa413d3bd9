"""The GPU table: for each build of the wheel (torch version x CUDA build), its verdict on
every architecture CUDA lists, the columns grouped by generation (Maxwell ... Blackwell) so that
a build's drops show at a glance; and the summary of which builds dropped which generations,
said from the measurements. COMPATIBILITY.md, the page and the README draw from here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from audiomatrix.core.versions import version_key
from audiomatrix.records.compatibility import Kernels, Row
from audiomatrix.table import gpu_data
from audiomatrix.views.labels import GPU_WORDS

GLYPHS = {"native": "✓", "ptx-jit": "J", "partial": "◐", "no-kernel-image": "✗"}
"""Each verdict's sign in the table; observed verdicts carry a star."""
OBSERVED = "*"


@dataclass(frozen=True)
class Build:
    """Rows whose wheels have the same verdicts: one torch version of one CUDA build (rows of
    several Python versions, stacks and places install the same wheel's code)."""

    torch: str
    accelerator: str
    rows: tuple[Row, ...]

    @property
    def label(self) -> str:
        return f"torch {self.torch} {self.accelerator}"

    @property
    def kernels(self) -> dict[str, Kernels]:
        """The first row's predicted verdicts, with any row's observed one over it."""
        found = dict(self.rows[0].gpu)
        for row in self.rows:
            found |= {a: k for a, k in row.gpu.items() if k.basis == "observed"}
        return found


def _verdicts(row: Row) -> tuple[tuple[str, str], ...]:
    return tuple((a, k.verdict) for a, k in row.gpu.items())


def builds(rows: Sequence[Row]) -> list[Build]:
    """The CUDA rows grouped by torch version, CUDA build and verdicts, oldest torch first."""
    groups: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[Row]] = {}
    for row in rows:
        if row.gpu:
            key = (row.axes.torch, row.axes.accelerator, _verdicts(row))
            groups.setdefault(key, []).append(row)
    return [
        Build(torch, accelerator, tuple(found))
        for (torch, accelerator, _), found in sorted(
            groups.items(), key=lambda g: (version_key(g[0][0]), g[0][1])
        )
    ]


def columns(found: Sequence[Build]) -> list[tuple[str, list[str]]]:
    """The architectures the builds have verdicts for, grouped by generation; an observed
    architecture CUDA no longer lists goes last, alone."""
    have = {a for b in found for a in b.kernels}
    listed = [a for a in gpu_data.arch_names() if a in have]
    other = sorted(have - set(listed))
    return gpu_data.by_generation(listed) + ([("other", other)] if other else [])


def glyph(kernels: Kernels | None) -> str:
    if kernels is None:
        return "-"
    return GLYPHS[kernels.verdict] + (OBSERVED if kernels.basis == "observed" else "")


def _archs_said(archs: Sequence[str]) -> str:
    """sm_50 ... sm_62 said by generation where a generation is whole: "Maxwell, Pascal"."""
    said: list[str] = []
    for generation, members in gpu_data.by_generation(gpu_data.arch_names()):
        inside = [a for a in members if a in archs]
        if inside == members:
            said.append(generation)
        else:
            said += inside
    if len(said) < 2:
        return "".join(said)
    return f"{', '.join(said[:-1])} and {said[-1]}"


def _versions(found: Sequence[Build]) -> str:
    versions = [b.torch for b in found]
    return versions[0] if len(versions) == 1 else f"{', '.join(versions[:-1])} and {versions[-1]}"


def drops(rows: Sequence[Row]) -> list[str]:
    """Per CUDA build and pattern of verdicts, in words: the generations and architectures
    with no kernel image, those where a library lacks kernels (and what it serves), and those
    that run through the PTX JIT."""
    lines = []
    patterns: dict[tuple[str, tuple[tuple[str, str], ...]], list[Build]] = {}
    for build in builds(rows):
        key = (build.accelerator, tuple((a, k.verdict) for a, k in build.kernels.items()))
        patterns.setdefault(key, []).append(build)
    for (accelerator, verdicts), found in patterns.items():
        by = {v: [a for a, w in verdicts if w == v] for v in GLYPHS}
        parts = []
        if by["no-kernel-image"]:
            parts.append(f"no kernel image for {_archs_said(by['no-kernel-image'])}")
        if by["partial"]:
            kernels = found[0].kernels[by["partial"][0]]
            lacking = "; ".join(f"{lack.library.rsplit('/', 1)[-1]} has no kernels for {lack.ops}"
                                for lack in kernels.lacking)  # fmt: skip
            parts.append(f"partial on {_archs_said(by['partial'])}: {lacking}")
        if by["ptx-jit"]:
            parts.append(f"{_archs_said(by['ptx-jit'])} through the PTX JIT for some kernels")
        native = _archs_said(by["native"]) or "none"
        parts.append(f"native on {native}")
        lines.append(f"{accelerator} builds of torch {_versions(found)}: {'; '.join(parts)}.")
    return lines


def _notes(rows: Sequence[Row], apart: Sequence[Row], cell: Callable[[str], str]) -> list[str]:
    """What a GPU observed (runs listed apart included: the GPU ran that wheel), and the
    findings of each build's rows, each said once with how many rows have it."""
    lines = [
        f"- `{r.cell}`{' (listed apart)' if r in apart else ''} {a}: {GPU_WORDS[k.verdict]}, "
        f"observed on {cell(k.evidence)}"
        for r in [*rows, *apart]
        for a, k in r.gpu.items()
        if k.basis == "observed"
    ]
    for build in builds(rows):
        said: dict[str, int] = {}
        for row in build.rows:
            for finding in row.gpu_findings:
                said[finding] = said.get(finding, 0) + 1
        lines += [f"- {build.label}, {n} of {len(build.rows)} rows: {cell(f)}"
                  for f, n in said.items()]  # fmt: skip
    return lines


def markdown(rows: Sequence[Row], apart: Sequence[Row], cell: Callable[[str], str]) -> list[str]:
    """COMPATIBILITY.md's GPU section: the table by build with its columns by generation, the
    summary of what each build dropped, what a GPU observed and the findings. `cell` escapes
    a table cell's text."""
    found = builds(rows)
    if not found:
        return []
    groups = columns(found)
    legend = ", ".join(f"{g} {GPU_WORDS[v]}" for v, g in GLYPHS.items())
    lines = [
        "",
        "## GPU kernels",
        "",
        "What each CUDA build's wheel can run on, for every architecture CUDA lists, grouped by "
        f"generation: {legend}; {OBSERVED} observed on a GPU, else predicted from the code "
        "compiled into every library of the wheel (its fatbins, read without a GPU; each row's "
        "evidence, per library with the counts of containers, is its `gpu` in "
        "compatibility.json). Partial: the main library (libtorch_cuda.so) has kernels, another "
        "library has none. The rows of one build share its verdicts.",
        "",
        "| build | rows | " + " | ".join(f"{g} ({' '.join(a)})" for g, a in groups) + " |",
        "|" + " --- |" * (len(groups) + 2),
    ]
    for build in found:
        kernels = build.kernels
        marks = [" ".join(glyph(kernels.get(a)) for a in archs) for _, archs in groups]
        lines.append(f"| {build.label} | {len(build.rows)} | " + " | ".join(marks) + " |")
    lines += ["", "What the builds dropped, from the measurements:", ""]
    lines += [f"- {cell(line)}" for line in drops(rows)]
    notes = _notes(rows, apart, cell)
    if notes:
        lines += ["", "Observed on a GPU, and where the declaration and the measurement differ:",
                  "", *notes]  # fmt: skip
    return lines
