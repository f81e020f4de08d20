"""Plain values shared by the services: numbers as JSON allows them, and nested documents
(specs, summaries) as dotted keys."""

from __future__ import annotations

import math
from typing import Any


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float, or None where it is missing, NaN or infinite (JSON has no NaN)."""
    return float(value) if value is not None and math.isfinite(value) else None


def flatten(tree: Any, prefix: str = "", scalar_lists: bool = False) -> dict[str, Any]:
    """Nested dicts and lists as dotted keys: {"a": {"b": [1]}} → {"a.b[0]": 1}; an empty
    dict or list below the top is kept as a value. ``scalar_lists``: a list holding no
    dict or list is one value ({"a": [1, 2]} → {"a": [1, 2]})."""
    out: dict[str, Any] = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key), scalar_lists))
        if not tree and prefix:
            out[prefix] = {}
    elif isinstance(tree, list) and not (scalar_lists and not any(isinstance(v, (dict, list)) for v in tree)):
        for i, value in enumerate(tree):
            out.update(flatten(value, f"{prefix}[{i}]", scalar_lists))
        if not tree:
            out[prefix] = []
    else:
        out[prefix] = tree
    return out
