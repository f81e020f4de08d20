"""What a training reports: ``RunResult``, the metrics of a trained model on each split,
and the part of summary.json known before training starts."""

from __future__ import annotations

import os
import platform
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import nnctl
from nnctl.app.evaluation import split_metrics
from nnctl.app.runs import RunDir
from nnctl.app.values import finite_or_none


@dataclass(frozen=True)
class RunResult:
    """What one training run produced."""

    run_id: str
    run_dir: str
    name: str
    status: str
    stop_reason: str
    epochs: int
    best_epoch: int
    seed: int
    task: str
    metrics: dict[str, dict[str, Any]]
    diagnosis: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int | None = None
    """The epoch a resumed run went on from (None: trained from the start)."""
    already_complete: bool = False
    """``resume`` of a run that had already completed: nothing was trained."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "run_dir": self.run_dir, "name": self.name, "status": self.status,
            "stop_reason": self.stop_reason, "epochs": self.epochs, "best_epoch": self.best_epoch,
            "seed": self.seed, "task": self.task, "metrics": json_metrics(self.metrics), "diagnosis": self.diagnosis,
            "warnings": self.warnings, "seconds": round(self.seconds, 3),
            "resumed_from": self.resumed_from, "already_complete": self.already_complete,
        }


def final_metrics(model, spec, splits) -> dict[str, dict[str, Any]]:
    """Metrics of a trained network (or ensemble) on each split (empty for an empty split)."""
    parts = (("train", splits.X_train, splits.y_train), ("validation", splits.X_val, splits.y_val),
             ("test", splits.X_test, splits.y_test))
    return {name: split_metrics(model, spec.loss, x, y, splits.prep) for name, x, y in parts}


def json_metrics(metrics: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``metrics`` with NaN and infinite values as None."""
    return {
        split: {k: (finite_or_none(v) if isinstance(v, float) else v) for k, v in values.items()}
        for split, values in metrics.items()
    }


def summary_base(run: RunDir, p, base_dirs: Sequence[Path], started: float) -> dict[str, Any]:
    """The part of summary.json known before training starts (``p``: a ``training.Prepared``)."""
    spec, splits, prep = p.spec, p.splits, p.splits.prep
    created_ns = run.read_json("summary.json")["created_ns"]
    return {
        "run_id": run.id, "created_ns": created_ns, "name": spec.name,
        "seed": p.seed, "task": prep.task, "data_hash": splits.data_hash, "data_source": spec.data.source,
        "base_dirs": [str(Path(b).resolve()) for b in base_dirs],
        "rows": {"train": len(splits.X_train), "validation": len(splits.X_val), "test": len(splits.X_test)},
        "classes": list(prep.classes) if prep.classes is not None else None,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(created_ns / 1e9)),  # as the run id
        "pid": os.getpid(), "host": socket.gethostname(),
        "versions": {"nnctl": nnctl.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "warnings": p.warnings,
    }
