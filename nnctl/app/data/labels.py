"""Labels and names: how cells become class and category labels, how labels sort, how names list."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import numpy as np

MISSING = frozenset({"", "na", "n/a", "?", "null"})  # cells that mean "no value", compared lower-cased


def is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING


def number_label(value: float) -> str:
    """A number as a class or category label: ``3`` for 3.0, else the shortest repr."""
    value = float(value)
    if math.isfinite(value) and value.is_integer():
        return str(int(value))
    return repr(value)


def canonical_label(cell: str) -> str:
    """A text cell as a label; numeric spellings are unified ("1.0" and "1" are one label)."""
    try:
        value = float(cell)
    except ValueError:
        return cell
    return number_label(value) if math.isfinite(value) else cell


def natural_sorted(labels: Iterable[str]) -> tuple[str, ...]:
    """Sort labels by numeric value when all are numbers, else naturally ("c2" < "c10")."""
    unique = {str(label) for label in labels}
    try:
        return tuple(sorted(unique, key=lambda s: (float(s), s)))
    except ValueError:
        return tuple(sorted(unique, key=_natural_key))


def _natural_key(text: str) -> tuple[object, ...]:
    # re.split with a group alternates text, digits, text...: the types line up position by position.
    parts = re.split(r"([0-9]+)", text)
    return (*(int(p) if i % 2 else p for i, p in enumerate(parts)), text)


def list_names(names: Sequence[str], limit: int = 12) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[: limit - 2])}, ... ({len(names)} in all)"


def map_distinct(values: np.ndarray, fn, dtype: object) -> np.ndarray:
    """``[fn(v) for v in values]`` as an array of ``dtype``, calling ``fn`` once per distinct value."""
    values = np.asarray(values).reshape(-1)
    if len(values) == 0:
        return np.array([], dtype=dtype)
    try:
        distinct, inverse = np.unique(values, return_inverse=True)
    except TypeError:  # objects of several types do not sort
        return np.array([fn(v) for v in values], dtype=dtype)
    mapped = np.array([fn(v) for v in distinct], dtype=dtype)
    return mapped[inverse.reshape(-1)]


def label_codes(labels: np.ndarray, order: Sequence[str]) -> np.ndarray:
    """int64 position of each label in ``order``; -1 for a label not in it."""
    index = {label: i for i, label in enumerate(order)}
    return map_distinct(np.asarray(labels, dtype=str), lambda v: index.get(str(v), -1), np.int64)
