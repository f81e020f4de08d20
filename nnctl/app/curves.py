"""Learning curves and per-layer gradient norms of runs, read from their metrics.csv,
as plain series for the terminal charts and PNG figures of ``nnctl plot``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from nnctl.app.errors import DataError
from nnctl.app.runs import RunStore


@dataclass(frozen=True)
class Curves:
    """One run's per-epoch series: ``series[name]`` is a list of floats (NaN where a value
    is missing), one per entry of ``epochs``; ``metric`` is accuracy or rmse."""

    run_id: str
    name: str
    metric: str
    epochs: list[int]
    series: dict[str, list[float]]

    @property
    def grad_layers(self) -> list[str]:
        """grad_norm.layer1, grad_norm.layer2, ... in layer order."""
        names = [k for k in self.series if k.startswith("grad_norm.layer")]
        return sorted(names, key=lambda k: int(k[len("grad_norm.layer"):]))

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "name": self.name, "metric": self.metric, "epochs": self.epochs,
                "series": {k: [v if math.isfinite(v) else None for v in vs] for k, vs in self.series.items()}}


def read_curves(store: RunStore, refs: Sequence[str]) -> list[Curves]:
    """The curves of each referenced run; a run without epochs logged is an error."""
    out = []
    for ref in refs:
        run = store.resolve(ref)
        rows = run.read_metrics()
        if not rows:
            raise DataError(f"run {run.id}: no epochs in {run.file('metrics.csv')}")
        columns = [c for c in rows[0] if c not in ("epoch", "seconds")]
        metric = "accuracy" if "train_accuracy" in columns else "rmse"
        series = {c: [_float(r.get(c)) for r in rows] for c in columns}
        try:
            epochs = [int(float(r["epoch"])) for r in rows]
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{run.file('metrics.csv')}: column 'epoch' missing or not a number") from None
        name = _name(run)
        out.append(Curves(run.id, name, metric, epochs, series))
    return out


def _float(cell: str | None) -> float:
    try:
        return float(cell) if cell not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _name(run) -> str:
    from nnctl.app.run_index import run_info

    return run_info(run).name or run.id


def gradient_findings(curves: Curves) -> list:
    """The gradient diagnosis (vanishing / exploding) replayed over a run's logged norms, as
    training ran it: a list of ``nnctl.engine.diagnosis.Finding``."""
    from types import SimpleNamespace

    from nnctl.engine.diagnosis import Diagnosis

    diagnosis = Diagnosis()
    state = SimpleNamespace(model=None, epochs=len(curves.epochs), epoch=0)
    diagnosis.on_train_begin(state)
    for i, epoch in enumerate(curves.epochs):
        state.epoch = epoch
        logs = {"epoch": float(epoch), **{k: curves.series[k][i] for k in curves.grad_layers}}
        diagnosis.on_epoch_end(state, logs)
    return diagnosis.findings
