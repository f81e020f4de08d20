"""Cross-validation folds and the choice of the number of epochs: rows dealt into k
stratified folds, one fold's rows with the input scaling fitted again, the spec a fold
trains with, and E* chosen from the folds' validation curves."""

from __future__ import annotations

import math

import numpy as np

from nnctl.app import data as data_mod
from nnctl.app.errors import UsageError
from nnctl.app.spec_schema import StoppingSpec


def stratified_folds(y: np.ndarray | None, n: int, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    """k disjoint, sorted index arrays that together cover range(n).

    With class labels ``y`` the rows of each class are shuffled and dealt round-robin to the
    folds, each class continuing where the previous one stopped, so fold f holds ⌊n_c/k⌋ or
    ⌈n_c/k⌉ rows of class c and fold sizes differ by at most one. Without labels the rows
    are shuffled and dealt the same way."""
    if not 2 <= k <= n:
        raise ValueError(f"need 2 <= k <= n, got k={k}, n={n}")
    groups = [np.arange(n)] if y is None else [np.flatnonzero(y == c) for c in np.unique(y)]
    fold_of = np.empty(n, dtype=np.int64)
    start = 0
    for group in groups:
        order = rng.permutation(group)
        fold_of[order] = (start + np.arange(len(order))) % k
        start += len(order)
    return [np.flatnonzero(fold_of == f) for f in range(k)]


def choose_epoch(curves: np.ndarray, mode: str) -> tuple[int, float, float]:
    """(E*, mean, std) for validation curves of shape (folds, epochs).

    E* (1-based) minimizes (mode 'min') or maximizes (mode 'max') the mean curve
    m(e) = (1/k) Σ_f v_f(e), the earliest epoch on ties; mean = m(E*), std the standard
    deviation of v_f(E*) over folds. Epochs a fold did not reach (NaN) count as the worst
    value, so a diverged fold rules its epochs out; (0, nan, nan) when none is left."""
    worst = np.inf if mode == "min" else -np.inf
    filled = np.where(np.isfinite(curves), curves, worst)
    mean = filled.mean(axis=0)
    oriented = mean if mode == "min" else -mean
    if not np.isfinite(oriented).any():
        return 0, math.nan, math.nan
    e = int(np.argmin(oriented))
    return e + 1, float(mean[e]), float(filled[:, e].std())


def fold_arrays(splits: data_mod.Splits, val_rows: np.ndarray, scale_target: bool, dtype: np.dtype):
    """(X_train, y_train, X_val, y_val, prep) of one fold of the non-test rows in ``splits``
    (loaded in float64 with validation 0): the input scaling x' = (x − offset)/scale (and a
    regression target's scaling) is fitted again on the fold's training rows only."""
    prep = splits.prep
    held = np.zeros(len(splits.X_train), dtype=bool)
    held[val_rows] = True
    Z = splits.X_train * prep.scale + prep.offset  # undo the scaling fitted on all the rows
    y_raw = None
    if prep.task == "regression":
        y_raw = splits.y_train.reshape(len(Z), -1) * prep.target_scale + prep.target_mean
    fold_prep = data_mod.refit_scaling(prep, Z[~held], None if y_raw is None else y_raw[~held], scale_target)
    X = np.ascontiguousarray((Z - fold_prep.offset) / fold_prep.scale, dtype=dtype)
    y = splits.y_train if y_raw is None else fold_prep.scale_targets(y_raw, dtype)
    return X[~held], y[~held], X[held], y[held], fold_prep


def check_folds(k: int, p) -> None:
    y, prep = p.splits.y_train, p.splits.prep
    if k < 2:
        raise UsageError(f"--folds {k}: must be at least 2")
    if prep.task == "classification":
        counts = np.bincount(y, minlength=len(prep.classes))
        c = int(np.argmin(counts))
        if k > counts[c]:
            raise UsageError(f"--folds {k}: above the {counts[c]} non-test rows of the smallest class "
                             f"('{prep.classes[c]}'); use at most {counts[c]} folds")
    elif k > len(y):
        raise UsageError(f"--folds {k}: above the {len(y)} non-test rows; use at most {len(y)} folds")


def cross_validation_spec(spec):
    """The spec a fold (and the final model) trains with: no validation split, no stopping
    criterion (every epoch runs), the last weights kept, no search section."""
    split = spec.data.split.model_copy(update={"validation": 0.0})
    return spec.model_copy(update={
        "data": spec.data.model_copy(update={"split": split}),
        "stopping": StoppingSpec(restore_best=False), "search": None,
    })


def selection_metric(spec) -> str:
    """The validation metric folds are compared by: the early-stopping metric when it is a
    validation metric, else ``val_loss``."""
    es = spec.stopping.early_stopping
    return es.metric if es is not None and es.metric.startswith("val_") else "val_loss"
