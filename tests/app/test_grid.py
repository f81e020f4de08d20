"""Tests for nnctl.app.grid: --grid options, the spec's search.grid, keys that cannot be searched."""

from __future__ import annotations

import pytest

from nnctl.app.errors import UsageError
from nnctl.app.grid import merge_grid, parse_grid_option


def test_grid_option_reads_yaml_values() -> None:
    assert parse_grid_option("model.layers[0].units=2,4,8") == ("model.layers[0].units", [2, 4, 8])
    assert parse_grid_option("optimizer={name: sgd, lr: 0.1},{name: adam}") == (
        "optimizer", [{"name": "sgd", "lr": 0.1}, {"name": "adam"}])


def test_stopping_keys_cannot_be_searched() -> None:
    with pytest.raises(UsageError, match="stopping.val_rising cannot be searched"):
        merge_grid({}, ["stopping.val_rising=2,4"])
    assert merge_grid({"model.layers[0].units": [2]}, ["model.layers[0].units=4,8"]) == {
        "model.layers[0].units": ("--grid model.layers[0].units", [4, 8])}
