"""One training as a self-contained job: a cross-validation fold or a restart member.

A job carries a resolved spec and loads its data itself, so it runs the same in this
process, in a local worker process or on a Dask worker, and gives the same numbers in
each: the BLAS library is limited to one thread while it runs (threadpoolctl), and every
random stream comes from the spec's seed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from nnctl.app import data as data_mod
from nnctl.app.model import (
    build_network,
    build_optimizer,
    fit_config,
    initialize_network,
    member_seed_sequences,
    output_units,
    seed_sequences,
    stopping_callbacks,
    target_matrix,
)
from nnctl.engine.callbacks import BestWeights, Callback, GradientNorms, TrainingState
from nnctl.engine.diagnosis import Diagnosis
from nnctl.engine.losses import get_loss
from nnctl.engine.resume import capture
from nnctl.engine.trainer import fit


@dataclass(frozen=True)
class Job:
    """One training.

    ``spec``: resolved (seed an integer, task, loss and output filled in). ``member``:
    which initialization and shuffling streams (``member_seed_sequences``). ``val_rows``:
    for a fold, indices into the non-test rows held out for validation (the spec's split
    then must have validation 0; the input scaling is fitted again on the other rows);
    None trains on the spec's own split. ``fixed``: run every epoch with no stopping
    criterion and keep the last weights. ``metric`` picks the best epoch.

    ``snapshots``: keep the resumable state (``JobResult.snapshots``), with the callbacks
    ``nnctl train`` keeps state for, after every ``snapshots``-th epoch and each of the
    last ``snapshots``, so that a run of any length up to the spec's can go on from it.
    ``start``: a snapshot to go on from; ``stop_after``: the last epoch to train (a part
    of a longer training).
    """

    spec: Any
    base_dirs: tuple[str, ...] = ()
    member: int = 0
    val_rows: tuple[int, ...] | None = None
    fixed: bool = False
    metric: str = "val_loss"
    key: tuple[int, ...] = ()
    label: str = ""
    snapshots: int = 0
    start: dict[str, np.ndarray] | None = field(default=None, repr=False)
    stop_after: int | None = None


@dataclass(frozen=True)
class JobResult:
    """What a job sends back: every epoch's logs, the best epoch of ``metric`` and its
    value, how training ended, and the kept weights (dense layers only; none for a fold)."""

    key: tuple[int, ...]
    label: str
    history: list[dict[str, float]]
    metric: str
    best_epoch: int
    best_value: float
    stop_reason: str
    epochs: int
    rows: dict[str, int]
    state: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    snapshots: dict[int, dict[str, np.ndarray]] = field(repr=False, default_factory=dict)

    def curve(self, epochs: int) -> np.ndarray:
        """``metric`` per epoch 1..epochs; epochs not reached (a diverged fold) are NaN."""
        out = np.full(epochs, np.nan)
        for row in self.history[:epochs]:
            out[int(row["epoch"]) - 1] = row.get(self.metric, np.nan)
        return out


class _Snapshots(Callback):
    """After every ``every``-th epoch, each of the spec's last ``every`` epochs and epoch
    ``stop_after``: the network's parameters and ``capture`` of the fit and of
    ``callbacks``; sets the stop reason 'part' after epoch ``stop_after``."""

    def __init__(self, net, callbacks: list[Callback], every: int, stop_after: int | None) -> None:
        self.net, self.callbacks, self.every, self.stop_after = net, callbacks, every, stop_after
        self.taken: dict[int, dict[str, np.ndarray]] = {}

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        if state.stop_reason is not None:
            return  # diverged: no state after this epoch is worth keeping
        last = state.epoch >= (self.stop_after or state.epochs)
        if last or state.epoch % self.every == 0 or state.epoch > state.epochs - self.every:
            self.taken[state.epoch] = {**self.net.state_dict(), **capture(state, self.callbacks)}
        if last and self.stop_after is not None:
            state.stop_reason = "part"


class _History(Callback):
    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        self.rows.append({k: float(v) for k, v in logs.items()})


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit BLAS (and OpenMP) pools to one thread inside the block, so a job's numbers do
    not depend on how many threads its process has; without threadpoolctl, no limit."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        yield
        return
    with threadpool_limits(limits=1):
        yield


def fold_arrays(splits: data_mod.Splits, val_rows: np.ndarray, scale_target: bool, dtype: np.dtype):
    """(X_train, y_train, X_val, y_val, prep) of one fold of the non-test rows in ``splits``
    (loaded in float64 with validation 0): the input scaling x' = (x − offset)/scale (and a
    regression target's scaling) is fitted again on the fold's training rows only."""
    prep = splits.prep
    held = np.zeros(len(splits.X_train), dtype=bool)
    held[val_rows] = True
    Z = splits.X_train * prep.scale + prep.offset  # undo the scaling fitted on all the rows
    y_raw = None
    if prep.task == "regression":
        y_raw = splits.y_train.reshape(len(Z), -1) * prep.target_scale + prep.target_mean
    fold_prep = data_mod.refit_scaling(prep, Z[~held], None if y_raw is None else y_raw[~held], scale_target)
    X = np.ascontiguousarray((Z - fold_prep.offset) / fold_prep.scale, dtype=dtype)
    y = splits.y_train if y_raw is None else fold_prep.scale_targets(y_raw, dtype)
    return X[~held], y[~held], X[held], y[held], fold_prep


def run_job(job: Job) -> JobResult:
    """Train one network as ``job`` says and return its history and weights.

    Raises KeyboardInterrupt when training was interrupted, so a caller never mistakes a
    cut-short job for a finished one."""
    with one_blas_thread(), np.errstate(over="ignore", invalid="ignore"):
        return _train(job)


def _train(job: Job) -> JobResult:
    spec = job.spec
    dtype = np.dtype(spec.dtype)
    base_dirs = [Path(b) for b in job.base_dirs]
    split_ss = seed_sequences(spec.seed)[0]
    init_ss, train_ss = member_seed_sequences(spec.seed, job.member)
    load_dtype = np.float64 if job.val_rows is not None else dtype
    splits = data_mod.load_splits(spec.data, np.random.default_rng(split_ss), dtype=load_dtype, base_dirs=base_dirs,
                                  reuse_parsed=True)  # the jobs of one process share one parsed copy
    if job.val_rows is not None:
        X, y, Xv, yv, prep = fold_arrays(splits, np.asarray(job.val_rows, dtype=np.int64),
                                         bool(spec.data.scale_target), dtype)
    else:
        X, y, Xv, yv, prep = splits.X_train, splits.y_train, splits.X_val, splits.y_val, splits.prep
    n_classes = len(prep.classes) if prep.classes is not None else None
    n_targets = y.shape[1] if y.ndim == 2 else 1
    units = output_units(prep.task, n_classes, spec.model.output, n_targets)
    net = build_network(spec, X.shape[1], units)
    initialize_network(net, spec, np.random.default_rng(init_ss), base_dirs)
    metric_kind = "accuracy" if prep.task == "classification" else "rmse"
    has_val = len(Xv) > 0
    history = _History()
    best = BestWeights(job.metric, restore=spec.stopping.restore_best and not job.fixed)
    stopping = [] if job.fixed else stopping_callbacks(spec)
    # With snapshots, the stateful callbacks of a run, in a run's order (see training._train).
    diagnosis = [Diagnosis(Xv if has_val else None, every=max(1, spec.training.epochs // 10))] if job.snapshots else []
    stateful: list[Callback] = [GradientNorms(), *diagnosis, *stopping, best]
    snapshots = _Snapshots(net, stateful, job.snapshots, job.stop_after) if job.snapshots else None
    callbacks = [*stateful, history, *([snapshots] if snapshots else [])]
    if job.start is not None:
        net.load_state_dict(job.start)
    result = fit(
        net, get_loss(spec.loss, net.activations[-1].name), build_optimizer(spec, net.params.size),
        X, target_matrix(y, prep.task, units, dtype), fit_config(spec, prep, len(X), metric_kind),
        np.random.default_rng(train_ss),
        Xv if has_val else None, target_matrix(yv, prep.task, units, dtype) if has_val else None,
        callbacks=callbacks, resume=job.start,
    )
    if result.stop_reason == "interrupted":
        raise KeyboardInterrupt
    return JobResult(
        key=job.key, label=job.label, history=history.rows, metric=job.metric, best_epoch=best.best_epoch,
        best_value=float(best.best), stop_reason=result.stop_reason, epochs=result.epochs,
        rows={"train": len(X), "validation": len(Xv)},
        state=net.state_dict() if job.val_rows is None else {},  # a fold's weights are not used
        snapshots=snapshots.taken if snapshots is not None else {},
    )
