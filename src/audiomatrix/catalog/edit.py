"""Writing measured edges into signatures.yaml: only each entry's `measured` block is
rewritten, as text, so the file's comments, order and layout stay as their authors left them.

The result is parsed and compared before it replaces the file (atomically): every entry must
be what it was but for the measured blocks asked for.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from audiomatrix.catalog.signatures import Boundary, Signature, dump_boundary, parse
from audiomatrix.core.files import write_atomic

_KEY_ORDER = ("package", "bound", "good", "bad", "pins", "probe", "python", "date", "unmeasured")


def _scalar(value: object) -> str:
    """A YAML scalar: strings double-quoted (JSON's quoting is YAML's), dates bare."""
    return json.dumps(value) if isinstance(value, str) else str(value)


def render(edges: list[Boundary]) -> list[str]:
    """The `measured:` block of an entry, two spaces in like the entry's other keys."""
    lines = ["  measured:"]
    for edge in edges:
        data = dump_boundary(edge)
        for n, key in enumerate(k for k in _KEY_ORDER if k in data):
            value = data[key]
            if isinstance(value, dict):
                shown = "{" + ", ".join(f"{_scalar(k)}: {_scalar(v)}" for k, v in value.items())
                shown += "}"
            elif key == "date":
                shown = str(value)
            else:
                shown = _scalar(value)
            lines.append(f"{'    - ' if n == 0 else '      '}{key}: {shown}")
    return lines


def merged(entry: Signature, new: list[Boundary]) -> list[Boundary]:
    """The entry's measurements with those of `new` replacing theirs, in the order of the
    entry's edges."""
    by_edge = {b.edge(): b for b in entry.measured} | {b.edge(): b for b in new}
    order = {edge: i for i, edge in enumerate(entry.edges())}
    return sorted(by_edge.values(), key=lambda b: order.get(b.edge(), len(order)))


def _entry_span(lines: list[str], entry_id: str) -> tuple[int, int]:
    """Lines [begin, end) of the entry, without the blank lines after it."""
    head = re.compile(rf"^- id: {re.escape(entry_id)}\s*$")
    begin = next((i for i, ln in enumerate(lines) if head.match(ln)), None)
    if begin is None:
        raise ValueError(f"no line `- id: {entry_id}`")
    end = next((j for j in range(begin + 1, len(lines)) if lines[j][:1] not in ("", " ")), None)
    end = len(lines) if end is None else end
    while end > begin and not lines[end - 1].strip():
        end -= 1
    return begin, end


def _key_block(lines: list[str], begin: int, end: int, key: str) -> tuple[int, int] | None:
    """Lines [start, stop) of the entry's `key` and its deeper-indented continuation."""
    start = next((i for i in range(begin, end) if lines[i].startswith(f"  {key}:")), None)
    if start is None:
        return None
    stop = start + 1
    while stop < end and lines[stop].startswith("    "):
        stop += 1
    return start, stop


def with_measured(text: str, entry_id: str, edges: list[Boundary]) -> str:
    """`text` with entry `entry_id`'s measured block replaced by `edges` (after `affects`)."""
    lines = text.split("\n")
    begin, end = _entry_span(lines, entry_id)
    old = _key_block(lines, begin, end, "measured")
    if old is not None:
        del lines[old[0] : old[1]]
        end -= old[1] - old[0]
    after = _key_block(lines, begin, end, "affects") or (begin, begin + 1)
    lines[after[1] : after[1]] = render(edges) if edges else []
    return "\n".join(lines)


def write(path: Path, updates: dict[str, list[Boundary]]) -> None:
    """Merge `updates` (entry id -> newly measured edges) into the catalog at `path`; a
    rewrite that would change anything else is a ValueError and leaves the file as it was."""
    text = path.read_text(encoding="utf-8")
    before = {e.id: e for e in parse(text, str(path))}
    wanted = dict(before)
    for entry_id, edges in updates.items():
        wanted[entry_id] = before[entry_id].model_copy(
            update={"measured": merged(before[entry_id], edges)}
        )
        text = with_measured(text, entry_id, wanted[entry_id].measured)
    after = {e.id: e for e in parse(text, str(path))}
    changed = [i for i in wanted if after.get(i) != wanted[i]]
    if changed or len(after) != len(wanted):
        raise ValueError(f"the rewrite would change entry {(changed or ['?'])[0]!r} otherwise")
    write_atomic(path, text)
