"""nnctl plot (learning curves, per-layer gradient norms) and nnctl evaluate --out: terminal
charts, PNG files of the expected size, a clear message without matplotlib."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

from nnctl.app.figures import DPI, FIGSIZE
from tests.cli._helpers import TrainedRun, nnctl

PNG_SIZE = (int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI))


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_learning_curves_in_the_terminal(iris_run: TrainedRun) -> None:
    out = nnctl("plot", iris_run.run_id, "--runs-dir", iris_run.runs_dir, "--width", "40", "--height", "8")
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0] == "loss" and "accuracy" in lines
    assert sum("* training  o validation" in line for line in lines) == 2
    chart = lines[1:9]
    assert all(len(line.split("│", 1)[1]) == 40 for line in chart)
    assert any("*" in line for line in chart) and any("o" in line for line in chart)


def test_curves_as_json(iris_run: TrainedRun) -> None:
    out = nnctl("plot", iris_run.run_id, "--runs-dir", iris_run.runs_dir, "--json")
    assert out.exit_code == 0, out.output
    (run,) = out.json()["runs"]
    epochs = iris_run.result["epochs"]
    assert run["epochs"] == list(range(1, epochs + 1))
    assert {"train_loss", "val_loss", "train_accuracy", "val_accuracy", "grad_norm.layer1"} <= set(run["series"])
    assert all(len(v) == epochs for v in run["series"].values())


def test_gradient_chart_shows_the_vanishing_layers_below(vanishing_runs: dict[str, TrainedRun]) -> None:
    run = vanishing_runs["vanishing_sigmoid"]
    out = nnctl("plot", run.run_id, "--gradients", "--runs-dir", run.runs_dir)
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert "(log scale)" in lines[0]
    warnings = [line for line in out.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "vanishing gradients" in warnings[0] and run.run_id in warnings[0]
    rows = [line.split("│", 1)[1] for line in lines if "│" in line]
    lowest = max(i for i, r in enumerate(rows) if "1" in r)
    highest = min(i for i, r in enumerate(rows) if "9" in r)
    assert highest < lowest  # layer 9 is drawn above layer 1
    (last,) = [line for line in lines if line.startswith("last epoch: layer1 / layer9 = ")]
    ratio = float(last.rsplit("=", 1)[1])
    assert ratio < 1e-3


def test_two_runs_side_by_side(vanishing_runs: dict[str, TrainedRun]) -> None:
    runs = list(vanishing_runs.values())
    out = nnctl("plot", runs[0].run_id, runs[1].run_id, "--runs-dir", runs[0].runs_dir)
    assert out.exit_code == 0, out.output
    assert out.stderr == ""  # learning curves: no gradient diagnosis
    relu = vanishing_runs["vanishing_relu"]
    assert nnctl("plot", relu.run_id, "--gradients", "--runs-dir", relu.runs_dir).stderr == ""
    assert all(f"{r.run_id} training" in out.stdout for r in runs)


@pytest.mark.parametrize("extra", [(), ("--gradients",)])
def test_png_of_the_expected_size(vanishing_runs: dict[str, TrainedRun], tmp_path: Path, extra) -> None:
    pytest.importorskip("matplotlib")
    run = vanishing_runs["vanishing_relu"]
    target = tmp_path / "figure.png"
    out = nnctl("plot", run.run_id, *extra, "--out", target, "--runs-dir", run.runs_dir)
    assert out.exit_code == 0, out.output
    assert png_size(target) == PNG_SIZE
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]


def test_confusion_matrix_png(iris_run: TrainedRun, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "confusion.png"
    out = nnctl("evaluate", iris_run.run_id, "--out", target, "--runs-dir", iris_run.runs_dir)
    assert out.exit_code == 0, out.output
    assert "confusion matrix" in out.stdout
    assert png_size(target) == PNG_SIZE


def test_confusion_png_refused_for_regression(diabetes_run: TrainedRun, tmp_path: Path) -> None:
    out = nnctl("evaluate", diabetes_run.run_id, "--out", tmp_path / "c.png", "--runs-dir", diabetes_run.runs_dir)
    assert out.exit_code == 2 and "regression" in out.error_lines()[0]


def test_without_matplotlib_a_clear_message(iris_run: TrainedRun, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    out = nnctl("plot", iris_run.run_id, "--out", tmp_path / "c.png", "--runs-dir", iris_run.runs_dir)
    assert out.exit_code == 2
    assert "matplotlib" in out.error_lines()[0] and "pip install 'nnctl[plot]'" in out.stderr
    assert "Traceback" not in out.output and not (tmp_path / "c.png").exists()


@pytest.mark.parametrize("args, needle", [(("--out", "x.jpg"), "png"), (("--out", "no/such/dir/x.png"), "does not exist")])
def test_bad_out(iris_run: TrainedRun, args, needle) -> None:
    pytest.importorskip("matplotlib")
    out = nnctl("plot", iris_run.run_id, *args, "--runs-dir", iris_run.runs_dir)
    assert out.exit_code == 2 and needle in out.error_lines()[0]


def test_unknown_run(iris_run: TrainedRun) -> None:
    out = nnctl("plot", "nosuch", "--runs-dir", iris_run.runs_dir)
    assert out.exit_code == 2 and len(out.error_lines()) == 1


def test_help_imports_neither_matplotlib_nor_the_engine() -> None:
    """`nnctl --help` stays fast: the plotting and numeric modules load only in the commands."""
    import subprocess

    code = ("import sys; from nnctl.cli.main import app; "
            "print(sorted(m for m in ('matplotlib', 'numpy', 'yaml', 'nnctl.app') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
