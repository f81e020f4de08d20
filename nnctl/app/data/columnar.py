"""CSV and Parquet read with pyarrow: typed, multi-threaded, column by column into a Table.

pyarrow parses; nnctl then checks the cells. A column pyarrow reads as numbers stays
float64; a text column is dictionary-encoded, so that each distinct cell is judged once
(number or word, Python's ``float`` decides, as always). Structural problems (bad UTF-8,
ragged rows, bad header) are located by a plain ``csv`` pass over the file, which runs only
when pyarrow has refused it, as does working out line numbers for messages.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from nnctl.app.data.labels import MISSING
from nnctl.app.data.sources import unreadable
from nnctl.app.data.table import Column, Table
from nnctl.app.errors import DataError

# every upper/lower-case spelling of the missing-value words, as pyarrow compares exactly
NULLS = sorted({"".join(c) for w in MISSING for c in itertools.product(*({ch.lower(), ch.upper()} for ch in w))})
BATCH_BYTES = 1 << 22  # bytes of CSV per record batch when predicting in chunks
STREAM_BYTES = 1 << 24  # bytes of CSV per record batch when reading a whole file


def read_csv(path: Path, label: str) -> Table:
    """A CSV (UTF-8, optional BOM, a header line; blank lines skipped) as a Table whose
    messages name lines (header = line 1)."""
    arrow = [_arrow_csv(path, label)]
    lines = _LineIndex(path, label)
    columns = _columns(arrow, label, lambda: _scan_csv(path, label), lambda j: _CellText(path, j))
    return Table(label, columns, lines, "line")


def read_parquet(path: Path, label: str) -> Table:
    """A Parquet file as a Table whose messages name rows (1-based)."""
    import pyarrow.parquet as pq

    try:
        arrow = [pq.read_table(path)]
    except OSError as exc:
        raise unreadable(label, exc) from None
    except (pa.ArrowException, ValueError) as exc:
        raise DataError(f"{label}: not a readable Parquet file ({exc})") from None
    if arrow[0].num_columns == 0:
        raise DataError(f"{label}: no columns")
    if arrow[0].num_rows == 0:
        raise DataError(f"{label}: no data rows")
    names = arrow[0].column_names
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataError(f"{label}: duplicate column name '{twice[0]}'")
    return Table(label, _columns(arrow, label, None, None), None, "row")


def _arrow_csv(path: Path, label: str) -> pa.Table:
    convert = pa_csv.ConvertOptions(null_values=NULLS, strings_can_be_null=True,
                                    quoted_strings_can_be_null=True)
    for newlines_in_values in (None, False, True):  # quoted line breaks are rare and slow the parse
        try:
            if newlines_in_values is None:
                table = _streamed(path, convert)
            else:
                table = pa_csv.read_csv(path, parse_options=pa_csv.ParseOptions(newlines_in_values=newlines_in_values),
                                        convert_options=convert)
        except OSError as exc:
            raise unreadable(label, exc) from None
        except pa.ArrowInvalid:
            continue
        if table.num_rows == 0 or any(pa.types.is_binary(t) for t in table.schema.types):
            break  # a header only, or bytes that are not UTF-8: the scan names them
        names = [n.strip() for n in table.column_names]
        if "" in names or len(set(names)) < len(names):
            break
        return table.rename_columns(names)  # stripped; pyarrow keeps the spaces
    _scan_csv(path, label)  # raises, naming the line
    raise DataError(f"{label}: not a readable CSV file")


def _streamed(path: Path, convert: pa_csv.ConvertOptions) -> pa.Table:
    """The CSV read in record batches of ``STREAM_BYTES``, kept typed: no parse buffers of the
    whole file at once. Column types come from the first batch, so a later cell that does not
    fit them raises ``ArrowInvalid`` and the caller reads the whole file at once instead."""
    reader = pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=STREAM_BYTES),
                             convert_options=convert)
    return pa.Table.from_batches(list(reader), schema=reader.schema)


def _columns(arrow: list[pa.Table], label: str, scan, texts) -> dict[str, Column]:
    """Each arrow column as a Column; the arrow table is let go column by column.
    ``texts(j)`` gives column j's cells as written (for messages), ``scan()`` checks the file."""
    table = arrow.pop()
    names, chunked = table.column_names, table.columns
    del table
    columns = {}
    for j, name in enumerate(names):
        data, chunked[j] = chunked[j], None
        columns[name] = _column(data, name, label, scan, texts(j) if texts else None)
        del data
    return columns


def _column(data: pa.ChunkedArray, name: str, label: str, scan, text) -> Column:
    kind = data.type
    if pa.types.is_dictionary(kind):
        data, kind = data.cast(kind.value_type), kind.value_type
    if pa.types.is_null(kind):
        return Column.from_numbers(np.full(len(data), np.nan), np.ones(len(data), dtype=bool))
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind) \
            or pa.types.is_boolean(kind):
        values = _one_array(data.cast(pa.float64()) if kind != pa.float64() else data)
        missing = values.is_null().to_numpy(zero_copy_only=False) if values.null_count else None
        return Column.from_numbers(values.to_numpy(zero_copy_only=False), missing, text)  # nulls: NaN
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        encoded = pc.dictionary_encode(_one_array(data))
        codes = encoded.indices
        if codes.null_count:
            codes = pc.fill_null(codes, pa.scalar(-1, codes.type))
        return Column.from_words(codes.to_numpy(zero_copy_only=False), encoded.dictionary.to_pylist())
    if scan is not None:
        scan()
    raise DataError(f"{label}: column '{name}' holds {kind}; expected numbers or text")


def read_csv_chunks(path: Path, label: str, chunk_rows: int) -> tuple[tuple[str, ...], Iterator[tuple[Table, pa.RecordBatch]]]:
    """A CSV streamed in record batches: its column names (checked now), and for each chunk
    of at most ``chunk_rows`` rows a Table of it (messages name the file's lines) with the
    cells as written. Every cell is read as text, so that a word far down is named, not fatal."""
    try:
        names = tuple(pa_csv.open_csv(path, convert_options=pa_csv.ConvertOptions(
            strings_can_be_null=False)).schema.names)
    except OSError as exc:
        raise unreadable(label, exc) from None
    except pa.ArrowInvalid:
        _scan_csv(path, label)
        raise DataError(f"{label}: not a readable CSV file") from None
    stripped = tuple(n.strip() for n in names)
    if "" in stripped or len(set(stripped)) < len(stripped):
        _scan_csv(path, label)
    convert = pa_csv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=False)
    return stripped, _csv_chunks(path, label, chunk_rows, stripped, convert)


def read_parquet_chunks(path: Path, label: str, chunk_rows: int) -> tuple[tuple[str, ...], Iterator[tuple[Table, pa.RecordBatch]]]:
    """A Parquet file streamed in record batches of at most ``chunk_rows`` rows, as
    ``read_csv_chunks`` gives a CSV (messages name rows)."""
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(path)
    except OSError as exc:
        raise unreadable(label, exc) from None
    except (pa.ArrowException, ValueError) as exc:
        raise DataError(f"{label}: not a readable Parquet file ({exc})") from None

    def chunks() -> Iterator[tuple[Table, pa.RecordBatch]]:
        first = 0
        for batch in source.iter_batches(batch_size=chunk_rows):
            table = pa.Table.from_batches([batch])
            columns = _columns([table], label, None, None)
            yield Table(label, columns, lambda rows, at=first: np.asarray(rows) + at + 1, "row"), batch
            first += batch.num_rows

    return tuple(source.schema_arrow.names), chunks()


def _csv_chunks(path: Path, label: str, chunk_rows: int, names: tuple[str, ...],
                convert: pa_csv.ConvertOptions) -> Iterator[tuple[Table, pa.RecordBatch]]:
    lines = _LineIndex(path, label)
    reader = pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=BATCH_BYTES),
                             convert_options=convert)
    first = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid:
            _scan_csv(path, label)
            raise DataError(f"{label}: not a readable CSV file") from None
        for start in range(0, batch.num_rows, chunk_rows):
            part = batch.slice(start, chunk_rows)
            columns = {name: _text_column(part.column(j)) for j, name in enumerate(names)}
            yield Table(label, columns, lambda rows, at=first: lines(np.asarray(rows) + at), "line"), part
            first += part.num_rows


def _text_column(cells: pa.Array) -> Column:
    """Cells read as text: numbers when every one parses, else judged cell by distinct cell."""
    try:
        return Column.from_numbers(pc.cast(cells, pa.float64()).to_numpy(zero_copy_only=False))
    except pa.ArrowInvalid:
        encoded = pc.dictionary_encode(cells)
        return Column.from_words(encoded.indices.to_numpy(zero_copy_only=False), encoded.dictionary.to_pylist())


def _one_array(data: pa.ChunkedArray) -> pa.Array:
    return data.chunk(0) if data.num_chunks == 1 else data.combine_chunks()


class _CellText:
    """Cells of a CSV's column ``j`` as written, read again as text at the first ask (only
    messages need them: 'NaN' rather than nan)."""

    def __init__(self, path: Path, j: int) -> None:
        self.path, self.j = path, j
        self._cells: pa.ChunkedArray | None = None

    def __call__(self, row: int) -> str:
        if self._cells is None:
            name = f"f{self.j}"
            read = pa_csv.ReadOptions(skip_rows=1, autogenerate_column_names=True)
            convert = pa_csv.ConvertOptions(include_columns=[name], column_types={name: pa.string()})
            self._cells = pa_csv.read_csv(self.path, read_options=read, convert_options=convert).column(0)
        return str(self._cells[row].as_py()).strip()


class _LineIndex:
    """A CSV's line number of each data row, from one ``csv`` pass made at the first ask."""

    def __init__(self, path: Path, label: str) -> None:
        self.path, self.label = path, label
        self._lines: np.ndarray | None = None

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        if self._lines is None:
            self._lines = _scan_csv(self.path, self.label)
        return self._lines[np.asarray(rows, dtype=np.int64)]


def _scan_csv(path: Path, label: str) -> np.ndarray:
    """Check a CSV's structure with Python's ``csv`` (the same rules as the reader) and
    return the line of each data row; raises on the first structural problem."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise unreadable(label, exc) from None
    text = _decode(data, label)
    del data
    if not text.strip():
        raise DataError(f"{label}: empty file")
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    lines: list[int] = []
    start = 1
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if not record:  # a blank line
                continue
            if header is None:
                header = _check_header(record, label, line)
            elif len(record) != len(header):
                raise DataError(f"{label}, line {line}: {len(record)} cells, expected {len(header)} (ragged row)")
            else:
                lines.append(line)
    except csv.Error as exc:
        raise DataError(f"{label}, line {reader.line_num}: {exc}") from None
    if not lines:
        raise DataError(f"{label}: header only, no data rows")
    return np.array(lines, dtype=np.int64)


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
