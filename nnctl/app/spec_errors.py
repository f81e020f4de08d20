"""The wording of spec errors: each pydantic validation error as one line naming its key
path, what is wrong, the YAML line (or the ``--set`` option) it came from, and the
nearest valid choice."""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Sequence
from typing import Any, Union

from pydantic import BaseModel, Tag, ValidationError
from pydantic_core import ErrorDetails

from nnctl.app.spec_schema import (
    NEEDS_VALIDATION_MESSAGE,
    OPTIMIZERS,
    SCHEDULES,
    Spec,
    describe_value,
    needs_validation_key,
)
from nnctl.app.spec_yaml import KeyPath, format_path

class Locator:
    """Where a key path came from: ``(line N)``, ``(from --set K=V)`` or nothing."""

    def __init__(self, lines: dict[KeyPath, int], overrides: dict[KeyPath, str]) -> None:
        self.lines = lines
        self.overrides = overrides

    def where(self, path: KeyPath) -> str:
        for set_path, override in self.overrides.items():
            if path[: len(set_path)] == set_path:
                return f" (from --set {override})"
        if path in self.lines:
            return f" (line {self.lines[path]})"
        for set_path, override in self.overrides.items():
            if path and set_path[: len(path)] == path:
                return f" (from --set {override})"
        for end in range(len(path) - 1, -1, -1):
            if path[:end] in self.lines:
                return f" (line {self.lines[path[:end]]})"
        return ""


def _step(tp: Any, part: str | int) -> tuple[Any, bool]:
    """Follow one pydantic loc element through a type; returns (next type, whether it was a union tag)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, field in tp.model_fields.items():
            if part in (name, field.alias):
                return field.annotation, False
        return None, False
    origin = typing.get_origin(tp)
    if origin in (list, Sequence):
        return (typing.get_args(tp)[0], False) if isinstance(part, int) else (None, False)
    if origin is typing.Annotated:
        return _step(typing.get_args(tp)[0], part)
    if origin is Union or type(tp).__name__ == "UnionType":
        members = [m for m in typing.get_args(tp) if m is not type(None)]
        for member in members:
            base, tags = member, []
            if typing.get_origin(member) is typing.Annotated:
                base, *meta = typing.get_args(member)
                tags = [m.tag for m in meta if isinstance(m, Tag)]
            name_field = getattr(base, "model_fields", {}).get("name")
            if part in tags or (name_field is not None and name_field.default == part):
                return base, True
        if len(members) == 1:
            return _step(members[0], part)
    return None, False


def _walk_loc(loc: tuple[str | int, ...]) -> tuple[KeyPath, Any]:
    """Drop pydantic's union tags from ``loc``; returns the user's key path and the type it ends on."""
    tp: Any = Spec
    path: list[str | int] = []
    for part in loc:
        if tp is None:
            path.append(part)
            continue
        tp, was_tag = _step(tp, part)
        if not was_tag:
            path.append(part)
    return tuple(path), tp


def _fields_of(loc: tuple[str | int, ...]) -> list[str]:
    _, tp = _walk_loc(loc)
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [field.alias or name for name, field in tp.model_fields.items()]
    return []


def _choices(value: Any, valid: Sequence[str]) -> str:
    """``; did you mean 'relu'? expected one of a, b, c``."""
    suffix = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, valid, n=1)
        if close:
            suffix = f"; did you mean '{close[0]}'?"
    return (suffix or ";") + " expected one of " + ", ".join(valid)


_NOUNS = {"normalize": "normalization", "scheme": "init scheme", "output": "output activation"}

_BOUNDS = {
    "greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"), "less_than_equal": ("le", "<="),
}
_KINDS = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
    "bool_parsing": "true or false", "string_type": "text", "list_type": "a list",
    "model_type": "a mapping", "model_attributes_type": "a mapping", "dict_type": "a mapping",
}


def _message(error: ErrorDetails, path: KeyPath) -> str:
    """A plain one-phrase description of one pydantic error (without location or suggestions)."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind in _BOUNDS:
        key, sign = _BOUNDS[kind]
        bound = ctx[key]
        if isinstance(bound, float) and bound.is_integer() and abs(bound) < 1e15:
            bound = int(bound)  # "must be > 0", not "> 0.0"
        return f"must be {sign} {bound}, got {describe_value(value)}"
    if kind in _KINDS:
        hint = ""
        if kind == "model_attributes_type" and path and path[-1] in ("optimizer", "lr_schedule"):
            hint = f" like {{name: {value}}}" if isinstance(value, str) else " like {name: ...}"
        return f"expected {_KINDS[kind]}{hint}, got {describe_value(value)}"
    if kind == "finite_number":
        return f"must be a finite number, got {describe_value(value)}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    return error["msg"].removeprefix("Value error, ")


def _format_error(error: ErrorDetails, locator: Locator) -> str:
    loc = tuple(error["loc"])
    path, _ = _walk_loc(loc)
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "missing":
        return f"{format_path(path)}: missing required key{locator.where(path[:-1])}"
    if kind == "extra_forbidden":
        valid = _fields_of(loc[:-1])
        return f"{format_path(path)}: unknown key{locator.where(path)}{_choices(path[-1], valid)}"
    if kind == "literal_error":
        valid = re.findall(r"'([^']*)'", ctx.get("expected", ""))
        noun = _NOUNS.get(str(path[-1]), str(path[-1]).replace("_", " "))
        head = f"unknown {noun} {value!r}" if isinstance(value, str) else f"got {describe_value(value)}"
        return f"{format_path(path)}: {head}{locator.where(path)}{_choices(value, valid)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        registry = OPTIMIZERS if path[-1] == "optimizer" else SCHEDULES
        noun = str(path[-1]).replace("lr_", "").replace("_", " ")
        name_path = path + ("name",)
        if kind == "union_tag_not_found":
            return f"{format_path(name_path)}: missing required key{locator.where(path)}{_choices(None, list(registry))}"
        tag = ctx.get("tag")
        return f"{format_path(name_path)}: unknown {noun} {tag!r}{locator.where(name_path)}{_choices(tag, list(registry))}"
    if kind == "needs_validation":
        path = tuple(ctx["path"].split("."))
    where = format_path(path) or "the spec"
    return f"{where}: {_message(error, path)}{locator.where(path)}"


def spec_problems(exc: ValidationError, data: dict[str, Any], locator: Locator) -> list[str]:
    errors = exc.errors(include_url=False)
    found = [_format_error(error, locator) for error in errors]
    # The model validator only runs when every field is valid; report this problem beside the others too.
    if not any(error["type"] == "needs_validation" for error in errors):
        key = needs_validation_key(data)
        if key is not None:
            path = tuple(key.split("."))
            found.append(f"{key}: {NEEDS_VALIDATION_MESSAGE}{locator.where(path)}")
    return found
