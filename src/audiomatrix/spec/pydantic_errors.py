"""pydantic's validation errors as a matrix author reads them: one positioned line, no regex or
class names, with a hint where YAML's reading of a value is the likely mistake."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from audiomatrix.spec.schema import NAME_PATTERN
from audiomatrix.spec.selection import did_you_mean
from audiomatrix.spec.yamlpos import Positions, YamlFileError, shown


def _fields_at(model: Any, loc: Sequence[Any]) -> list[str]:
    """The keys the schema allows at `loc`, for a did-you-mean on an unknown key."""
    annotation = model
    for part in loc:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            annotation = annotation.model_fields[part].annotation
            continue
        args = [a for a in get_args(annotation) if a is not type(None)]
        origin = get_origin(annotation)
        if origin in (list, dict):
            annotation = args[-1]
        elif args:  # Optional[X] / X | None
            annotation = args[0]
            args2 = get_args(annotation)
            annotation = args2[-1] if get_origin(annotation) in (list, dict) else annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def type_hint(value: Any) -> str:
    """Why YAML read no string where one was written, and how to make it one."""
    if isinstance(value, bool):
        return "; quote it (YAML reads yes, no, on, off, true and false as booleans)"
    if value is None:
        return (
            "; YAML reads an empty value, ~ and null as nothing: write one (quote a literal null)"
        )
    if isinstance(value, float):
        return f"; write versions in quotes (YAML reads {shown(value)} as a number)"
    if isinstance(value, int):
        return f"; quote it (YAML reads {shown(value)} as a number)"
    return ""


_PATTERNS = {
    NAME_PATTERN: "a lowercase name (a-z, 0-9, '.', '_', '-')",
    r"^3\.\d+$": "a Python version like '3.11'",
    r"^\d+\.\d+\.\d+$": "a version like '2.9.1'",
    r"^https://\S+$": "an https:// URL",
    r"^sm_\d+$": "a GPU architecture like 'sm_120'",
    r"^([a-z0-9][a-z0-9_.-]*|(https?|file)://\S+)$": "a channel name or its URL",
}


def _describe(err: Any) -> str:
    """pydantic's message in words a matrix author knows: no regex, no class names."""
    if err["type"] == "string_pattern_mismatch" and err["ctx"]["pattern"] in _PATTERNS:
        return f"input should be {_PATTERNS[err['ctx']['pattern']]}"
    if err["type"] in ("model_type", "dict_type"):
        return "input should be a mapping of keys"
    if err["type"] == "date_type":
        return "input should be a date as YYYY-MM-DD"
    return f"{err['msg'][0].lower()}{err['msg'][1:]}"


def _data_path(data: Any, loc: Sequence[Any]) -> tuple[Any, ...]:
    """pydantic's loc without the parts that are no place in the data (a union member's type)."""
    path: list[Any] = []
    for part in loc:
        places = (
            data if isinstance(data, dict) else range(len(data)) if isinstance(data, list) else ()
        )
        if part in places:
            data = data[part]
            path.append(part)
    return tuple(path)


def pydantic_error(
    exc: ValidationError, data: Any, pos: Positions, file: str, schema: type[BaseModel]
) -> YamlFileError:
    """pydantic's first error as one positioned line, in the matrix author's words."""
    errors = exc.errors(include_url=False)
    # A misspelt key is also a missing one: report the unknown key, it has the did-you-mean.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(p for p in err["loc"] if p != "[key]")
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _fields_at(schema, loc[:-1])
        msg = f"unknown key {shown(loc[-1])}{did_you_mean(loc[-1], allowed)}"
        return YamlFileError(file, *pos.of(loc, key=True), msg)
    if kind == "missing":
        return YamlFileError(file, *pos.of(loc[:-1], key=True), f"missing key '{loc[-1]}'")
    if kind == "invalid_key" or err["loc"][-1:] == ("[key]",):
        key = err["input"]  # pydantic's loc has the key as a string; YAML may have read a number
        parent = ".".join(str(p) for p in loc[:-1])
        return YamlFileError(
            file,
            *pos.of((*loc[:-1], key), key=True),
            f"{parent + ': ' if parent else ''}key {shown(key)} is not valid: {_describe(err)}"
            f"{type_hint(key)}",
        )
    loc = _data_path(data, loc)
    where = ".".join(str(p) for p in loc)
    value = err.get("input")
    if kind == "value_error":  # a model's own check points at its key, a field's at its value
        where_at = pos.of(loc, key=isinstance(value, dict))
        # A check of the whole model (no loc) is about the mapping itself: no prefix.
        prefix = f"{where}: " if where else ""
        return YamlFileError(file, *where_at, f"{prefix}{err['ctx']['error']}")
    hint = type_hint(value) if kind == "string_type" else ""
    msg = f"{where}: {_describe(err)}, got {shown(value)}{hint}"
    return YamlFileError(file, *pos.of(loc), msg)
