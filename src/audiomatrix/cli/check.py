"""`audiomatrix check`: a person's error text, versions or environment against the catalog and
the table. Exit 0 when nothing fails (an error text: when the catalog knows it), 1 when
something fails or an error is unknown, 2 for bad input; a broken environment is a finding."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from audiomatrix.check import environment, evidence, report, versions
from audiomatrix.check.errors import CheckInputError
from audiomatrix.cli.options import err, load_table, out
from audiomatrix.records import compatibility
from audiomatrix.suite.schema import CHECKS, FAILED, workloads

SHOWN_ROWS = 2
"""How many reproducing checks a match lists in the report (--json lists all)."""

OFFLINE = "resolved by uv from its cache alone (as the index answered when last asked)"


def _chosen(check_names: list[str] | None, workload: list[str] | None) -> list[str]:
    names = {c.name for c in CHECKS}
    chosen = list(check_names or [])
    for name in chosen:
        if name not in names:
            raise CheckInputError(f"--check {name}: choose from {', '.join(sorted(names))}")
    for name in workload or []:
        if name not in workloads():
            raise CheckInputError(f"--workload {name}: choose from {', '.join(workloads())}")
        chosen += workloads()[name]
    return list(dict.fromkeys(chosen))


def _table(path: Path | None) -> tuple[compatibility.Compatibility, list[str]]:
    """The given table, else compatibility.json here, else none (the catalog alone)."""
    found = path or Path(compatibility.JSON_FILE)
    if path is None and not found.exists():
        empty = compatibility.Compatibility(
            provenance=compatibility.Provenance(suite_sha256="", compat_sha256="",
                                                catalog_sha256=""),
            checks=[], workloads={}, rows=[], apart=[], missing=[], damaged=[], signatures=[],
        )  # fmt: skip
        return empty, [f"no {compatibility.JSON_FILE} here (--table): the catalog alone answers"]
    return load_table(found), []


def _read_log(log: str) -> str:
    if log == "-":
        return sys.stdin.read()
    return versions.read_input(Path(log), "error text")


@contextlib.contextmanager
def _made(kind: str, path: Path, python: str) -> Iterator[Path]:
    """The throwaway environment of -r, --lock or --env, checked then removed."""
    if kind == "--env":
        with environment.throwaway_conda(path) as python_path:
            yield python_path
        return
    text = versions.read_input(path, "lock") if kind == "--lock" else ""
    if "--hash=" not in text:
        text, _ = versions.compile_requirements(path, python, lock=True)
    with environment.throwaway_venv(text, python) as python_path:
        yield python_path


def _pins(kind: str, given: Path | list[str]) -> dict[str, str]:
    if kind == "words":
        assert isinstance(given, list)
        return versions.pinned_words(given)
    assert isinstance(given, Path)
    if kind == "--env":
        return versions.environment_pins(given)
    return versions.lock_pins(versions.read_input(given, "lock"))


def _progress(line: str) -> None:
    err.print(line, markup=False, highlight=False, style="dim")


def answer(
    kind: str,
    given: Path | str | list[str],
    versions_only: bool,
    python_version: str | None,
    checks: list[str],
    table: compatibility.Compatibility,
) -> report.Report:
    """The report for one input (`kind` names its option)."""
    if kind == "--log":
        return report.for_log(_read_log(str(given)), table)
    if kind == "--python":
        python = environment.interpreter(Path(str(given)))
        if versions_only:
            measured = environment.measure(python)
            found = report.versions_of(measured)
            return report.for_versions(str(python), found, measured.facts.python, table, checks)
        return report.for_environment(environment.run_checks(python, checks, _progress), table)
    pins = {} if kind == "-r" else _pins(kind, given)  # type: ignore[arg-type]
    python = versions.python_version(python_version or pins.pop("python", None))
    subject = str(given) if kind != "words" else " ".join(given)
    if versions_only or kind == "words":
        notes = []
        if kind == "-r":
            assert isinstance(given, Path)
            text, offline = versions.compile_requirements(given, python)
            pins = versions.lock_pins(text)
            notes = [OFFLINE] if offline else []
        found = report.for_versions(subject, pins, python, table, checks)
        found.notes += notes
        return found
    assert isinstance(given, Path)
    with _made(kind, given, python) as python_path:
        run = environment.run_checks(python_path, checks, _progress, key=subject)
        return report.for_environment(run, table, subject)


def _input(
    packages: list[str] | None,
    log: str | None,
    python: Path | None,
    requirements: Path | None,
    lock: Path | None,
    env_file: Path | None,
) -> tuple[str, Path | str | list[str]]:
    given = [(k, v) for k, v in (("--log", log), ("--python", python), ("-r", requirements),
             ("--lock", lock), ("--env", env_file), ("words", packages)) if v]  # fmt: skip
    if len(given) != 1:
        raise CheckInputError(
            "give one of --log FILE (or -), --python PATH, -r FILE, --lock FILE, --env FILE "
            "or pkg==version words"
        )
    return given[0]


def check(
    packages: Annotated[
        list[str] | None,
        typer.Argument(help="Pinned versions (torch==2.6.0 TTS==0.22.0): checked by version."),
    ] = None,
    log: Annotated[
        str | None,
        typer.Option("--log", help="An error or a whole traceback in a file, or - for stdin."),
    ] = None,
    python: Annotated[
        Path | None,
        typer.Option("--python", help="An interpreter (or a venv): run the suite in it."),
    ] = None,
    requirements: Annotated[
        Path | None,
        typer.Option("-r", "--requirements", help="Resolve with uv into a throwaway venv."),
    ] = None,
    lock: Annotated[
        Path | None, typer.Option("--lock", help="A pinned requirements lock (pip/uv).")
    ] = None,
    env_file: Annotated[
        Path | None, typer.Option("--env", help="A conda environment.yml (needs a solver).")
    ] = None,
    versions_only: Annotated[
        bool, typer.Option("--versions-only", help="No run: the versions against the table.")
    ] = False,
    python_version: Annotated[
        str | None,
        typer.Option("--python-version", help="X.Y to resolve for (default: this Python)."),
    ] = None,
    check_names: Annotated[
        list[str] | None,
        typer.Option("--check", help="A check of the suite; repeatable (default: all)."),
    ] = None,
    workload: Annotated[
        list[str] | None,
        typer.Option(help=f"One of {', '.join(workloads())}; repeatable (default: all)."),
    ] = None,
    table_path: Annotated[
        Path | None,
        typer.Option("--table", help="The table (default: compatibility.json, if here)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """Check an error text, a set of versions or an environment (an interpreter, requirements,
    a lock, an environment.yml) against the failure catalog and the table, and name each
    failure's fix with the run that proves it. The environment is never changed."""
    kind, given = _input(packages, log, python, requirements, lock, env_file)
    checks = _chosen(check_names, workload)
    table, notes = _table(table_path)
    found = answer(kind, given, versions_only, python_version, checks, table)
    found.notes[:0] = notes
    if as_json:
        typer.echo(json.dumps(found.as_json(), indent=2))
    else:
        show(found)
    if found.failing:
        raise typer.Exit(1)


def show(found: report.Report) -> None:
    """The short report: matches, checks, nearest row, GPU, notes."""
    python = f" (Python {found.python})" if found.python else ""
    out.print(f"[bold]check[/]: {escape(found.subject)}{python}", highlight=False)
    if found.versions:
        stack = [f"{k} {v}" for k, v in found.versions.items() if v and k in evidence.STACK]
        shown = ", ".join(stack)
        out.print(f"  versions: {shown or 'none of the stack'}", markup=False, highlight=False)
    if found.broken:
        out.print(f"[red]broken environment[/]: {escape(found.broken)}", highlight=False)
    if found.matches and found.versions:
        out.print("the catalog's ranges hold these versions (what can fail; the nearest row "
                  "shows what did):", markup=False, highlight=False)  # fmt: skip
    for i, match in enumerate(found.matches, 1):
        _show_match(i, match)
    if found.checks:
        _show_checks(found)
    if found.nearest:
        near = found.nearest
        differs = "; ".join(near["differs"]) or "same versions"
        out.print(f"[bold]nearest row[/]: {near['cell']} ({near['where']}): {escape(differs)}",
                  highlight=False)  # fmt: skip
    for line in [*found.gpus, *found.notes]:
        out.print(f"  {line}", markup=False, highlight=False)


def _show_match(i: int, match: dict) -> None:
    partial = "" if match.get("whole", True) else " (its first part only: paste the whole error)"
    out.print(f"[bold]{i}. {match['signature']}[/]{partial}: {escape(match['title'])}",
              highlight=False)  # fmt: skip
    lines = [f"matched: {match['line']}"] if match.get("line") else []
    lines += [f"because: {'; '.join(match['because'])}"] if match.get("because") else []
    affects = ", ".join(f"{k} {v}" for k, v in match["affects"].items()) or "no version range"
    lines += [f"covers: {affects}", f"fix: {match['remedy']}"]
    seen = match["reproduced"]
    for s in seen[:SHOWN_ROWS]:
        lines.append(f"reproduced: {s['cell']} {s['check']} ({s['mode']}): {s['log']}")
    if len(seen) > SHOWN_ROWS:
        lines.append(f"... and {len(seen) - SHOWN_ROWS} more checks of the table (--json)")
    if not seen:
        lines.append("reproduced: in no row of the table")
    for line in lines:
        out.print(f"   {line}", markup=False, highlight=False)


def _show_checks(found: report.Report) -> None:
    where = found.checks[0].where
    grid = Table(title=f"checks ({'observed in ' if where != 'this environment' else ''}{where})",
                 title_justify="left")  # fmt: skip
    for column in ("check", "raw", "compat", "signature", "first error"):
        grid.add_column(column, overflow="fold")
    for c in found.checks:
        colour = "red" if c.raw in FAILED else "green"
        grid.add_row(c.check, f"[{colour}]{c.raw or '-'}[/]", c.compat or "-",
                     c.signature or "", escape((c.first_error or "")[:160]))  # fmt: skip
    out.print(grid)
    for c in found.checks:
        if c.fix is not None:
            proof = f" (proven by {', '.join(c.fix.proven_by)})" if c.fix.proven else ""
            out.print(f"  fix {c.check}: {c.fix.text}{proof}", markup=False, highlight=False)
