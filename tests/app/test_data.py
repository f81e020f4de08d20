"""Tests for nnctl.app.data: loaders, error messages, splits, scalers, one-hot, the stored transform."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from nnctl.app.data import (
    BUILTINS,
    Preprocessor,
    load_splits,
    resolve_source,
    split_indices,
    transform_file,
)
from nnctl.app.errors import DataError
from tests.app.data_specs import Data, Split

REPO_DATA = Path(__file__).resolve().parents[2] / "data"


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def write(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return str(path)


def expect_error(data: Data, substring: str) -> DataError:
    with pytest.raises(DataError) as info:
        load_splits(data, rng())
    message = info.value.message
    assert substring in message, message
    first_word = substring.split(",")[0].split(":")[0]
    assert all(line.startswith(first_word) for line in message.splitlines()), message  # one line per bad cell
    assert info.value.code == 2
    return info.value


# ---------------------------------------------------------------- bad inputs

GOOD_HEADER = "age,color,y\n"
BAD_CSVS = [
    # (file name, content, Data overrides, expected substring after the path)
    ("nan.csv", GOOD_HEADER + "1,red,0\nabc,blue,1\n", {}, ", line 3, column 'age': 'abc' is not a number"),
    ("ragged.csv", "a,b,c,d,e\n1,2,3,4,5\n1,2,3,4,5\n1,2,3,4,5\n1,2,3\n", {},
     ", line 5: 3 cells, expected 5 (ragged row)"),
    ("missing.csv", GOOD_HEADER + "1,red,0\n2,blue,1\n,red,0\n", {}, ", line 4, column 'age': missing value"),
    ("na.csv", GOOD_HEADER + "1,red,0\n2,NA,1\n", {}, ", line 3, column 'color': missing value"),
    ("qmark.csv", GOOD_HEADER + "1,red,0\n2,blue,?\n", {}, ", line 3, column 'y': missing value"),
    ("empty.csv", "", {}, ": empty file"),
    ("blank.csv", "\n\n  \n", {}, ": empty file"),
    ("header.csv", GOOD_HEADER, {}, ": header only, no data rows"),
    ("inf.csv", GOOD_HEADER + "1,red,0\ninf,blue,1\n", {}, ", line 3, column 'age': 'inf' is not a finite number"),
    ("nancell.csv", GOOD_HEADER + "1,red,0\n2,blue,1\nNaN,red,1\n", {},
     ", line 4, column 'age': 'NaN' is not a finite number"),
    ("mixed_words.csv", GOOD_HEADER + "1,red,0\n2,blue,1\n3,7,1\n", {},
     ", line 4, column 'color': '7' is a number in a column of words"),
    ("target.csv", "a,b,species\n1,2,x\n3,4,y\n", {"target": "specis"},
     ": target column 'specis' not found; did you mean 'species'? columns: a, b, species"),
    ("cat.csv", GOOD_HEADER + "1,red,0\n2,blue,1\n", {"categorical": ["colr"]},
     ": categorical column 'colr' not found; did you mean 'color'? columns: age, color, y"),
    ("oneclass.csv", GOOD_HEADER + "1,red,a\n2,blue,a\n", {}, ": target 'y' has only one class ('a')"),
    ("regress_words.csv", GOOD_HEADER + "1,red,a\n2,blue,b\n", {"task": "regression"},
     ", line 2, column 'y': 'a' is not a number"),
    ("dup.csv", "a,a,y\n1,2,0\n", {}, ", line 1: duplicate column name 'a'"),
    ("emptyname.csv", "a,,y\n1,2,0\n", {}, ", line 1: column 2 has an empty name"),
    ("valempty.csv", GOOD_HEADER + "1,red,0\n2,blue,1\n3,red,1\n", {"split": Split(validation=0.1)},
     ": split.validation=0.1 of 3 rows leaves the validation split empty"),
    ("trainempty.csv", GOOD_HEADER + "1,red,0\n2,blue,1\n", {"split": Split(validation=0.5, test=0.5)},
     ": split (validation=0.5, test=0.5) of 2 rows leaves the training split empty"),
    ("strat.csv", "x,y\n" + "".join(f"{i},{'abcd'[i % 4]}\n" for i in range(8)),
     {"split": Split(validation=0.5, test=0.25)},
     ": stratified split cannot keep every class in the training split: 2 training rows for 4 classes"),
]


@pytest.mark.parametrize(("name", "content", "overrides", "expected"), BAD_CSVS, ids=[c[0] for c in BAD_CSVS])
def test_bad_csv_names_file_line_and_column(tmp_path, name, content, overrides, expected):
    source = write(tmp_path, name, content)
    expect_error(Data(source=source, **overrides), source + expected)


def test_undecodable_bytes_name_the_line(tmp_path):
    source = write(tmp_path, "latin1.csv", b"a,y\n1,0\n2,1\ncaf\xe9,1\n")
    expect_error(Data(source=source), f"{source}, line 4: byte 0xe9 is not valid UTF-8")


def test_bom_is_skipped(tmp_path):
    source = write(tmp_path, "bom.csv", b"\xef\xbb\xbfa,y\n1,0\n2,1\n")
    splits = load_splits(Data(source=source), rng())
    assert splits.prep.feature_columns == ("a",)


def test_missing_file_and_unknown_builtin(tmp_path):
    expect_error(Data(source="data/nowhere.csv"), "data/nowhere.csv: file not found")
    expect_error(Data(source="builtin:foo"),
                 "builtin:foo: unknown built-in dataset; expected one of "
                 "breast_cancer, diabetes, digits, iris, mnist1d, xor")


def save_npz(tmp_path: Path, name: str, **arrays: np.ndarray) -> str:
    path = tmp_path / name
    np.savez(path, **arrays)
    return str(path)


X4 = np.arange(12, dtype=float).reshape(4, 3)
Y4 = np.array([0, 1, 0, 1])


def _bad_x() -> np.ndarray:
    x = X4.copy()
    x[2, 1] = np.nan
    return x


BAD_NPZS = [
    ("noy.npz", {"X": X4}, ": array 'y' not found; arrays: X"),
    ("nox.npz", {"y": Y4}, ": array 'X' not found; arrays: y"),
    ("object.npz", {"X": X4, "y": np.array([0, "a", None, 1], dtype=object)},
     ": array 'y' holds Python objects (dtype=object)"),
    ("length.npz", {"X": X4, "y": Y4[:3]}, ": X has 4 rows but y has 3"),
    ("nan.npz", {"X": _bad_x(), "y": Y4}, ", row 3, column 'x1': 'nan' is not a finite number"),
    ("infy.npz", {"X": X4, "y": np.array([0.5, np.inf, 1.0, 2.0])}, ", row 2, column 'y': 'inf' is not a finite number"),
    ("ndim.npz", {"X": np.arange(4.0), "y": Y4}, ": X must be 2-D (rows, features); got shape (4,)"),
    ("halftest.npz", {"X": X4, "y": Y4, "X_test": X4}, ": X_test and y_test must come together"),
    ("testcols.npz", {"X": X4, "y": Y4, "X_test": X4[:, :2], "y_test": Y4}, ": X_test has 2 columns but X has 3"),
    ("testnan.npz", {"X": X4, "y": Y4, "X_test": _bad_x(), "y_test": Y4},
     ", test row 3, column 'x1': 'nan' is not a finite number"),
]


@pytest.mark.parametrize(("name", "arrays", "expected"), BAD_NPZS, ids=[c[0] for c in BAD_NPZS])
def test_bad_npz_names_file_row_and_column(tmp_path, name, arrays, expected):
    source = save_npz(tmp_path, name, **arrays)
    expect_error(Data(source=source), source + expected)


def test_npz_that_is_not_an_archive(tmp_path):
    source = write(tmp_path, "junk.npz", b"not a zip at all")
    expect_error(Data(source=source), f"{source}: not a readable .npz archive")


# ---------------------------------------------------------------- built-ins

BUILTIN_SHAPES = {
    # name: (rows, inputs, task, classes)
    "xor": (4, 2, "classification", ("0", "1")),
    "iris": (150, 4, "classification", ("setosa", "versicolor", "virginica")),
    "breast_cancer": (569, 30, "classification", ("benign", "malignant")),
    "digits": (1797, 64, "classification", tuple(str(d) for d in range(10))),
    "diabetes": (442, 10, "regression", None),
    "mnist1d": (4000, 40, "classification", tuple(str(d) for d in range(10))),
}


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_loads(name):
    rows, inputs, task, classes = BUILTIN_SHAPES[name]
    splits = load_splits(Data(source=f"builtin:{name}"), rng())
    assert splits.X_train.shape == (rows, inputs)
    assert splits.X_train.dtype == np.float32 and splits.X_train.flags.c_contiguous
    assert splits.prep.task == task and splits.prep.classes == classes
    assert len(splits.data_hash) == 64
    if task == "classification":
        assert splits.y_train.dtype == np.int64 and splits.y_train.shape == (rows,)
        assert set(np.unique(splits.y_train)) == set(range(len(classes)))
    else:
        assert splits.y_train.shape == (rows, 1)
    if name == "mnist1d":
        assert splits.X_test.shape == (1000, 40) and splits.y_test.shape == (1000,)


def test_builtin_csv_columns():
    splits = load_splits(Data(source="builtin:iris"), rng())
    assert splits.prep.feature_columns == ("sepal_length", "sepal_width", "petal_length", "petal_width")
    assert splits.prep.target == "species"
    diabetes = load_splits(Data(source="builtin:diabetes"), rng()).prep
    assert diabetes.feature_columns[:4] == ("age", "sex", "bmi", "bp") and diabetes.target == "progression"


def test_data_dir_override(tmp_path, monkeypatch):
    (tmp_path / "xor.csv").write_text("p,q\n1,0\n0,1\n")
    monkeypatch.setenv("NNCTL_DATA_DIR", str(tmp_path))
    assert resolve_source("builtin:xor") == tmp_path / "xor.csv"
    expect_error(Data(source="builtin:iris"), f"builtin:iris: data file not found in {tmp_path}")


def test_relative_source_tries_base_dirs(tmp_path, monkeypatch):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "d.csv").write_text("a,y\n1,0\n")
    monkeypatch.chdir(tmp_path)
    assert resolve_source("d.csv", [tmp_path / "specs"]) == tmp_path / "specs" / "d.csv"


# ---------------------------------------------------------------- splits

def test_stratified_split_keeps_class_proportions():
    data = Data(source="builtin:digits", split=Split(validation=0.2, test=0.1, stratify=True))
    splits = load_splits(data, rng(3))
    n = 1797
    assert len(splits.y_val) == round(0.2 * n) and len(splits.y_test) == round(0.1 * n)
    full = np.bincount(np.concatenate([splits.y_train, splits.y_val, splits.y_test])) / n
    for y in (splits.y_train, splits.y_val, splits.y_test):
        assert np.abs(np.bincount(y, minlength=10) / len(y) - full).max() < 0.01


def test_stratified_allocation_keeps_every_class_in_training():
    strata = np.array([0] * 10 + [1] * 2 + [2])  # class 2 has a single row
    train, val, test = split_indices(13, 0.3, 0.3, strata, rng(), "x")
    assert sorted(np.concatenate([train, val, test])) == list(range(13))
    assert set(strata[train]) == {0, 1, 2}
    assert (len(val), len(test)) == (4, 4)


def test_same_seed_same_splits_and_different_seed_differs():
    data = Data(source="builtin:iris", split=Split(validation=0.2, test=0.2))
    a, b, c = (load_splits(data, rng(seed)) for seed in (7, 7, 8))
    for name in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.X_test, c.X_test)
    assert a.data_hash == c.data_hash


def test_zero_fractions_give_empty_arrays_with_columns():
    splits = load_splits(Data(source="builtin:diabetes"), rng())
    assert splits.X_val.shape == (0, 10) and splits.X_test.shape == (0, 10)
    assert splits.y_val.shape == (0, 1)


def test_npz_test_arrays_replace_the_test_fraction():
    splits = load_splits(Data(source="builtin:mnist1d", split=Split(validation=0.25, test=0.5)), rng())
    assert splits.X_train.shape == (3000, 40) and splits.X_val.shape == (1000, 40)
    assert splits.X_test.shape == (1000, 40)


# ---------------------------------------------------------------- scaling

@pytest.mark.parametrize(("normalize", "lo", "hi"), [("minmax", 0.0, 1.0), ("minmax_symmetric", -1.0, 1.0)])
def test_minmax_maps_training_range(normalize, lo, hi):
    splits = load_splits(Data(source="builtin:iris", normalize=normalize, split=Split(0.3, 0.0)), rng())
    np.testing.assert_allclose(splits.X_train.min(axis=0), lo, atol=1e-6)
    np.testing.assert_allclose(splits.X_train.max(axis=0), hi, atol=1e-6)


def test_standard_scaler_is_fitted_on_training_rows_only():
    splits = load_splits(Data(source="builtin:breast_cancer", normalize="standard",
                              split=Split(validation=0.3, test=0.2)), rng())
    np.testing.assert_allclose(splits.X_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(splits.X_train.std(axis=0), 1.0, atol=1e-5)
    assert np.abs(splits.X_val.mean(axis=0)).max() > 0.01  # val statistics did not feed the fit
    # the offsets are the means of exactly the training rows (rebuild the split with the same seed)
    raw = np.loadtxt(REPO_DATA / "breast_cancer.csv", delimiter=",", skiprows=1, usecols=range(30))
    labels = np.loadtxt(REPO_DATA / "breast_cancer.csv", delimiter=",", skiprows=1, usecols=30, dtype=str)
    strata = (labels == "malignant").astype(np.int64)  # classes sort as benign, malignant
    train = split_indices(len(raw), 0.3, 0.2, strata, rng(), "x")[0]
    np.testing.assert_allclose(splits.prep.offset, raw[train].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(splits.prep.scale, raw[train].std(axis=0), rtol=1e-12)
    assert not np.allclose(splits.prep.offset, raw.mean(axis=0), rtol=1e-6)


def test_constant_column_keeps_scale_one(tmp_path):
    source = write(tmp_path, "const.csv", "c,v,y\n5,1,0\n5,2,1\n5,3,0\n5,4,1\n")
    prep = load_splits(Data(source=source, normalize="standard"), rng()).prep
    assert prep.scale[0] == 1.0 and prep.offset[0] == 5.0


def test_regression_target_scaling_round_trips():
    data = Data(source="builtin:diabetes", normalize="standard", scale_target=True, split=Split(0.2, 0.0))
    splits = load_splits(data, rng())
    assert abs(splits.y_train.mean()) < 1e-5 and abs(splits.y_train.std() - 1) < 1e-5
    back = splits.prep.inverse_target(splits.y_train)
    assert back.min() >= 25 and back.max() <= 346
    raw = load_splits(replace(data, scale_target=False), rng()).y_train
    np.testing.assert_allclose(back, raw, rtol=1e-5)


# ---------------------------------------------------------------- one-hot and task inference

CATS = "size,color,y\n" + "".join(
    f"{i},{c},{i % 2}\n" for i, c in enumerate(["red", "blue", "red", "green", "blue", "red", "purple", "green"]))


def test_one_hot_categories_and_unseen_warning(tmp_path):
    source = write(tmp_path, "cats.csv", CATS)
    splits = load_splits(Data(source=source, normalize="standard", split=Split(test=0.25, stratify=False)), rng(1))
    prep = splits.prep
    assert set(prep.categorical) == {"color"}
    assert prep.input_names[0] == "size" and all(n.startswith("color=") for n in prep.input_names[1:])
    one_hot = splits.X_train[:, 1:]
    assert set(np.unique(one_hot)) <= {0.0, 1.0} and (one_hot.sum(axis=1) == 1).all()
    assert (prep.scale[1:] == 1).all() and (prep.offset[1:] == 0).all()
    direct = prep.transform({"size": [0, 1], "color": ["green", "orange"]})
    assert direct[1, 1:].sum() == 0  # unseen -> all zeros
    trained = {n.split("=")[1] for n in prep.input_names[1:]}
    if trained != {"red", "blue", "green", "purple"}:
        assert any("not seen in training" in w for w in splits.warnings)


def test_unseen_category_in_test_split_warns(tmp_path):
    rows = "".join(f"{i},a,{i % 2}\n" for i in range(9)) + "9,zzz,1\n"
    source = write(tmp_path, "u.csv", "n,c,y\n" + rows)
    for seed in range(50):
        splits = load_splits(Data(source=source, split=Split(test=0.5, stratify=False)), rng(seed))
        if splits.prep.categorical["c"] == ("a",):
            break
    assert splits.prep.categorical["c"] == ("a",)
    assert splits.warnings == ("test split: column 'c' has 1 row(s) with categories not seen"
                               " in training ('zzz'); encoded as all zeros",)
    assert splits.X_test[:, 1].sum() == len(splits.y_test) - 1


def test_declared_categorical_numbers_and_task_inference(tmp_path):
    source = write(tmp_path, "n.csv", "zip,v,y\n10,1.5,2\n20,2.5,10\n10.0,3.5,2\n30,4.5,10\n")
    splits = load_splits(Data(source=source, categorical=["zip"]), rng())
    assert splits.prep.categorical == {"zip": ("10", "20", "30")}  # "10.0" and "10" are one category
    assert splits.prep.task == "classification" and splits.prep.classes == ("2", "10")  # by value
    source = write(tmp_path, "r.csv", "v,y\n1,0.5\n2,1.5\n3,2.5\n")
    assert load_splits(Data(source=source), rng()).prep.task == "regression"
    many = write(tmp_path, "m.csv", "v,y\n" + "".join(f"{i},{i}\n" for i in range(25)))
    assert load_splits(Data(source=many), rng()).prep.task == "regression"


# ---------------------------------------------------------------- the stored transform

def test_preprocessor_round_trip_through_npz(tmp_path):
    source = write(tmp_path, "cats.csv", CATS)
    prep = load_splits(Data(source=source, normalize="minmax_symmetric"), rng()).prep
    path = tmp_path / "ckpt.npz"
    np.savez(path, weight=np.ones(3), **prep.to_arrays())
    with np.load(path, allow_pickle=False) as archive:
        loaded = Preprocessor.from_arrays(archive)
    assert all(v.dtype != object for v in prep.to_arrays().values())
    raw = {"size": [0.0, 3.5, 9.0], "color": ["red", "purple", "teal"]}
    np.testing.assert_array_equal(prep.transform(raw), loaded.transform(raw))
    for attr in ("task", "feature_columns", "target", "categorical", "normalize", "classes", "input_names"):
        assert getattr(loaded, attr) == getattr(prep, attr)


def test_regression_preprocessor_round_trip(tmp_path):
    prep = load_splits(Data(source="builtin:diabetes", normalize="standard", scale_target=True), rng()).prep
    np.savez(tmp_path / "p.npz", **prep.to_arrays())
    with np.load(tmp_path / "p.npz", allow_pickle=False) as archive:
        loaded = Preprocessor.from_arrays(archive)
    assert loaded.classes is None
    np.testing.assert_array_equal(loaded.target_mean, prep.target_mean)
    y = np.array([[-1.0], [0.0], [2.0]])
    np.testing.assert_array_equal(loaded.inverse_target(y), prep.inverse_target(y))


def test_transform_file_matches_test_split(tmp_path):
    data = Data(source="builtin:iris", normalize="standard", split=Split(validation=0.2, test=0.2))
    splits = load_splits(data, rng(5))
    rows = (REPO_DATA / "iris.csv").read_text().splitlines()
    test_rows = [rows[0]] + [rows[i + 1] for i in _test_indices(data, 5)]
    path = tmp_path / "iris_test.csv"
    path.write_text("\n".join(test_rows) + "\n")
    X, y = transform_file(path, splits.prep)
    np.testing.assert_array_equal(X, splits.X_test)
    np.testing.assert_array_equal(y, splits.y_test)


def _test_indices(data: Data, seed: int) -> np.ndarray:
    y = np.repeat(np.arange(3), 50)  # iris.csv lists 50 rows per class in order
    return split_indices(150, data.split.validation, data.split.test, y, rng(seed), "x")[2]


def test_transform_file_errors(tmp_path):
    prep = load_splits(Data(source=write(tmp_path, "cats.csv", CATS)), rng()).prep
    bad_class = write(tmp_path, "b.csv", "size,color,y\n1,red,0\n2,blue,7\n")
    with pytest.raises(DataError, match=r"b\.csv, line 3, column 'y': class '7' was not seen in training"):
        transform_file(Path(bad_class), prep)
    no_col = write(tmp_path, "c.csv", "sise,color,y\n1,red,0\n")
    with pytest.raises(DataError, match=r"c\.csv: column 'size' not found; did you mean 'sise'\?"):
        transform_file(Path(no_col), prep)
    notes: list[str] = []
    unseen = write(tmp_path, "d.csv", "size,color,y\n1,teal,0\n")
    X, _ = transform_file(Path(unseen), prep, warnings=notes)
    assert X[0, 1:].sum() == 0 and "'teal'" in notes[0]
