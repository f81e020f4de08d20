"""Tests for nnctl.app.spec_docs: docs/spec.md is the schema's reference, up to date."""

from __future__ import annotations

import re
from pathlib import Path

from nnctl.app.spec import parse_spec
from nnctl.app.spec_docs import _sections, render
from nnctl.app.spec_schema import Spec

DOC = Path(__file__).resolve().parents[2] / "docs" / "spec.md"


def test_the_committed_reference_is_what_the_schema_writes() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), "run: python -m nnctl.app.spec_docs > docs/spec.md"


def test_every_key_of_every_section_has_a_row() -> None:
    text = render()
    for _, model in _sections(Spec, ""):
        for name, info in model.model_fields.items():
            assert f"| `{info.alias or name}` |" in text, name


def test_the_example_is_a_valid_spec() -> None:
    example = re.search(r"```yaml\n(.*?)```", render(), re.S).group(1)
    spec = parse_spec(example)
    assert spec.model.layers[0].units == 16 and spec.stopping.early_stopping.patience == 20


def test_ranges_and_defaults_come_from_the_schema() -> None:
    text = render()
    assert "| `lr` | number | `0.001` | > 0, ≤ 1e6 | Learning rate. |" in text  # adam's default rate
    assert "| `units` | integer | required | ≥ 1, ≤ 100000 |" in text
