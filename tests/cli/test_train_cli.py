"""End-to-end tests of ``nnctl train``: the JSON result, the run directory's files,
plain/quiet output, seeds and reproducibility, --set, divergence and interruption."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import yaml

from tests.cli._helpers import (
    CONFIGS,
    IRIS_EPOCHS,
    TrainedRun,
    nnctl,
    nnctl_subprocess,
    read_metrics,
    without_seconds,
)

ANSI = re.compile(r"\x1b\[")
IRIS_SHORT = ("--set", f"training.epochs={IRIS_EPOCHS}")
DIVERGE = (
    "--set", "optimizer.name=sgd", "--set", "optimizer.lr=1000",
    "--set", "model.layers[0].activation=relu", "--set", "regularization.l2=0",
)


def _arrays(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


# ---------------------------------------------------------------- the JSON result and the run directory
def test_json_result(iris_run: TrainedRun) -> None:
    r = iris_run.result
    assert r["status"] == "completed"
    assert r["run_id"] and iris_run.path.is_dir()
    assert r["epochs"] <= IRIS_EPOCHS
    assert 0.0 <= r["metrics"]["test"]["accuracy"] <= 1.0
    assert r["metrics"]["test"]["rows"] == 30
    assert r["seed"] == 1 and r["task"] == "classification"


def test_run_dir_files(iris_run: TrainedRun) -> None:
    names = {p.name for p in iris_run.path.iterdir()}
    assert {"spec.yaml", "metrics.csv", "best.npz", "last.npz", "summary.json"} <= names
    assert not [n for n in names if n.endswith(".tmp") or n.startswith(".")], names


def test_metrics_csv(iris_run: TrainedRun) -> None:
    header, rows = read_metrics(iris_run.path / "metrics.csv")
    assert header == [
        "epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
        "grad_norm.layer1", "grad_norm.layer2", "seconds",
    ]
    assert len(rows) == iris_run.result["epochs"]
    assert [int(row["epoch"]) for row in rows] == list(range(1, len(rows) + 1))
    for row in rows:
        assert float(row["lr"]) == pytest.approx(0.005)
        assert all(math.isfinite(float(row[c])) for c in header)


@pytest.mark.parametrize("name", ["best.npz", "last.npz"])
def test_checkpoints_load_without_pickle(iris_run: TrainedRun, name: str) -> None:
    arrays = _arrays(iris_run.path / name)
    assert arrays["layer1.weight"].shape == (4, 16)
    assert arrays["layer1.bias"].shape == (16,)
    assert arrays["layer2.weight"].shape == (16, 3)
    assert arrays["layer2.bias"].shape == (3,)
    for key in ("layer1.weight", "layer1.bias", "layer2.weight", "layer2.bias"):
        assert np.isfinite(arrays[key]).all()
    assert all(a.dtype != object for a in arrays.values())


def test_summary_json(iris_run: TrainedRun) -> None:
    summary = json.loads((iris_run.path / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["stop_reason"] == iris_run.result["stop_reason"]
    assert summary["step"] == {"kind": "numpy", "blas_threads": 1}  # a small network: the plain step, one thread
    assert summary["seed"] == 1
    assert re.fullmatch(r"[0-9a-f]{64}", summary["data_hash"])
    assert {"nnctl", "numpy", "python"} <= set(summary["versions"])
    assert summary["metrics"]["test"]["accuracy"] == iris_run.result["metrics"]["test"]["accuracy"]


def test_spec_yaml_is_resolved(iris_run: TrainedRun) -> None:
    spec = yaml.safe_load((iris_run.path / "spec.yaml").read_text())
    assert spec["training"]["epochs"] == IRIS_EPOCHS  # the --set override
    assert spec["loss"] == "cross_entropy"
    assert spec["model"]["output"] == "softmax"
    assert spec["data"]["task"] == "classification"
    assert spec["seed"] == 1


# ---------------------------------------------------------------- output modes
def test_quiet_prints_only_the_run_id(tmp_path) -> None:
    out = nnctl("train", CONFIGS / "iris.yaml", "--set", "training.epochs=3", "--runs-dir", tmp_path, "--quiet")
    assert out.exit_code == 0, out.output
    (run_id,) = out.stdout.splitlines()
    assert (tmp_path / run_id / "summary.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == [run_id]


def test_plain_output_has_no_ansi_escapes(tmp_path) -> None:
    out = nnctl("train", CONFIGS / "iris.yaml", "--set", "training.epochs=3", "--runs-dir", tmp_path)
    assert out.exit_code == 0, out.output
    assert not ANSI.search(out.stdout) and not ANSI.search(out.stderr)
    assert out.stdout.startswith("run ")
    assert "test:" in out.stdout and "saved to" in out.stdout
    assert "epoch 1/3" in out.stderr  # plain progress lines, not a rich bar


def test_plain_output_in_a_subprocess_has_no_ansi_escapes(tmp_path) -> None:
    out = nnctl_subprocess("train", "configs/iris.yaml", "--set", "training.epochs=3", "--runs-dir", tmp_path)
    assert out.exit_code == 0, out.output
    assert not ANSI.search(out.output)
    assert "Traceback" not in out.output


def test_json_mode_prints_one_document(tmp_path) -> None:
    out = nnctl("train", CONFIGS / "iris.yaml", "--set", "training.epochs=3", "--runs-dir", tmp_path, "--json")
    assert out.exit_code == 0, out.output
    out.json()  # the whole of stdout is one JSON document
    assert "epoch" not in out.stderr  # no progress lines in JSON mode


def test_xor_in_a_subprocess(tmp_path) -> None:
    out = nnctl_subprocess("train", "configs/xor.yaml", "--set", "training.epochs=5000", "--set", "seed=3",
                           "--json", "--runs-dir", tmp_path)
    assert out.exit_code == 0, out.output
    result = out.json()
    assert result["status"] == "completed"
    assert result["seed"] == 3
    assert "Traceback" not in out.output


# ---------------------------------------------------------------- seeds, reproducibility, --set
def test_same_seed_reproduces_metrics_and_weights(iris_run: TrainedRun, tmp_path) -> None:
    out = nnctl("train", CONFIGS / "iris.yaml", *IRIS_SHORT, "--runs-dir", tmp_path, "--json")
    assert out.exit_code == 0, out.output
    again = tmp_path / out.json()["run_id"]
    assert without_seconds(again / "metrics.csv") == without_seconds(iris_run.path / "metrics.csv")
    first, second = _arrays(iris_run.path / "best.npz"), _arrays(again / "best.npz")
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


def test_random_seed_is_recorded_and_reproducible(tmp_path) -> None:
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    out = nnctl("train", CONFIGS / "iris.yaml", "--set", "seed=random", "--set", "training.epochs=15",
                "--runs-dir", first_dir, "--json")
    assert out.exit_code == 0, out.output
    result = out.json()
    run = first_dir / result["run_id"]
    seed = result["seed"]
    assert isinstance(seed, int) and seed >= 0
    assert yaml.safe_load((run / "spec.yaml").read_text())["seed"] == seed
    assert json.loads((run / "summary.json").read_text())["seed"] == seed

    out = nnctl("train", CONFIGS / "iris.yaml", "--set", f"seed={seed}", "--set", "training.epochs=15",
                "--runs-dir", second_dir, "--json")
    assert out.exit_code == 0, out.output
    rerun = second_dir / out.json()["run_id"]
    assert without_seconds(rerun / "metrics.csv") == without_seconds(run / "metrics.csv")


def test_set_changes_the_resolved_spec(tmp_path) -> None:
    out = nnctl("train", CONFIGS / "iris.yaml", "--set", "training.epochs=4", "--set", "model.layers[0].units=5",
                "--set", "optimizer.lr=0.01", "--runs-dir", tmp_path, "--json")
    assert out.exit_code == 0, out.output
    run = tmp_path / out.json()["run_id"]
    spec = yaml.safe_load((run / "spec.yaml").read_text())
    assert spec["training"]["epochs"] == 4
    assert spec["model"]["layers"][0]["units"] == 5
    assert spec["optimizer"] == {**spec["optimizer"], "name": "adam", "lr": 0.01}
    assert _arrays(run / "best.npz")["layer1.weight"].shape == (4, 5)
    assert len(read_metrics(run / "metrics.csv")[1]) == 4


# ---------------------------------------------------------------- divergence and interruption
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow while diverging
def test_divergence_exits_1_and_keeps_a_finite_best_checkpoint(tmp_path) -> None:
    out = nnctl("train", CONFIGS / "diabetes.yaml", *DIVERGE, "--runs-dir", tmp_path)
    assert out.exit_code == 1, out.output
    assert "Traceback" not in out.output
    errors = out.error_lines()
    assert len(errors) == 1 and "diverged" in errors[0] and "best.npz" in errors[0], out.stderr
    (run,) = tmp_path.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "diverged"
    assert summary["stop_reason"] == "diverged"
    best = _arrays(run / "best.npz")
    for key in ("layer1.weight", "layer1.bias", "layer2.weight", "layer2.bias"):
        assert np.isfinite(best[key]).all(), key


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow while diverging
def test_divergence_with_json(tmp_path) -> None:
    out = nnctl("train", CONFIGS / "diabetes.yaml", *DIVERGE, "--runs-dir", tmp_path, "--json")
    assert out.exit_code == 1
    result = out.json()
    assert result["status"] == "diverged" and result["stop_reason"] == "diverged"


def test_divergence_stderr_has_no_numpy_warnings(tmp_path) -> None:
    out = nnctl_subprocess("train", "configs/diabetes.yaml", *DIVERGE, "--runs-dir", tmp_path)
    assert out.exit_code == 1
    assert "RuntimeWarning" not in out.stderr, out.stderr


def test_interrupt_exits_130_and_keeps_the_run(tmp_path, monkeypatch) -> None:
    import nnctl.engine.trainer as trainer

    real = trainer._run_epoch
    calls = {"n": 0}

    def interrupted_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "_run_epoch", interrupted_epoch)
    out = nnctl("train", CONFIGS / "iris.yaml", *IRIS_SHORT, "--runs-dir", tmp_path)
    assert out.exit_code == 130, out.output
    assert "interrupted" in out.stderr and "Traceback" not in out.output
    (run,) = tmp_path.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["stop_reason"] == "interrupted"
    assert (run / "best.npz").is_file() and (run / "last.npz").is_file()
    # Only finished epochs count: the one under way when Ctrl-C came is not recorded.
    assert summary["epochs"] == len(read_metrics(run / "metrics.csv")[1]) == 3

