"""Memory: the low-memory path for an all-numeric NPZ, in about one copy of X.

The file is hashed in pieces; X is loaded once and checked in row blocks; scaler statistics
are gathered in float64 block by block from the training rows; X is then converted and
normalized block by block (in place when already ``dtype``) and its rows permuted in place
to train | validation | test, so that the three splits are contiguous views of one array.
Results equal the general path's: same split, same float64 arithmetic per cell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nnctl.app.data.npz import NpzArrays, read_npz_arrays
from nnctl.app.data.preprocess import Preprocessor
from nnctl.app.data.scalers import block_rows, check_normalize, fit_scaler_rows, target_scaling
from nnctl.app.data.sources import file_sha256
from nnctl.app.data.splitting import absent_class_notes, split_rows
from nnctl.app.data.targets import infer_task, target_column, targets
from nnctl.app.errors import DataError


def load_numeric_npz(path: Path, data: Any, rng: np.random.Generator, dtype: np.dtype):
    """``Splits`` of an NPZ whose features are all numeric (see the module's docstring)."""
    from nnctl.app.data.loading import Splits

    label = data.source
    data_hash = file_sha256(path, label)
    return numeric_splits(read_npz_arrays(path, label), data_hash, data, rng, dtype)


def numeric_splits(npz: NpzArrays, data_hash: str, data: Any, rng: np.random.Generator, dtype: np.dtype):
    """``Splits`` from all-numeric arrays (an NPZ's or IDX files'), as ``load_numeric_npz``
    describes."""
    from nnctl.app.data.loading import Splits

    label = data.source
    table, test_table = npz.targets, npz.test_targets
    target = target_column(table, data.target, npz=True)
    features = tuple(f"x{j}" for j in range(npz.X.shape[1]))
    if not features:
        raise DataError(f"{label}: no feature columns besides the target '{target}'")
    task = infer_task(table, target, data.task, False)
    tables = [table] if test_table is None else [table, test_table]
    classes, ys = targets(tables, target, task, label)

    parts = split_rows(data, table.n_rows, task, ys[0], test_table is not None, rng, label)
    train = parts[0]
    check_normalize(data.normalize)
    offset, scale = fit_scaler_rows(npz.X, train, data.normalize)
    target_mean, target_scale = target_scaling(task, ys[0][train] if task == "regression" else None,
                                               bool(data.scale_target))
    prep = Preprocessor(task, features, target, {}, data.normalize, offset, scale,
                        classes, target_mean, target_scale, missing=getattr(data, "missing", "error"))

    identity = data.normalize == "none"
    X = convert_rows(npz.X, offset, scale, dtype, identity)
    X_file_test = convert_rows(npz.X_test, offset, scale, dtype, identity) if npz.X_test is not None else None
    del npz  # the arrays as stored (when they differ from X) can go now
    order = np.concatenate(parts)
    permute_rows(X, order)
    bounds = np.cumsum([len(p) for p in parts])
    X_parts = [X[:bounds[0]], X[bounds[0]:bounds[1]], X[bounds[1]:bounds[2]]]
    pieces = [(ys[0], rows) for rows in parts]
    if X_file_test is not None:
        X_parts[2] = X_file_test
        pieces[2] = (ys[1], np.arange(len(X_file_test)))
    arrays: list[np.ndarray] = []
    for X_part, (y, rows) in zip(X_parts, pieces):
        y_out = y[rows] if task == "classification" else prep.scale_targets(y[rows], dtype)
        arrays += [X_part, y_out]
    warnings = absent_class_notes(classes, arrays[1])
    return Splits(*arrays, prep=prep, data_hash=data_hash, warnings=tuple(warnings))


def convert_rows(X: np.ndarray, offset: np.ndarray, scale: np.ndarray, dtype: np.dtype,
                  identity: bool) -> np.ndarray:
    """``(X - offset) / scale`` computed in float64 and stored as C-contiguous ``dtype``, a block
    of rows at a time; in place when X already is that (and writable), else into one new array."""
    in_place = X.dtype == dtype and X.flags.c_contiguous and X.flags.writeable
    if in_place and identity:
        return X
    out = X if in_place else np.empty(X.shape, dtype)
    step = block_rows(X.shape[1])
    for start in range(0, len(X), step):
        block = X[start:start + step].astype(np.float64)
        if not identity:
            block -= offset
            block /= scale
        out[start:start + step] = block
    return out


def permute_rows(X: np.ndarray, order: np.ndarray) -> None:
    """In place, row i of X becomes the old row ``order[i]`` (a permutation of range(len(X))),
    following the permutation's cycles with one row of scratch space."""
    source = order.tolist()
    done = bytearray(len(source))
    scratch = np.empty(X.shape[1:], X.dtype)
    for start, first in enumerate(source):
        if done[start] or first == start:
            continue
        scratch[...] = X[start]
        i = start
        while True:
            done[i] = 1
            j = source[i]
            if j == start:
                X[i] = scratch
                break
            X[i] = X[j]
            i = j


