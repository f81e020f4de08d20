"""evaluate --data and predict --data follow one rule: columns the model does not use are
ignored with a note naming them; a missing feature column is refused, naming it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.cli._helpers import REPO, TrainedRun, nnctl_subprocess


def _with_extra(tmp_path: Path, drop: str | None = None) -> Path:
    """iris.csv with an id column in front and a 'colour' column at the end."""
    rows = list(csv.reader((REPO / "data" / "iris.csv").open()))
    header = ["row_id", *rows[0], "colour"]
    body = [[str(i), *r, "red"] for i, r in enumerate(rows[1:])]
    keep = [j for j, name in enumerate(header) if name != drop]
    path = tmp_path / "extra.csv"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([[row[j] for j in keep] for row in [header, *body]])
    return path


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_extra_columns_are_ignored_with_a_note(iris_run: TrainedRun, tmp_path: Path, command: str) -> None:
    data = _with_extra(tmp_path)
    out = nnctl_subprocess(command, iris_run.run_id, "--data", data, "--runs-dir", iris_run.runs_dir)
    assert out.exit_code == 0, out.stderr
    notes = [line for line in out.stderr.splitlines() if "not used by the model" in line]
    assert len(notes) == 1 and notes[0].startswith("warning: ")
    assert "'row_id'" in notes[0] and "'colour'" in notes[0] and "'species'" not in notes[0]


def test_both_give_the_same_answer_as_without_the_extra_columns(iris_run: TrainedRun, tmp_path: Path) -> None:
    args = ("--runs-dir", iris_run.runs_dir)
    plain = nnctl_subprocess("predict", iris_run.run_id, "--data", REPO / "data" / "iris.csv", *args)
    extra = nnctl_subprocess("predict", iris_run.run_id, "--data", _with_extra(tmp_path), *args)
    assert plain.exit_code == extra.exit_code == 0
    assert plain.stdout == extra.stdout


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_missing_feature_column_is_refused_by_both(iris_run: TrainedRun, tmp_path: Path, command: str) -> None:
    data = _with_extra(tmp_path, drop="petal_width")
    out = nnctl_subprocess(command, iris_run.run_id, "--data", data, "--runs-dir", iris_run.runs_dir)
    assert out.exit_code == 2
    assert len(out.error_lines()) == 1 and "petal_width" in out.error_lines()[0]
