"""IDX sources through the command line: train, evaluate on the t10k split, bad files exit 2, the schema."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.cli._helpers import CONFIGS, nnctl, nnctl_subprocess
from tests.idx_files import idx_bytes, unshipped_data_args, write_folder

SPEC = """\
name: idx
seed: 0
data:
  source: {source}
  normalize: minmax
  split: {{validation: 0.2}}
model:
  layers:
    - {{units: 8, activation: relu}}
  init: {{scheme: he}}
optimizer: {{name: adam, lr: 0.05}}
training:
  epochs: 30
  batch_size: 16
"""


def _spec(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(source=source), encoding="utf-8")
    return path


def test_train_and_evaluate_an_idx_folder(tmp_path):
    write_folder(tmp_path / "mnist", n_train=120, n_test=45)
    runs = tmp_path / "runs"
    out = nnctl("train", _spec(tmp_path, "mnist/"), "--runs-dir", runs, "--json")
    assert out.exit_code == 0, out.output
    result = out.json()
    run = runs / result["run_id"]
    summary = yaml.safe_load((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["rows"] == {"train": 96, "validation": 24, "test": 45}
    assert summary["classes"] == ["0", "1", "2"]
    evaluated = nnctl("evaluate", result["run_id"], "--runs-dir", runs, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    metrics = evaluated.json()
    assert metrics["source"] == "mnist/ (test split)"
    # the labels are a bright pixel's position: a small network learns them
    assert metrics["metrics"]["accuracy"] >= 0.9
    confusion = np.array(metrics["metrics"]["confusion"])
    assert confusion.sum() == 45


def test_train_a_single_idx_pair(tmp_path):
    write_folder(tmp_path, n_train=80, n_test=None)
    (tmp_path / "train-labels-idx1-ubyte.gz").rename(tmp_path / "labels.gz")
    spec = _spec(tmp_path, "train-images-idx3-ubyte.gz\n  labels: labels.gz")
    out = nnctl("train", spec, "--runs-dir", tmp_path / "runs", "--json")
    assert out.exit_code == 0, out.output
    run = tmp_path / "runs" / out.json()["run_id"]
    summary = yaml.safe_load((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["rows"] == {"train": 48, "validation": 16, "test": 16}


@pytest.mark.parametrize(("file", "content", "expected"), [
    ("train-images-idx3-ubyte", b"\x00\x00\x08\x03\x00\x00\x00\x05", "train-images-idx3-ubyte: IDX header cut short"),
    ("t10k-labels-idx1-ubyte", idx_bytes(np.zeros(7, np.uint8)),
     "t10k-labels-idx1-ubyte: 7 labels but mnist/t10k-images-idx3-ubyte has 30 images"),
    ("train-labels-idx1-ubyte", idx_bytes(np.zeros(60, np.uint8))[:-3], "train-labels-idx1-ubyte: wrong size"),
])
def test_bad_idx_file_exits_2_naming_it(tmp_path, file, content, expected):
    write_folder(tmp_path / "mnist", gz=False)
    (tmp_path / "mnist" / file).write_bytes(content)
    runs = tmp_path / "runs"
    out = nnctl_subprocess("train", _spec(tmp_path, str(tmp_path / "mnist")), "--runs-dir", runs)
    assert out.exit_code == 2, out.output
    errors = out.error_lines()
    assert len(errors) == 1 and "Traceback" not in out.stderr
    assert errors[0].startswith(f"error: {tmp_path}/mnist/")
    assert expected.replace("mnist/", f"{tmp_path}/mnist/") in errors[0]
    assert not runs.exists() or not any(runs.iterdir())


def test_schema_describes_idx_sources():
    out = nnctl("schema")
    assert out.exit_code == 0
    data = out.json()["$defs"]["DataSpec"]["properties"]
    assert "idx1-ubyte" in data["labels"]["description"]
    assert "t10k-" in data["source"]["description"]


def test_fashion_mnist_config_points_at_the_idx_folder(tmp_path):
    config = CONFIGS / "fashion_mnist.yaml"
    spec = yaml.safe_load(config.read_text(encoding="utf-8"))
    assert spec["data"]["source"].rstrip("/") == "data/fashion-mnist"
    out = nnctl("validate", config, "--json", *unshipped_data_args(config, tmp_path))
    assert out.exit_code == 0, out.output
    resolved = out.json()["spec"]
    assert resolved["data"]["task"] == "classification"
    assert resolved["stopping"]["early_stopping"]["metric"] == "val_accuracy"
    out = nnctl("validate", config, *unshipped_data_args(config, tmp_path))
    assert "network 784-" in out.stdout and "rows train/val/test 54/6/20" in out.stdout
