"""Tests for the columnar readers (CSV and Parquet via pyarrow), bad cells reported together,
data.missing, and the parsed copy that cross-validation jobs share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import nnctl.app.data.loading as loading
from nnctl.app.data import Preprocessor, load_splits, transform_file
from nnctl.app.data.table import MAX_SHOWN
from nnctl.app.errors import DataError
from tests.app.test_data import Data, Split, rng, write

SPLITS = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")


def _rows(n: int, seed: int = 0) -> dict[str, list]:
    r = np.random.default_rng(seed)
    return {"size": np.round(r.normal(0, 3, n), 3).tolist(), "count": r.integers(0, 9, n).tolist(),
            "color": r.choice(["red", "blue", "c10", "c2"], n).tolist(), "y": r.choice(["a", "b"], n).tolist()}


def _csv(columns: dict[str, list]) -> str:
    names = list(columns)
    lines = [",".join(names)] + [",".join(str(columns[c][i]) for c in names) for i in range(len(columns[names[0]]))]
    return "\n".join(lines) + "\n"


def test_parquet_gives_the_arrays_of_the_same_csv(tmp_path):
    columns = _rows(120)
    csv_source = write(tmp_path, "t.csv", _csv(columns))
    pq_source = str(tmp_path / "t.parquet")
    pq.write_table(pa.table(columns), pq_source)
    split = Split(validation=0.2, test=0.2)
    a = load_splits(Data(source=csv_source, normalize="standard", split=split), rng(3))
    b = load_splits(Data(source=pq_source, normalize="standard", split=split), rng(3))
    for name in SPLITS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.prep.categorical == b.prep.categorical == {"color": ("blue", "c2", "c10", "red")}
    X, y = transform_file(Path(pq_source), b.prep)
    assert X.shape == (120, b.prep.n_inputs) and set(np.unique(y)) == {0, 1}


def test_parquet_nulls_are_missing_cells_named_by_row(tmp_path):
    source = str(tmp_path / "holes.parquet")
    pq.write_table(pa.table({"a": [1.0, None, 3.0, 4.0], "y": ["u", "v", "u", None]}), source)
    with pytest.raises(DataError) as info:
        load_splits(Data(source=source), rng())
    assert info.value.message.splitlines() == [
        f"{source}, row 2, column 'a': missing value", f"{source}, row 4, column 'y': missing value"]


def test_parquet_column_of_another_type_is_refused(tmp_path):
    source = str(tmp_path / "lists.parquet")
    pq.write_table(pa.table({"a": [[1], [2]], "y": [0, 1]}), source)
    with pytest.raises(DataError, match="column 'a' holds list"):
        load_splits(Data(source=source), rng())


def test_every_bad_cell_is_named_in_line_order_then_counted(tmp_path):
    rows = [f"{i},{i % 2}" for i in range(60)]
    for i in (50, 3, 17):
        rows[i] = f",{i % 2}"
    rows[40] = f"abc,{40 % 2}"
    source = write(tmp_path, "m.csv", "x,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError) as info:
        load_splits(Data(source=source), rng())
    assert info.value.message.splitlines() == [
        f"{source}, line 5, column 'x': missing value", f"{source}, line 19, column 'x': missing value",
        f"{source}, line 42, column 'x': 'abc' is not a number", f"{source}, line 52, column 'x': missing value"]
    many = write(tmp_path, "many.csv", "x,y\n" + "".join(f"{'?' if i % 2 else i},0\n" for i in range(60)))
    with pytest.raises(DataError) as info:
        load_splits(Data(source=many), rng())
    lines = info.value.message.splitlines()
    assert len(lines) == MAX_SHOWN + 1 and lines[0] == f"{many}, line 3, column 'x': missing value"
    assert lines[-1] == f"{many}: 10 more bad cell(s), 30 in all"


def test_line_numbers_count_blank_lines_and_quoted_line_breaks(tmp_path):
    source = write(tmp_path, "q.csv", 'x,note,y\n1,"two\nlines",0\n\n2,plain,1\nzz,plain,0\n3,plain,1\n')
    with pytest.raises(DataError, match=r"q\.csv, line 6, column 'x': 'zz' is not a number"):
        load_splits(Data(source=source, categorical=["note"]), rng())


def test_numeric_column_with_a_few_words_is_an_error_not_categorical(tmp_path):
    rows = "".join(f"{i}.5,{i % 2}\n" for i in range(30)) + "n/a?,1\nnone,0\n"
    source = write(tmp_path, "w.csv", "x,y\n" + rows)
    with pytest.raises(DataError) as info:
        load_splits(Data(source=source), rng())
    assert info.value.message.splitlines() == [f"{source}, line 32, column 'x': 'n/a?' is not a number",
                                               f"{source}, line 33, column 'x': 'none' is not a number"]


HOLES = "a,color,y\n1,red,p\n,blue,q\n3,,p\n5,red,q\n7,red,p\n9,blue,q\n"


@pytest.mark.parametrize(("missing", "a_fill", "color_fill"), [
    ("mean", 5.0, "red"), ("median", 5.0, "red"), ("most_frequent", 1.0, "red")])
def test_missing_cells_take_training_fills(tmp_path, missing, a_fill, color_fill):
    source = write(tmp_path, "h.csv", HOLES)
    splits = load_splits(Data(source=source, missing=missing), rng())
    prep = splits.prep
    assert prep.fills == {"a": a_fill, "color": color_fill} and prep.missing == missing
    # rows in file order (no split): the hole in 'a' is row 1, the hole in 'color' row 2
    assert splits.X_train[1, prep.input_names.index("a")] == a_fill
    assert splits.X_train[2, prep.input_names.index("color=red")] == 1.0
    again = Preprocessor.from_arrays(prep.to_arrays())
    assert again.fills == prep.fills and again.missing == missing
    X, _ = transform_file(Path(source), again)
    np.testing.assert_array_equal(X, splits.X_train)


def test_fills_are_fitted_on_training_rows_only(tmp_path):
    rows = "".join(f"{v},{c}\n" for v, c in zip([1, 2, 3, 4, 5, 6, 7, 8, 1000, ""], "ababababab"))
    source = write(tmp_path, "f.csv", "x,y\n" + rows)
    splits = load_splits(Data(source=source, missing="mean", split=Split(test=0.3)), rng(1))
    train = np.setdiff1d(np.arange(9), _test_rows(10, 0.3, 1))
    values = np.array([1, 2, 3, 4, 5, 6, 7, 8, 1000.0])
    assert splits.prep.fills["x"] == pytest.approx(values[train[train < 9]].mean())


def _test_rows(n, test, seed):
    from nnctl.app.data import split_indices

    y = np.array([0, 1] * (n // 2))
    return split_indices(n, 0.0, test, y, rng(seed), "x")[2]


def test_drop_rows_leaves_out_rows_with_missing_cells(tmp_path):
    source = write(tmp_path, "h.csv", HOLES + "11,red,\n")
    splits = load_splits(Data(source=source, missing="drop_rows"), rng())
    assert len(splits.X_train) == 4
    assert any("3 row(s) with missing cells left out" in w for w in splits.warnings)
    assert Preprocessor.from_arrays(splits.prep.to_arrays()).missing == "drop_rows"


def test_missing_target_is_never_filled(tmp_path):
    source = write(tmp_path, "t.csv", "a,y\n1,p\n2,\n3,q\n")
    with pytest.raises(DataError, match=r"t\.csv, line 3, column 'y': missing value"):
        load_splits(Data(source=source, missing="mean"), rng())


def test_a_stored_preprocessor_without_fills_still_loads(tmp_path):
    source = write(tmp_path, "h.csv", HOLES.replace(",blue,q\n", "2,blue,q\n").replace("3,,p", "3,red,p"))
    prep = load_splits(Data(source=source), rng()).prep
    arrays = prep.to_arrays()
    assert not any(k.startswith("prep.fill") or k == "prep.missing" for k in arrays)  # as runs stored before
    again = Preprocessor.from_arrays(arrays)
    assert again.fills == {} and again.missing == "error"
    with pytest.raises(DataError, match="is not finite"):
        again.transform({"a": np.array([np.nan]), "color": np.array(["red"])})


def test_reuse_parsed_reads_the_file_once(tmp_path, monkeypatch):
    source = write(tmp_path, "r.csv", _csv(_rows(40)))
    reads = []
    real = loading.read_tables
    monkeypatch.setattr(loading, "read_tables", lambda *a: reads.append(a) or real(*a))
    loading._read_tables_once.cache_clear()
    first = load_splits(Data(source=source, split=Split(validation=0.25)), rng(2), reuse_parsed=True)
    second = load_splits(Data(source=source, split=Split(validation=0.25)), rng(2), reuse_parsed=True)
    assert len(reads) == 1
    for name in SPLITS:
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    Path(source).write_text(_csv(_rows(41)))  # other bytes: read again
    assert len(load_splits(Data(source=source), rng(2), reuse_parsed=True).X_train) == 41
    assert len(reads) == 2


def test_batches_typed_by_their_first_batch_fall_back_to_one_read(tmp_path, monkeypatch):
    # integers, then decimals and a word category far below the first batch
    body = "".join(f"{i},{i % 2},{'ab'[i % 2]}\n" for i in range(200)) + "2.5,7,c\n3.25,1,a\n"
    source = write(tmp_path, "late.csv", "n,k,y\n" + body)
    data = Data(source=source, categorical=["k"], normalize="standard", split=Split(validation=0.25))
    whole = load_splits(data, rng(4))
    import nnctl.app.data.columnar as columnar

    monkeypatch.setattr(columnar, "STREAM_BYTES", 64)
    streamed = load_splits(data, rng(4))
    for name in SPLITS:
        np.testing.assert_array_equal(getattr(whole, name), getattr(streamed, name), err_msg=name)
    assert streamed.prep.categorical["k"] == ("0", "1", "7")
