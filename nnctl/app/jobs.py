"""One training as a self-contained job: a cross-validation fold, a restart member, or a
part of a final model trained beside the folds.

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
from nnctl.app.assembly import Purpose, Rows, Training, assemble
from nnctl.app.folds import fold_arrays
from nnctl.app.seeds import seed_sequences
from nnctl.engine.callbacks import Callback, TrainingState
from nnctl.engine.resume import capture


@dataclass(frozen=True)
class Job:
    """One training.

    ``spec``: resolved (seed an integer, task, loss and output filled in). ``member``:
    which initialization and shuffling streams (``member_seed_sequences``). ``val_rows``:
    for a fold, indices into the non-test rows held out for validation (the spec's split
    then must have validation 0; the input scaling is fitted again on the other rows);
    None trains on the spec's own split. ``fixed``: run every epoch with no stopping
    criterion and keep the last weights. ``metric`` picks the best epoch.

    ``kind``: what the training is for (``assembly.KINDS``: fold, member or final).
    ``snapshots``: keep the resumable state (``JobResult.snapshots``) after every
    ``snapshots``-th epoch and each of the last ``snapshots``, so that a run of any length
    up to the spec's can go on from it.
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
    kind: str = "member"


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
    ``stop_after``: the network's parameters and ``capture`` of the fit and of the
    training's callbacks; sets the stop reason 'part' after epoch ``stop_after``."""

    def __init__(self, training: Training, every: int, stop_after: int | None) -> None:
        self.training, self.every, self.stop_after = training, every, stop_after
        self.taken: dict[int, dict[str, np.ndarray]] = {}

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        if state.stop_reason is not None:
            return  # diverged: no state after this epoch is worth keeping
        last = state.epoch >= (self.stop_after or state.epochs)
        if last or state.epoch % self.every == 0 or state.epoch > state.epochs - self.every:
            self.taken[state.epoch] = {**self.training.net.state_dict(), **capture(state, self.training.callbacks)}
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


def run_job(job: Job) -> JobResult:
    """Train one network as ``job`` says and return its history and weights.

    Raises KeyboardInterrupt when training was interrupted, so a caller never mistakes a
    cut-short job for a finished one."""
    with one_blas_thread(), np.errstate(over="ignore", invalid="ignore"):
        return _train(job)


def _train(job: Job) -> JobResult:
    spec = job.spec
    dtype = np.dtype(spec.dtype)
    split_ss = seed_sequences(spec.seed)[0]
    load_dtype = np.float64 if job.val_rows is not None else dtype
    splits = data_mod.load_splits(spec.data, np.random.default_rng(split_ss), dtype=load_dtype,
                                  base_dirs=[Path(b) for b in job.base_dirs],
                                  reuse_parsed=True)  # the jobs of one process share one parsed copy
    if job.val_rows is not None:
        rows = Rows(*fold_arrays(splits, np.asarray(job.val_rows, dtype=np.int64), bool(spec.data.scale_target), dtype))
    else:
        rows = Rows.of(splits)
    training = assemble(spec, rows, Purpose(job.kind, job.metric, fixed=job.fixed, member=job.member),
                        base_dirs=[Path(b) for b in job.base_dirs])
    history = _History()
    snapshots = _Snapshots(training, job.snapshots, job.stop_after) if job.snapshots else None
    training.add(history, *([snapshots] if snapshots else []))
    if job.start is not None:
        training.net.load_state_dict(job.start)
    result = training.run(job.start)
    if result.stop_reason == "interrupted":
        raise KeyboardInterrupt
    best = training.best
    return JobResult(
        key=job.key, label=job.label, history=history.rows, metric=job.metric, best_epoch=best.best_epoch,
        best_value=float(best.best), stop_reason=result.stop_reason, epochs=result.epochs,
        rows={"train": len(rows.x), "validation": len(rows.x_val)},
        state=training.net.state_dict() if job.val_rows is None else {},  # a fold's weights are not used
        snapshots=snapshots.taken if snapshots is not None else {},
    )
