"""What nnctl infers from the data is said on one stderr line each, with the key that
changes it; an error that follows from an inference says so."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.cli._helpers import nnctl_subprocess

SPEC = """\
data: {{source: calls.csv, target: support_calls{extra}}}
model: {{layers: [{{units: 4}}]}}
training: {{epochs: 2}}
{tail}"""


@pytest.fixture()
def calls(tmp_path: Path) -> tuple[Path, int]:
    """A table whose target counts calls (whole numbers), with a word column."""
    rng = np.random.default_rng(1)
    n = 120
    x = rng.normal(size=n)
    plan = rng.choice(["basic", "pro", "team"], size=n)
    y = np.clip(np.round(6 + 3 * x), 0, 15).astype(int)
    lines = ["x,plan,support_calls", *(f"{a:.3f},{p},{t}" for a, p, t in zip(x, plan, y))]
    (tmp_path / "calls.csv").write_text("\n".join(lines) + "\n")
    return tmp_path, len(np.unique(y))


def _spec(folder: Path, extra: str = "", tail: str = "") -> Path:
    path = folder / "calls.yaml"
    path.write_text(SPEC.format(extra=extra, tail=tail))
    return path


def _notes(stderr: str, key: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"warning: {key}:")]


def test_an_integer_target_taken_as_classes_is_said(calls) -> None:
    folder, n_classes = calls
    out = nnctl_subprocess("train", _spec(folder), "--runs-dir", folder / "runs", "--json")
    assert out.exit_code == 0, out.stderr
    assert json.loads(out.stdout)["task"] == "classification"  # stdout stays one JSON document
    [task] = _notes(out.stderr, "data.task")
    assert "'support_calls'" in task and f"{n_classes} classes" in task and "data.task: regression" in task
    [words] = _notes(out.stderr, "data.categorical")
    assert "'plan'" in words and "3 units" in words
    [loss] = _notes(out.stderr, "loss")
    assert "cross_entropy" in loss and "softmax" in loss


def test_nothing_is_said_when_the_spec_chose(calls) -> None:
    folder, _ = calls
    spec = _spec(folder, extra=", task: regression, categorical: [plan]", tail="loss: squared\n")
    out = nnctl_subprocess("validate", spec)
    assert out.exit_code == 0, out.stderr
    assert out.stderr == "" and "regression" in out.stdout


def test_the_follow_on_error_says_why(calls) -> None:
    folder, _ = calls
    spec = _spec(folder, tail="stopping: {early_stopping: {metric: val_rmse, patience: 3}}\n")
    out = nnctl_subprocess("train", spec, "--runs-dir", folder / "runs", "--json")
    assert out.exit_code == 2
    error = json.loads(out.stdout)["error"]
    assert "val_rmse" in error["message"]
    assert "support_calls" in error["hint"] and "data.task: regression" in error["hint"]
    assert "hint: the task was inferred" in out.stderr
    assert not (folder / "runs").exists() or not any((folder / "runs").iterdir())


def test_validate_json_keeps_notes_on_stderr(calls) -> None:
    folder, _ = calls
    out = nnctl_subprocess("validate", _spec(folder), "--json")
    assert out.exit_code == 0
    document = json.loads(out.stdout)
    assert any(w.startswith("data.task:") for w in document["warnings"])
    assert _notes(out.stderr, "data.task")
