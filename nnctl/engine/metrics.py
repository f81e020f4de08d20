"""Evaluation metrics on arrays of predictions and targets."""

from __future__ import annotations

import numpy as np

Array = np.ndarray


def predicted_classes(a: Array) -> Array:
    """Class index per row: argmax over output units, or a ≥ 0.5 for a single unit."""
    if a.shape[1] == 1:
        return (a[:, 0] >= 0.5).astype(np.int64)
    return a.argmax(axis=1)


def accuracy(y_true: Array, y_pred: Array) -> float:
    """Fraction of rows whose predicted class equals the true class."""
    if len(y_true) == 0:
        return float("nan")
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def confusion_matrix(y_true: Array, y_pred: Array, n_classes: int) -> Array:
    """C[i, j] = number of rows of true class i predicted as class j."""
    c = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(c, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return c


def rmse(y_true: Array, y_pred: Array) -> float:
    """√(mean (y − ŷ)²) over all rows and outputs."""
    if len(y_true) == 0:
        return float("nan")
    d = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    return float(np.sqrt(np.mean(d * d)))


def mae(y_true: Array, y_pred: Array) -> float:
    """mean |y − ŷ|."""
    if len(y_true) == 0:
        return float("nan")
    return float(np.mean(np.abs(np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64))))


def r2(y_true: Array, y_pred: Array) -> float:
    """R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)²."""
    y = np.asarray(y_true, dtype=np.float64)
    if len(y) < 2:
        return float("nan")
    ss_res = np.sum((y - np.asarray(y_pred, np.float64)) ** 2)
    ss_tot = np.sum((y - y.mean(axis=0)) ** 2)
    return float(1.0 - ss_res / ss_tot) if ss_tot > 0 else float("nan")
