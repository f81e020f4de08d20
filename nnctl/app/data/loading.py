"""Loading: read a source once, check its cells, split the rows and fit the preprocessing.

``load_splits`` gives the arrays a run trains on; ``transform_file`` applies a stored
preprocessing to another file with the same columns (``evaluate --data``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.app.data.columnar import read_csv, read_csv_chunks, read_parquet, read_parquet_chunks
from nnctl.app.data.imputer import FILLS
from nnctl.app.data.labels import list_names, natural_sorted
from nnctl.app.data import idx
from nnctl.app.data.memory import load_numeric_npz, numeric_splits
from nnctl.app.data.npz import read_npz
from nnctl.app.data.preprocess import Preprocessor
from nnctl.app.data.sources import file_sha256, reader_for, resolve_source
from nnctl.app.data.splitting import absent_class_notes, split_rows
from nnctl.app.data.table import BadCells, Table
from nnctl.app.data.targets import check_target, infer_task, target_column, targets
from nnctl.app.errors import DataError
from nnctl.app.notes import unused_columns_note


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


def read_tables(path: Path, label: str) -> tuple[Table, Table | None]:
    """A source file as (rows, the separate test rows of an NPZ or None), by its reader."""
    kind = reader_for(path)
    if kind == "npz":
        return read_npz(path, label)
    if kind == "parquet":
        return read_parquet(path, label), None
    return read_csv(path, label), None


def read_chunks_of(path: Path, label: str, chunk_rows: int):
    """A CSV or Parquet file in chunks of rows: (column names, iterator of (Table, the chunk's
    arrow record batch)); see ``columnar.read_csv_chunks``."""
    if reader_for(path) == "parquet":
        return read_parquet_chunks(path, label, chunk_rows)
    return read_csv_chunks(path, label, chunk_rows)


@functools.lru_cache(maxsize=1)
def _read_tables_once(path: str, label: str, digest: str) -> tuple[Table, Table | None]:
    return read_tables(Path(path), label)


def load_splits(data: Any, rng: np.random.Generator, dtype: Any = np.float32,
                base_dirs: Sequence[Path] = (), reuse_parsed: bool = False) -> Splits:
    """Load ``data.source``, split it with ``rng`` and fit the preprocessor on the training rows.

    An NPZ without declared categorical columns takes a low-memory path (``memory``); it
    gives the same splits, transform and hash as the general one. With ``reuse_parsed`` the
    parsed file is kept for the next call on the same bytes in this process (the jobs of a
    cross-validation), instead of being read again.
    """
    idx_source = idx.find_idx_source(data, base_dirs)
    if idx_source is not None:
        idx.check_target(data)
        return numeric_splits(*idx.read_idx_source(idx_source), data, rng, np.dtype(dtype))
    path = resolve_source(data.source, base_dirs)
    if reader_for(path) == "npz" and not data.categorical:
        return load_numeric_npz(path, data, rng, np.dtype(dtype))
    return load_table_splits(path, data, rng, dtype, reuse_parsed)


def load_table_splits(path: Path, data: Any, rng: np.random.Generator, dtype: Any,
                      reuse_parsed: bool = False) -> Splits:
    """The general path: any source, column by column in float64."""
    label = data.source
    data_hash = file_sha256(path, label)
    read = _read_tables_once if reuse_parsed else (lambda p, lbl, _: read_tables(Path(p), lbl))
    table, test_table = read(str(path), label, data_hash)
    target = target_column(table, data.target, npz=reader_for(path) == "npz")
    features = tuple(name for name in table.names if name != target)
    if not features:
        raise DataError(f"{label}: no feature columns besides the target '{target}'")
    categorical = _categorical_columns(table, features, data.categorical)
    task = infer_task(table, target, data.task, target in data.categorical)
    missing = getattr(data, "missing", "error")
    warnings: list[str] = []
    tables = [_checked(t, features, categorical, target, task, missing, warnings) for t in
              ([table] if test_table is None else [table, test_table])]
    del table, test_table
    classes, ys = targets(tables, target, task, label)

    parts = split_rows(data, tables[0].n_rows, task, ys[0], len(tables) > 1, rng, label)
    raws = [_raw_columns(t, features, categorical) for t in tables]
    train = parts[0]
    prep = Preprocessor.fit(
        raws[0], rows=train, task=task, target=target,
        feature_columns=features, categorical=categorical, normalize=data.normalize,
        classes=classes, y=ys[0][train] if task == "regression" else None,
        scale_target=bool(data.scale_target), missing=missing, label=label,
    )
    pieces = [(raws[0], ys[0], rows) for rows in parts]
    if len(tables) > 1:
        pieces[2] = (raws[1], ys[1], np.arange(tables[1].n_rows))
    arrays: list[np.ndarray] = []
    for name, (raw, y, rows) in zip(("training", "validation", "test"), pieces):
        X, unseen = prep.encode(raw, dtype, rows)
        warnings.extend(_unseen_notes(f"{name} split", unseen))
        y_out = y[rows] if task == "classification" else prep.scale_targets(y[rows], dtype)
        arrays += [X, y_out]
    warnings.extend(absent_class_notes(classes, arrays[1]))
    return Splits(*arrays, prep=prep, data_hash=data_hash, warnings=tuple(warnings))


def _checked(table: Table, features: Sequence[str], categorical: Sequence[str], target: str, task: str,
             missing: str, warnings: list[str]) -> Table:
    """``table`` once every feature and target cell is usable: all bad cells are reported
    together; with ``drop_rows`` the rows with a missing cell are left out."""
    bad = BadCells(table)
    fill = missing in FILLS
    for name in features:
        if name in categorical:
            if not fill and missing != "drop_rows":
                table.check_present(name, bad)
        else:
            table.check_numbers(name, bad, allow_missing=fill or missing == "drop_rows")
    check_target(table, target, task, bad, allow_missing=missing == "drop_rows")
    bad.raise_any()
    if missing != "drop_rows":
        return table
    absent = np.zeros(table.n_rows, dtype=bool)
    for name in (*features, target):
        absent |= table.column(name).missing
    if not absent.any():
        return table
    if absent.all():
        raise DataError(f"{table.label}: every row has a missing cell; data.missing: drop_rows leaves none")
    warnings.append(f"{table.label}: {int(absent.sum())} row(s) with missing cells left out (data.missing: drop_rows)")
    return table.take(np.flatnonzero(~absent))


def _categorical_columns(table: Table, features: Sequence[str], declared: Sequence[str]) -> tuple[str, ...]:
    """Declared categorical columns, plus every column whose cells are all words. A column
    of numbers with a few words is not one: its cell checks name the words."""
    for name in declared:
        table.column(name, "categorical column")
    return tuple(name for name in features if name in declared or table.column(name).kind == "text")


def _raw_columns(table: Table, features: Sequence[str], categorical: Sequence[str]) -> dict[str, np.ndarray]:
    """Per feature: coded labels (categorical) or float64 numbers, NaN where missing."""
    return {name: table.column(name).coded() if name in categorical else table.column(name).numbers
            for name in features}


def _unseen_notes(where: str, unseen: Mapping[str, np.ndarray]) -> list[str]:
    notes = []
    for column, values in unseen.items():
        shown = ", ".join(f"'{v}'" for v in natural_sorted(values)[:5])
        notes.append(f"{where}: column '{column}' has {len(values)} row(s) with categories not seen"
                     f" in training ({shown}); encoded as all zeros")
    return notes


def raw_features(table: Table, prep: Preprocessor) -> dict[str, Any]:
    """The feature columns of ``table`` ready for ``prep.encode``, every bad cell named at once;
    missing cells are allowed only where ``prep`` fills them (rows are never dropped here)."""
    bad = BadCells(table)
    fill = prep.missing in FILLS
    for name in prep.feature_columns:
        if name in prep.categorical:
            if not fill:
                table.check_present(name, bad)
        else:
            table.check_numbers(name, bad, allow_missing=fill)
    bad.raise_any()
    return _raw_columns(table, prep.feature_columns, tuple(prep.categorical))


def transform_file(path: Path, prep: Preprocessor, dtype: Any = np.float32,
                   warnings: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read another file with the same columns and apply the stored transform: (X, y).

    ``y`` is coded as in ``Splits`` (class indices or scaled targets). For an NPZ the arrays
    ``X`` and ``y`` are used. Missing cells are filled, dropped or refused as in training.
    Notes about unseen categories and dropped rows are appended to ``warnings``.
    """
    label = str(path)
    table, _ = read_tables(Path(path), label)
    for name in prep.feature_columns:
        table.column(name)
    table.column(prep.target, "target column")
    notes: list[str] = []
    table = _checked(table, prep.feature_columns, tuple(prep.categorical), prep.target, prep.task,
                     prep.missing, notes)
    X, unseen = prep.encode(_raw_columns(table, prep.feature_columns, tuple(prep.categorical)), dtype)
    notes.extend(_unseen_notes(label, unseen))
    if unused := [n for n in table.names if n not in (*prep.feature_columns, prep.target)]:
        notes.append(unused_columns_note(label, unused))
    if warnings is not None:
        warnings.extend(notes)
    if prep.task == "classification":
        labels = table.labels(prep.target)
        y = prep.encode_labels(labels)
        bad = BadCells(table)
        bad.add(np.flatnonzero(y < 0), prep.target, lambda r: f"class '{labels[r]}' was not seen in training;"
                f" classes: {list_names(prep.classes or ())}")
        bad.raise_any()
    else:
        values = table.column(prep.target).numbers.reshape(table.n_rows, -1)
        if values.shape[1] != prep.n_outputs:
            raise DataError(f"{label}: target has {values.shape[1]} columns, the model predicts {prep.n_outputs}")
        y = prep.scale_targets(values, dtype)
    return X, y
