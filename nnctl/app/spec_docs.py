"""The spec reference (docs/spec.md) written from the schema: every key of every section
with its type, default, allowed range and description.

    python -m nnctl.app.spec_docs > docs/spec.md
"""

from __future__ import annotations

import json
import typing
from typing import Any, Iterator, Literal, Union

import annotated_types as at
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from nnctl.app.spec_schema import OPTIMIZERS, SCHEDULES, CheckpointInit, RandomInit, Spec

_HEAD = """# The experiment spec

<!-- Written by `python -m nnctl.app.spec_docs > docs/spec.md` from nnctl/app/spec_schema.py; do not edit by hand. -->

An experiment is one YAML file. Only `data` and `model` are required; every other key has
the default shown. Keys are checked once, when the spec is loaded: an unknown key, a value
of the wrong type or outside its range is reported with its key path and YAML line, all
problems at once. Any key can be overridden on the command line with
`--set KEY=VALUE` (a dotted path such as `model.layers[0].units=8`, the value read as YAML).
`nnctl schema` prints the same schema as JSON Schema, for editors.

```yaml
data: {source: builtin:iris, target: species}
model:
  layers: [{units: 16, activation: tanh}]
optimizer: {name: adam, lr: 0.005}
training: {epochs: 200, batch_size: 16}
stopping: {early_stopping: {metric: val_loss, patience: 20}}
```
"""

_UNIONS: dict[str, tuple[str, dict[str, type[BaseModel]]]] = {
    "model.init": ("its keys", {"random": RandomInit, "checkpoint": CheckpointInit}),
    "optimizer": ("`name`", dict(OPTIMIZERS)),
    "training.lr_schedule": ("`name`", dict(SCHEDULES)),
}
"""Keys whose value is one of several mappings, and what tells them apart."""


def render() -> str:
    """The whole reference as Markdown."""
    return _HEAD + "".join(_section(path, model) for path, model in _sections(Spec, "")) + "\n"


def _sections(model: type[BaseModel], path: str) -> Iterator[tuple[str, type[BaseModel]]]:
    """(key path, model) of the spec and every nested section, depth first, variants of a
    union after the key that holds them."""
    yield path, model
    for name, info in model.model_fields.items():
        key = f"{path}.{info.alias or name}" if path else (info.alias or name)
        if key in _UNIONS:
            for variant in _UNIONS[key][1].values():
                yield from _sections(variant, key)
            continue
        nested = _nested_model(info.annotation)
        if nested is not None:
            yield from _sections(nested, key)


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The section model inside ``X``, ``X | None`` or ``list[X]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _section(path: str, model: type[BaseModel]) -> str:
    title = f"`{path}`" if path else "Top level"
    if path.endswith("layers"):
        title = f"`{path}[i]`"
    variant = _variant_name(path, model)
    if variant:
        title = variant
    doc = (model.__doc__ or "").strip()
    rows = ["| key | type | default | allowed | description |", "| --- | --- | --- | --- | --- |"]
    for name, info in model.model_fields.items():
        key = info.alias or name
        rows.append(f"| `{key}` | {_type(info.annotation, f'{path}.{key}' if path else key)} | {_default(info)} "
                     f"| {_bounds(info.metadata, info.annotation)} | {_cell(info.description or '')} |")
    return f"\n## {title}\n\n{doc}\n\n" + "\n".join(rows) + "\n"


def _variant_name(path: str, model: type[BaseModel]) -> str:
    if path not in _UNIONS:
        return ""
    by, variants = _UNIONS[path]
    tag = next(t for t, m in variants.items() if m is model)
    return f"`{path}: {{name: {tag}}}`" if by == "`name`" else f"`{path}` ({tag})"


def _type(annotation: Any, key: str) -> str:
    if key in _UNIONS:
        return f"mapping, one of: {', '.join(_UNIONS[key][1])}"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (Union, getattr(__import__("types"), "UnionType", Union)):
        return " \\| ".join("null" if a is type(None) else _type(a, "") for a in args)
    if origin is typing.Annotated:
        return _type(args[0], "")
    if origin is list:
        return f"list of {_type(args[0], '')}"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return {int: "integer", float: "number", str: "string", bool: "boolean"}.get(annotation, str(annotation))


def _default(info: Any) -> str:
    if info.default_factory is not None:
        value = info.default_factory()
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if isinstance(value, BaseModel):
        return "see below"
    return f"`{json.dumps(value)}`" if value is not None else "`null`"


_SIGNS = ((at.Ge, "≥", "ge"), (at.Gt, ">", "gt"), (at.Le, "≤", "le"), (at.Lt, "<", "lt"))


def _bounds(metadata: list[Any], annotation: Any) -> str:
    """The range a value must lie in (from the field and from its type's own constraints)."""
    found = list(metadata)
    prefix = "each item " if typing.get_origin(annotation) is list else ""
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Annotated:
            found.extend(m for a in typing.get_args(arg)[1:] for m in getattr(a, "metadata", [a]))
    parts = []
    for item in found:
        for kind, sign, attr in _SIGNS:
            if isinstance(item, kind):
                parts.append(f"{sign} {_number(getattr(item, attr))}")
        if isinstance(item, at.MinLen):
            parts.append(f"length ≥ {item.min_length}")
        if isinstance(item, at.MaxLen):
            parts.append(f"length ≤ {item.max_length}")
    return prefix + ", ".join(parts)


def _number(value: float) -> str:
    """``1e6`` rather than ``1e+06``; integers in full below a trillion."""
    if value == 2**63 - 1:
        return "2^63 − 1"
    if isinstance(value, int) and abs(value) < 10**12:
        return str(value)
    return f"{value:g}".replace("e+0", "e").replace("e+", "e")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


if __name__ == "__main__":
    print(render(), end="")
