"""The house shows its pipeline: each stage package imports only the packages below it, no
module imports another that imports it back (at any depth, type-only and deferred imports
included), no module passes 500 lines, and the package's top level holds only packages and
its entry files. Read with the standard library's ast, so a violation names file and line."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "audiomatrix"

LAYERS = (
    "core",
    "suite",
    "records",
    "spec",
    "lock",
    "image",
    "smoke",
    "catalog",
    "table",
    "views",
    "check",
    "publish",
    "workflow",
    "cli",
)
"""The stage packages, lowest first: each may import only from itself and those before it."""

ENTRY_FILES = {"__init__.py", "__main__.py", "compat.py"}
"""The package's own files beside the stages: its marker, `python -m audiomatrix`, and compat
(the remedies a user imports, copied into every cell beside the suite)."""

MAX_LINES = 500

FROZEN = {"suite/fatbin.py"}
"""Files of the suite over the limit: every suite file is hashed into each run's provenance, so
splitting one marks all 40 rows stale; it waits for the next change to the suite, which makes
them stale anyway and is followed by a sweep."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts).removesuffix(".__init__")


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every audiomatrix module `path` imports, wherever it imports it."""
    tree = ast.parse(path.read_text(), str(path))
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == "audiomatrix"]


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else None


def test_every_package_is_a_known_layer_and_the_top_level_holds_only_entry_files() -> None:
    for entry in PACKAGE.iterdir():
        if entry.name == "__pycache__":
            continue
        if entry.is_dir():
            assert entry.name in LAYERS, f"{entry}: a package outside the stage order"
        else:
            assert entry.name in ENTRY_FILES, f"{entry}: a module at the top level"


def test_stages_import_only_the_stages_below_them() -> None:
    wrong = []
    for module, path in modules().items():
        own = layer(module)
        if own is None:
            continue
        for line, name in imported(path):
            other = layer(name)
            if other is not None and LAYERS.index(other) > LAYERS.index(own):
                wrong.append(f"{path.relative_to(PACKAGE)}:{line}: {own} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_one_that_imports_it_back() -> None:
    found = modules()
    graph = {
        m: {name for _, name in imported(p) if name in found and name != m}
        for m, p in found.items()
    }

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reached = {m: reach(m) for m in graph}
    circles = sorted(
        {
            " <-> ".join(sorted(o for o in graph if m in reached[o] and o in reached[m]))
            for m in graph
            if m in reached[m]
        }
    )
    assert not circles, "\n".join(circles)


def test_no_module_passes_500_lines() -> None:
    long = [
        f"{p.relative_to(PACKAGE)}: {n} lines"
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
        and str(p.relative_to(PACKAGE)) not in FROZEN
    ]
    assert not long, "\n".join(long)


def test_the_checks_can_fail() -> None:
    """The import reader sees deferred, type-only and relative imports, so the tests above
    cannot pass for want of finding them."""
    tree = PACKAGE / "table" / "report.py"
    names = {name for _, name in imported(tree)}
    assert any(name.startswith("audiomatrix.catalog") for name in names)
    assert layer("audiomatrix.table.report") == "table"
    assert layer("audiomatrix.compat") is None
