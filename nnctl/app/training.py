"""``nnctl train``: spec → data → engine → run directory."""

from __future__ import annotations

import math
import os
import platform
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import nnctl
from nnctl.app import data as data_mod
from nnctl.app.errors import SpecError
from nnctl.app.evaluation import split_metrics
from nnctl.app.model import (
    build_network,
    build_optimizer,
    build_schedule,
    check_metric_names,
    initialize_network,
    output_units,
    seed_sequences,
    stopping_callbacks,
    target_matrix,
)
from nnctl.app.runs import RunDir, RunStore, iter_columns
from nnctl.app.spec import dump_spec_yaml, lint, resolve
from nnctl.engine.callbacks import BestWeights, Callback, GradientNorms, TrainingState
from nnctl.engine.trainer import FitConfig, fit


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
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "run_dir": self.run_dir, "name": self.name, "status": self.status,
            "stop_reason": self.stop_reason, "epochs": self.epochs, "best_epoch": self.best_epoch,
            "seed": self.seed, "task": self.task, "metrics": _json_metrics(self.metrics),
            "warnings": self.warnings, "seconds": round(self.seconds, 3),
        }


class MetricsLogger(Callback):
    """Writes each epoch's logs as a row of metrics.csv."""

    def __init__(self, writer) -> None:
        self.writer = writer

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        row = dict(logs)
        row["epoch"] = int(logs["epoch"])
        self.writer.write(row)

    def on_train_end(self, state: TrainingState) -> None:
        self.writer.close()


@dataclass
class Prepared:
    """A spec resolved against its data, with everything training needs, before any run
    directory exists."""

    spec: Any
    seed: int
    splits: Any
    metric: str
    units: int
    warnings: list[str]
    train_ss: np.random.SeedSequence
    net: Any  # the initialized network

    @property
    def summary(self) -> str:
        s, sp = self.spec, self.splits
        sizes = [sp.X_train.shape[1], *(layer.units for layer in s.model.layers), self.units]
        return (f"{s.data.task}, network {'-'.join(map(str, sizes))}, output {s.model.output}, loss {s.loss}, "
                f"rows train/val/test {len(sp.X_train)}/{len(sp.X_val)}/{len(sp.X_test)}")

    @property
    def spec_dict(self) -> dict[str, Any]:
        from nnctl.app.spec import spec_to_dict

        return spec_to_dict(self.spec)


def check_spec(spec, base_dirs: Sequence[Path] = ()) -> Prepared:
    """Validate a spec against its data without training (``nnctl validate``)."""
    return prepare(spec, base_dirs)


def prepare(spec, base_dirs: Sequence[Path] = ()) -> Prepared:
    """Draw the seed if 'random', load and split the data, and fill in the defaults that
    follow the task (loss, output activation); raises SpecError / DataError."""
    seed = secrets.randbits(32) if spec.seed == "random" else int(spec.seed)
    spec = spec.model_copy(update={"seed": seed})
    split_ss, init_ss, train_ss = seed_sequences(seed)
    splits = data_mod.load_splits(spec.data, np.random.default_rng(split_ss), dtype=np.dtype(spec.dtype), base_dirs=base_dirs)
    prep = splits.prep
    n_classes = len(prep.classes) if prep.classes is not None else None
    spec = resolve(spec, prep.task, n_classes)
    metric = "accuracy" if prep.task == "classification" else "rmse"
    check_metric_names(spec, metric)
    if len(splits.X_val) == 0 and spec.stopping.early_stopping is not None:
        raise SpecError("stopping.early_stopping: needs validation rows, but the validation split is empty")
    n_targets = splits.y_train.shape[1] if splits.y_train.ndim == 2 else 1
    units = output_units(prep.task, n_classes, spec.model.output, n_targets)
    warnings = [*lint(spec), *splits.warnings]
    net = build_network(spec, splits.X_train.shape[1], units)
    initialize_network(net, spec, np.random.default_rng(init_ss), base_dirs)
    return Prepared(spec, seed, splits, metric, units, warnings, train_ss, net)


def train_from_spec(
    spec, store: RunStore, callbacks: Sequence[Callback] = (), base_dirs: Sequence[Path] = (),
    on_warning=None, run: RunDir | None = None, keep_last: bool = False,
) -> RunResult:
    """Train the spec's network and record it in a new run directory.

    Everything that can be wrong with the spec or data is checked before the run
    directory is created, so bad input never leaves a half-written run.

    ``run``: record into this already-created run directory instead (``nnctl crossval``
    writes its folds there first). ``keep_last``: the kept model (best.npz) is the one
    after the last epoch, whatever the best epoch was (a fixed-length final training).
    """
    started = time.time()
    p = prepare(spec, base_dirs)
    spec, splits, prep, seed, metric = p.spec, p.splits, p.splits.prep, p.seed, p.metric
    for w in p.warnings:
        if on_warning:
            on_warning(w)
    dtype = np.dtype(spec.dtype)
    net = p.net
    optimizer = build_optimizer(spec, net.params.size)
    t_train = target_matrix(splits.y_train, prep.task, p.units, dtype)
    t_val = target_matrix(splits.y_val, prep.task, p.units, dtype)
    has_val = len(splits.X_val) > 0
    bs = len(splits.X_train) if spec.training.batch_size == "full" else spec.training.batch_size
    config = FitConfig(
        epochs=spec.training.epochs, batch_size=bs, lr=spec.optimizer.lr, schedule=build_schedule(spec),
        shuffle=spec.training.shuffle, l2=spec.regularization.l2, max_norm=spec.regularization.max_norm,
        metric=metric, target_scale=prep.target_scale if prep.task == "regression" and prep.target_scale is not None else 1.0,
    )
    best = BestWeights(best_metric(spec, has_val), restore=False)
    warnings = p.warnings

    run = run if run is not None else store.create(spec.name)
    run.write_text("spec.yaml", dump_spec_yaml(spec))
    base = _summary_base(run, p, base_dirs, started)
    run.write_json("summary.json", {**base, "status": "running"})
    writer = run.metrics_writer(list(iter_columns(net.n_layers, metric)))
    fit_started = time.time()
    try:
        result = fit(
            net, _loss(spec, net), optimizer, splits.X_train, t_train, config, np.random.default_rng(p.train_ss),
            splits.X_val if has_val else None, t_val if has_val else None,
            callbacks=[GradientNorms(), *stopping_callbacks(spec), best, MetricsLogger(writer), *callbacks],
        )
    except BaseException as exc:
        writer.close()
        run.write_json("summary.json", {**base, "status": "failed", "error": f"{type(exc).__name__}: {exc}"})
        raise
    fit_seconds = time.time() - fit_started
    prep_arrays = prep.to_arrays()
    run.save_checkpoint("last.npz", {**net.state_dict(), **prep_arrays})
    if spec.stopping.restore_best and best.best_epoch > 0 and not keep_last:
        net.params[...] = best.best_params
    best_state = net.state_dict() if keep_last else _state_of(net, best.best_params)
    best_epoch = result.epochs if keep_last else best.best_epoch
    run.save_checkpoint("best.npz", {**best_state, **prep_arrays})

    metrics = _final_metrics(net, spec, splits)
    status = {"diverged": "diverged", "interrupted": "interrupted"}.get(result.stop_reason, "completed")
    summary = {
        **base, "status": status, "stop_reason": result.stop_reason, "epochs": result.epochs,
        "best_epoch": best_epoch, "best_metric": {best.metric: _num(best.best)},
        "metrics": _json_metrics(metrics), "seconds": {"total": time.time() - started, "training": fit_seconds},
    }
    run.write_json("summary.json", summary)
    return RunResult(
        run_id=run.id, run_dir=str(run.path), name=spec.name, status=status, stop_reason=result.stop_reason,
        epochs=result.epochs, best_epoch=best_epoch, seed=seed, task=prep.task, metrics=metrics,
        warnings=warnings, seconds=time.time() - started,
    )


def _summary_base(run: RunDir, p: Prepared, base_dirs: Sequence[Path], started: float) -> dict[str, Any]:
    """The part of summary.json known before training starts."""
    spec, splits, prep = p.spec, p.splits, p.splits.prep
    return {
        "run_id": run.id, "created_ns": run.read_json("summary.json")["created_ns"], "name": spec.name,
        "seed": p.seed, "task": prep.task, "data_hash": splits.data_hash, "data_source": spec.data.source,
        "base_dirs": [str(Path(b).resolve()) for b in base_dirs],
        "rows": {"train": len(splits.X_train), "validation": len(splits.X_val), "test": len(splits.X_test)},
        "classes": list(prep.classes) if prep.classes is not None else None,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "pid": os.getpid(), "host": socket.gethostname(),
        "versions": {"nnctl": nnctl.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "warnings": p.warnings,
    }


def _final_metrics(net, spec, splits) -> dict[str, dict[str, Any]]:
    """Metrics of the returned network on each split (empty for an empty split)."""
    parts = (("train", splits.X_train, splits.y_train), ("validation", splits.X_val, splits.y_val),
             ("test", splits.X_test, splits.y_test))
    return {name: split_metrics(net, spec.loss, x, y, splits.prep) for name, x, y in parts}


def best_metric(spec, has_val: bool) -> str:
    """The metric that picks the best epoch: the early-stopping metric when one is set,
    else the validation loss, else (no validation rows) the training loss."""
    if spec.stopping.early_stopping is not None:
        return spec.stopping.early_stopping.metric
    return "val_loss" if has_val else "train_loss"


def _loss(spec, net):
    from nnctl.engine.losses import get_loss

    return get_loss(spec.loss, net.activations[-1].name)


def _state_of(net, params: np.ndarray) -> dict[str, np.ndarray]:
    saved = net.params.copy()
    net.params[...] = params
    state = net.state_dict()
    net.params[...] = saved
    return state


def _num(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _json_metrics(metrics: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        split: {k: (_num(v) if isinstance(v, float) else v) for k, v in values.items()}
        for split, values in metrics.items()
    }
