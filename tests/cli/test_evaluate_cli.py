"""``nnctl evaluate``: run references, agreement with what train reported, the confusion
matrix, --data FILE, and regression metrics in the target's units."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from tests.cli._helpers import CONFIGS, TrainedRun, nnctl

DATA = CONFIGS.parent / "data"


def _evaluate(run: TrainedRun, ref: str, *extra: str | Path) -> dict:
    out = nnctl("evaluate", ref, "--runs-dir", run.runs_dir, "--json", *extra)
    assert out.exit_code == 0, out.output
    return out.json()


@pytest.mark.parametrize("how", ["full-id", "unique-prefix", "latest"])
def test_evaluate_by_reference(iris_run: TrainedRun, how: str) -> None:
    ref = {"full-id": iris_run.run_id, "unique-prefix": iris_run.run_id[:-2], "latest": "latest"}[how]
    document = _evaluate(iris_run, ref)
    assert document["run_id"] == iris_run.run_id
    assert document["task"] == "classification"
    assert document["classes"] == ["setosa", "versicolor", "virginica"]
    assert document["failed"] == []


def test_accuracy_equals_what_train_reported(iris_run: TrainedRun) -> None:
    metrics = _evaluate(iris_run, iris_run.run_id)["metrics"]
    reported = iris_run.result["metrics"]["test"]
    assert metrics["rows"] == reported["rows"] == 30
    assert metrics["accuracy"] == pytest.approx(reported["accuracy"], abs=1e-12)
    assert metrics["loss"] == pytest.approx(reported["loss"], rel=1e-6)


def test_confusion_matrix_sums_to_the_test_rows(iris_run: TrainedRun) -> None:
    metrics = _evaluate(iris_run, iris_run.run_id)["metrics"]
    confusion = metrics["confusion"]
    assert len(confusion) == 3 and all(len(row) == 3 for row in confusion)
    assert sum(map(sum, confusion)) == metrics["rows"] == 30
    assert [sum(row) for row in confusion] == [10, 10, 10]  # a stratified split of 50/50/50
    diagonal = sum(confusion[i][i] for i in range(3))
    assert diagonal / 30 == pytest.approx(metrics["accuracy"])


def test_plain_output(iris_run: TrainedRun) -> None:
    out = nnctl("evaluate", iris_run.run_id, "--runs-dir", iris_run.runs_dir)
    assert out.exit_code == 0, out.output
    assert not re.search(r"\x1b\[", out.output)
    assert f"run {iris_run.run_id} on builtin:iris (test split)" in out.stdout
    assert "accuracy=" in out.stdout and "rows=30" in out.stdout
    assert "confusion matrix" in out.stdout
    assert out.stderr == ""


def _write_iris_rows(path: Path, per_class: int, column_order: list[int] | None = None) -> None:
    with (DATA / "iris.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]  # 50 rows of each species, in order
    chosen = [body[50 * c + k] for c in range(3) for k in range(per_class)]
    order = column_order or list(range(len(header)))
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([header[i] for i in order])
        writer.writerows([row[i] for i in order] for row in chosen)


@pytest.mark.parametrize("column_order", [None, [4, 2, 0, 3, 1]], ids=["same-order", "shuffled-columns"])
def test_evaluate_on_another_file(iris_run: TrainedRun, tmp_path: Path, column_order) -> None:
    data = tmp_path / "some_iris.csv"
    _write_iris_rows(data, 15, column_order)
    document = _evaluate(iris_run, iris_run.run_id, "--data", data)
    metrics = document["metrics"]
    assert document["source"] == str(data)
    assert metrics["rows"] == 45
    assert sum(map(sum, metrics["confusion"])) == 45
    assert [sum(row) for row in metrics["confusion"]] == [15, 15, 15]
    assert metrics["accuracy"] >= 0.8


def test_evaluate_on_the_whole_dataset(iris_run: TrainedRun) -> None:
    metrics = _evaluate(iris_run, "latest", "--data", DATA / "iris.csv")["metrics"]
    assert metrics["rows"] == 150
    assert metrics["accuracy"] >= 0.9


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow while diverging
def test_latest_is_the_newest_completed_run(tmp_path: Path) -> None:
    out = nnctl("train", CONFIGS / "iris.yaml", "--set", "training.epochs=2", "--runs-dir", tmp_path, "--quiet")
    assert out.exit_code == 0, out.output
    completed = out.stdout.strip()
    diverged = nnctl(
        "train", CONFIGS / "diabetes.yaml", "--set", "optimizer.name=sgd", "--set", "optimizer.lr=1000",
        "--set", "model.layers[0].activation=relu", "--set", "regularization.l2=0",
        "--runs-dir", tmp_path, "--quiet",
    )
    assert diverged.exit_code == 1
    # a run still in progress, named to sort after every other
    running = tmp_path / "29991231-235959-running-ffff"
    running.mkdir()
    (running / "summary.json").write_text(json.dumps({"status": "running"}))
    out = nnctl("evaluate", "latest", "--runs-dir", tmp_path, "--json")
    assert out.exit_code == 0, out.output
    assert out.json()["run_id"] == completed


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow while diverging
def test_evaluate_a_diverged_run_by_id(tmp_path: Path) -> None:
    out = nnctl(
        "train", CONFIGS / "diabetes.yaml", "--set", "optimizer.name=sgd", "--set", "optimizer.lr=1000",
        "--set", "model.layers[0].activation=relu", "--set", "regularization.l2=0",
        "--runs-dir", tmp_path, "--quiet",
    )
    assert out.exit_code == 1
    run_id = out.stdout.strip()
    out = nnctl("evaluate", run_id, "--runs-dir", tmp_path, "--json")
    assert out.exit_code == 0, out.output  # best.npz holds finite (initial) weights
    assert out.json()["metrics"]["rmse"] is not None


def test_regression_metrics_in_original_units(diabetes_run: TrainedRun) -> None:
    document = _evaluate(diabetes_run, diabetes_run.run_id)
    metrics = document["metrics"]
    assert document["task"] == "regression" and document["classes"] is None
    assert {"loss", "rmse", "mae", "r2", "rows"} <= set(metrics)
    assert "confusion" not in metrics and "accuracy" not in metrics
    assert 30 < metrics["rmse"] < 100  # progression spans about 25..346; standardized units would be ~1
    assert 0 < metrics["mae"] <= metrics["rmse"]
    assert 0 < metrics["r2"] < 1
    reported = diabetes_run.result["metrics"]["test"]
    assert metrics["rmse"] == pytest.approx(reported["rmse"], rel=1e-6)
    assert metrics["r2"] == pytest.approx(reported["r2"], rel=1e-6)


def test_regression_bars(diabetes_run: TrainedRun) -> None:
    ok = nnctl("evaluate", "latest", "--runs-dir", diabetes_run.runs_dir, "--fail-over", "rmse=100",
               "--fail-under", "r2=0")
    assert ok.exit_code == 0, ok.output
    assert "rmse=" in ok.stdout and "r2=" in ok.stdout
    missed = nnctl("evaluate", "latest", "--runs-dir", diabetes_run.runs_dir, "--fail-over", "rmse=30")
    assert missed.exit_code == 1
    assert "fail: rmse" in missed.stderr and "above 30" in missed.stderr


def test_regression_on_another_file(diabetes_run: TrainedRun) -> None:
    metrics = _evaluate(diabetes_run, diabetes_run.run_id, "--data", DATA / "diabetes.csv")["metrics"]
    assert metrics["rows"] == 442
    assert 30 < metrics["rmse"] < 100


def test_evaluate_warns_about_unseen_categories(tmp_path: Path) -> None:
    rows = ["color,x,y"] + [f"{'red' if i % 2 else 'blue'},{i / 40:.3f},{int(i >= 20)}" for i in range(40)]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "new.csv").write_text("color,x,y\ngreen,0.9,1\nred,0.1,0\n")
    spec = tmp_path / "cat.yaml"
    spec.write_text("data: {source: train.csv, target: y, categorical: [color]}\n"
                    "model: {layers: [{units: 4}]}\ntraining: {epochs: 3}\n")
    runs = tmp_path / "runs"
    assert nnctl("train", spec, "--runs-dir", runs, "--quiet").exit_code == 0
    out = nnctl("evaluate", "latest", "--runs-dir", runs, "--data", tmp_path / "new.csv", "--json")
    assert out.exit_code == 0, out.output
    assert any("green" in w for w in out.json()["warnings"])
