"""Labels and names: how cells become class and category labels, how labels sort, how names list."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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


@dataclass(frozen=True, eq=False)
class Coded:
    """A column of labels as int64 ``codes`` into ``vocabulary`` (-1: a missing cell, label ''):
    the form the readers give a text column, so that each distinct label is worked on once.
    Indexing takes rows, as with an array."""

    codes: np.ndarray
    vocabulary: np.ndarray  # str; entries need not be distinct

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, rows: Any) -> Coded:
        return Coded(self.codes[rows], self.vocabulary)

    def labels(self) -> np.ndarray:
        return np.append(self.vocabulary, "")[self.codes]

    def map(self, fn, dtype: object) -> np.ndarray:
        """``fn`` of each row's label, calling ``fn`` once per vocabulary entry."""
        return np.array([fn(str(v)) for v in self.vocabulary] + [fn("")], dtype=dtype)[self.codes]

    def relabel(self, fn) -> Coded:
        """Each label ``v`` replaced by ``fn(v)`` (missing cells included)."""
        vocabulary = np.array([fn(str(v)) for v in self.vocabulary] + [fn("")], dtype=str)
        return Coded(np.where(self.codes < 0, len(vocabulary) - 1, self.codes), vocabulary)

    def distinct(self) -> list[str]:
        used = np.bincount(self.codes + 1, minlength=len(self.vocabulary) + 1) > 0
        return [*(str(v) for v in self.vocabulary[used[1:]]), *([""] if used[0] else [])]


def distinct(values: Any) -> list[Any]:
    """The distinct labels of ``values`` (an array or ``Coded``), in no set order."""
    if isinstance(values, Coded):
        return values.distinct()
    return distinct_values(np.asarray(values).reshape(-1))[0]


def map_distinct(values: Any, fn, dtype: object) -> np.ndarray:
    """``[fn(v) for v in values]`` as an array of ``dtype``, calling ``fn`` once per distinct value."""
    if isinstance(values, Coded):
        return values.map(fn, dtype)
    values = np.asarray(values).reshape(-1)
    if len(values) == 0:
        return np.array([], dtype=dtype)
    distinct, inverse = distinct_values(values)
    mapped = np.array([fn(v) for v in distinct], dtype=dtype)
    return mapped[inverse]


def distinct_values(values: np.ndarray) -> tuple[list[Any], np.ndarray]:
    """The distinct values of 1-D ``values`` (in no set order) and each one's index among them,
    found by hashing (pyarrow) rather than sorting."""
    if values.dtype.kind in "US" or values.dtype.kind in "biuf":
        try:
            encoded = pc.dictionary_encode(pa.array(values))
        except (pa.ArrowException, TypeError, ValueError):
            pass
        else:
            return encoded.dictionary.to_pylist(), encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    try:
        distinct, inverse = np.unique(values, return_inverse=True)
    except TypeError:  # objects of several types do not sort
        return list(values), np.arange(len(values))
    return list(distinct), inverse.reshape(-1)


def label_codes(labels: Any, order: Sequence[str]) -> np.ndarray:
    """int64 position of each label (an array or ``Coded``) in ``order``; -1 for a label not in it."""
    index = {label: i for i, label in enumerate(order)}
    if not isinstance(labels, Coded):
        labels = np.asarray(labels, dtype=str)
    return map_distinct(labels, lambda v: index.get(str(v), -1), np.int64)
