"""The benchmark scripts still run against the package as it is: each times one small
case end to end (their workers import nnctl's modules only when they run)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.cli._helpers import REPO

BENCH = REPO / "benchmarks"


def _run(*args: str) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_user_shapes_times_a_whole_fit():
    out = json.loads(_run(str(BENCH / "user_shapes.py"), "--worker", "default", "--cases", "small").splitlines()[-1])
    assert out["rows_per_second"] > 0
    assert out["step"] == "numpy/1t"  # a small network: the plain step on one thread, by rule


def test_user_shapes_times_a_shipped_config():
    out = _run(str(BENCH / "user_shapes.py"), "--cases", "", "--configs", "configs/xor.yaml",
               "--settings", "default", "--repeats", "1")
    (row,) = [line for line in out.splitlines() if line.startswith("| configs/xor.yaml")]
    assert "numpy/1t" in row


@pytest.mark.parametrize("script", ["train_speed.py", "crossval_speed.py", "read_speed.py"])
def test_benchmark_explains_itself(script):
    assert "usage:" in _run(str(BENCH / script), "--help")


def test_train_speed_times_nnctl():
    out = _run(str(BENCH / "train_speed.py"), "--quick", "--libs", "nnctl", "--repeats", "1", "--seconds", "0.2",
               "--batches", "", "--small-batches", "32")
    assert "nnctl" in out and "samples/s" in out
