"""Parsed columns: a Column's numbers, words and missing cells, a Table of them, and bad-cell errors.

Readers (``columnar``, ``npz``) build Tables; ``loading`` asks them what the columns mean.
Every problem becomes a ``DataError`` naming the file, the line (CSV, header = line 1) or
row (NPZ, Parquet: 1-based) and the column; cell problems are gathered and reported together.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from nnctl.app.data.labels import MISSING, Coded, canonical_label, distinct_values, list_names, number_label
from nnctl.app.errors import DataError

MAX_SHOWN = 20  # bad cells named one per line; the rest are counted


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


@dataclass(frozen=True, eq=False)
class Column:
    """One column's cells.

    ``numbers``: float64, (n,) or, for an NPZ target only, (n, k); NaN where a cell is
    missing or a word. ``missing``: bool (n,), the empty / NA cells. A column read as text
    also has ``codes`` (int64 (n,), -1 where missing) into ``vocabulary`` (its distinct
    stripped cells), so that labels are worked out once per distinct cell.
    """

    numbers: np.ndarray
    missing: np.ndarray
    codes: np.ndarray | None = None
    vocabulary: np.ndarray | None = None
    cell_text: Callable[[int], str] | None = None  # a number cell as written, for messages
    is_number: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if self.codes is None:
            is_number = ~self.missing if self.numbers.ndim == 1 else np.ones(self.numbers.shape, bool)
        else:
            word_is_number = np.array([_is_number(w) for w in self.vocabulary], dtype=bool)
            is_number = np.append(word_is_number, False)[self.codes]  # code -1 picks the False
        object.__setattr__(self, "is_number", is_number)

    @classmethod
    def from_numbers(cls, values: np.ndarray, missing: np.ndarray | None = None,
                     cell_text: Callable[[int], str] | None = None) -> Column:
        values = np.asarray(values, dtype=np.float64)
        if missing is None:
            missing = np.zeros(len(values), dtype=bool)
        return cls(values, missing, cell_text=cell_text)

    @classmethod
    def from_words(cls, codes: np.ndarray, vocabulary: Sequence[str]) -> Column:
        """Cells given as codes into ``vocabulary`` (-1: missing); stripped here, a cell that
        spells a missing value (``NA``, ``?``, ...) becomes missing."""
        stripped = [str(w).strip() for w in vocabulary]
        words, remap = np.unique(np.array(stripped, dtype=str), return_inverse=True)
        absent = np.array([w.lower() in MISSING for w in words], dtype=bool)
        remap = np.where(absent[remap], -1, remap)
        codes = np.append(remap, -1)[np.asarray(codes, dtype=np.int64)]
        numbers = np.append(np.array([_float_or_nan(w) for w in words]), np.nan)[codes]
        return cls(numbers, codes < 0, codes, words)

    @classmethod
    def from_text(cls, cells: Sequence[str]) -> Column:
        vocabulary, codes = np.unique(np.array(cells, dtype=str), return_inverse=True)
        return cls.from_words(codes.reshape(-1), vocabulary)

    @property
    def kind(self) -> str:
        """Over the cells that are not missing: ``numeric`` (every one a number), ``text``
        (none is) or ``mixed``."""
        present = self.is_number[~self.missing] if self.numbers.ndim == 1 else self.is_number
        if present.all():
            return "numeric"
        return "text" if not present.any() else "mixed"

    def text(self, row: int) -> str:
        if self.codes is not None and self.codes[row] >= 0:
            return str(self.vocabulary[self.codes[row]])
        if self.numbers.ndim == 2:
            bad = self.numbers[row][~np.isfinite(self.numbers[row])]
            return repr(float(bad[0]))
        if self.cell_text is not None:
            return self.cell_text(row)
        return repr(float(self.numbers[row]))

    def coded(self) -> Coded:
        """Each cell as a label, coded; missing cells as ''."""
        if self.codes is None:
            distinct, inverse = distinct_values(self.numbers)
            vocabulary = np.array([number_label(v) for v in distinct] or [""], dtype=str)
            return Coded(np.where(self.missing, -1, inverse), vocabulary)
        return Coded(self.codes, np.array([canonical_label(w) for w in self.vocabulary], dtype=str))

    def labels(self) -> np.ndarray:
        """Each cell as a label (str); missing cells as ''."""
        return self.coded().labels()


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


class BadCells:
    """Problems found cell by cell, reported together: one line each, up to ``MAX_SHOWN``."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.found: list[tuple[int, int, str, str]] = []  # row, column order, name, problem

    def add(self, rows: np.ndarray, name: str, problem: Callable[[int], str]) -> None:
        order = self.table.names.index(name) if name in self.table.columns else len(self.table.names)
        rows = np.asarray(rows).reshape(-1)
        for row in rows[:MAX_SHOWN]:
            self.found.append((int(row), order, name, problem(int(row))))
        self.found.extend((int(r), order, name, "") for r in rows[MAX_SHOWN:])  # counted only

    def raise_any(self) -> None:
        if not self.found:
            return
        self.found.sort(key=lambda f: (f[0], f[1]))
        shown = [f for f in self.found if f[3]][:MAX_SHOWN]
        lines = self.table.where_rows(np.array([f[0] for f in shown], dtype=np.int64))
        out = [f"{self.table.label}, {where}, column '{name}': {problem}"
               for where, (_, _, name, problem) in zip(lines, shown)]
        if len(self.found) > len(shown):
            out.append(f"{self.table.label}: {len(self.found) - len(shown)} more bad cell(s),"
                       f" {len(self.found)} in all")
        raise DataError("\n".join(out))


@dataclass(frozen=True, eq=False)
class Table:
    """A parsed file: named columns in file order (the target among them).

    Messages name a row as ``row_word`` and its number: ``positions(rows)`` (a CSV's line
    numbers, worked out only when an error names rows), else the 1-based row.
    """

    label: str  # how messages name the file
    columns: dict[str, Column]
    positions: Callable[[np.ndarray], np.ndarray] | None = None
    row_word: str = "row"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.columns)

    @property
    def n_rows(self) -> int:
        return len(next(iter(self.columns.values())).numbers)

    def where_rows(self, rows: np.ndarray) -> list[str]:
        numbers = self.positions(rows) if self.positions is not None else np.asarray(rows) + 1
        return [f"{self.row_word} {int(n)}" for n in numbers]

    def cell_error(self, row: int, name: str, problem: str) -> DataError:
        return DataError(f"{self.label}, {self.where_rows(np.array([row]))[0]}, column '{name}': {problem}")

    def column(self, name: str, role: str = "column") -> Column:
        if name in self.columns:
            return self.columns[name]
        close = difflib.get_close_matches(name, self.names, n=1, cutoff=0.6)
        guess = f"; did you mean '{close[0]}'?" if close else ";"
        raise DataError(
            f"{self.label}: {role} '{name}' not found{guess} columns: {list_names(self.names)}"
        )

    def check_numbers(self, name: str, bad: BadCells, allow_missing: bool = False) -> None:
        """Add to ``bad`` every cell of column ``name`` that is not a finite number."""
        col = self.column(name)
        if col.numbers.ndim == 2:  # an NPZ's (n, k) target: numbers only
            infinite = ~np.isfinite(col.numbers).all(axis=1)
            bad.add(np.flatnonzero(infinite), name, lambda r: f"'{col.text(r)}' is not a finite number")
            return
        if not allow_missing and col.missing.any():
            bad.add(np.flatnonzero(col.missing), name, lambda r: "missing value")
        words = ~col.is_number & ~col.missing
        numbers = col.is_number & ~col.missing
        if numbers.any() and words.sum() > numbers.sum():
            bad.add(np.flatnonzero(numbers), name, lambda r: (
                f"'{col.text(r)}' is a number in a column of words"
                f" (declare '{name}' categorical if its values are categories)"))
            return
        bad.add(np.flatnonzero(words), name, lambda r: f"'{col.text(r)}' is not a number")
        infinite = ~np.isfinite(col.numbers) & col.is_number
        bad.add(np.flatnonzero(infinite), name, lambda r: f"'{col.text(r)}' is not a finite number")

    def check_present(self, name: str, bad: BadCells) -> None:
        col = self.column(name)
        if col.missing.any():
            bad.add(np.flatnonzero(col.missing), name, lambda r: "missing value")

    def numbers(self, name: str) -> np.ndarray:
        """The column as finite float64 numbers, or an error naming its bad cells."""
        bad = BadCells(self)
        self.check_numbers(name, bad)
        bad.raise_any()
        return self.column(name).numbers

    def labels(self, name: str) -> np.ndarray:
        return self.column(name).labels()

    def take(self, rows: np.ndarray) -> Table:
        """The table of only ``rows`` (used to drop rows with missing cells)."""
        columns = {}
        rows = np.asarray(rows)
        for name, col in self.columns.items():
            codes = col.codes[rows] if col.codes is not None else None
            text = None if col.cell_text is None else (lambda r, f=col.cell_text: f(int(rows[r])))
            columns[name] = Column(col.numbers[rows], col.missing[rows], codes, col.vocabulary, text)
        before = self.positions or (lambda r: np.asarray(r) + 1)
        return Table(self.label, columns, lambda r: before(rows[np.asarray(r)]), self.row_word)
