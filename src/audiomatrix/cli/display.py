"""How a run of the pipeline's stages looks on a terminal: progress bars on stderr while they
work, a table or a line per cell on stdout as they finish (workflow.pipeline.Display)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from audiomatrix.cli.options import err, out, progress, show_written
from audiomatrix.lock import stage as lock_stage
from audiomatrix.smoke import results as results_stage
from audiomatrix.smoke.sweep import Step
from audiomatrix.table import report as report_stage
from audiomatrix.views import outputs

_STATUS_STYLE = {
    lock_stage.Status.LOCKED: "green",
    lock_stage.Status.UNCHANGED: "dim",
    lock_stage.Status.NOT_BUILDABLE: "yellow",
    lock_stage.Status.INDEX_UNREACHABLE: "yellow",
    lock_stage.Status.CHANNEL_UNREACHABLE: "yellow",
    lock_stage.Status.UNRESOLVABLE: "red",
    lock_stage.Status.ERROR: "bold red",
}


def status_line(result: results_stage.RunResult, results_root: Path) -> str:
    """`raw: xtts=pass demucs=fail[weights-only-demucs] ...; compat: ...`, classified as the
    report will classify it."""
    parts = []
    for mode, checks in result.modes.items():
        shown = []
        for c in checks:
            log = (results_root / result.cell / c.log) if c.log else None
            text = log.read_text(errors="replace") if log and log.is_file() else ""
            signature = report_stage.signature_of(c, text)
            shown.append(f"{c.check}={c.status}" + (f"[{signature}]" if signature else ""))
        parts.append(f"{mode}: {' '.join(shown)}")
    return "; ".join(parts)


class _Bar:
    def __init__(self, bar: Progress, total: int, stage: str):
        self.bar = bar
        self.task = bar.add_task(stage, total=total, last="")

    def advance(self, last: str) -> None:
        self.bar.update(self.task, advance=1, last=last)

    def note(self, line: str) -> None:
        self.bar.update(self.task, last=line[:90])


def _with_eta() -> Progress:
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
               TextColumn("{task.fields[last]}"))  # fmt: skip
    return Progress(*columns, console=err, transient=True)


class ConsoleDisplay:
    """The terminal's side of workflow.pipeline.Display."""

    @contextmanager
    def progress(self, stage: str, total: int, *, eta: bool) -> Iterator[_Bar]:
        shown = _with_eta() if eta else progress()
        with shown:
            yield _Bar(shown, total, stage)

    def locked(self, results: Sequence[lock_stage.LockResult]) -> None:
        table = Table(title="lock")
        for column in ("cell", "status", "detail"):
            table.add_column(column, overflow="fold")
        for r in results:
            table.add_row(r.cell, f"[{_STATUS_STYLE[r.status]}]{r.status}[/]", r.detail)
        out.print(table)
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        out.print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))

    def engine(self, version: str) -> None:
        err.print(f"Docker Engine {version}", highlight=False)

    def skipped(self, reason: str) -> None:
        err.print(f"skipped {reason}", markup=False)

    def problem(self, line: str) -> None:
        err.print(line, markup=False, soft_wrap=True)

    def step(self, step: Step, results_root: Path) -> None:
        if step.result is not None and step.status == "smoked":
            out.print(f"[bold]{step.cell}[/] {escape(status_line(step.result, results_root))}",
                      highlight=False)  # fmt: skip
        else:
            colour = "dim" if step.status == "smoke unchanged" else "yellow"
            out.print(f"[bold]{step.cell}[/] [{colour}]{step.status}[/] {escape(step.detail)}",
                      highlight=False)  # fmt: skip

    def report(self, root: Path, written: outputs.Written | None) -> None:
        if written is None:
            out.print("report unchanged: written from these very results, locks and code")
        else:
            show_written(root, written)
