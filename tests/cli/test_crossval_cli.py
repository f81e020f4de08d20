"""nnctl crossval and nnctl train --restarts end to end: bad input, --json, workers,
interruption."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.cli._helpers import CONFIGS, nnctl, read_metrics

IRIS = CONFIGS / "iris.yaml"
SHORT = ("--set", "training.epochs=10")


def _comparable(doc: dict) -> dict:
    """cv.json without what names the run (its id and folder)."""
    doc = json.loads(json.dumps(doc))
    doc.pop("run_id")
    doc.pop("seconds")  # wall-clock times differ between runs
    doc["final"].pop("run_id")
    doc["final"].pop("run_dir")
    return doc


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--folds", "1"), "--folds 1: must be at least 2"),
        (("--folds", "41"), "--folds 41: above the 40 non-test rows of the smallest class"),
        (("--grid", "model.layers[0].unit=2,4"), "model.layers[0].unit: unknown key"),
        (("--grid", "model.layers[1].units=2,4"), "model.layers has 1 item(s), so there is no [1]"),
        (("--grid", "model.layers[0].units=2,many"), "--grid model.layers[0].units=many: model.layers[0].units: expected an integer, got 'many'"),
        (("--grid", "model.output=softmax,linear"), "--grid model.output=linear: model.output: cross_entropy loss needs softmax"),
        (("--grid", "seed=1,2"), "--grid seed: seed cannot be searched"),
        (("--grid", "model.layers[0].units"), "expected KEY=V1,V2"),
        (("--workers", "0"), "--workers 0: must be at least 1"),
        (("--executor", "dask"), "--executor dask: needs --scheduler"),
        (("--executor", "slurm"), "--executor 'slurm': expected local or dask"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_run(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    out = nnctl("crossval", IRIS, *SHORT, *args, "--runs-dir", tmp_path / "runs")
    assert out.exit_code == 2, out.output
    errors = out.error_lines()
    assert len(errors) == 1 and expected in errors[0], out.stderr
    assert "Traceback" not in out.output
    assert not (tmp_path / "runs").exists()


def test_unreachable_scheduler_fails_fast(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    started = time.monotonic()
    out = nnctl("crossval", IRIS, *SHORT, "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9",
                "--runs-dir", tmp_path / "runs", "--json")
    assert time.monotonic() - started < 10
    assert out.exit_code == 2
    (line,) = out.error_lines()
    assert "--scheduler tcp://127.0.0.1:9: cannot reach the Dask scheduler" in line
    assert out.json()["error"]["code"] == "usage_error"
    assert not (tmp_path / "runs").exists()


def test_restarts_bad_input(tmp_path: Path) -> None:
    out = nnctl("train", CONFIGS / "diabetes.yaml", "--restarts", "3", "--runs-dir", tmp_path)
    assert out.exit_code == 2 and "restarts.combine: vote needs classes" in out.error_lines()[0]
    out = nnctl("train", IRIS, "--restarts", "3", "--combine", "median", "--runs-dir", tmp_path)
    assert out.exit_code == 2 and out.error_lines() == ["error: --combine 'median': expected one of vote, mean, best"]
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------- output, workers
@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> dict:
    runs = tmp_path_factory.mktemp("crossval-w1")
    out = nnctl("crossval", IRIS, *SHORT, "--folds", "4", "--grid", "model.layers[0].units=2,6",
                "--workers", "1", "--runs-dir", runs, "--json")
    assert out.exit_code == 0, out.output
    return {"runs": runs, "doc": out.json(), "stdout": out.stdout}


def test_json_is_the_cv_summary(one_worker: dict) -> None:
    doc = one_worker["doc"]
    run = one_worker["runs"] / doc["run_id"]
    assert json.loads((run / "crossval" / "cv.json").read_text()) == doc
    assert one_worker["stdout"].count("\n{") == 0  # one JSON document
    assert len(doc["combinations"]) == 2 and sum(c["winner"] for c in doc["combinations"]) == 1
    for c in doc["combinations"]:
        assert len(c["folds"]) == 4
        for f in range(1, 5):
            header, rows = read_metrics(run / c["dir"] / f"fold-{f:02d}" / "metrics.csv")
            assert header[:6] == ["epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]
            assert len(rows) == 10
    summary = json.loads((run / "summary.json").read_text())
    assert summary["crossval"]["winner"] == doc["winner"]
    evaluated = nnctl("evaluate", doc["run_id"], "--runs-dir", one_worker["runs"], "--json")
    assert evaluated.exit_code == 0
    assert evaluated.json()["metrics"]["accuracy"] == doc["final"]["metrics"]["test"]["accuracy"]


def test_two_workers_give_the_numbers_of_one(one_worker: dict, tmp_path: Path) -> None:
    out = nnctl("crossval", IRIS, *SHORT, "--folds", "4", "--grid", "model.layers[0].units=2,6",
                "--workers", "2", "--runs-dir", tmp_path, "--json")
    assert out.exit_code == 0, out.output
    assert _comparable(out.json()) == _comparable(one_worker["doc"])


def test_restarts_with_two_workers_equal_one(tmp_path: Path) -> None:
    docs = []
    for workers in ("1", "2"):
        out = nnctl("train", IRIS, *SHORT, "--restarts", "3", "--workers", workers,
                    "--runs-dir", tmp_path / workers, "--json")
        assert out.exit_code == 0, out.output
        docs.append(out.json())
    assert docs[0]["members"] == docs[1]["members"] and docs[0]["metrics"] == docs[1]["metrics"]
    assert docs[0]["combine"] == "vote" and len(docs[0]["members"]) == 3


def test_plain_output_reports_folds_choice_and_test(tmp_path: Path) -> None:
    out = nnctl("crossval", IRIS, *SHORT, "--folds", "3", "--workers", "1", "--runs-dir", tmp_path)
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert sum(line.startswith("fold ") for line in lines) == 3
    assert any(line.startswith("chosen epochs: ") for line in lines)
    assert any(line.startswith("test: ") for line in lines)
    assert "folds 3/3" in out.stderr  # progress goes to stderr


# ---------------------------------------------------------------- interruption
def test_interrupt_exits_130_and_keeps_the_finished_folds(tmp_path: Path, monkeypatch) -> None:
    import nnctl.engine.trainer as trainer

    real = trainer._run_epoch
    calls = {"n": 0}

    def interrupted_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 25:  # during the third fold
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "_run_epoch", interrupted_epoch)
    out = nnctl("crossval", IRIS, *SHORT, "--folds", "4", "--workers", "1", "--runs-dir", tmp_path)
    assert out.exit_code == 130, out.output
    assert "Traceback" not in out.output
    (run,) = tmp_path.iterdir()
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    cv = json.loads((run / "crossval" / "cv.json").read_text())
    assert cv["status"] == "interrupted" and [f["fold"] for f in cv["combinations"][0]["folds"]] == [1, 2]
    assert sorted(p.name for p in (run / "crossval").iterdir()) == ["cv.json", "fold-01", "fold-02"]
    assert not (run / "best.npz").exists()


def test_ctrl_c_stops_the_worker_processes_and_exits_130(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.cli._helpers import REPO

    proc = subprocess.Popen(
        [sys.executable, "-m", "nnctl", "crossval", "configs/iris.yaml", "--set", "training.epochs=2000",
         "--folds", "10", "--workers", "2", "--runs-dir", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        for line in proc.stderr:  # wait for the first finished fold
            if line.startswith("folds 1/10"):
                break
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
        started = time.monotonic()
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert time.monotonic() - started < 5  # running folds are cancelled, not waited for
    (run,) = tmp_path.iterdir()
    cv = json.loads((run / "crossval" / "cv.json").read_text())
    finished = [f["fold"] for f in cv["combinations"][0]["folds"]]
    assert cv["status"] == "interrupted" and 1 <= len(finished) < 10
    assert all((run / "crossval" / f"fold-{f:02d}" / "metrics.csv").is_file() for f in finished)


def test_every_fold_diverging_is_exit_1_with_the_run_marked_failed(tmp_path: Path) -> None:
    from tests.cli._helpers import nnctl_subprocess

    diverge = ("--set", "optimizer.name=sgd", "--set", "optimizer.lr=1000", "--set", "model.layers[0].activation=relu",
               "--set", "regularization.l2=0", "--set", "training.epochs=4")
    out = nnctl_subprocess("crossval", "configs/diabetes.yaml", *diverge, "--folds", "2", "--workers", "1",
                           "--runs-dir", tmp_path)
    assert out.exit_code == 1
    assert out.error_lines() == ["error: every fold diverged (val_loss never finite); lower the learning rate"]
    assert "Warning" not in out.stderr and "Traceback" not in out.stderr
    (run,) = tmp_path.iterdir()
    assert json.loads((run / "summary.json").read_text())["status"] == "failed"
    assert json.loads((run / "crossval" / "cv.json").read_text())["status"] == "failed"
