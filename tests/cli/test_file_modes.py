"""Figures and prediction files follow the umask, as other tools' files do; the files
inside a run directory stay private to the user."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli._helpers import REPO, TrainedRun


def _nnctl_with_umask(umask: int, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nnctl", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=120, preexec_fn=lambda: os.umask(umask))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_predictions_follow_the_umask(iris_run: TrainedRun, tmp_path: Path, umask: int, expected: int) -> None:
    out = tmp_path / "predictions.csv"
    proc = _nnctl_with_umask(umask, "predict", iris_run.run_id, "--data", REPO / "data" / "iris.csv",
                             "--out", out, "--runs-dir", iris_run.runs_dir)
    assert proc.returncode == 0, proc.stderr
    assert _mode(out) == expected


def test_figures_follow_the_umask(iris_run: TrainedRun, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    curves, confusion = tmp_path / "curves.png", tmp_path / "confusion.png"
    for args in (("plot", iris_run.run_id, "--out", curves), ("evaluate", iris_run.run_id, "--out", confusion)):
        proc = _nnctl_with_umask(0o022, *args, "--runs-dir", iris_run.runs_dir)
        assert proc.returncode == 0, proc.stderr
    assert _mode(curves) == _mode(confusion) == 0o644


def test_run_directory_files_stay_private(iris_run: TrainedRun) -> None:
    for name in ("summary.json", "spec.yaml", "best.npz", "last.npz"):
        assert _mode(iris_run.path / name) == 0o600, name
