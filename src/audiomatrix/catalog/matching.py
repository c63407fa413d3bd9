"""An error text as a person pastes it -> the catalog entries it shows, most specific first.

classify() names one signature for a check's log, as the table needs. A pasted traceback is
messier: a Windows path, CRLF line ends, terminal colours, a warning printed before or after
the error, or only the first line of an error whose signature needs a later one. So every
entry is tried. An entry matches whole, or by its first part (the pattern before its
`[\\s\\S]*`, which a first line alone can show), kept only where nothing matched whole. The
matches are ordered: in the error before inside a warning, then the catalog's own order
(specific entries come before general ones).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from audiomatrix.catalog.signatures import Signature, catalog

ANYTHING = "[\\s\\S]*"
"""What joins the parts of a pattern that spans lines (`A[\\s\\S]*B`)."""
WARNING_LINE = re.compile(r"\b\w*Warning:( |$)")
WARNING_END = re.compile(r"^\s*$|^Traceback|^(E\s+)?[\w.]+(Error|Exception)\b")
"""Where a warning's text ends: a blank line, a traceback, or an error."""
WARNING_SOURCE = re.compile(r"^\s+\S")
"""The source line Python quotes, indented, under a warning's message: its last line."""
COLOUR = re.compile(r"\x1b\[[0-9;]*m")
"""A terminal's colour codes, as a copied log or a pytest run keeps them."""


@dataclass(frozen=True)
class Match:
    signature: Signature
    whole: bool
    """The whole pattern matched; False: only its first part (paste more of the traceback)."""
    line: str
    """The line it shows on (the last such line outside a warning)."""
    in_warning: bool
    """That line is part of a warning (`UserWarning: ...`), not of the error."""

    def rank(self, order: int) -> tuple[bool, bool, int]:
        return (not self.whole, self.in_warning, order)


def first_part(pattern: str) -> str | None:
    """The pattern before its first `[\\s\\S]*`, or None for a one-line pattern."""
    head, found, _ = pattern.partition(ANYTHING)
    return head if found and head else None


def warning_lines(lines: list[str]) -> set[int]:
    """The numbers of the lines warnings take: from a `...Warning:` line (whose message can
    go on below it, as torch's GPU warning does) to where it ends."""
    found: set[int] = set()
    inside = False
    for number, line in enumerate(lines):
        if WARNING_LINE.search(line):
            inside = True
        elif inside and WARNING_END.search(line):
            inside = False
        elif inside and WARNING_SOURCE.match(line):
            found.add(number)
            inside = False
        if inside:
            found.add(number)
    return found


def match_one(signature: Signature, text: str, warned: set[int]) -> Match | None:
    """How `signature` shows in `text`: whole, by its first part, or not at all. The line
    shown is where it (or its first part) shows last outside a warning: a traceback ends
    with its error, and pytest's log repeats it after the source it quotes."""
    head = first_part(signature.pattern)
    whole = re.search(signature.pattern, text) is not None
    if not whole and (head is None or re.search(head, text) is None):
        return None
    starts = [text.count("\n", 0, m.start()) for m in re.finditer(head or signature.pattern, text)]
    number = next((n for n in reversed(starts) if n not in warned), starts[-1])
    line = text.split("\n")[number].strip()
    return Match(signature, whole, line, number in warned)


def matches(text: str) -> list[Match]:
    """Every catalog entry `text` shows, most specific first (see the module's docstring)."""
    text = COLOUR.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    warned = warning_lines(text.split("\n"))
    found = [
        (i, m) for i, s in enumerate(catalog()) if (m := match_one(s, text, warned)) is not None
    ]
    if any(m.whole for _, m in found):
        found = [(i, m) for i, m in found if m.whole]
    return [m for _, m in sorted(found, key=lambda pair: pair[1].rank(pair[0]))]
