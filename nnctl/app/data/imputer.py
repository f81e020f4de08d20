"""Missing values: which rows to drop, and the fill value of each feature column.

``data.missing`` is ``error`` (every missing cell named), ``drop_rows`` (rows with a missing
feature or target cell are left out before splitting), or ``mean`` / ``median`` /
``most_frequent``: a numeric column's missing cells take the mean, median or most frequent
value of its training rows; a categorical column's always take its most frequent training
category (ties: the first in sorted order). Targets are never filled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nnctl.app.data.labels import Coded, is_missing, map_distinct, natural_sorted
from nnctl.app.errors import DataError

MISSING_STRATEGIES = ("error", "drop_rows", "mean", "median", "most_frequent")
FILLS = ("mean", "median", "most_frequent")


def missing_labels(labels: np.ndarray | Coded) -> np.ndarray:
    """Bool mask of the label cells that mean "no value" ('' and the NA spellings)."""
    if not isinstance(labels, Coded):
        labels = np.asarray(labels, dtype=str)
    return map_distinct(labels, is_missing, bool)


def fit_fills(raw: Mapping[str, Any], categorical: Sequence[str], strategy: str,
              label: str) -> dict[str, float | str]:
    """Per feature column of training rows ``raw``, its fill value (every column gets one, so
    that a later file's missing cells are filled too)."""
    if strategy not in FILLS:
        return {}
    fills: dict[str, float | str] = {}
    for name, values in raw.items():
        if name in categorical:
            absent = missing_labels(values)
            present = values[~absent]
        else:
            absent = np.isnan(values)
            present = values[~absent]
        if len(present) == 0:
            if not absent.any():
                continue
            raise DataError(f"{label}: column '{name}' has no training values to fill its missing cells from")
        fills[name] = _most_frequent(present) if name in categorical else _fill_number(present, strategy)
    return fills


def _fill_number(values: np.ndarray, strategy: str) -> float:
    if strategy == "mean":
        return float(np.mean(values))
    if strategy == "median":
        return float(np.median(values))
    distinct, counts = np.unique(values, return_counts=True)
    return float(distinct[int(np.argmax(counts))])  # ties: the smallest value


def _most_frequent(labels: np.ndarray | Coded) -> str:
    distinct, counts = np.unique(labels.labels() if isinstance(labels, Coded) else labels, return_counts=True)
    top = {str(v) for v, c in zip(distinct, counts) if c == counts.max()}
    return natural_sorted(top)[0]


def fill(name: str, values: Any, fills: Mapping[str, float | str], categorical: bool) -> Any:
    """``values`` with their missing cells (NaN, or '' / NA labels) set to the column's fill."""
    if name not in fills:
        return values
    if categorical:
        value = str(fills[name])
        if isinstance(values, Coded):
            return values.relabel(lambda v: value if is_missing(v) else v)
        return np.where(missing_labels(values), value, np.asarray(values, dtype=str))
    return np.where(np.isnan(values), float(fills[name]), values)
