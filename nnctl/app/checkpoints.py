"""What a run writes while it trains: a metrics.csv row per epoch, and checkpoints
(best.npz, last.npz) holding what ``nnctl resume`` needs; and how a run's spec is
compared with another."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from typing import Any

import numpy as np

from nnctl.app.errors import StorageError
from nnctl.app.runs import RunDir, iter_columns
from nnctl.app.spec import spec_to_dict
from nnctl.app.values import flatten
from nnctl.engine.callbacks import BestWeights, Callback, TrainingState
from nnctl.engine.resume import capture


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


def history_csv(rows: list[dict[str, float]], n_layers: int, metric: str) -> str:
    """metrics.csv text (the columns ``MetricsLogger`` writes) from a job's epoch logs."""
    columns = list(iter_columns(n_layers, metric))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else (int(row[c]) if c == "epoch" else repr(row[c])) for c in columns])
    return buf.getvalue()


class Checkpointer(Callback):
    """Saves best.npz and last.npz (weights, preprocessing and everything ``fit`` needs to
    resume) at an epoch's end once ``every_seconds`` have passed since the last save,
    and always when training ends, unless it was cut inside a step.  Must come after
    the callbacks whose state it saves and after the metrics logger, so that a
    checkpoint of epoch e always has metrics.csv rows through e on disk."""

    def __init__(self, run: RunDir, net, best: BestWeights, fixed: dict[str, np.ndarray], every_seconds: float,
                 callbacks: list[Callback]) -> None:
        """``callbacks``: the training's callbacks, whose state (by ``state_key``) goes into last.npz."""
        self.run, self.net, self.best, self.fixed, self.every = run, net, best, fixed, every_seconds
        self.callbacks = callbacks

    def on_train_begin(self, state: TrainingState) -> None:
        self.last = time.monotonic()

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        if state.stop_reason is None and state.epoch < state.epochs and time.monotonic() - self.last >= self.every:
            self.save(state)

    def on_train_end(self, state: TrainingState) -> None:
        if state.resumable:
            self.save(state)
        else:  # cut inside a step: the parameters are no step's; keep the last checkpoint
            self._write("best.npz", {**state_of(self.net, self.best.best_params), **self.fixed})
            if not self.run.file("last.npz").exists():  # weights only: a resume starts over
                self._write("last.npz", {**self.net.state_dict(), **self.fixed})

    def save(self, state: TrainingState) -> None:
        self._write("best.npz", {**state_of(self.net, self.best.best_params), **self.fixed})
        self._write("last.npz", {**self.net.state_dict(), **self.fixed, **capture(state, self.callbacks)})
        self.last = time.monotonic()

    def _write(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        try:
            self.run.save_checkpoint(name, arrays)
        except OSError as exc:
            raise StorageError(
                f"{self.run.file(name)}: cannot write ({exc.strerror or exc}); the last good checkpoint is kept",
                hint=f"free space or make the runs directory writable, then: nnctl resume {self.run.id}",
            ) from None


def spec_hash(spec) -> str:
    """sha256 of the resolved spec's canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(spec_to_dict(spec), sort_keys=True).encode()).hexdigest()


def spec_differences(old, new) -> list[str]:
    """``key: old → new`` for each key whose value differs between two resolved specs."""
    a, b = flatten(spec_to_dict(old), scalar_lists=True), flatten(spec_to_dict(new), scalar_lists=True)
    return [f"{k}: {_show(a.get(k))} → {_show(b.get(k))}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _show(value: Any) -> str:
    return "(absent)" if value is None else json.dumps(value)


def state_of(net, params: np.ndarray) -> dict[str, np.ndarray]:
    saved = net.params.copy()
    net.params[...] = params
    state = net.state_dict()
    net.params[...] = saved
    return state
