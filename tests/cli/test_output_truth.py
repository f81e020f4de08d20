"""Output that tells the truth: the progress shows the last epoch's metrics once, a resume
is announced before it trains, a cross-validation's time counts its folds and its
creation time is its id's, grid fold tables are named, the runs table cuts no cell."""

from __future__ import annotations

import io
import json
import re
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from nnctl.cli.progress import PlainProgress, RichProgress
from tests.cli._helpers import CONFIGS, nnctl_subprocess


def _drive(callback, losses: list[float], epochs: int | None = None) -> None:
    """Scripted epochs: no training, the logs a fit would give."""
    state = SimpleNamespace(epochs=epochs or len(losses), epoch=0, stop_reason=None)
    callback.on_train_begin(state)
    for epoch, loss in enumerate(losses, start=1):
        state.epoch = epoch
        callback.on_epoch_end(state, {"epoch": float(epoch), "train_loss": loss, "train_accuracy": 1 - loss})
    callback.on_train_end(state)


@pytest.mark.parametrize("every", [0.0, 1e9])
def test_plain_progress_prints_each_epoch_once_and_the_last(capsys, every: float) -> None:
    _drive(PlainProgress(every_seconds=every), [0.9, 0.5, 0.25, 0.125])
    lines = capsys.readouterr().err.splitlines()
    epochs = [int(re.match(r"epoch (\d+)/4 ", line).group(1)) for line in lines]
    assert len(epochs) == len(set(epochs))  # no line twice
    assert epochs[0] == 1 and epochs[-1] == 4
    assert lines[-1] == "epoch 4/4 loss=0.125 acc=0.875"


def test_plain_progress_of_a_resumed_training_starts_with_its_first_epoch(capsys) -> None:
    progress = PlainProgress(every_seconds=1e9)
    state = SimpleNamespace(epochs=20, epoch=0, stop_reason=None)
    progress.on_train_begin(state)
    for epoch in (11, 12, 13):
        state.epoch = epoch
        progress.on_epoch_end(state, {"train_loss": 0.1 * epoch})
    progress.on_train_end(state)
    assert [line.split()[1] for line in capsys.readouterr().err.splitlines()] == ["11/20", "13/20"]


def test_rich_progress_ends_on_the_last_epochs_metrics() -> None:
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, color_system=None)
    # stopped early at epoch 5 of 10, far faster than the 0.1 s refresh
    _drive(RichProgress(console), [0.9, 0.5, 0.25, 0.125, 0.0625], epochs=10)
    final = buffer.getvalue().replace("\r", "\n").splitlines()
    shown = [line for line in final if "epoch" in line][-1]
    assert "5/10" in shown and "loss=0.0625" in shown and "loss=0.9" not in shown


def test_resume_is_announced_before_training(tmp_path: Path) -> None:
    from nnctl.app.runs import RunStore
    from nnctl.app.spec import load_spec
    from nnctl.app.training import train_from_spec
    from nnctl.engine.callbacks import Callback

    class StopAfterThree(Callback):
        def on_epoch_end(self, state, logs):
            state.stop_requested = state.epoch >= 3

    spec = tmp_path / "s.yaml"
    spec.write_text("data: {source: builtin:iris}\nmodel: {layers: [{units: 4}]}\nloss: cross_entropy\n"
                    "training: {epochs: 8}\ncheckpoint: {every_seconds: 0}\n")
    result = train_from_spec(load_spec(spec), RunStore(tmp_path / "runs"), callbacks=[StopAfterThree()],
                             base_dirs=[tmp_path])
    assert result.status == "interrupted"
    out = nnctl_subprocess("resume", result.run_id, "--runs-dir", tmp_path / "runs")
    assert out.exit_code == 0, out.stderr
    lines = out.stderr.splitlines()
    announce = [i for i, line in enumerate(lines) if line.startswith(f"resuming run {result.run_id} from epoch 3")]
    first_epoch = [i for i, line in enumerate(lines) if line.startswith("epoch ")]
    assert announce and first_epoch and announce[0] < first_epoch[0], lines
    assert not any(line.startswith("resumed run") for line in lines)


@pytest.fixture(scope="module")
def grid_crossval(tmp_path_factory) -> tuple[Path, dict, str]:
    runs = tmp_path_factory.mktemp("cv-runs")
    started = time.time()
    out = nnctl_subprocess("crossval", CONFIGS / "iris.yaml", "-k", "3", "--grid", "model.layers[0].units=2,4",
                           "--set", "training.epochs=15", "--workers", "2", "--runs-dir", runs, timeout=300)
    assert out.exit_code == 0, out.stderr
    [run] = [p for p in runs.iterdir() if p.is_dir()]
    return run, {"elapsed": time.time() - started}, out.stdout


def test_crossval_time_counts_the_folds(grid_crossval) -> None:
    run, timing, _ = grid_crossval
    cv = json.loads((run / "crossval" / "cv.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["seconds"]["total"] >= cv["seconds"]["folds"] + cv["seconds"]["checks"]
    assert summary["seconds"]["total"] <= timing["elapsed"]
    listed = nnctl_subprocess("runs", "--runs-dir", run.parent, "--json").json()["runs"]
    assert listed[0]["seconds"] == pytest.approx(summary["seconds"]["total"])


def _id_stamp(run: Path) -> str:
    created = json.loads((run / "summary.json").read_text())["created"]
    return datetime.strptime(created, "%Y-%m-%dT%H:%M:%S%z").strftime("%Y%m%d-%H%M%S")


def test_crossval_created_is_the_ids_time(grid_crossval) -> None:
    run, _, _ = grid_crossval
    assert run.name.startswith(_id_stamp(run))


def test_a_run_trained_after_its_creation_keeps_the_ids_time(tmp_path: Path) -> None:
    """As crossval does: the run directory is made first, the final model trained later."""
    from nnctl.app.runs import RunStore
    from nnctl.app.spec import load_spec
    from nnctl.app.training import train_from_spec

    spec = tmp_path / "s.yaml"
    spec.write_text("data: {source: builtin:xor, task: classification, split: {validation: 0, test: 0}}\n"
                    "model: {layers: [{units: 2}]}\ntraining: {epochs: 2}\n")
    store = RunStore(tmp_path / "runs")
    run = store.create("late")
    time.sleep(1.1)
    train_from_spec(load_spec(spec), store, run=run, base_dirs=[tmp_path])
    assert run.path.name.startswith(_id_stamp(run.path))


def test_plain_grid_output_names_the_combination_of_the_fold_table(grid_crossval) -> None:
    _, _, stdout = grid_crossval
    lines = stdout.splitlines()
    first_fold = next(i for i, line in enumerate(lines) if line.startswith("fold 1:"))
    assert re.fullmatch(r"folds \(model\.layers\[0\]\.units=[24]\):", lines[first_fold - 1])
    winner = [line for line in lines if line.startswith("combination") and line.endswith("*winner")]
    assert len(winner) == 1 and lines[first_fold - 1][7:-2] in winner[0]


def test_runs_table_cuts_no_cell(tmp_path: Path) -> None:
    from rich.console import Console

    from nnctl.app.run_index import RunInfo
    from nnctl.cli.runs import _rich_table

    infos = [RunInfo(f"20261204-1639{i:02d}-a-rather-long-name-{i:04x}", "a-rather-long-name", "completed",
                     stop_reason="early_stopping", epochs=300, best_epoch=243, best_metric={"val_loss": 0.04186},
                     test={"accuracy": 0.9667}, seconds=13.2, created="2026-12-04T16:39:00+0000")
             for i in range(3)]
    for width in (80, 100, 160):
        buffer = io.StringIO()
        Console(file=buffer, width=width, color_system=None).print(_rich_table(infos, width))
        text = buffer.getvalue()
        assert "…" not in text
        assert all(len(line) <= width for line in text.splitlines())
        assert "0.0419" in text and "val_loss" in text and infos[0].run_id in text
    assert "2026-12-04 16:39" in text and "early_stopping" in text  # the widest shows everything
