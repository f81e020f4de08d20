"""The grid of ``nnctl crossval``: ``--grid KEY=V1,V2,...`` options and the spec's
``search.grid`` merged, keys that cannot be searched refused, and the spec of each
combination validated with errors that name the grid option and value."""

from __future__ import annotations

import json
import re
from typing import Any, Sequence

from nnctl.app.errors import SpecError, UsageError
from nnctl.app.spec import parse_spec
from nnctl.app.spec_overrides import read_yaml_value

_NOT_SEARCHABLE = {
    "seed": "it would change the rows", "data.source": "it would change the rows", "data.labels": "it would change the rows",
    "data.target": "it would change the rows", "data.task": "it would change the rows",
    "data.split": "it would change the rows", "stopping": "folds and the final model train without stopping criteria",
    "name": "it names the run", "search": "it describes the search", "restarts": "restarts apply to the final model",
}


def parse_grid_option(item: str) -> tuple[str, list[Any]]:
    """``KEY=V1,V2,...`` → (KEY, [V1, V2, ...]); each value is read as YAML (``4``, ``relu``,
    ``0.01``, ``{name: sgd}``)."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or not text.strip():
        raise UsageError(f"--grid {item!r}: expected KEY=V1,V2,... e.g. model.layers[0].units=2,4,8")
    try:
        values = read_yaml_value(f"[{text}]")
    except ValueError as exc:
        raise UsageError(f"--grid {item!r}: cannot read the values: {exc}") from None
    if not values or any(v is None for v in values):
        raise UsageError(f"--grid {item!r}: expected one or more comma-separated values")
    return key, values


def merge_grid(spec_grid: dict[str, list[Any]], options: Sequence[str]) -> dict[str, tuple[str, list[Any]]]:
    """Key → (where it came from, values): the spec's ``search.grid``, then ``--grid`` options
    (a key given on the command line replaces the spec's)."""
    grid = {key: (f"search.grid.{key}", list(values)) for key, values in spec_grid.items()}
    for item in options:
        key, values = parse_grid_option(item)
        grid[key] = (f"--grid {key}", values)
    for key, (origin, values) in grid.items():
        head = key.split("[")[0]
        for fixed, reason in _NOT_SEARCHABLE.items():
            if head == fixed or head.startswith(fixed + "."):
                raise UsageError(f"{origin}: {key} cannot be searched ({reason})")
        if not values:
            raise UsageError(f"{origin}: no values to try")
    return grid


def show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _without_override_notes(message: str) -> str:
    """A spec error's first line without the ``--set`` wording of the override that carried it."""
    message = re.sub(r"^--set '.*?': ", "", message.splitlines()[0])
    return re.sub(r" \(from --set .*?\)(?=;|$)", "", message)


def check_grid_values(base_yaml: str, grid: dict[str, tuple[str, list[Any]]]) -> None:
    """Each value alone on the base spec must give a valid spec: ``--grid KEY=VALUE: problem``."""
    for key, (origin, values) in grid.items():
        for value in values:
            try:
                parse_spec(base_yaml, source="the grid", overrides=[f"{key}={json.dumps(value)}"])
            except SpecError as exc:
                raise SpecError(f"{origin}={show(value)}: {_without_override_notes(exc.message)}") from None


def combination_spec(base_yaml: str, settings: dict[str, Any], origins: dict[str, str]):
    """The base spec with ``settings`` applied as overrides and validated; errors name the
    grid option (or spec key) and the value."""
    overrides = [f"{key}={json.dumps(value)}" for key, value in settings.items()]
    try:
        return parse_spec(base_yaml, source="the grid", overrides=overrides)
    except SpecError as exc:
        shown = ", ".join(f"{origins[k]}={show(v)}" for k, v in settings.items())
        raise SpecError(f"{shown}: {_without_override_notes(exc.message)}") from None
