"""NPZ files: arrays ``X`` (n, d) and ``y`` (n,) or (n, k), optionally ``X_test`` / ``y_test``."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnctl.app.data import sources
from nnctl.app.data.table import Column, Table
from nnctl.app.errors import DataError


def read_npz(path: Path, label: str) -> tuple[Table, Table | None]:
    """Parse an NPZ with ``X`` (n, d) and ``y`` (n,) or (n, k), optionally ``X_test``/``y_test``."""
    main, test = _read_npz_pairs(Path(path), label)
    return _npz_table(*main), (_npz_table(*test) if test is not None else None)


@dataclass(frozen=True, eq=False)
class NpzArrays:
    """A checked NPZ as arrays: ``X`` as stored (finite), its targets as a one-column Table
    ('y'), and the optional separate test rows likewise."""

    X: np.ndarray
    targets: Table
    X_test: np.ndarray | None
    test_targets: Table | None


def read_npz_arrays(path: Path, label: str) -> NpzArrays:
    """Load an NPZ's arrays straight from the file (no copy of its bytes, no per-column
    float64 copies), with the same checks and messages as ``read_npz``."""
    main, test = _read_npz_pairs(Path(path), label)
    if test is None:
        return NpzArrays(main[0], main[1], None, None)
    return NpzArrays(main[0], main[1], test[0], test[1])


_Pair = tuple[np.ndarray, Table]


def _read_npz_pairs(source: Path, label: str) -> tuple[_Pair, _Pair | None]:
    try:
        archive = np.load(source, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{label}: not a readable .npz archive ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{label}: a single .npy array, not an .npz archive with X and y")
    with archive:
        for key in ("X", "y"):
            if key not in archive.files:
                raise DataError(
                    f"{label}: array '{key}' not found; arrays: {', '.join(archive.files) or 'none'}"
                )
        has_test = [k in archive.files for k in ("X_test", "y_test")]
        if any(has_test) and not all(has_test):
            raise DataError(f"{label}: X_test and y_test must come together")
        main = _npz_pair(archive, label, "X", "y", "row")
        test = _npz_pair(archive, label, "X_test", "y_test", "test row") if all(has_test) else None
    if test is not None and test[0].shape[1] != main[0].shape[1]:
        raise DataError(f"{label}: X_test has {test[0].shape[1]} columns but X has {main[0].shape[1]}")
    return main, test


def _npz_array(archive: np.lib.npyio.NpzFile, key: str, label: str) -> np.ndarray:
    try:
        array = archive[key]
    except ValueError:
        raise DataError(
            f"{label}: array '{key}' holds Python objects (dtype=object); store numeric arrays"
        ) from None
    if array.dtype.kind not in "biuf" and not (key.startswith("y") and array.dtype.kind == "U"):
        raise DataError(f"{label}: array '{key}' has dtype {array.dtype}; expected numbers")
    return array


def _npz_pair(archive: np.lib.npyio.NpzFile, label: str, x_key: str, y_key: str, row_word: str) -> _Pair:
    """``x_key`` as stored and a Table holding only the target column 'y'; both checked."""
    X = _npz_array(archive, x_key, label)
    y = _npz_array(archive, y_key, label)
    if X.ndim != 2:
        raise DataError(f"{label}: {x_key} must be 2-D (rows, features); got shape {X.shape}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim not in (1, 2) or (y.dtype.kind == "U" and y.ndim != 1):
        raise DataError(f"{label}: {y_key} must have shape (n,) or (n, k); got {y.shape}")
    if len(X) != len(y):
        raise DataError(f"{label}: {x_key} has {len(X)} rows but {y_key} has {len(y)}")
    if len(X) == 0:
        raise DataError(f"{label}: {x_key} has no rows")
    if y.dtype.kind == "U":
        column = Column.from_text([str(v).strip() for v in y])
    else:
        column = Column.from_numbers(y)
    targets = Table(label, {"y": column}, None, row_word)
    bad = first_non_finite(X)
    if bad is not None:
        row, j = bad
        raise targets.cell_error(row, f"x{j}", f"'{float(X[row, j])!r}' is not a finite number")
    if column.codes is None and not np.isfinite(column.numbers).all():
        targets.numbers("y")  # raises, naming the first non-finite cell
    return X, targets


def first_non_finite(X: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of the first NaN / inf cell of 2-D ``X`` in column order (the lowest
    column holding one, then its first row), or None; scans ``CHUNK_ELEMS``-cell row blocks."""
    if X.dtype.kind not in "fc" or X.size == 0:
        return None
    step = max(1, sources.CHUNK_ELEMS // X.shape[1])
    bad_columns: np.ndarray | None = None
    for start in range(0, len(X), step):
        finite = np.isfinite(X[start:start + step])
        if not finite.all():
            columns = ~finite.all(axis=0)
            bad_columns = columns if bad_columns is None else bad_columns | columns
    if bad_columns is None:
        return None
    j = int(bad_columns.argmax())
    return int((~np.isfinite(X[:, j])).argmax()), j


def _npz_table(X: np.ndarray, targets: Table) -> Table:
    """A checked (X, targets) pair as a Table of float64 columns x0, x1, ..., y."""
    columns = {f"x{j}": Column.from_numbers(X[:, j]) for j in range(X.shape[1])}
    columns["y"] = targets.columns["y"]
    return Table(targets.label, columns, None, targets.row_word)
