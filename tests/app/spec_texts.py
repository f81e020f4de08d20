"""Spec texts and helpers shared by the spec tests."""

from __future__ import annotations

import textwrap

import pytest

from nnctl.app.errors import SpecError
from nnctl.app.spec import parse_spec

MINIMAL = "data:\n  source: data/iris.csv\nmodel:\n  layers:\n    - units: 8\n"
NO_VALIDATION = MINIMAL.replace("  source: data/iris.csv\n", "  source: data/iris.csv\n  split: {validation: 0}\n")

# A fuller spec; line numbers below refer to this text.
BASE = textwrap.dedent(
    """\
    name: base
    seed: 1
    data:
      source: data/iris.csv
      split:
        validation: 0.2
    model:
      layers:
        - units: 8
          activation: relu
        - units: 4
          activation: tanh
    optimizer:
      name: adam
      lr: 0.01
    training:
      epochs: 50
      batch_size: 16
    stopping:
      early_stopping:
        patience: 5
    """
)


def replace_line(text: str, line: int, new: str) -> str:
    """Replace 1-based ``line`` of ``text``, keeping its indentation."""
    lines = text.splitlines()
    old = lines[line - 1]
    lines[line - 1] = old[: len(old) - len(old.lstrip())] + new
    return "\n".join(lines) + "\n"


def spec_error(text: str, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(text, overrides=overrides)
    assert info.value.code == 2
    return info.value.message
