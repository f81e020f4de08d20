"""Bad input never gives a traceback or a half-written run: bad specs, bad CSVs, bad
checkpoints for init.from, bad run references and bad --fail-under/--fail-over bars."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tests.cli._helpers import CONFIGS, TrainedRun, nnctl, nnctl_subprocess

# Line numbers in the expected messages refer to this text.
BASE = """\
name: bad
seed: 0
data:
  source: builtin:iris
  target: species
model:
  layers:
    - {units: 4, activation: tanh}
training:
  epochs: 2
"""

TWO_LAYER_CSV = "a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n9,10,0\n11,12,1\n"


@dataclass(frozen=True)
class Case:
    id: str
    spec: str | None  # None: no spec file is written
    expected: tuple[str, ...]  # substrings of stderr, each on an 'error:' line
    files: dict[str, str] = field(default_factory=dict)
    n_errors: int = 1


def _csv_spec(name: str, target: str = "y") -> str:
    return BASE.replace("builtin:iris", name).replace("target: species", f"target: {target}")


def _init_spec(source: str) -> str:
    return BASE.replace("activation: tanh}\n", f"activation: tanh}}\n  init: {{from: {source}}}\n")


CASES = [
    Case("unknown-key", BASE + "  epochz: 3\n",
         ("training.epochz: unknown key (line 11)", "did you mean 'epochs'?")),
    Case("bad-activation", BASE.replace("activation: tanh", "activation: relux"),
         ("model.layers[0].activation: unknown activation 'relux' (line 8)", "did you mean 'relu'?")),
    Case("wrong-types",
         BASE.replace("units: 4", 'units: "4"').replace("epochs: 2", "epochs: 2.5\n  shuffle: \"yes\"")
         + "optimizer: {name: adam, lr: fast}\n",
         ("model.layers[0].units: expected an integer, got '4' (a string) (line 8)",
          "training.epochs: expected an integer, got 2.5 (line 10)",
          "training.shuffle: expected true or false, got 'yes' (a string) (line 11)",
          "optimizer.lr: expected a number, got 'fast' (a string) (line 12)"),
         n_errors=4),
    Case("missing-source", BASE.replace("  source: builtin:iris\n", ""),
         ("data.source: missing required key (line 3)",)),
    Case("yaml-syntax", "name: bad\ndata: {source: builtin:iris\nmodel: x\n",
         ("spec.yaml: YAML syntax error at line 3, column 6",)),
    Case("missing-spec-file", None, ("spec file not found:", "spec.yaml")),
    Case("missing-data-file", _csv_spec("nothere.csv"), ("nothere.csv: file not found",)),
    Case("ragged-row", _csv_spec("ragged.csv"),
         ("ragged.csv, line 4: 2 cells, expected 3 (ragged row)",),
         files={"ragged.csv": "a,b,y\n1,2,0\n3,4,1\n5,6\n7,8,1\n"}),
    Case("non-numeric-cell", _csv_spec("words.csv"),
         ("words.csv, line 3, column 'b': 'x' is not a number",),
         files={"words.csv": TWO_LAYER_CSV.replace("3,4,1", "3,x,1")}),
    Case("missing-value", _csv_spec("holes.csv"),
         ("holes.csv, line 5, column 'a': missing value",),
         files={"holes.csv": TWO_LAYER_CSV.replace("7,8,1", "NA,8,1")}),
    Case("unknown-target", BASE.replace("target: species", "target: specis"),
         ("target column 'specis' not found; did you mean 'species'?",)),
    Case("early-stopping-without-validation",
         BASE.replace("  target: species\n", "  target: species\n  split: {validation: 0}\n")
         + "stopping:\n  early_stopping: {patience: 3}\n",
         ("stopping.early_stopping: needs validation rows, but data.split.validation is 0 (line 13)",)),
    Case("init-from-missing", _init_spec("missing.npz"), ("model.init.from: missing.npz: file not found",)),
    Case("init-from-wrong-shape", _init_spec("wrong.npz"),
         ("model.init.from:", "layer1.weight", "(4, 5)", "(4, 4)")),
    Case("init-from-object-array", _init_spec("objects.npz"),
         ("model.init.from:", "objects.npz")),
]


def _write_checkpoints(folder: Path) -> None:
    np.savez(folder / "wrong.npz", **{
        "layer1.weight": np.zeros((4, 5), np.float32), "layer1.bias": np.zeros(5, np.float32),
        "layer2.weight": np.zeros((5, 3), np.float32), "layer2.bias": np.zeros(3, np.float32),
    })
    np.savez(folder / "objects.npz", **{"layer1.weight": np.array([{"x": 1}], dtype=object)})


def _setup(case: Case, tmp_path: Path) -> tuple[Path, Path]:
    spec = tmp_path / "spec.yaml"
    if case.spec is not None:
        spec.write_text(case.spec, encoding="utf-8")
    for name, text in case.files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    _write_checkpoints(tmp_path)
    return spec, tmp_path / "runs"


def _assert_no_run(runs: Path) -> None:
    assert not runs.exists() or not any(runs.iterdir()), f"half-written run left: {list(runs.iterdir())}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_to_train(case: Case, tmp_path: Path) -> None:
    spec, runs = _setup(case, tmp_path)
    out = nnctl("train", spec, "--runs-dir", runs)
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output
    assert out.stdout == ""
    errors = out.error_lines()
    assert len(errors) == case.n_errors, out.stderr
    for expected in case.expected:
        assert expected in out.stderr, f"{expected!r} not in:\n{out.stderr}"
    assert all(line.startswith(("error: ", "hint: ", "warning: ")) for line in out.stderr.splitlines()), out.stderr
    _assert_no_run(runs)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_to_train_json(case: Case, tmp_path: Path) -> None:
    spec, runs = _setup(case, tmp_path)
    out = nnctl("train", spec, "--runs-dir", runs, "--json")
    assert out.exit_code == 2, out.output
    error = out.json()["error"]
    assert set(error) == {"code", "message", "hint"}
    assert error["code"] in ("spec_error", "data_error")
    for expected in case.expected:
        assert expected in error["message"]
    _assert_no_run(runs)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.id) for c in CASES],
)
def test_bad_input_to_validate(case: Case, tmp_path: Path) -> None:
    spec, _ = _setup(case, tmp_path)
    out = nnctl("validate", spec)
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output
    for expected in case.expected:
        assert expected in out.stderr


def test_bad_spec_in_a_subprocess(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("activation: tanh", "activation: relux"), encoding="utf-8")
    out = nnctl_subprocess("train", spec, "--runs-dir", tmp_path / "runs", "--json")
    assert out.exit_code == 2
    assert "Traceback" not in out.output
    assert "did you mean 'relu'?" in out.json()["error"]["message"]
    _assert_no_run(tmp_path / "runs")


def test_bad_set_override(tmp_path: Path) -> None:
    out = nnctl("train", CONFIGS / "iris.yaml", "--set", "model.layers[3].units=4", "--runs-dir", tmp_path / "runs")
    assert out.exit_code == 2
    assert "model.layers has 1 item(s), so there is no [3]" in out.stderr
    assert "Traceback" not in out.output
    _assert_no_run(tmp_path / "runs")


# ---------------------------------------------------------------- evaluate: run references and bars
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    runs = tmp_path_factory.mktemp("two-runs")
    ids = []
    for _ in range(2):
        out = nnctl("train", CONFIGS / "iris.yaml", "--set", "training.epochs=2", "--runs-dir", runs, "--quiet")
        assert out.exit_code == 0, out.output
        ids.append(out.stdout.strip())
    return runs, ids


def _refs(runs: Path, ids: list[str]) -> dict[str, str]:
    return {
        "unknown-id": "20000101-000000-nothing-0000",
        "ambiguous-prefix": os.path.commonprefix(ids),
        "dot-dot": "../etc",
        "dot-dot-inside": f"{ids[0]}/../{ids[1]}",
        "absolute-path": "/etc",
        "absolute-run-path": str(runs / ids[0]),
        "slash": f"{ids[0]}/best.npz",
    }


@pytest.mark.parametrize(
    "ref", ["unknown-id", "ambiguous-prefix", "dot-dot", "dot-dot-inside", "absolute-path", "absolute-run-path", "slash"]
)
def test_evaluate_bad_reference(two_runs, ref: str) -> None:
    runs, ids = two_runs
    value = _refs(runs, ids)[ref]
    assert value
    out = nnctl("evaluate", value, "--runs-dir", runs)
    assert out.exit_code == 2, out.output
    assert out.stdout == ""
    assert "Traceback" not in out.output
    assert len(out.error_lines()) == 1, out.stderr
    if ref == "ambiguous-prefix":
        assert "ambiguous" in out.stderr and ids[0] in out.stderr and ids[1] in out.stderr


def test_evaluate_bad_reference_json(two_runs) -> None:
    runs, _ = two_runs
    out = nnctl("evaluate", "../etc", "--runs-dir", runs, "--json")
    assert out.exit_code == 2
    assert out.json()["error"]["code"] == "run_not_found"


def test_evaluate_latest_in_an_empty_runs_dir(tmp_path: Path) -> None:
    out = nnctl("evaluate", "latest", "--runs-dir", tmp_path)
    assert out.exit_code == 2
    assert len(out.error_lines()) == 1 and "no completed run" in out.stderr


def test_fail_under_missed_exits_1(iris_run: TrainedRun) -> None:
    out = nnctl("evaluate", iris_run.run_id, "--runs-dir", iris_run.runs_dir, "--fail-under", "accuracy=1.01")
    assert out.exit_code == 1, out.output
    assert "fail: accuracy" in out.stderr and "below 1.01" in out.stderr
    assert "accuracy=" in out.stdout  # the metrics are still shown


def test_fail_under_missed_json(iris_run: TrainedRun) -> None:
    out = nnctl("evaluate", iris_run.run_id, "--runs-dir", iris_run.runs_dir,
                "--fail-under", "accuracy=1.01", "--json")
    assert out.exit_code == 1
    document = out.json()
    assert len(document["failed"]) == 1 and "accuracy" in document["failed"][0]


def test_fail_over_missed_exits_1(iris_run: TrainedRun) -> None:
    out = nnctl("evaluate", iris_run.run_id, "--runs-dir", iris_run.runs_dir, "--fail-over", "loss=0")
    assert out.exit_code == 1
    assert "fail: loss" in out.stderr


def test_bars_met_exit_0(iris_run: TrainedRun) -> None:
    out = nnctl("evaluate", iris_run.run_id, "--runs-dir", iris_run.runs_dir,
                "--fail-under", "accuracy=0", "--fail-over", "loss=1000")
    assert out.exit_code == 0, out.output


@pytest.mark.parametrize(
    ("flag", "bar", "expected"),
    [
        ("--fail-under", "bogus=1", "no such metric"),
        ("--fail-over", "rmse=60", "no such metric"),  # a classification run has no rmse
        ("--fail-under", "accuracy", "expected METRIC=NUMBER"),
        ("--fail-under", "accuracy=high", "expected METRIC=NUMBER"),
    ],
)
def test_bad_bar_exits_2(iris_run: TrainedRun, flag: str, bar: str, expected: str) -> None:
    out = nnctl("evaluate", iris_run.run_id, "--runs-dir", iris_run.runs_dir, flag, bar)
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output
    assert len(out.error_lines()) == 1 and expected in out.stderr


def test_evaluate_missing_data_file(iris_run: TrainedRun, tmp_path: Path) -> None:
    out = nnctl("evaluate", iris_run.run_id, "--runs-dir", iris_run.runs_dir, "--data", tmp_path / "nothere.csv")
    assert out.exit_code == 2
    assert len(out.error_lines()) == 1 and "file not found" in out.stderr


def test_evaluate_data_with_other_columns(iris_run: TrainedRun) -> None:
    out = nnctl("evaluate", iris_run.run_id, "--runs-dir", iris_run.runs_dir,
                "--data", CONFIGS.parent / "data" / "diabetes.csv")
    assert out.exit_code == 2
    assert "Traceback" not in out.output
    assert len(out.error_lines()) == 1 and "sepal_length" in out.stderr


# ---------------------------------------------------------------- damaged checkpoints
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


def test_init_from_a_truncated_checkpoint(tmp_path: Path) -> None:
    _write_checkpoints(tmp_path)
    _truncate(tmp_path / "wrong.npz")
    spec = tmp_path / "spec.yaml"
    spec.write_text(_init_spec("wrong.npz"), encoding="utf-8")
    out = nnctl("train", spec, "--runs-dir", tmp_path / "runs")
    assert "Traceback" not in out.output
    assert out.exit_code == 2, out.output
    assert "model.init.from:" in out.stderr
    _assert_no_run(tmp_path / "runs")


def test_evaluate_a_run_with_a_truncated_checkpoint(iris_run: TrainedRun, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "runs" / iris_run.run_id
    shutil.copytree(iris_run.path, copy)
    _truncate(copy / "best.npz")
    out = nnctl("evaluate", iris_run.run_id, "--runs-dir", tmp_path / "runs")
    assert "Traceback" not in out.output
    assert out.exit_code == 2, out.output
    assert len(out.error_lines()) == 1 and "best.npz" in out.stderr


def test_evaluate_a_run_with_a_missing_checkpoint(iris_run: TrainedRun, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "runs" / iris_run.run_id
    shutil.copytree(iris_run.path, copy)
    (copy / "best.npz").unlink()
    out = nnctl("evaluate", iris_run.run_id, "--runs-dir", tmp_path / "runs")
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output
    assert len(out.error_lines()) == 1 and "best.npz" in out.stderr
