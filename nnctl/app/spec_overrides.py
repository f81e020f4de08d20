"""``--set KEY=VALUE`` overrides: a dotted key path (``model.layers[0].units``) and a
YAML value, applied to a spec's data before validation."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml

from nnctl.app.errors import SpecError
from nnctl.app.spec_schema import Spec, TrainingSpec
from nnctl.app.spec_yaml import KeyPath, SpecLoader, format_path

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


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[KeyPath, str]:
    origin: dict[KeyPath, str] = {}
    for override in overrides:
        path, value = _parse_override(override)
        _apply_override(data, path, value, override)
        origin[path] = override
    return origin
