"""Tests for nnctl.app.values: finite numbers for JSON, documents as dotted keys."""

from __future__ import annotations

import math

from nnctl.app.values import finite_or_none, flatten


def test_only_finite_numbers_survive() -> None:
    assert finite_or_none(0.25) == 0.25 and isinstance(finite_or_none(1), float)
    assert finite_or_none(math.nan) is None and finite_or_none(-math.inf) is None and finite_or_none(None) is None


def test_lists_of_scalars_are_one_value_only_when_asked() -> None:
    doc = {"model": {"layers": [{"units": 4}], "sizes": [1, 2]}, "search": {}}
    assert flatten(doc) == {"model.layers[0].units": 4, "model.sizes[0]": 1, "model.sizes[1]": 2, "search": {}}
    assert flatten(doc, scalar_lists=True) == {"model.layers[0].units": 4, "model.sizes": [1, 2], "search": {}}
