"""Datasets for training: load a source, split it, and fit the input and target transforms.

Every statistic (categories, scaler offsets and scales, target mean and scale) is fitted on
the training rows only and then applied unchanged to validation, test and later files.
File parsing lives in ``data_io``; this module decides what the columns mean.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.app import idx
from nnctl.app.data_io import (
    BUILTINS,
    CHUNK_ELEMS,
    NpzArrays,
    Table,
    canonical_label,
    data_dir,
    file_sha256,
    list_names,
    natural_sorted,
    number_label,
    read_npz_arrays,
    read_table,
    resolve_source,
)
from nnctl.app.errors import DataError

__all__ = [
    "BUILTINS",
    "NORMALIZERS",
    "Preprocessor",
    "Splits",
    "data_dir",
    "load_splits",
    "refit_scaling",
    "resolve_source",
    "split_indices",
    "transform_file",
]

NORMALIZERS = ("none", "minmax", "minmax_symmetric", "standard")
MAX_INFERRED_CLASSES = 20  # an integer-valued target with at most this many values is a class label


def _frozen(array: Any) -> np.ndarray:
    out = np.array(array, dtype=np.float64)
    out.setflags(write=False)
    return out


def _str_array(items: Iterable[str]) -> np.ndarray:
    return np.array([str(i) for i in items], dtype=str)


@dataclass(frozen=True, eq=False)
class Preprocessor:
    """The fitted map from raw columns to network inputs, and from targets to training targets.

    Inputs: each categorical column becomes one unit per training category (one-hot; an unseen
    category is all zeros), each numeric column one unit; then ``x' = (x - offset) / scale`` per
    unit. One-hot units and constant columns keep ``scale = 1``.

    Targets: class indices into ``classes`` (classification), or
    ``y' = (y - target_mean) / target_scale`` per output (regression; identity unless scaled).
    """

    task: str
    feature_columns: tuple[str, ...]
    target: str
    categorical: dict[str, tuple[str, ...]]
    normalize: str
    offset: np.ndarray
    scale: np.ndarray
    classes: tuple[str, ...] | None = None
    target_mean: np.ndarray | None = None
    target_scale: np.ndarray | None = None
    input_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        names: list[str] = []
        for column in self.feature_columns:
            if column in self.categorical:
                names.extend(f"{column}={value}" for value in self.categorical[column])
            else:
                names.append(column)
        object.__setattr__(self, "input_names", tuple(names))
        for attr in ("offset", "scale", "target_mean", "target_scale"):
            if getattr(self, attr) is not None:
                object.__setattr__(self, attr, _frozen(getattr(self, attr)))
        if self.offset.shape != (len(names),) or self.scale.shape != (len(names),):
            raise ValueError(f"offset/scale need shape ({len(names)},), one per input unit")

    @property
    def n_inputs(self) -> int:
        return len(self.input_names)

    @property
    def n_outputs(self) -> int:
        """Output units: one per class, or one per regression target."""
        if self.classes is not None:
            return len(self.classes)
        assert self.target_mean is not None
        return len(self.target_mean)

    @property
    def numeric_units(self) -> np.ndarray:
        """Boolean mask over input units: True where the unit is a numeric column."""
        flags = [
            flag
            for column in self.feature_columns
            for flag in ([False] * len(self.categorical[column]) if column in self.categorical else [True])
        ]
        return np.array(flags, dtype=bool)

    @classmethod
    def fit(
        cls,
        raw: Mapping[str, np.ndarray],
        *,
        task: str,
        target: str,
        feature_columns: Sequence[str],
        categorical: Iterable[str],
        normalize: str,
        classes: Sequence[str] | None = None,
        y: np.ndarray | None = None,
        scale_target: bool = False,
    ) -> Preprocessor:
        """Fit categories, input scaling and target scaling on training rows ``raw`` (and ``y``)."""
        if normalize not in NORMALIZERS:
            raise ValueError(f"normalize must be one of {', '.join(NORMALIZERS)}; got {normalize!r}")
        wanted = set(categorical)
        categories = {c: natural_sorted(str(v) for v in raw[c]) for c in feature_columns if c in wanted}
        n_units = sum(len(categories.get(c, (c,))) for c in feature_columns)
        target_mean, target_scale = _target_scaling(task, y, scale_target)
        identity = cls(task, tuple(feature_columns), target, categories, "none",
                       np.zeros(n_units), np.ones(n_units),
                       tuple(classes) if classes is not None else None, target_mean, target_scale)
        Z, _ = identity.encode(raw)
        offset, scale = _fit_scaler(Z, identity.numeric_units, normalize)
        return cls(task, identity.feature_columns, target, categories, normalize, offset, scale,
                   identity.classes, target_mean, target_scale)

    def encode(self, raw: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Transformed inputs (float64) and, per categorical column, the values not seen in training."""
        columns = self._raw_columns(raw)
        n_rows = len(columns[0]) if columns else len(np.asarray(raw))
        blocks = [np.zeros((n_rows, 0))]
        unseen: dict[str, np.ndarray] = {}
        for name, values in zip(self.feature_columns, columns):
            if name not in self.categorical:
                blocks.append(values.reshape(-1, 1))
                continue
            index = {category: i for i, category in enumerate(self.categorical[name])}
            codes = np.array([index.get(v, -1) for v in values], dtype=np.int64)
            blocks.append((codes[:, None] == np.arange(len(index))).astype(np.float64))
            if (codes < 0).any():
                unseen[name] = values[codes < 0]
        Z = np.hstack(blocks)
        return (Z - self.offset) / self.scale, unseen

    def transform(self, raw: Any, dtype: Any = np.float32) -> np.ndarray:
        """Raw rows to network inputs, C-contiguous ``dtype`` of shape (n, n_inputs).

        ``raw`` is a mapping column -> values (numbers, or labels for categorical columns), or a
        2-D array whose columns are ``feature_columns`` in order. Unseen categories encode as zeros.
        """
        return np.ascontiguousarray(self.encode(raw)[0], dtype=dtype)

    def inverse_target(self, y: Any) -> np.ndarray:
        """Network outputs back to the data's terms.

        Classification: class indices (n,) or scores (n, C) -> class labels (str, shape (n,)).
        Regression: scaled targets (n,) or (n, k) -> original units, shape (n, k).
        """
        y = np.asarray(y)
        if self.task == "classification":
            assert self.classes is not None
            indices = y.argmax(axis=1) if y.ndim == 2 else y.astype(np.int64)
            return np.asarray(self.classes, dtype=str)[indices]
        assert self.target_mean is not None and self.target_scale is not None
        y = y.astype(np.float64).reshape(len(y), -1)
        return y * self.target_scale + self.target_mean

    def encode_labels(self, labels: np.ndarray) -> np.ndarray:
        """Class labels (str) to int64 indices; -1 marks a label not among ``classes``."""
        assert self.classes is not None
        index = {label: i for i, label in enumerate(self.classes)}
        return np.array([index.get(str(v), -1) for v in labels], dtype=np.int64)

    def scale_targets(self, y: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """Regression targets (n, k) in data units to training units."""
        assert self.target_mean is not None and self.target_scale is not None
        return np.ascontiguousarray((y - self.target_mean) / self.target_scale, dtype=dtype)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain numeric and unicode arrays (keys ``prep.*``) that load with ``allow_pickle=False``."""
        arrays = {
            "prep.task": np.array(self.task),
            "prep.target": np.array(self.target),
            "prep.normalize": np.array(self.normalize),
            "prep.feature_columns": _str_array(self.feature_columns),
            "prep.categorical": _str_array(self.categorical),
            "prep.offset": np.array(self.offset),
            "prep.scale": np.array(self.scale),
        }
        for i, categories in enumerate(self.categorical.values()):
            arrays[f"prep.categories.{i}"] = _str_array(categories)
        if self.classes is not None:
            arrays["prep.classes"] = _str_array(self.classes)
        if self.target_mean is not None and self.target_scale is not None:
            arrays["prep.target_mean"] = np.array(self.target_mean)
            arrays["prep.target_scale"] = np.array(self.target_scale)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Preprocessor:
        """Rebuild from ``to_arrays()`` output (e.g. an ``np.load``-ed checkpoint)."""

        def get(key: str) -> np.ndarray:
            if key not in arrays:
                raise DataError(f"checkpoint preprocessor: array '{key}' missing")
            return np.asarray(arrays[key])

        def strings(key: str) -> tuple[str, ...]:
            return tuple(str(v) for v in get(key).reshape(-1))

        names = strings("prep.categorical")
        categorical = {name: strings(f"prep.categories.{i}") for i, name in enumerate(names)}
        has_target_scaling = "prep.target_mean" in arrays
        return cls(
            task=str(get("prep.task")[()]),
            feature_columns=strings("prep.feature_columns"),
            target=str(get("prep.target")[()]),
            categorical=categorical,
            normalize=str(get("prep.normalize")[()]),
            offset=get("prep.offset"),
            scale=get("prep.scale"),
            classes=strings("prep.classes") if "prep.classes" in arrays else None,
            target_mean=get("prep.target_mean") if has_target_scaling else None,
            target_scale=get("prep.target_scale") if has_target_scaling else None,
        )

    def _raw_columns(self, raw: Any) -> list[np.ndarray]:
        if isinstance(raw, Mapping):
            absent = [c for c in self.feature_columns if c not in raw]
            if absent:
                raise DataError(f"input has no column '{absent[0]}'; expected: {list_names(self.feature_columns)}")
            columns = [np.asarray(raw[c]).reshape(-1) for c in self.feature_columns]
        else:
            array = np.asarray(raw)
            if array.ndim != 2 or array.shape[1] != len(self.feature_columns):
                raise DataError(f"input has shape {array.shape}; expected (n, {len(self.feature_columns)})")
            columns = [array[:, j] for j in range(array.shape[1])]
        return [self._raw_column(name, values) for name, values in zip(self.feature_columns, columns)]

    def _raw_column(self, name: str, values: np.ndarray) -> np.ndarray:
        if name in self.categorical:
            if values.dtype.kind in "USO":
                return np.array([canonical_label(str(v).strip()) for v in values], dtype=str)
            return np.array([number_label(v) for v in values], dtype=str)
        try:
            numbers = values.astype(np.float64)
        except (TypeError, ValueError):
            raise DataError(f"column '{name}': values are not numbers") from None
        if not np.isfinite(numbers).all():
            raise DataError(f"column '{name}': value {numbers[~np.isfinite(numbers)][0]} is not finite")
        return numbers


def _target_scaling(task: str, y: np.ndarray | None, scale_target: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Regression: (target_mean, target_scale) fitted on training targets ``y`` (n, k), or the
    identity; classification: (None, None)."""
    if task != "regression":
        return None, None
    assert y is not None and y.ndim == 2
    if scale_target:
        return y.mean(axis=0), _safe_scale(y.std(axis=0), y.mean(axis=0))
    return np.zeros(y.shape[1]), np.ones(y.shape[1])


def _safe_scale(scale: np.ndarray, centre: np.ndarray) -> np.ndarray:
    # Constant columns keep scale 1 (x' = x - offset); the tolerance absorbs float noise in std().
    tiny = 1e-12 * np.maximum(1.0, np.abs(centre))
    return np.where(scale > tiny, scale, 1.0)


def _fit_scaler(Z: np.ndarray, numeric: np.ndarray, normalize: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit offset and scale for ``normalize``; one-hot units stay (0, 1)."""
    offset, scale = np.zeros(Z.shape[1]), np.ones(Z.shape[1])
    if normalize == "none" or not numeric.any():
        return offset, scale
    cols = Z[:, numeric]
    if normalize == "standard":
        centre, spread = cols.mean(axis=0), cols.std(axis=0)
    elif normalize == "minmax":
        centre, spread = cols.min(axis=0), np.ptp(cols, axis=0)
    else:  # minmax_symmetric: [min, max] -> [-1, 1]
        lo, hi = cols.min(axis=0), cols.max(axis=0)
        centre, spread = (lo + hi) / 2, (hi - lo) / 2
    offset[numeric], scale[numeric] = centre, _safe_scale(spread, centre)
    return offset, scale


@dataclass(frozen=True, eq=False)
class Splits:
    """Train / validation / test arrays ready for the engine, and the transform that made them.

    ``X_*``: C-contiguous, ``dtype``, shape (n, prep.n_inputs). ``y_*``: int64 class indices of
    shape (n,) (classification) or scaled float targets of shape (n, k) (regression).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    prep: Preprocessor
    data_hash: str  # sha256 of the source file's bytes
    warnings: tuple[str, ...] = ()


def load_splits(data: Any, rng: np.random.Generator, dtype: Any = np.float32,
                base_dirs: Sequence[Path] = ()) -> Splits:
    """Load ``data.source``, split it with ``rng`` and fit the preprocessor on the training rows.

    An NPZ without declared categorical columns takes a low-memory path (``_load_numeric_npz``);
    it gives the same splits, transform and hash as the general one.
    """
    idx_source = idx.find_idx_source(data, base_dirs)
    if idx_source is not None:
        idx.check_target(data)
        return _numeric_splits(*idx.read_idx_source(idx_source), data, rng, np.dtype(dtype))
    path = resolve_source(data.source, base_dirs)
    if path.suffix.lower() == ".npz" and not data.categorical:
        return _load_numeric_npz(path, data, rng, np.dtype(dtype))
    return _load_table_splits(path, data, rng, dtype)


def _load_table_splits(path: Path, data: Any, rng: np.random.Generator, dtype: Any) -> Splits:
    """The general path: any CSV or NPZ, column by column in float64."""
    label = data.source
    table, test_table, raw_bytes = read_table(path, label)
    target = _target_column(table, data.target)
    features = tuple(name for name in table.names if name != target)
    if not features:
        raise DataError(f"{label}: no feature columns besides the target '{target}'")
    categorical = _categorical_columns(table, features, data.categorical)
    task = _infer_task(table, target, data.task, target in data.categorical)
    tables = [table] if test_table is None else [table, test_table]
    classes, ys = _targets(tables, target, task, label)

    parts = _split(data, table.n_rows, task, ys[0], test_table is not None, rng, label)
    raws = [_raw_columns(t, features, categorical) for t in tables]
    train = parts[0]
    prep = Preprocessor.fit(
        {k: v[train] for k, v in raws[0].items()}, task=task, target=target,
        feature_columns=features, categorical=categorical, normalize=data.normalize,
        classes=classes, y=ys[0][train] if task == "regression" else None,
        scale_target=bool(data.scale_target),
    )
    pieces = [(raws[0], ys[0], rows) for rows in parts]
    if test_table is not None:
        pieces[2] = (raws[1], ys[1], np.arange(test_table.n_rows))
    arrays: list[np.ndarray] = []
    warnings: list[str] = []
    for name, (raw, y, rows) in zip(("training", "validation", "test"), pieces):
        X, unseen = prep.encode({k: v[rows] for k, v in raw.items()})
        warnings.extend(_unseen_notes(f"{name} split", unseen))
        y_out = y[rows] if task == "classification" else prep.scale_targets(y[rows], dtype)
        arrays += [np.ascontiguousarray(X, dtype=dtype), y_out]
    warnings.extend(_absent_class_notes(classes, arrays[1]))
    return Splits(*arrays, prep=prep, data_hash=hashlib.sha256(raw_bytes).hexdigest(),
                  warnings=tuple(warnings))


def _load_numeric_npz(path: Path, data: Any, rng: np.random.Generator, dtype: np.dtype) -> Splits:
    """The NPZ path for all-numeric features, in about one copy of X in ``dtype``.

    The file is hashed in pieces; X is loaded once and checked in row blocks; scaler statistics
    are gathered in float64 block by block from the training rows; X is then converted and
    normalized block by block (in place when already ``dtype``) and its rows permuted in place
    to train | validation | test, so that the three splits are contiguous views of one array.
    Results equal the general path's: same split, same float64 arithmetic per cell.
    """
    label = data.source
    data_hash = file_sha256(path, label)
    return _numeric_splits(read_npz_arrays(path, label), data_hash, data, rng, dtype)


def _numeric_splits(npz: NpzArrays, data_hash: str, data: Any, rng: np.random.Generator,
                    dtype: np.dtype) -> Splits:
    """Splits from all-numeric arrays (an NPZ's or IDX files'), as ``_load_numeric_npz`` describes."""
    label = data.source
    table, test_table = npz.targets, npz.test_targets
    target = _target_column(table, data.target)
    features = tuple(f"x{j}" for j in range(npz.X.shape[1]))
    if not features:
        raise DataError(f"{label}: no feature columns besides the target '{target}'")
    task = _infer_task(table, target, data.task, False)
    tables = [table] if test_table is None else [table, test_table]
    classes, ys = _targets(tables, target, task, label)

    parts = _split(data, table.n_rows, task, ys[0], test_table is not None, rng, label)
    train = parts[0]
    if data.normalize not in NORMALIZERS:  # as Preprocessor.fit
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZERS)}; got {data.normalize!r}")
    offset, scale = _fit_scaler_rows(npz.X, train, data.normalize)
    target_mean, target_scale = _target_scaling(task, ys[0][train] if task == "regression" else None,
                                                bool(data.scale_target))
    prep = Preprocessor(task, features, target, {}, data.normalize, offset, scale,
                        classes, target_mean, target_scale)

    identity = data.normalize == "none"
    X = _convert_rows(npz.X, offset, scale, dtype, identity)
    X_file_test = _convert_rows(npz.X_test, offset, scale, dtype, identity) if npz.X_test is not None else None
    del npz  # the arrays as stored (when they differ from X) can go now
    order = np.concatenate(parts)
    _permute_rows(X, order)
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
    warnings = _absent_class_notes(classes, arrays[1])
    return Splits(*arrays, prep=prep, data_hash=data_hash, warnings=tuple(warnings))


def _targets(tables: Sequence[Table], target: str, task: str,
             label: str) -> tuple[tuple[str, ...] | None, list[np.ndarray]]:
    """Class labels and per-table targets: int64 class indices, or float64 (n, k) numbers."""
    if task != "classification":
        return None, [t.numbers(target).reshape(t.n_rows, -1) for t in tables]
    labels = [_target_labels(t, target) for t in tables]
    classes = natural_sorted(np.concatenate(labels))
    if len(classes) < 2:
        raise DataError(f"{label}: target '{target}' has only one class ('{classes[0]}');"
                        " classification needs at least two")
    index = {c: i for i, c in enumerate(classes)}
    return classes, [np.array([index[v] for v in lbls], dtype=np.int64) for lbls in labels]


def _split(data: Any, n: int, task: str, y: np.ndarray, has_test_rows: bool,
           rng: np.random.Generator, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    split = data.split
    strata = y if task == "classification" and split.stratify else None
    test_fraction = 0.0 if has_test_rows else split.test
    return split_indices(n, split.validation, test_fraction, strata, rng, label)


def _absent_class_notes(classes: Sequence[str] | None, y_train: np.ndarray) -> list[str]:
    if classes is None:
        return []
    absent = [c for i, c in enumerate(classes) if not (y_train == i).any()]
    return [f"classes with no training rows: {', '.join(absent)}"] if absent else []


def _block_rows(n_columns: int) -> int:
    return max(1, CHUNK_ELEMS // max(n_columns, 1))


def _fit_scaler_rows(X: np.ndarray, rows: np.ndarray, normalize: str) -> tuple[np.ndarray, np.ndarray]:
    """``_fit_scaler`` over ``X[rows]`` (all units numeric), in float64, a block of rows at a time."""
    d = X.shape[1]
    offset, scale = np.zeros(d), np.ones(d)
    if normalize == "none" or d == 0:
        return offset, scale
    step = _block_rows(d)

    def blocks():
        for start in range(0, len(rows), step):
            yield X[rows[start:start + step]].astype(np.float64, copy=False)

    if normalize == "standard":
        total = np.zeros(d)
        for block in blocks():
            total += block.sum(axis=0)
        centre = total / len(rows)
        squares = np.zeros(d)
        for block in blocks():
            block -= centre
            squares += np.einsum("ij,ij->j", block, block)
        spread = np.sqrt(squares / len(rows))
    else:
        lo, hi = np.full(d, np.inf), np.full(d, -np.inf)
        for block in blocks():
            np.minimum(lo, block.min(axis=0), out=lo)
            np.maximum(hi, block.max(axis=0), out=hi)
        if normalize == "minmax":
            centre, spread = lo, hi - lo
        else:  # minmax_symmetric
            centre, spread = (lo + hi) / 2, (hi - lo) / 2
    return centre, _safe_scale(spread, centre)


def _convert_rows(X: np.ndarray, offset: np.ndarray, scale: np.ndarray, dtype: np.dtype,
                  identity: bool) -> np.ndarray:
    """``(X - offset) / scale`` computed in float64 and stored as C-contiguous ``dtype``, a block
    of rows at a time; in place when X already is that (and writable), else into one new array."""
    in_place = X.dtype == dtype and X.flags.c_contiguous and X.flags.writeable
    if in_place and identity:
        return X
    out = X if in_place else np.empty(X.shape, dtype)
    step = _block_rows(X.shape[1])
    for start in range(0, len(X), step):
        block = X[start:start + step].astype(np.float64)
        if not identity:
            block -= offset
            block /= scale
        out[start:start + step] = block
    return out


def _permute_rows(X: np.ndarray, order: np.ndarray) -> None:
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


def refit_scaling(prep: Preprocessor, Z: np.ndarray, y: np.ndarray | None = None,
                  scale_target: bool = False) -> Preprocessor:
    """``prep`` with its input scaling fitted again on other rows: ``Z`` holds them encoded
    but unscaled (one-hot units as they are), and for regression ``y`` their targets in
    data units (n, k). Categories and classes stay; the scaling is fitted as in ``fit``."""
    offset, scale = _fit_scaler(Z, prep.numeric_units, prep.normalize)
    target_mean, target_scale = prep.target_mean, prep.target_scale
    if prep.task == "regression":
        target_mean, target_scale = _target_scaling(prep.task, y, scale_target)
    return Preprocessor(prep.task, prep.feature_columns, prep.target, prep.categorical, prep.normalize,
                        offset, scale, prep.classes, target_mean, target_scale)


def transform_file(path: Path, prep: Preprocessor, dtype: Any = np.float32,
                   warnings: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read another file with the same columns and apply the stored transform: (X, y).

    ``y`` is coded as in ``Splits`` (class indices or scaled targets). For an NPZ the arrays
    ``X`` and ``y`` are used. Notes about unseen categories are appended to ``warnings``.
    """
    label = str(path)
    table, _, _ = read_table(Path(path), label)
    for name in prep.feature_columns:
        table.column(name)
    table.column(prep.target, "target column")
    X, unseen = prep.encode(_raw_columns(table, prep.feature_columns, tuple(prep.categorical)))
    if warnings is not None:
        warnings.extend(_unseen_notes(label, unseen))
    if prep.task == "classification":
        labels = _target_labels(table, prep.target)
        y = prep.encode_labels(labels)
        if (y < 0).any():
            row = int(np.argmax(y < 0))
            raise table.cell_error(row, prep.target, f"class '{labels[row]}' was not seen in training;"
                                   f" classes: {list_names(prep.classes or ())}")
    else:
        values = table.numbers(prep.target).reshape(table.n_rows, -1)
        if values.shape[1] != prep.n_outputs:
            raise DataError(f"{label}: target has {values.shape[1]} columns, the model predicts {prep.n_outputs}")
        y = prep.scale_targets(values, dtype)
    return np.ascontiguousarray(X, dtype=dtype), y


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


def _target_column(table: Table, target: str | None) -> str:
    if table.lines is None and target not in (None, "y"):
        raise DataError(f"{table.label}: an .npz target is its array 'y'; got target '{target}'")
    if target is None:
        return table.names[-1]
    table.column(target, "target column")
    return target


def _categorical_columns(table: Table, features: Sequence[str], declared: Sequence[str]) -> tuple[str, ...]:
    """Declared categorical columns, plus every column whose cells are all words."""
    for name in declared:
        table.column(name, "categorical column")
    chosen = []
    for name in features:
        kind = table.column(name).kind
        if name in declared or kind == "text":
            chosen.append(name)
        elif kind == "mixed":
            table.numbers(name)  # raises, naming the odd cell
    return tuple(chosen)


def _infer_task(table: Table, target: str, task: str | None, declared_categorical: bool) -> str:
    if task is not None:
        return task
    column = table.column(target)
    if declared_categorical or column.kind == "text":
        return "classification"
    values = table.numbers(target)  # a mixed target raises here
    if values.ndim == 1 and np.all(values == np.round(values)) and \
            len(np.unique(values)) <= MAX_INFERRED_CLASSES:
        return "classification"
    return "regression"


def _target_labels(table: Table, target: str) -> np.ndarray:
    column = table.column(target)
    if column.numbers.ndim != 1:
        raise DataError(f"{table.label}: classification needs one label per row;"
                        f" '{target}' has shape {column.numbers.shape}")
    if column.kind == "numeric":
        table.numbers(target)  # rejects NaN / inf labels
    return column.labels()


def _raw_columns(table: Table, features: Sequence[str], categorical: Sequence[str]) -> dict[str, np.ndarray]:
    return {name: table.labels(name) if name in categorical else table.numbers(name) for name in features}


def _unseen_notes(where: str, unseen: Mapping[str, np.ndarray]) -> list[str]:
    notes = []
    for column, values in unseen.items():
        shown = ", ".join(f"'{v}'" for v in natural_sorted(values)[:5])
        notes.append(f"{where}: column '{column}' has {len(values)} row(s) with categories not seen"
                     f" in training ({shown}); encoded as all zeros")
    return notes
