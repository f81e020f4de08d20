"""Hints that help: an unknown run points to ``nnctl runs``; a training that ends at
chance level is diagnosed, with restarts or another seed as the remedy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli._helpers import CONFIGS, TrainedRun, nnctl_subprocess


@pytest.mark.parametrize("command", [("evaluate",), ("runs", "show"), ("resume",)])
def test_unknown_run_hint_points_to_nnctl_runs(iris_run: TrainedRun, command) -> None:
    out = nnctl_subprocess(*command, "nosuch", "--runs-dir", iris_run.runs_dir, "--json")
    assert out.exit_code == 2
    hint = f"list the runs with: nnctl runs --runs-dir {iris_run.runs_dir}"
    assert out.stderr.splitlines()[-1] == f"hint: {hint}"
    assert out.json()["error"]["hint"] == hint
    assert "ls " not in out.stderr


def test_xor_stuck_at_chance_level_is_diagnosed(tmp_path: Path) -> None:
    """The tour's seed 3: the 2-2-1 network ends in a local minimum at accuracy 0.5."""
    out = nnctl_subprocess("train", CONFIGS / "xor.yaml", "--set", "seed=3", "--runs-dir", tmp_path, "--json",
                           timeout=120)
    assert out.exit_code == 0, out.stderr
    result = out.json()
    assert result["metrics"]["train"]["accuracy"] == 0.5
    [stuck] = [d for d in result["diagnosis"] if d["kind"] == "stuck"]
    assert "chance level" in stuck["message"] and "--restarts" in stuck["message"] and "seed" in stuck["message"]
    assert any(line.startswith("warning: ") and "chance level" in line for line in out.stderr.splitlines())
    summary = json.loads((tmp_path / result["run_id"] / "summary.json").read_text())
    assert [d["kind"] for d in summary["diagnosis"]] == ["stuck"]


def test_xor_that_learns_is_not_diagnosed(tmp_path: Path) -> None:
    out = nnctl_subprocess("train", CONFIGS / "xor.yaml", "--runs-dir", tmp_path, "--json", timeout=120)
    assert out.exit_code == 0, out.stderr
    assert out.json()["metrics"]["train"]["accuracy"] == 1.0
    assert out.json()["diagnosis"] == [] and "chance level" not in out.stderr
