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


VANISHING_EPOCHS = 8


@pytest.fixture(scope="session")
def vanishing_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TrainedRun]:
    """The shipped vanishing_sigmoid and vanishing_relu configs, shortened, each trained once."""
    runs_dir = tmp_path_factory.mktemp("vanishing-runs")
    trained = {}
    for name in ("vanishing_sigmoid", "vanishing_relu"):
        out = nnctl("train", CONFIGS / f"{name}.yaml", "--set", f"training.epochs={VANISHING_EPOCHS}",
                    "--runs-dir", runs_dir, "--json")
        assert out.exit_code == 0, out.output
        trained[name] = TrainedRun(runs_dir, {**out.json(), "stderr": out.stderr})
    return trained
