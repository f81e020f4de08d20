"""Stand-ins for the spec's ``data`` section, for tests that call the data package
directly: the fields ``load_splits`` reads, with defaults that keep every row for training."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Split:
    validation: float = 0.0
    test: float = 0.0
    stratify: bool = True


@dataclass(frozen=True)
class Data:
    source: str
    target: str | None = None
    task: str | None = None
    categorical: list[str] = field(default_factory=list)
    normalize: str = "none"
    scale_target: bool = False
    missing: str = "error"
    labels: str | None = None
    split: Split = Split()
