"""Metrics of a network on a split, and ``nnctl evaluate``: a saved run on its test data
(or another file, through the run's stored preprocessing)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.app import data as data_mod
from nnctl.app.ensemble import ENSEMBLE_FILE, load_ensemble
from nnctl.app.errors import DataError, NnctlError
from nnctl.app.networks import build_network, target_matrix
from nnctl.app.seeds import seed_sequences
from nnctl.app.runs import RunDir, RunStore
from nnctl.app.spec import parse_spec
from nnctl.engine.losses import get_loss
from nnctl.engine.metrics import (
    accuracy,
    confusion_matrix,
    mae,
    predicted_classes,
    r2,
    rmse,
)
from nnctl.engine.network import MLP


def split_metrics(net: MLP, loss_name: str, x: np.ndarray, y: np.ndarray, prep, with_confusion: bool = False) -> dict[str, Any]:
    """loss (mean, in the model's units) and accuracy, or rmse / mae / r² in the target's
    original units; an empty split gives an empty dict."""
    if len(x) == 0:
        return {}
    units = net.sizes[-1]
    t = target_matrix(y, prep.task, units, net.dtype)
    z, a = net.logits(x)
    loss = get_loss(loss_name, net.activations[-1].name)
    out: dict[str, Any] = {"loss": loss.value(z, a, t) / len(x), "rows": int(len(x))}
    if prep.task == "classification":
        vote = getattr(net, "predict_classes", None)  # an ensemble decides its classes itself
        pred = vote(x) if vote is not None else predicted_classes(a)
        out["accuracy"] = accuracy(y, pred)
        if with_confusion:
            out["confusion"] = confusion_matrix(y, pred, len(prep.classes)).tolist()
    else:
        y_true = prep.inverse_target(t)
        y_pred = prep.inverse_target(a)
        out.update(rmse=rmse(y_true, y_pred), mae=mae(y_true, y_pred), r2=r2(y_true, y_pred))
    return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in out.items()}


@dataclass(frozen=True)
class EvalResult:
    run_id: str
    source: str
    task: str
    metrics: dict[str, Any]
    classes: list[str] | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "source": self.source, "task": self.task,
            "classes": self.classes, "metrics": _finite(self.metrics), "warnings": self.warnings,
        }


def load_model(run: RunDir, checkpoint: str = "best.npz"):
    """The run's resolved spec, its network loaded from ``checkpoint`` and its preprocessing.

    A run of several restarts (``ensemble.json``) gives its whole ensemble as the network."""
    spec = parse_spec(run.file("spec.yaml").read_text(encoding="utf-8"), source=str(run.file("spec.yaml")))
    if checkpoint == "best.npz" and run.file(ENSEMBLE_FILE).exists():
        return spec, *load_ensemble(run, spec)
    state = run.load_checkpoint(checkpoint)
    try:
        prep = data_mod.Preprocessor.from_arrays(state)
        last = max(int(k[5:].split(".")[0]) for k in state if k.startswith("layer") and k.endswith(".weight"))
        n_out = state[f"layer{last}.weight"].shape[1]
        net = build_network(spec, len(prep.input_names), n_out)
        net.load_state_dict(state)
    except (KeyError, ValueError) as exc:
        raise NnctlError(f"{run.file(checkpoint)}: {exc}") from None
    return spec, net, prep


def evaluate_run(store: RunStore, ref: str, data_file: str | None = None) -> EvalResult:
    """Metrics of a saved run's best weights on its test split, or on ``data_file``."""
    run = store.resolve(ref)
    spec, net, prep = load_model(run)
    warnings: list[str] = []
    if data_file is not None:
        x, y = data_mod.transform_file(Path(data_file), prep, dtype=net.dtype, warnings=warnings)
        source = data_file
    else:
        summary = run.read_json("summary.json")
        splits = data_mod.load_splits(
            spec.data, np.random.default_rng(seed_sequences(spec.seed)[0]), dtype=net.dtype,
            base_dirs=[Path(p) for p in summary.get("base_dirs", [])],
        )
        if splits.data_hash != summary.get("data_hash"):
            raise DataError(f"{spec.data.source}: the data changed since run {run.id} was trained (hash differs)")
        x, y, source = splits.X_test, splits.y_test, f"{spec.data.source} (test split)"
        if len(x) == 0:
            raise DataError(f"run {run.id} has no test split (data.split.test is 0); pass --data FILE")
    metrics = split_metrics(net, spec.loss, x, y, prep, with_confusion=True)
    classes = list(prep.classes) if prep.classes is not None else None
    return EvalResult(run.id, source, prep.task, metrics, classes, warnings)


def _finite(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
