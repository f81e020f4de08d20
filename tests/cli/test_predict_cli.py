"""nnctl predict and nnctl.load_run: the run's stored preprocessing on new rows."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import nnctl
from nnctl.app import data as data_mod
from nnctl.app.errors import UsageError
from nnctl.app.evaluation import load_model
from nnctl.app.seeds import seed_sequences
from nnctl.app.runs import RunStore
from tests.cli._helpers import REPO, TrainedRun
from tests.cli._helpers import nnctl as run_nnctl


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def split_rows_csv(run: TrainedRun, tmp_path: Path, dataset: str, with_id: bool = True) -> tuple[Path, np.ndarray]:
    """The raw rows of the run's test split, in order, written to a CSV with an id column,
    and the test split's network inputs as evaluate computes them."""
    spec, net, prep = load_model(RunStore(run.runs_dir).resolve(run.run_id))
    header, rows = read_csv(REPO / "data" / f"{dataset}.csv")
    target = header.index(prep.target)
    rng = np.random.default_rng(seed_sequences(spec.seed)[0])
    strata = None
    if prep.task == "classification":
        strata = np.unique([r[target] for r in rows], return_inverse=True)[1]
    test_rows = data_mod.split_indices(len(rows), spec.data.split.validation, spec.data.split.test, strata,
                                       rng, dataset)[2]
    splits = data_mod.load_splits(spec.data, np.random.default_rng(seed_sequences(spec.seed)[0]), dtype=net.dtype)
    path = tmp_path / "test_split.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", *header] if with_id else header)
        for i in test_rows:
            w.writerow([f"row{i}", *rows[i]] if with_id else rows[i])
    return path, net.predict(splits.X_test), splits, test_rows




def test_predict_equals_evaluate_on_the_test_split(iris_run: TrainedRun, tmp_path: Path) -> None:
    path, outputs, splits, test_rows = split_rows_csv(iris_run, tmp_path, "iris")
    out = tmp_path / "preds.csv"
    res = run_nnctl("predict", iris_run.run_id, "--data", path, "--keep", "id", "--out", out,
                    "--runs-dir", iris_run.runs_dir, "--chunk-rows", "7")
    assert res.exit_code == 0, res.output
    header, rows = read_csv(out)
    classes = splits.prep.classes
    assert header == ["id", "prediction", *(f"p_{c}" for c in classes)]
    assert [r[0] for r in rows] == [f"row{i}" for i in test_rows]  # order kept, id passed through
    np.testing.assert_array_equal([r[1] for r in rows], np.asarray(classes)[outputs.argmax(axis=1)])
    np.testing.assert_allclose(np.array([r[2:] for r in rows], dtype=float), outputs, rtol=1e-6)
    accuracy = np.mean([r[1] for r in rows] == np.asarray(classes)[splits.y_test])
    evaluated = run_nnctl("evaluate", iris_run.run_id, "--runs-dir", iris_run.runs_dir, "--json").json()
    assert accuracy == pytest.approx(evaluated["metrics"]["accuracy"])


def test_predict_regression_equals_evaluate(diabetes_run: TrainedRun, tmp_path: Path) -> None:
    path, outputs, splits, _ = split_rows_csv(diabetes_run, tmp_path, "diabetes", with_id=False)
    res = run_nnctl("predict", diabetes_run.run_id, "--data", path, "--runs-dir", diabetes_run.runs_dir)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == "prediction"
    values = np.array(lines[1:], dtype=float)
    np.testing.assert_allclose(values, splits.prep.inverse_target(outputs)[:, 0], rtol=1e-6)
    rmse = float(np.sqrt(np.mean((values - splits.prep.inverse_target(splits.y_test)[:, 0]) ** 2)))
    evaluated = run_nnctl("evaluate", diabetes_run.run_id, "--runs-dir", diabetes_run.runs_dir, "--json").json()
    assert rmse == pytest.approx(evaluated["metrics"]["rmse"], rel=1e-5)


def test_chunk_size_does_not_change_the_output(iris_run: TrainedRun) -> None:
    args = ("predict", iris_run.run_id, "--data", REPO / "data" / "iris.csv", "--runs-dir", iris_run.runs_dir)
    whole = run_nnctl(*args)
    chunked = run_nnctl(*args, "--chunk-rows", "1")
    assert whole.exit_code == chunked.exit_code == 0
    assert whole.stdout == chunked.stdout and len(whole.stdout.splitlines()) == 151


@pytest.mark.parametrize("header, cells, needle", [
    ("sepal_length,sepal_width,petal_length", "5,3,1", "missing column(s) 'petal_width'"),
    ("sepal_length,sepal_width,petal_length,colour", "5,3,1,red", "missing column(s) 'petal_width'"),
    ("sepal_length,sepal_width,petal_length,petal_width", "5,3,abc,0.2", "line 2, column 'petal_length': 'abc' is not a number"),
    ("sepal_length,sepal_width,petal_length,petal_width", "5,3,,0.2", "line 2, column 'petal_length': missing value"),
    ("sepal_length,sepal_width,petal_length,petal_width", "5,3,1", "line 2: 3 cells, expected 4"),
])
def test_bad_files_are_refused_naming_the_columns(iris_run: TrainedRun, tmp_path: Path, header, cells, needle) -> None:
    path = tmp_path / "new.csv"
    path.write_text(f"{header}\n{cells}\n")
    out_file = tmp_path / "preds.csv"
    res = run_nnctl("predict", iris_run.run_id, "--data", path, "--out", out_file, "--runs-dir", iris_run.runs_dir)
    assert res.exit_code == 2
    assert len(res.error_lines()) == 1 and needle in res.error_lines()[0] and str(path) in res.error_lines()[0]
    assert not out_file.exists() and list(tmp_path.glob(".preds.csv*")) == []


@pytest.mark.parametrize("args", [("nosuch",), ("../x",)])
def test_unknown_run_or_missing_file(iris_run: TrainedRun, args) -> None:
    res = run_nnctl("predict", *args, "--data", REPO / "data" / "iris.csv", "--runs-dir", iris_run.runs_dir)
    assert res.exit_code == 2 and len(res.error_lines()) == 1
    missing = run_nnctl("predict", iris_run.run_id, "--data", "nope.csv", "--runs-dir", iris_run.runs_dir)
    assert missing.exit_code == 2 and "nope.csv: file not found" in missing.error_lines()[0]


def test_python_api(iris_run: TrainedRun) -> None:
    by_path = nnctl.load_run(iris_run.path)
    by_id = nnctl.load_run(iris_run.run_id[:17], runs_dir=iris_run.runs_dir)
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 2.8, 4.4, 1.3]])
    labels = by_path.predict(rows)
    assert labels.shape == (3,) and set(labels) <= set(by_path.classes)
    np.testing.assert_array_equal(labels, by_id.predict(rows))
    proba = by_id.predict_proba(rows)
    assert proba.shape == (3, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(by_id.classes)[proba.argmax(axis=1)], labels)
    as_mapping = dict(zip(by_id.feature_columns, rows.T))
    np.testing.assert_array_equal(by_id.predict(as_mapping), labels)
    res = run_nnctl("predict", iris_run.run_id, "--data", REPO / "data" / "iris.csv", "--runs-dir", iris_run.runs_dir)
    cli = [line.split(",")[0] for line in res.stdout.splitlines()[1:]]
    _, raw = read_csv(REPO / "data" / "iris.csv")
    np.testing.assert_array_equal(by_id.predict(np.array([r[:4] for r in raw], dtype=float)), cli)


def test_python_api_regression(diabetes_run: TrainedRun) -> None:
    model = nnctl.load_run(diabetes_run.path)
    _, raw = read_csv(REPO / "data" / "diabetes.csv")
    values = model.predict(np.array([r[:-1] for r in raw[:5]], dtype=float))
    assert values.shape == (5,) and np.all(np.isfinite(values))
    with pytest.raises(UsageError):
        model.predict_proba(np.array([r[:-1] for r in raw[:5]], dtype=float))


def test_categorical_columns_and_unseen_categories(tmp_path: Path) -> None:
    rows = ["id,color,x,y"] + [f"r{i},{'red' if i % 2 else 'blue'},{i / 40:.3f},{int(i >= 20)}" for i in range(40)]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    spec = tmp_path / "cat.yaml"
    spec.write_text("data: {source: train.csv, target: y, categorical: [color, id]}\n"
                    "model: {layers: [{units: 4}]}\ntraining: {epochs: 3}\n")
    runs = tmp_path / "runs"
    assert run_nnctl("train", spec, "--runs-dir", runs, "--quiet").exit_code == 0
    (tmp_path / "new.csv").write_text("id,color,x\nr1,green,0.9\nr2,red,0.1\nr3,green,0.5\n")
    out = tmp_path / "preds.csv"
    res = run_nnctl("predict", "latest", "--runs-dir", runs, "--data", tmp_path / "new.csv", "--out", out,
                    "--keep", "id", "--json")
    assert res.exit_code == 0, res.output
    assert res.json()["rows"] == 3
    assert [w for w in res.json()["warnings"] if "'color' has 2 row(s)" in w]
    model = nnctl.load_run(runs / res.json()["run_id"])
    _, written = read_csv(out)
    expected = model.predict({"id": ["r1", "r2", "r3"], "color": ["green", "red", "green"], "x": [0.9, 0.1, 0.5]})
    assert [r[0] for r in written] == ["r1", "r2", "r3"]  # the id is a feature here and is kept too
    np.testing.assert_array_equal([r[1] for r in written], expected)


def test_predict_an_npz(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    np.savez(tmp_path / "rows.npz", X=X, y=(X[:, 0] > 0).astype(int))
    spec = tmp_path / "npz.yaml"
    spec.write_text("data: {source: rows.npz, task: classification}\nmodel: {layers: [{units: 4}]}\n"
                    "training: {epochs: 3}\n")
    runs = tmp_path / "runs"
    assert run_nnctl("train", spec, "--runs-dir", runs, "--quiet").exit_code == 0
    res = run_nnctl("predict", "latest", "--runs-dir", runs, "--data", tmp_path / "rows.npz", "--chunk-rows", "25")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == "prediction,p_0,p_1" and len(lines) == 61
    model = nnctl.load_run(next(runs.iterdir()))
    np.testing.assert_array_equal([line.split(",")[0] for line in lines[1:]], model.predict(X))
    np.savez(tmp_path / "wide.npz", X=np.hstack([X, X[:, :1]]), y=np.zeros(60))
    wide = run_nnctl("predict", "latest", "--runs-dir", runs, "--data", tmp_path / "wide.npz")
    assert wide.exit_code == 0 and wide.stdout == res.stdout  # the trailing column is ignored
    assert "column(s) 'x3' are not used by the model" in wide.stderr
