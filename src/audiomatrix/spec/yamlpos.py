"""A matrix file's bytes -> text -> plain data, with the position of every key and value.

PyYAML alone lets careless or hostile input out as a traceback, a hang or gigabytes of
memory: bytes that are not UTF-8, nesting deep enough to overflow the stack, aliases that
expand exponentially or contain themselves, scalars its constructors cannot build, tags
that name Python objects. Here each of those is one `FILE:LINE:COL: message` YamlFileError,
within the named limits below.
"""

from __future__ import annotations

import codecs
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from audiomatrix.core.errors import AudiomatrixError

MAX_BYTES = 512 * 1024
"""The largest matrix file read: fifty times the shipped one, and parsed within seconds."""

MAX_DEPTH = 32
"""The deepest nesting of values, through aliases too: a matrix needs seven levels."""

MAX_VALUES = 50_000
"""The most keys and values a document may hold once its aliases are expanded: a matrix
needs a few thousand, a billion laughs needs a billion."""

_STANDARD = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(
    _STANDARD + t for t in ("str", "int", "float", "bool", "null", "timestamp", "value")
)
_KINDS = {"int": "an integer", "float": "a number", "bool": "a boolean (true or false)"}
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_SURROGATE = re.compile("[\ud800-\udfff]")


class YamlFileError(AudiomatrixError):
    """A mistake in a YAML file the tool reads (matrix.yaml, signatures.yaml), with where it
    is: the user's input, so exit 2."""

    exit_code = 2

    def __init__(self, file: str, line: int, col: int, message: str):
        super().__init__(f"{file}:{line}:{col}: {message}")
        self.file, self.line, self.col, self.message = file, line, col, message


def shown(value: Any, limit: int = 60) -> str:
    """A value from the file as a message quotes it: repr (so one line), at most `limit`."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


@dataclass
class Positions:
    """Where each key and value of the document starts (1-based line, column)."""

    keys: dict[tuple[Any, ...], tuple[int, int]] = field(default_factory=dict)
    values: dict[tuple[Any, ...], tuple[int, int]] = field(default_factory=dict)

    def of(self, path: tuple[Any, ...], *, key: bool = False) -> tuple[int, int]:
        """The position of `path`, or of its nearest ancestor that has one."""
        table = (self.keys, self.values) if key else (self.values, self.keys)
        for end in range(len(path), -1, -1):
            for positions in table:
                if path[:end] in positions:
                    return positions[path[:end]]
        return (1, 1)


# --------------------------------------------------------------------------- bytes -> text


def read_text(path: Path) -> str:
    """The file's text, reading at most MAX_BYTES + 1 bytes of it (a device never ends)."""
    file = str(path)
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_BYTES + 1)
    except OSError as exc:
        raise YamlFileError(file, 1, 1, f"cannot read: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        message = (
            f"the file is over {MAX_BYTES // 1024} KiB, the most a matrix file may be;"
            " is it the right file?"
        )
        raise YamlFileError(file, 1, 1, message)
    return decode(data, file)


def decode(data: bytes, file: str) -> str:
    """UTF-8 text (a UTF-8 byte order mark is dropped); anything else is a YamlFileError at
    the first byte that is not UTF-8."""
    for bom, name in _WIDE_BOMS:
        if data.startswith(bom):
            message = f"the file is {name} (it starts with its byte order mark); save it as UTF-8"
            raise YamlFileError(file, 1, 1, message)
    body = data.removeprefix(codecs.BOM_UTF8)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = body.rfind(b"\n", 0, exc.start) + 1
        line = body.count(b"\n", 0, exc.start) + 1
        col = len(body[line_start : exc.start].decode("utf-8")) + 1
        message = (
            f"byte 0x{body[exc.start]:02x} is not UTF-8 (is the file Latin-1 or Windows-1252?);"
            " save the file as UTF-8"
        )
        raise YamlFileError(file, line, col, message) from None


# --------------------------------------------------------------------------- text -> nodes


try:
    from yaml.cyaml import CParser as _CParser
except ImportError:  # a PyYAML built without libyaml: every file takes the pure-Python parse
    _CParser = yaml.parser.Parser  # type: ignore[assignment,misc]


class _Limits:
    """PyYAML's composer, refusing nesting past MAX_DEPTH (it recurses per level) and more
    than MAX_VALUES nodes (a big file stops early, not after seconds)."""

    file: str
    depth: int
    nodes: int

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self.nodes += 1
        if self.depth == MAX_DEPTH or self.nodes > MAX_VALUES:
            mark = self.peek_event().start_mark
            message = _too_deep("this value") if self.depth == MAX_DEPTH else _TOO_MANY
            raise YamlFileError(self.file, mark.line + 1, mark.column + 1, message)
        self.depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self.depth -= 1


class _Loader(_Limits, yaml.SafeLoader):
    """PyYAML's safe loader in pure Python: its errors are the ones a user reads."""

    def __init__(self, text: str, file: str):
        super().__init__(text)
        self.file, self.depth, self.nodes = file, 0, 0


class _FastLoader(
    _Limits,
    yaml.composer.Composer,
    _CParser,  # type: ignore[misc]
    yaml.constructor.SafeConstructor,
    yaml.resolver.Resolver,
):
    """libyaml's events (when PyYAML has it) under the same composer, limits and
    constructors: a tenth of the pure-Python parse, which was most of loading a matrix."""

    def __init__(self, text: str, file: str):
        _CParser.__init__(self, text)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self.file, self.depth, self.nodes = file, 0, 0


for _loader in (_Loader, _FastLoader):
    # Dates stay text, as YAML 1.2 reads them: the schema parses its one date from a string,
    # so a quoted and an unquoted date mean the same and a bad one is the schema's one clear
    # message.
    _loader.add_constructor(_STANDARD + "timestamp", yaml.SafeLoader.construct_scalar)
    # A lone `=` resolves to the `value` tag, which no safe constructor builds: text too.
    _loader.add_constructor(_STANDARD + "value", yaml.SafeLoader.construct_scalar)


_TOO_MANY = (
    f"the document reaches over {MAX_VALUES} keys and values here (aliases expanded), the"
    " limit; a matrix needs a few thousand: look for aliases of aliases"
)


def _too_deep(what: str) -> str:
    return (
        f"{what} nests deeper than {MAX_DEPTH} levels of mappings and lists, the limit;"
        " a matrix needs seven: flatten it"
    )


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node, file: str) -> None:
    """Refuse aliases that make the document contain itself, nest too deep or hold too many
    values, before anything is built: a node that aliases share is measured once, so a
    billion laughs costs what its text costs."""
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values, levels)
    open_nodes: set[int] = set()

    def measure(node: yaml.Node, level: int) -> tuple[int, int]:
        key = id(node)
        if key in open_nodes:
            message = "an alias inside this value refers back to it; a matrix cannot contain itself"
            raise YamlFileError(file, *_mark(node), f"{message}: remove that alias")
        if key in measured:  # an alias: its own place is checked by the value holding it
            return measured[key]
        open_nodes.add(key)
        parts = [measure(child, level + 1) for child in _children(node)]
        open_nodes.discard(key)
        values = 1 + sum(p[0] for p in parts)
        levels = 1 + max((p[1] for p in parts), default=0)
        if values > MAX_VALUES:
            raise YamlFileError(file, *_mark(node), _TOO_MANY)
        if level + levels - 1 > MAX_DEPTH:
            raise YamlFileError(file, *_mark(node), _too_deep("through aliases, this value"))
        measured[key] = (values, levels)
        return values, levels

    measure(root, 1)


# --------------------------------------------------------------------------- nodes -> data


def _check_tag(node: yaml.Node, file: str) -> None:
    """Plain data only: a tag naming a Python object, a set or bytes is refused, not built."""
    if isinstance(node, yaml.MappingNode):
        allowed = node.tag == _STANDARD + "map"
    elif isinstance(node, yaml.SequenceNode):
        allowed = node.tag == _STANDARD + "seq"
    else:
        allowed = node.tag in _SCALAR_TAGS
    if not allowed:
        tag = shown(node.tag.replace(_STANDARD, "!!"))
        message = (
            f"unsupported tag {tag}: a matrix holds plain mappings, lists, strings,"
            " numbers and booleans; remove the tag"
        )
        raise YamlFileError(file, *_mark(node), message)


def _scalar(node: yaml.ScalarNode, loader: _Loader) -> Any:
    """The scalar's value; a value its tag's constructor refuses is a YamlFileError there."""
    _check_tag(node, loader.file)
    try:
        value = loader.construct_object(node)
    except (ValueError, KeyError):
        kind = node.tag.removeprefix(_STANDARD)
        if node.tag == loader.resolve(yaml.ScalarNode, node.value, (True, False)):
            # Untagged: YAML 1.1 took it for an integer (0b_, 0x_) or it is too long for one.
            limit = sys.get_int_max_str_digits()
            message = (
                f"YAML reads {shown(node.value)} as an integer but cannot build it (a typo,"
                f" or over {limit} digits?); quote it if it is text"
            )
        else:
            message = (
                f"{shown(node.value)} is not {_KINDS[kind]}; fix it, or remove the !!{kind} tag"
            )
        raise YamlFileError(loader.file, *_mark(node), message) from None
    if isinstance(value, str) and _SURROGATE.search(value):
        message = (
            "an escape here makes half a UTF-16 surrogate pair, which is no character;"
            " write the character itself"
        )
        raise YamlFileError(loader.file, *_mark(node), message)
    return value


def _construct(node: yaml.Node, path: tuple[Any, ...], pos: Positions, loader: _Loader) -> Any:
    pos.values[path] = _mark(node)
    file = loader.file
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node, loader)
    _check_tag(node, file)
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), pos, loader) for i, item in enumerate(node.value)]
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise YamlFileError(file, *_mark(key_node), "a key must be a plain value")
        if key_node.tag == _STANDARD + "merge":
            raise YamlFileError(file, *_mark(key_node), "merge keys (<<) are not supported")
        key = _scalar(key_node, loader)
        if key in out:
            raise YamlFileError(file, *_mark(key_node), f"duplicate key {shown(key)}")
        pos.keys[(*path, key)] = _mark(key_node)
        out[key] = _construct(value_node, (*path, key), pos, loader)
    return out


# --------------------------------------------------------------------------- errors


def _yaml_error(exc: yaml.MarkedYAMLError, file: str) -> YamlFileError:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    message = f"invalid YAML: {exc.problem}"
    if "found another document" in str(exc.problem):
        message = "invalid YAML: a second document starts here; a matrix file holds one: delete it"
    elif "'\\t'" in str(exc.problem):
        message += "; indent with spaces, YAML does not allow tabs"
    elif "expected <block end>" in str(exc.problem):
        message += "; check the indentation"
    elif "mapping values are not allowed" in str(exc.problem):
        message += "; check the indentation, or quote a value that contains ': '"
    elif "found undefined alias" in str(exc.problem):
        message += "; define the anchor (&name) before the alias (*name) that uses it"
    start = exc.context_mark
    if exc.context and start and (start.line, start.column) != (line - 1, col - 1):
        # Where the unclosed bracket or the mapping with the bad indentation begins.
        message += f" ({exc.context} started at line {start.line + 1}, column {start.column + 1})"
    return YamlFileError(file, line, col, message)


def _reader_error(exc: yaml.reader.ReaderError, text: str, file: str) -> YamlFileError:
    """A character YAML does not allow: PyYAML gives an offset into the text, not a mark."""
    line = text.count("\n", 0, exc.position) + 1
    col = exc.position - text.rfind("\n", 0, exc.position)
    message = f"invalid YAML: unacceptable character #x{exc.character:04x}: {exc.reason}"
    if exc.character == 0:
        message += "; is the file binary, or UTF-16 without a byte order mark? save it as UTF-8"
    else:
        message += "; delete it"
    return YamlFileError(file, line, col, message)


def _compose(loader: _Loader) -> yaml.Node | None:
    try:
        return loader.get_single_node()
    except (ValueError, OverflowError):  # PyYAML's chr() of an escape past U+10FFFF
        mark = loader.get_mark()
        message = "invalid YAML: this escape names no character (the last is \\U0010ffff)"
        raise YamlFileError(loader.file, mark.line + 1, mark.column + 1, message) from None


def load_yaml(text: str, file: str) -> tuple[Any, Positions]:
    """Parse YAML into plain data plus the position of every node."""
    fast = _load_fast(text, file)
    return fast if fast is not None else _load_python(text, file)


def _load_python(text: str, file: str) -> tuple[Any, Positions]:
    try:
        loader = _Loader(text, file)  # which first checks every character of the text
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, file) from None
    try:
        root = _compose(loader)
        if root is None:
            raise YamlFileError(file, 1, 1, "the file is empty")
        _check_expansion(root, file)
        pos = Positions()
        return _construct(root, (), pos, loader), pos
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, file) from None
    finally:
        loader.dispose()


def _load_fast(text: str, file: str) -> tuple[Any, Positions] | None:
    """load_yaml through libyaml's parser; None when PyYAML has no libyaml or anything is
    wrong with the text, so that the pure-Python parser says what, in its own words."""
    if _CParser is yaml.parser.Parser or yaml.reader.Reader.NON_PRINTABLE.search(text):
        return None
    loader = _FastLoader(text, file)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _check_expansion(root, file)
        pos = Positions()
        return _construct(root, (), pos, loader), pos
    except (yaml.YAMLError, YamlFileError, ValueError, OverflowError, RecursionError):
        return None
    finally:
        loader.dispose()
