"""One assembly of a training: the network, optimizer, callbacks and fit settings of a run,
a fold, a restart member or a final model, from a resolved spec, its rows and what the
training is for. The one place in ``app`` that calls the engine's ``fit``.

Every callback that keeps state across a resumed training is registered under an
explicit key (``STATE_KEYS``), so a checkpoint names each callback's state
``callback.<key>.*`` whatever the order of the callbacks; checkpoints written before the
keys existed (``callback.<ClassName>.*``) are read through ``upgrade_state_keys``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from nnctl.app.errors import SpecError
from nnctl.app.networks import build_optimizer, build_schedule, new_network, output_units, target_matrix
from nnctl.app.resources import blas_threads, core_left_for_prefetch
from nnctl.app.seeds import member_seed_sequences
from nnctl.engine.callbacks import (
    BestWeights,
    Callback,
    EarlyStopping,
    GradientNorms,
    LossBelow,
    NoImprovement,
    ValRising,
)
from nnctl.engine.diagnosis import Diagnosis
from nnctl.engine.losses import get_loss
from nnctl.engine.network import MLP
from nnctl.engine.trainer import FitConfig, FitResult, fit, step_threads

KINDS = ("run", "fold", "member", "final", "estimator")
"""What a training is for: a run (``nnctl train``), a cross-validation fold, a restart
member, a final model (the winner of ``crossval`` trained for the chosen epochs), or a
scikit-learn estimator's ``fit`` (``nnctl.sklearn``)."""

STATE_KEYS = ("gradient_norms", "diagnosis", "stopping.loss_below", "stopping.no_improvement",
              "stopping.early_stopping", "stopping.val_rising", "best_weights")
"""The keys of the callbacks whose state a checkpoint carries, in the order they run."""


@dataclass(frozen=True)
class Purpose:
    """What a training is for.

    ``kind``: one of ``KINDS``. ``metric``: the logged metric whose best epoch is kept.
    ``fixed``: every epoch runs with no stopping criterion and the last weights are kept
    (folds and final models); otherwise the best epoch's weights are restored at the end
    when the spec says ``stopping.restore_best``. ``member``: the restart member whose
    initialization and shuffling streams are used (0: the plain run's)."""

    kind: str
    metric: str
    fixed: bool = False
    member: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r}: expected one of {KINDS}")

    @property
    def diagnosed(self) -> bool:
        """Runs and final models watch for vanishing or exploding gradients; folds and
        members do not (nobody reads their findings)."""
        return self.kind in ("run", "final")


@dataclass(frozen=True)
class Rows:
    """The rows a training sees: inputs ``x`` and targets ``y`` (class indices or scaled
    regression targets) to train on and to validate on (possibly none), and the fitted
    preprocessing that made them."""

    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    prep: Any

    @classmethod
    def of(cls, splits) -> "Rows":
        """The training and validation rows of ``data.Splits``."""
        return cls(splits.X_train, splits.y_train, splits.X_val, splits.y_val, splits.prep)

    @property
    def has_val(self) -> bool:
        return len(self.x_val) > 0


def chance_level(y: np.ndarray, task: str) -> float | None:
    """The accuracy of always answering the most frequent class of ``y`` (class indices);
    None for regression."""
    if task != "classification" or len(y) == 0:
        return None
    return float(np.bincount(y).max() / len(y))


def logged_metric(task: str) -> str:
    """The metric the loop logs beside the loss: accuracy for classes, RMSE otherwise."""
    return "accuracy" if task == "classification" else "rmse"


def best_metric(spec, has_val: bool) -> str:
    """The metric that picks the best epoch: the early-stopping metric when one is set,
    else the validation loss, else (no validation rows) the training loss."""
    if spec.stopping.early_stopping is not None:
        return spec.stopping.early_stopping.metric
    return "val_loss" if has_val else "train_loss"


def check_metric_names(spec, metric: str) -> None:
    """A stopping metric must be one this task logs (accuracy for classes, rmse for regression)."""
    stop = spec.stopping
    for key, crit in (("no_improvement", stop.no_improvement), ("early_stopping", stop.early_stopping)):
        if crit is not None and not (crit.metric.endswith("_loss") or crit.metric.endswith(metric)):
            raise SpecError(
                f"stopping.{key}.metric: {crit.metric!r} is not logged for this task; "
                f"use {crit.metric.split('_')[0]}_loss or {crit.metric.split('_')[0]}_{metric}"
            )


def stopping_callbacks(spec) -> dict[str, Callback]:
    """One callback per termination criterion the spec enables, by state key."""
    stop = spec.stopping
    out: dict[str, Callback] = {}
    if stop.loss_below is not None:
        out["stopping.loss_below"] = LossBelow(stop.loss_below)
    if stop.no_improvement is not None:
        ni = stop.no_improvement
        out["stopping.no_improvement"] = NoImprovement(ni.metric, ni.patience, ni.min_delta)
    if stop.early_stopping is not None:
        es = stop.early_stopping
        out["stopping.early_stopping"] = EarlyStopping(es.metric, es.patience, es.min_delta)
    if stop.val_rising is not None:
        out["stopping.val_rising"] = ValRising(stop.val_rising)
    return out


def batch_rows(spec, n_train: int) -> int:
    """The rows of a minibatch: ``training.batch_size``, or all ``n_train`` for "full"."""
    return n_train if spec.training.batch_size == "full" else spec.training.batch_size


def fit_threads(spec, n_train: int, sizes: Sequence[int]) -> int:
    """The BLAS threads a fit of a network of layer ``sizes`` on ``n_train`` rows runs
    with: those the library has (one inside a job, see ``jobs.one_blas_thread``), or one
    for small steps (``trainer.step_threads``). A rule of the shapes, so the same spec
    always takes the same thread count, and so the same numbers."""
    return step_threads(sizes, min(batch_rows(spec, n_train), n_train), blas_threads())


def fit_config(spec, prep, n_train: int, threads: int) -> FitConfig:
    """The engine's loop settings for a resolved spec trained on ``n_train`` rows with
    ``threads`` BLAS threads: the only place a ``FitConfig`` is made."""
    scaled = prep.task == "regression" and prep.target_scale is not None
    batch = batch_rows(spec, n_train)
    return FitConfig(
        epochs=spec.training.epochs, batch_size=batch,
        lr=spec.optimizer.lr, schedule=build_schedule(spec), shuffle=spec.training.shuffle,
        l2=spec.regularization.l2, max_norm=spec.regularization.max_norm, metric=logged_metric(prep.task),
        target_scale=prep.target_scale if scaled else 1.0, clip_norm=spec.training.clip_norm,
        prefetch=core_left_for_prefetch(threads),
    )


@dataclass
class Training:
    """One assembled training, ready to ``run``.

    ``threads``: the BLAS threads it runs with (``fit_threads``).
    ``state``: the callbacks whose state a checkpoint carries, by key (``STATE_KEYS``).
    ``callbacks``: every callback in the order the loop calls them: ``state``'s, then
    those added with ``add`` (writers of metrics and checkpoints, stop requests, progress)."""

    spec: Any
    purpose: Purpose
    net: MLP
    rows: Rows
    config: FitConfig
    threads: int
    state: dict[str, Callback]
    callbacks: list[Callback] = field(default_factory=list)

    @property
    def best(self) -> BestWeights:
        return self.state["best_weights"]  # type: ignore[return-value]

    @property
    def diagnosis(self) -> Diagnosis | None:
        return self.state.get("diagnosis")  # type: ignore[return-value]

    def add(self, *callbacks: Callback) -> None:
        """Callbacks called after the stateful ones, in this order."""
        self.callbacks.extend(callbacks)

    def run(self, resume: Mapping[str, np.ndarray] | None = None) -> FitResult:
        """Fit the network (going on from ``resume``, a checkpoint's arrays, when given);
        then, unless the training is fixed-length, hold the best epoch's weights where the
        spec restores them. A checkpoint whose state does not fit raises ValueError."""
        spec, rows, units = self.spec, self.rows, self.net.sizes[-1]
        dtype, task = np.dtype(spec.dtype), rows.prep.task
        train_ss = member_seed_sequences(int(spec.seed), self.purpose.member)[1]
        with threadpool_limits(limits=self.threads, user_api="blas"):
            result = fit(
                self.net, get_loss(spec.loss, self.net.activations[-1].name), build_optimizer(spec, self.net.params.size),
                rows.x, target_matrix(rows.y, task, units, dtype), self.config, np.random.default_rng(train_ss),
                rows.x_val if rows.has_val else None, target_matrix(rows.y_val, task, units, dtype) if rows.has_val else None,
                callbacks=self.callbacks, resume=None if resume is None else upgrade_state_keys(resume, self.state),
            )
        best = self.best
        if not self.purpose.fixed and spec.stopping.restore_best and best.best_epoch > 0:
            self.net.params[...] = best.best_params
        return result


def assemble(spec, rows: Rows, purpose: Purpose, *, net: MLP | None = None, base_dirs: Sequence[Path] = (),
             on_finding: Callable[[Any], None] | None = None) -> Training:
    """Everything one training needs, from the resolved spec (seed an integer, task, loss
    and output filled in), its rows and its purpose.

    ``net``: the network when the caller built it already (``networks.new_network`` with
    this purpose's member: a run builds it before its directory exists); otherwise it is
    built and initialized here (``base_dirs``: where ``init: {from: FILE}`` is looked
    for). ``on_finding``: called with each diagnosis finding as it is made."""
    if net is None:
        n_targets = rows.y.shape[1] if rows.y.ndim == 2 else 1
        classes = rows.prep.classes
        units = output_units(rows.prep.task, len(classes) if classes is not None else None, spec.model.output, n_targets)
        net = new_network(spec, rows.x.shape[1], units, purpose.member, base_dirs)
    state: dict[str, Callback] = {"gradient_norms": GradientNorms()}
    if purpose.diagnosed:
        state["diagnosis"] = Diagnosis(rows.x_val if rows.has_val else None, every=max(1, spec.training.epochs // 10),
                                       on_finding=on_finding, stuck=purpose.kind == "run",
                                       chance=chance_level(rows.y, rows.prep.task))
    if not purpose.fixed:
        state.update(stopping_callbacks(spec))
    state["best_weights"] = BestWeights(purpose.metric, restore=False)
    for key, cb in state.items():
        cb.state_key = key
    threads = fit_threads(spec, len(rows.x), net.sizes)
    config = fit_config(spec, rows.prep, len(rows.x), threads)
    return Training(spec, purpose, net, rows, config, threads, state, list(state.values()))


def upgrade_state_keys(arrays: Mapping[str, np.ndarray], state: Mapping[str, Callback]) -> dict[str, np.ndarray]:
    """``arrays`` with callback state saved under class names (``callback.BestWeights.*``,
    as checkpoints were written before ``STATE_KEYS``) renamed to the callbacks' keys;
    arrays already under keys are returned as they are."""
    if any(k.startswith(f"callback.{key}.") for k in arrays for key in state):
        return dict(arrays)
    names = [type(cb).__name__ for cb in state.values()]
    legacy = [n if names.count(n) == 1 else f"{n}{names[:i].count(n)}" for i, n in enumerate(names)]
    out = dict(arrays)
    for old, key in zip(legacy, state):
        prefix = f"callback.{old}."
        for name in [k for k in out if k.startswith(prefix)]:
            out[f"callback.{key}.{name[len(prefix):]}"] = out.pop(name)
    return out
