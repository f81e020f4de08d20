"""Fixtures for the CLI tests: short runs trained once per session and reused read-only."""

from __future__ import annotations

import pytest

from tests.cli._helpers import CONFIGS, IRIS_EPOCHS, TrainedRun, nnctl


@pytest.fixture(scope="session")
def iris_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """One short iris run in its own runs directory; tests must not add runs to it."""
    runs_dir = tmp_path_factory.mktemp("iris-runs")
    out = nnctl("train", CONFIGS / "iris.yaml", "--set", f"training.epochs={IRIS_EPOCHS}",
                "--runs-dir", runs_dir, "--json")
    assert out.exit_code == 0, out.output
    return TrainedRun(runs_dir, out.json())


@pytest.fixture(scope="session")
def diabetes_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """One diabetes (regression) run with the shipped config, in its own runs directory."""
    runs_dir = tmp_path_factory.mktemp("diabetes-runs")
    out = nnctl("train", CONFIGS / "diabetes.yaml", "--runs-dir", runs_dir, "--json")
    assert out.exit_code == 0, out.output
    return TrainedRun(runs_dir, out.json())
