"""Reading data files: where a source lives, and CSV / NPZ parsing into named columns.

Nothing here knows about splits or scaling. Every problem becomes a one-line ``DataError``
naming the file, the line (CSV, header = line 1) or row (NPZ, 1-based) and the column.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
import importlib.resources
import io
import math
import os
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnctl.app.errors import DataError

BUILTINS = ("breast_cancer", "diabetes", "digits", "iris", "mnist1d", "xor")
BUILTIN_PREFIX = "builtin:"
MISSING = frozenset({"", "na", "n/a", "?", "null"})  # compared lower-cased
HASH_CHUNK = 1 << 20  # bytes per read when hashing a file
CHUNK_ELEMS = 1 << 18  # cells per block when scanning a large array (2 MB as float64)


def data_dir() -> Path:
    """The built-in datasets' folder: ``$NNCTL_DATA_DIR``; else ``nnctl/datasets/`` where the
    package is installed (a wheel carries ``data/`` there); else ``data/`` beside the package
    (a source checkout or an editable install)."""
    override = os.environ.get("NNCTL_DATA_DIR")
    if override:
        return Path(override)
    installed = Path(str(importlib.resources.files("nnctl").joinpath("datasets"))).resolve()
    if installed.is_dir():
        return installed
    return installed.parent.parent / "data"


def resolve_source(source: str, base_dirs: Sequence[Path] = ()) -> Path:
    """Turn a spec's ``data.source`` into an existing file path.

    ``builtin:NAME`` maps to ``<data dir>/NAME.csv`` or ``NAME.npz``. A relative path is
    tried against the working directory, then each of ``base_dirs`` (the spec's folder).
    """
    if source.startswith(BUILTIN_PREFIX):
        name = source[len(BUILTIN_PREFIX):]
        if name not in BUILTINS:
            raise DataError(
                f"{source}: unknown built-in dataset; expected one of {', '.join(BUILTINS)}"
            )
        folder = data_dir()
        for suffix in (".csv", ".npz"):
            if (folder / f"{name}{suffix}").is_file():
                return folder / f"{name}{suffix}"
        raise DataError(
            f"{source}: data file not found in {folder}",
            hint="regenerate it: pip install scikit-learn mnist1d && python data/make_datasets.py",
        )
    path = Path(source).expanduser()
    candidates = [path] if path.is_absolute() else [path, *(Path(b) / path for b in base_dirs)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if any(c.is_dir() for c in candidates):
        raise DataError(f"{source}: is a directory, not a data file")
    tried = ", ".join(str(c) for c in candidates)
    raise DataError(f"{source}: file not found", hint=f"looked for: {tried}")


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
class Column:
    """One column's cells: numbers (NaN where a cell is not a number) and the text, if read as text."""

    numbers: np.ndarray  # float64, (n,) or, for an NPZ target only, (n, k)
    is_number: np.ndarray  # bool, same shape as numbers
    text: np.ndarray | None  # stripped cells (str) when read from CSV or string arrays

    @classmethod
    def from_text(cls, cells: Sequence[str]) -> Column:
        numbers = np.full(len(cells), np.nan)
        is_number = np.zeros(len(cells), dtype=bool)
        for i, cell in enumerate(cells):
            try:
                numbers[i] = float(cell)
            except ValueError:
                continue
            is_number[i] = True
        return cls(numbers, is_number, np.array(cells, dtype=str))

    @classmethod
    def from_numbers(cls, values: np.ndarray) -> Column:
        values = np.asarray(values, dtype=np.float64)
        return cls(values, np.ones(values.shape, dtype=bool), None)

    @property
    def kind(self) -> str:
        """``numeric`` (every cell a number), ``text`` (none is) or ``mixed``."""
        if self.is_number.all():
            return "numeric"
        return "text" if not self.is_number.any() else "mixed"

    def labels(self) -> np.ndarray:
        if self.text is not None:
            return np.array([canonical_label(c) for c in self.text], dtype=str)
        return np.array([number_label(v) for v in self.numbers], dtype=str)


@dataclass(frozen=True, eq=False)
class Table:
    """A parsed file: named columns in file order (the target among them) and where each row came from."""

    label: str  # how messages name the file
    columns: dict[str, Column]
    lines: np.ndarray | None  # CSV line number of each row; None for arrays
    row_word: str = "row"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.columns)

    @property
    def n_rows(self) -> int:
        return len(next(iter(self.columns.values())).numbers)

    def where(self, row: int) -> str:
        if self.lines is not None:
            return f"line {int(self.lines[row])}"
        return f"{self.row_word} {row + 1}"

    def cell_error(self, row: int, name: str, problem: str) -> DataError:
        return DataError(f"{self.label}, {self.where(row)}, column '{name}': {problem}")

    def column(self, name: str, role: str = "column") -> Column:
        if name in self.columns:
            return self.columns[name]
        close = difflib.get_close_matches(name, self.names, n=1, cutoff=0.6)
        guess = f"; did you mean '{close[0]}'?" if close else ";"
        raise DataError(
            f"{self.label}: {role} '{name}' not found{guess} columns: {list_names(self.names)}"
        )

    def numbers(self, name: str) -> np.ndarray:
        """The column as finite float64 numbers, or an error naming its first bad cell."""
        col = self.column(name)
        if col.kind == "numeric":
            bad = ~np.isfinite(col.numbers)
            if bad.any():
                row = int(np.argwhere(bad)[0][0])
                shown = col.text[row] if col.text is not None else repr(float(col.numbers.flat[bad.argmax()]))
                raise self.cell_error(row, name, f"'{shown}' is not a finite number")
            return col.numbers
        assert col.text is not None
        words = ~col.is_number
        if col.kind == "mixed" and words.sum() > col.is_number.sum():
            row = int(col.is_number.argmax())
            raise self.cell_error(
                row, name, f"'{col.text[row]}' is a number in a column of words"
                f" (declare '{name}' categorical if its values are categories)"
            )
        row = int(words.argmax())
        raise self.cell_error(row, name, f"'{col.text[row]}' is not a number")

    def labels(self, name: str) -> np.ndarray:
        return self.column(name).labels()


def read_table(path: Path, label: str) -> tuple[Table, Table | None, bytes]:
    """Read a CSV or NPZ file: (rows, separate test rows of an NPZ or None, the file's bytes)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{label}: file not found") from None
    except OSError as exc:
        raise DataError(f"{label}: cannot read file ({exc.strerror or exc})") from None
    if Path(path).suffix.lower() == ".npz":
        table, test = read_npz(data, label)
        return table, test, data
    return read_csv(data, label), None, data


def file_sha256(path: Path, label: str) -> str:
    """sha256 of the file's bytes (hex), read in ``HASH_CHUNK`` pieces; errors as ``read_table``'s."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(HASH_CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        raise DataError(f"{label}: file not found") from None
    except OSError as exc:
        raise DataError(f"{label}: cannot read file ({exc.strerror or exc})") from None
    return digest.hexdigest()


def _decode(data: bytes, label: str) -> str:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{label}, line {line}: byte 0x{data[exc.start]:02x} is not valid UTF-8",
            hint="save the file as UTF-8",
        ) from None


def _check_header(cells: list[str], label: str, line: int) -> list[str]:
    names = [c.strip() for c in cells]
    seen: set[str] = set()
    for j, name in enumerate(names):
        if not name:
            raise DataError(f"{label}, line {line}: column {j + 1} has an empty name")
        if name in seen:
            raise DataError(f"{label}, line {line}: duplicate column name '{name}'")
        seen.add(name)
    return names


def read_csv(data: bytes, label: str) -> Table:
    """Parse CSV bytes (UTF-8, optional BOM, a header line) into text columns."""
    text = _decode(data, label)
    if not text.strip():
        raise DataError(f"{label}: empty file")
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    start = 1
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if not record:  # a blank line
                continue
            if header is None:
                header = _check_header(record, label, line)
                continue
            rows.append(_check_row(record, header, label, line))
            lines.append(line)
    except csv.Error as exc:
        raise DataError(f"{label}, line {reader.line_num}: {exc}") from None
    assert header is not None
    if not rows:
        raise DataError(f"{label}: header only, no data rows")
    columns = {name: Column.from_text(cells) for name, cells in zip(header, zip(*rows))}
    return Table(label, columns, np.array(lines, dtype=np.int64))


def _check_row(record: list[str], header: list[str], label: str, line: int) -> list[str]:
    if len(record) != len(header):
        raise DataError(
            f"{label}, line {line}: {len(record)} cells, expected {len(header)} (ragged row)"
        )
    cells = [c.strip() for c in record]
    for name, cell in zip(header, cells):
        if cell.lower() in MISSING:
            raise DataError(f"{label}, line {line}, column '{name}': missing value")
    return cells


def read_npz(data: bytes, label: str) -> tuple[Table, Table | None]:
    """Parse an NPZ with ``X`` (n, d) and ``y`` (n,) or (n, k), optionally ``X_test``/``y_test``."""
    main, test = _read_npz_pairs(io.BytesIO(data), label)
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


def _read_npz_pairs(source: Path | io.BytesIO, label: str) -> tuple[_Pair, _Pair | None]:
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
    if column.text is None and not np.isfinite(column.numbers).all():
        targets.numbers("y")  # raises, naming the first non-finite cell
    return X, targets


def first_non_finite(X: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of the first NaN / inf cell of 2-D ``X`` in column order (the lowest
    column holding one, then its first row), or None; scans ``CHUNK_ELEMS``-cell row blocks."""
    if X.dtype.kind not in "fc" or X.size == 0:
        return None
    step = max(1, CHUNK_ELEMS // X.shape[1])
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
