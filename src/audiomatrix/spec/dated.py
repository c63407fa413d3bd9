"""matrix.yaml's `exclude_newer`, moved by `audiomatrix refresh`: one targeted edit of the
value's own characters, so the file's comments, order, quoting and line endings stay as their
authors left them (never a re-dump of the YAML).

The edited text is parsed again before it replaces the file (atomically): it must be the same
matrix but for the date.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from pathlib import Path

from audiomatrix.core.files import write_atomic
from audiomatrix.spec.matrix import MAX_CELLS, parse
from audiomatrix.spec.yamlpos import YamlFileError, load_yaml, read_text

_SCALAR = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'|[^\s#,}\]]+")
"""The value's token where it starts: quoted either way, or plain up to a comment or the end
of a flow mapping."""


def with_date(text: str, day: dt.date, file: str) -> str:
    """`text` with its top-level exclude_newer set to `day` (a line after `version:` where it
    has none), its quoting kept."""
    data, pos = load_yaml(text, file)
    lines = text.splitlines(keepends=True)
    if isinstance(data, dict) and "exclude_newer" in data:
        line, col = pos.of(("exclude_newer",))
        row = lines[line - 1]
        token = _SCALAR.match(row, col - 1)
        if token is None:
            raise YamlFileError(file, line, col, "exclude_newer: cannot find its value to edit")
        quote = token.group(0)[0] if token.group(0)[0] in "\"'" else ""
        lines[line - 1] = f"{row[: token.start()]}{quote}{day}{quote}{row[token.end() :]}"
    else:
        line, _ = pos.of(("version",), key=True)
        newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
        lines.insert(line, f"exclude_newer: {day}{newline}")
    return "".join(lines)


def write_exclude_newer(path: Path, day: dt.date, max_cells: int = MAX_CELLS) -> bool:
    """Set the matrix file's exclude_newer to `day`; False when it already says so. The edit
    must leave the same matrix but for the date, or nothing is written."""
    file = str(path)
    text = read_text(path)
    before = parse(text, file, max_cells)
    if before.file.exclude_newer == day:
        return False
    edited = with_date(text, day, file)
    after = parse(edited, file, max_cells)
    if after.file.model_copy(update={"exclude_newer": before.file.exclude_newer}) != before.file:
        raise YamlFileError(file, 1, 1, "exclude_newer: the edit changed more than the date")
    bom = codecs.BOM_UTF8 if path.read_bytes().startswith(codecs.BOM_UTF8) else b""
    write_atomic(path, bom + edited.encode())
    return True
