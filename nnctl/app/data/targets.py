"""Targets: which column is the target, which task it means, and its class labels or numbers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nnctl.app.data.labels import label_codes, natural_sorted
from nnctl.app.data.table import BadCells, Table
from nnctl.app.errors import DataError

MAX_INFERRED_CLASSES = 20  # an integer-valued target with at most this many values is a class label


def target_column(table: Table, target: str | None, npz: bool = False) -> str:
    """The target's name: ``target``, or the last column when it is None."""
    if npz and target not in (None, "y"):
        raise DataError(f"{table.label}: an .npz target is its array 'y'; got target '{target}'")
    if target is None:
        return table.names[-1]
    table.column(target, "target column")
    return target


def infer_task(table: Table, target: str, task: str | None, declared_categorical: bool) -> str:
    """``task`` when given; else classification for a text target, a declared categorical
    one, or integers with at most ``MAX_INFERRED_CLASSES`` values; regression otherwise."""
    if task is not None:
        return task
    column = table.column(target)
    if declared_categorical or column.kind == "text":
        return "classification"
    if column.kind == "mixed":
        return "regression"  # the cell checks name the words
    values = column.numbers[~column.missing] if column.numbers.ndim == 1 else column.numbers
    if values.ndim == 1 and np.isfinite(values).all() and np.all(values == np.round(values)) and \
            len(np.unique(values)) <= MAX_INFERRED_CLASSES:
        return "classification"
    return "regression"


def check_target(table: Table, target: str, task: str, bad: BadCells, allow_missing: bool) -> None:
    """Add the target's bad cells to ``bad``: missing cells (unless allowed), non-numbers
    for regression, non-finite numeric labels for classification."""
    column = table.column(target)
    if task == "regression":
        table.check_numbers(target, bad, allow_missing)
        return
    if column.numbers.ndim != 1:
        raise DataError(f"{table.label}: classification needs one label per row;"
                        f" '{target}' has shape {column.numbers.shape}")
    if not allow_missing:
        table.check_present(target, bad)
    if column.kind == "numeric":
        table.check_numbers(target, bad, allow_missing=True)


def targets(tables: Sequence[Table], target: str, task: str,
            label: str) -> tuple[tuple[str, ...] | None, list[np.ndarray]]:
    """Class labels and per-table targets: int64 class indices, or float64 (n, k) numbers."""
    if task != "classification":
        return None, [t.column(target).numbers.reshape(t.n_rows, -1) for t in tables]
    labels = [t.column(target).coded() for t in tables]
    classes = natural_sorted(v for coded in labels for v in coded.distinct())
    if len(classes) < 2:
        raise DataError(f"{label}: target '{target}' has only one class ('{classes[0]}');"
                        " classification needs at least two")
    return classes, [label_codes(lbls, classes) for lbls in labels]
