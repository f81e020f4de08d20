"""Splitting rows: train / validation / test indices, stratified by class when asked."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnctl.app.errors import DataError


def split_rows(data: Any, n: int, task: str, y: np.ndarray, has_test_rows: bool,
               rng: np.random.Generator, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``split_indices`` as ``data.split`` asks; no test fraction when the file has its own test rows."""
    split = data.split
    strata = y if task == "classification" and split.stratify else None
    test_fraction = 0.0 if has_test_rows else split.test
    return split_indices(n, split.validation, test_fraction, strata, rng, label)


def absent_class_notes(classes: Sequence[str] | None, y_train: np.ndarray) -> list[str]:
    """A warning naming the classes that have no training rows, if any."""
    if classes is None:
        return []
    absent = [c for i, c in enumerate(classes) if not (y_train == i).any()]
    return [f"classes with no training rows: {', '.join(absent)}"] if absent else []


def split_indices(n: int, validation: float, test: float, strata: np.ndarray | None,
                  rng: np.random.Generator, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices (train, validation, test), each sorted; sizes round ``fraction * n``.

    With ``strata`` (class indices) every class is split in proportion and keeps at least one
    training row.
    """
    n_test, n_val = _count(test, n), _count(validation, n)
    for name, fraction, count in (("validation", validation, n_val), ("test", test, n_test)):
        if fraction > 0 and count == 0:
            raise DataError(f"{label}: split.{name}={fraction} of {n} rows leaves the {name} split empty")
    n_train = n - n_val - n_test
    if n_train <= 0:
        raise DataError(f"{label}: split (validation={validation}, test={test}) of {n} rows"
                        " leaves the training split empty")
    if strata is None:
        order = rng.permutation(n)
        parts = (order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test])
        return tuple(np.sort(p) for p in parts)  # type: ignore[return-value]
    groups = [rng.permutation(np.flatnonzero(strata == c)) for c in np.unique(strata)]
    if n_train < len(groups):
        raise DataError(f"{label}: stratified split cannot keep every class in the training split:"
                        f" {n_train} training rows for {len(groups)} classes")
    sizes = np.array([len(g) for g in groups])
    test_counts = _allocate(n_test, sizes, sizes - 1)
    val_counts = _allocate(n_val, sizes, sizes - 1 - test_counts)
    train_p, val_p, test_p = [], [], []
    for group, t, v in zip(groups, test_counts, val_counts):
        test_p.append(group[:t])
        val_p.append(group[t:t + v])
        train_p.append(group[t + v:])
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) for p in (train_p, val_p, test_p))  # type: ignore[return-value]


def _count(fraction: float, n: int) -> int:
    return int(math.floor(fraction * n + 0.5))


def _allocate(total: int, sizes: np.ndarray, room: np.ndarray) -> np.ndarray:
    """Split ``total`` over groups in proportion to ``sizes`` (largest remainder), capped by ``room``."""
    quotas = total * sizes / sizes.sum()
    counts = np.minimum(np.floor(quotas), room).astype(np.int64)
    order = np.argsort(-(quotas - counts), kind="stable")
    while counts.sum() < total:  # terminates: the caller ensures total <= room.sum()
        for i in order:
            if counts.sum() < total and counts[i] < room[i]:
                counts[i] += 1
    return counts


