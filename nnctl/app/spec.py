"""The experiment spec: YAML loading with line numbers, ``--set`` overrides, validation, resolve and lint.

Validation happens once, here, at the boundary. Every problem is reported at once, one line each::

    model.layers[1].activation: unknown activation 'relux' (line 14); did you mean 'relu'? expected one of ...

The schema itself lives in :mod:`nnctl.app.spec_schema`.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import BaseModel, Tag, ValidationError
from pydantic_core import ErrorDetails

from nnctl.app.errors import SpecError
from nnctl.app.spec_schema import (
    NEEDS_VALIDATION_MESSAGE,
    OPTIMIZERS,
    SCHEDULES,
    CheckpointInit,
    DataSpec,
    EarlyStoppingSpec,
    LayerSpec,
    ModelSpec,
    NoImprovementSpec,
    RandomInit,
    RegularizationSpec,
    Spec,
    SplitSpec,
    StoppingSpec,
    TrainingSpec,
    describe_value,
    needs_validation_key,
)

__all__ = [
    "CheckpointInit", "DataSpec", "EarlyStoppingSpec", "LayerSpec", "ModelSpec", "NoImprovementSpec",
    "RandomInit", "RegularizationSpec", "Spec", "SplitSpec", "StoppingSpec", "TrainingSpec",
    "SpecLoader", "check_needs_validation", "dump_spec_yaml", "json_schema", "lint", "load_spec",
    "parse_spec", "resolve", "spec_to_dict",
]

KeyPath = tuple[Union[str, int], ...]

_MAX_NODES = 100_000  # guards against alias bombs ("billion laughs")
_YAML_PREFIX = "tag:yaml.org,2002:"


def format_path(path: KeyPath) -> str:
    """``('model', 'layers', 1, 'units')`` → ``model.layers[1].units``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_YAML_PREFIX):] if tag.startswith(_YAML_PREFIX) else tag


# ---------------------------------------------------------------- YAML loading
class SpecLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects duplicate keys, non-text keys and custom tags, and records lines.

    ``lines`` maps each key path to its 1-based line: a mapping entry to its key's line, a
    list item to the item's first line, the root ``()`` to the document's first line.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.lines: dict[KeyPath, int] = {}
        self._problems: list[str] = []
        self._visited = 0

    def load_document(self) -> Any:
        """Compose, check and construct the single document; None for an empty stream."""
        node = self.get_single_node()
        if node is None:
            return None
        self._record(node, (), set())
        if self._problems:
            raise SpecError("\n".join(self._problems))
        return self.construct_document(node)

    def _record(self, node: yaml.Node, path: KeyPath, active: set[int]) -> None:
        self._visited += 1
        if self._visited > _MAX_NODES:
            raise SpecError(f"spec is too large: more than {_MAX_NODES} YAML nodes (after expanding aliases)")
        if id(node) in active:  # a recursive alias: validation will reject the value itself
            return
        line = node.start_mark.line + 1
        self.lines.setdefault(path, line)
        if node.tag not in self.yaml_constructors or node.tag is None:
            where = format_path(path) or "the spec"
            self._problems.append(f"{where}: YAML tag '{_short_tag(node.tag)}' is not allowed (line {line})")
            return
        active = active | {id(node)}
        if isinstance(node, yaml.MappingNode):
            self._record_mapping(node, path, active)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.lines[path + (index,)] = item.start_mark.line + 1
                self._record(item, path + (index,), active)

    def _record_mapping(self, node: yaml.MappingNode, path: KeyPath, active: set[int]) -> None:
        first_seen: dict[str, int] = {}
        for key_node, _ in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _YAML_PREFIX + "merge":
                continue
            if not (isinstance(key_node, yaml.ScalarNode) and key_node.tag == _YAML_PREFIX + "str"):
                shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a " + key_node.id
                self._problems.append(
                    f"{format_path(path) or 'the spec'}: key {shown!r} must be text (line {line}); quote it"
                )
                continue
            key = key_node.value
            if key in first_seen:
                self._problems.append(
                    f"{format_path(path + (key,))}: duplicate key (line {line}); first set at line {first_seen[key]}"
                )
            first_seen.setdefault(key, line)
        self.flatten_mapping(node)  # merge keys (<<): explicit keys come last and win
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _YAML_PREFIX + "str":
                child = path + (key_node.value,)
                self.lines[child] = key_node.start_mark.line + 1
                self._record(value_node, child, active)


class SpecDumper(yaml.SafeDumper):
    """Writes specs so that ``SpecLoader`` reads them back unchanged: a string it would read
    as a number (``0E0``) is quoted."""


# YAML 1.1 reads 1e-3 as text; accept the YAML 1.2 / JSON spelling of exponent floats too.
# (add_implicit_resolver copies the table for each subclass; yaml.SafeLoader is unchanged.)
for _cls in (SpecLoader, SpecDumper):
    _cls.add_implicit_resolver(
        _YAML_PREFIX + "float",
        re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )


_MAX_BYTES = 1_000_000
_MAX_FLOW_DEPTH = 100


def _check_size(text: str, source: str) -> None:
    """Refuse, before parsing, a spec over 1 MB or with brackets nested over 100 deep
    (a spec is a few hundred bytes; parsing such documents would take seconds)."""
    if len(text) > _MAX_BYTES:
        raise SpecError(f"{source}: spec is too large: {len(text):,} characters (the limit is {_MAX_BYTES:,})")
    depth = 0
    for i, ch in enumerate(text):
        if ch in "[{":
            depth += 1
            if depth > _MAX_FLOW_DEPTH:
                line = text.count("\n", 0, i) + 1
                raise SpecError(f"{source}: line {line}: the YAML is nested too deeply (more than {_MAX_FLOW_DEPTH} levels)")
        elif ch in "]}":
            depth = max(depth - 1, 0)


def _load_yaml(text: str, source: str) -> tuple[Any, dict[KeyPath, int]]:
    _check_size(text, source)
    try:
        loader = SpecLoader(text)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
        raise SpecError(f"{source}: line {line}: character U+{code:04X} is not allowed in YAML") from None
    try:
        return loader.load_document(), loader.lines
    except SpecError as exc:
        raise SpecError(exc.message, hint=f"in {source}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and not exc.context.startswith("while"):
            problem = f"{exc.context}, {exc.problem}"  # e.g. "expected a single document in the stream, but ..."
        kind = "cannot read a value" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SpecError(f"{source}: {kind}{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: YAML error: {exc}") from None
    except RecursionError:
        raise SpecError(f"{source}: the YAML is nested too deeply") from None
    finally:
        loader.dispose()


# ---------------------------------------------------------------- --set overrides
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])*)*")
_PART_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


_UNION_DEFAULT_NAMES: dict[KeyPath, str] = {
    ("optimizer",): Spec.model_fields["optimizer"].default.name,
    ("training", "lr_schedule"): TrainingSpec.model_fields["lr_schedule"].default.name,
}


def _parse_override(override: str) -> tuple[KeyPath, Any]:
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not _KEY_RE.fullmatch(key):
        raise SpecError(
            f"--set {override!r}: expected KEY=VALUE with KEY a dotted path like model.layers[0].units"
        )
    path: KeyPath = tuple(name if name else int(index) for name, index in _PART_RE.findall(key))
    try:
        value = read_yaml_value(text)
    except ValueError as exc:
        raise SpecError(f"--set {override!r}: cannot read the value: {exc}") from None
    return path, value


def read_yaml_value(text: str) -> Any:
    """One YAML value from a command-line argument, with the spec's safe loader (plain
    data only: no Python objects, no tags); ValueError with the problem otherwise."""
    loader = SpecLoader(text)
    try:
        return loader.get_single_data()
    except (yaml.YAMLError, SpecError) as exc:
        raise ValueError(getattr(exc, "problem", None) or str(exc).splitlines()[0]) from None
    finally:
        loader.dispose()


def _apply_override(data: dict[str, Any], path: KeyPath, value: Any, override: str) -> None:
    node: Any = data
    for depth, part in enumerate(path):
        here = format_path(path[:depth]) or "the spec"
        last = depth == len(path) - 1
        if isinstance(part, int):
            if not isinstance(node, list):
                raise SpecError(f"--set {override!r}: {here} is not a list")
            if part >= len(node):
                raise SpecError(f"--set {override!r}: {here} has {len(node)} item(s), so there is no [{part}]")
        elif not isinstance(node, dict):
            raise SpecError(f"--set {override!r}: {here} is not a mapping")
        elif not last and not isinstance(node.get(part), (dict, list)):
            # Create (or replace a null) section; a new optimizer or schedule keeps its default name.
            default_name = _UNION_DEFAULT_NAMES.get(path[: depth + 1])
            node[part] = {"name": default_name} if default_name else {}
        if last:
            node[part] = value
        else:
            node = node[part]


def _apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[KeyPath, str]:
    origin: dict[KeyPath, str] = {}
    for override in overrides:
        path, value = _parse_override(override)
        _apply_override(data, path, value, override)
        origin[path] = override
    return origin


# ---------------------------------------------------------------- error messages
class _Locator:
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


def _format_error(error: ErrorDetails, locator: _Locator) -> str:
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


def _problems(exc: ValidationError, data: dict[str, Any], locator: _Locator) -> list[str]:
    errors = exc.errors(include_url=False)
    problems = [_format_error(error, locator) for error in errors]
    # The model validator only runs when every field is valid; report this problem beside the others too.
    if not any(error["type"] == "needs_validation" for error in errors):
        key = needs_validation_key(data)
        if key is not None:
            path = tuple(key.split("."))
            problems.append(f"{key}: {NEEDS_VALIDATION_MESSAGE}{locator.where(path)}")
    return problems


# ---------------------------------------------------------------- public API
def parse_spec(
    text: str,
    source: str = "<string>",
    overrides: Sequence[str] = (),
    default_name: str = "experiment",
) -> Spec:
    """Parse and validate a YAML spec; ``overrides`` are ``KEY=VALUE`` strings applied before validation.

    Raises SpecError with one line per problem (key path, message, line) and hint ``in SOURCE``.
    """
    data, lines = _load_yaml(text, source)
    if data is None:
        raise SpecError(f"{source}: the spec is empty; it needs at least 'data:' and 'model:'")
    if not isinstance(data, dict):
        raise SpecError(
            f"{source}: the spec must be a mapping of keys like 'data:' and 'model:', "
            f"got {describe_value(data)} (line {lines.get((), 1)})"
        )
    data.setdefault("name", default_name)
    locator = _Locator(lines, _apply_overrides(data, overrides))
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError("\n".join(_problems(exc, data, locator)), hint=f"in {source}") from None


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> Spec:
    """Read a YAML spec file; its stem is the default ``name``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise SpecError(f"spec file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise SpecError(f"spec file not found: {path} (cannot read it: {reason})") from None
    return parse_spec(text, source=str(path), overrides=overrides, default_name=path.stem or "experiment")


def spec_to_dict(spec: Spec) -> dict[str, Any]:
    """A plain JSON/YAML-compatible dict with every default filled in and aliases (``from``) as keys."""
    return spec.model_dump(mode="json", by_alias=True)


def dump_spec_yaml(spec: Spec) -> str:
    """The spec as YAML, keys in schema order; ``parse_spec(dump_spec_yaml(s)) == s``."""
    return yaml.dump(spec_to_dict(spec), Dumper=SpecDumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file (keys by alias), with each field's description."""
    return Spec.model_json_schema(by_alias=True)


def check_needs_validation(spec: Spec) -> None:
    """Raise SpecError when a stopping criterion needs validation rows but the split has none."""
    key = needs_validation_key(spec_to_dict(spec))
    if key is not None:
        raise SpecError(f"{key}: {NEEDS_VALIDATION_MESSAGE}", hint="set data.split.validation above 0")


def lint(spec: Spec) -> list[str]:
    """Warnings for legal but poor combinations, one line each, starting with the key path."""
    warnings: list[str] = []
    model = spec.model
    if model.output == "softmax" and spec.loss == "squared":
        warnings.append("model.output: softmax output with squared loss learns slowly; use loss: cross_entropy")
    if model.input_dropout >= 0.8:
        warnings.append(f"model.input_dropout: {model.input_dropout} drops most inputs; training may not converge")
    for i, layer in enumerate(model.layers):
        key = f"model.layers[{i}]"
        if layer.activation in ("sigmoid", "tanh") and spec.data.normalize == "none":
            warnings.append(
                f"{key}.activation: {layer.activation} units saturate on unscaled inputs "
                "(data.normalize is none); use normalize: standard"
            )
        if layer.activation != "leaky_relu" and layer.slope != LayerSpec.model_fields["slope"].default:
            warnings.append(f"{key}.slope: ignored, only leaky_relu uses slope (activation is {layer.activation})")
        if layer.dropout >= 0.8:
            warnings.append(f"{key}.dropout: {layer.dropout} drops most units; training may not converge")
    return warnings


def resolve(spec: Spec, task: str, n_classes: int | None) -> Spec:
    """Fill in ``data.task``, ``loss`` and ``model.output`` once the data's task is known.

    loss null: regression → squared; classification → log_loss with sigmoid output, else cross_entropy.
    output null: cross_entropy → softmax; log_loss → sigmoid; squared → linear (regression) or
    sigmoid (classification). Incompatible combinations raise SpecError naming the key.
    """
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    if task == "classification" and n_classes is not None and n_classes < 2:
        raise SpecError(f"data.target: classification needs at least 2 classes, found {n_classes}")
    output = spec.model.output
    loss = spec.loss
    if loss is None:
        if task == "regression":
            loss = "squared"
        else:
            loss = "log_loss" if output == "sigmoid" else "cross_entropy"
    if output is None:
        defaults = {"cross_entropy": "softmax", "log_loss": "sigmoid"}
        output = defaults.get(loss, "linear" if task == "regression" else "sigmoid")
    _check_resolved(task, loss, output, inferred=spec.loss is None)
    return spec.model_copy(
        update={
            "data": spec.data.model_copy(update={"task": task}),
            "model": spec.model.model_copy(update={"output": output}),
            "loss": loss,
        }
    )


def _check_resolved(task: str, loss: str, output: str, inferred: bool) -> None:
    because = f" (loss defaults to {loss} for {task})" if inferred else ""
    if task == "regression" and loss in ("cross_entropy", "log_loss"):
        raise SpecError(f"loss: {loss} is for classification, but the task is regression", hint="use loss: squared")
    if task == "regression" and output == "softmax":
        raise SpecError(
            "model.output: softmax output is for classification, but the task is regression",
            hint="use model.output: linear",
        )
    if loss == "cross_entropy" and output != "softmax":
        raise SpecError(
            f"model.output: cross_entropy loss needs softmax output, got {output!r}{because}",
            hint="set model.output: softmax, or choose a loss that fits the output",
        )
    if loss == "log_loss" and output != "sigmoid":
        raise SpecError(
            f"model.output: log_loss needs sigmoid output, got {output!r}{because}",
            hint="set model.output: sigmoid, or use loss: cross_entropy with softmax",
        )
