"""The training loop's extension point.

A callback sees a shared ``TrainingState`` and the flat ``logs`` dict of floats of each
epoch (``epoch``, ``lr``, ``train_loss``, ``train_accuracy`` or ``train_rmse``,
``val_loss``, ``val_accuracy`` or ``val_rmse``, ``seconds``, ...).  Criteria stop
training by setting ``state.stop_reason``; they never raise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class TrainingState:
    """What the loop shares with its callbacks."""

    model: Any
    optimizer: Any
    epochs: int = 0
    epoch: int = 0
    stop_reason: str | None = None
    stop_requested: bool = False
    """Set (for example by a signal handler) to stop after the minibatch under way."""
    cursor: Any = None
    """Where an epoch left unfinished by a stop request stands (``trainer.EpochCursor``)."""
    resumable: bool = True
    """False when training was cut inside a step, so the parameters match no step boundary."""
    rngs: dict[str, np.random.Generator] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class Callback:
    """Hooks called by ``fit``; every hook is optional."""

    state_key = ""
    """The name this callback's state is saved under in a checkpoint
    (``callback.<state_key>.*``); empty: its class name (see ``resume.callback_keys``)."""

    def on_train_begin(self, state: TrainingState) -> None:
        pass

    def on_batch_end(self, state: TrainingState) -> None:
        pass

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        pass

    def on_train_end(self, state: TrainingState) -> None:
        pass

    def state_dict(self) -> dict[str, np.ndarray]:
        """What this callback must carry across a resumed run, as named arrays."""
        return {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``state_dict`` returned (called after ``on_train_begin``)."""


def metric_mode(metric: str) -> str:
    """'max' for accuracy-like metrics, 'min' for losses and errors."""
    return "max" if metric.endswith("accuracy") or metric.endswith("r2") else "min"


class Monitor(Callback):
    """Watches one metric; ``improved(value)`` is the min/max/min_delta comparison:
    an improvement is value < best − min_delta (mode min) or value > best + min_delta (max)."""

    def __init__(self, metric: str, min_delta: float = 0.0) -> None:
        self.metric = metric
        self.mode = metric_mode(metric)
        self.min_delta = abs(min_delta)

    def on_train_begin(self, state: TrainingState) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"best": np.float64(self.best)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.best = float(state["best"])

    def improved(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class NoImprovement(Monitor):
    """Stops when ``metric`` has not improved by ``min_delta`` for ``patience`` epochs."""

    reason = "no_improvement"

    def __init__(self, metric: str = "train_loss", patience: int = 20, min_delta: float = 1e-4) -> None:
        super().__init__(metric, min_delta)
        self.patience = patience

    def on_train_begin(self, state: TrainingState) -> None:
        super().on_train_begin(state)
        self.wait = 0

    def state_dict(self) -> dict[str, np.ndarray]:
        return {**super().state_dict(), "wait": np.int64(self.wait)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        super().load_state_dict(state)
        self.wait = int(state["wait"])

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        value = logs.get(self.metric)
        if value is None:
            return
        if self.improved(value):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience and state.stop_reason is None:
            state.stop_reason = self.reason


class EarlyStopping(NoImprovement):
    """Stops when the validation metric has not improved for ``patience`` epochs."""

    reason = "early_stopping"

    def __init__(self, metric: str = "val_loss", patience: int = 10, min_delta: float = 0.0) -> None:
        super().__init__(metric, patience, min_delta)


class LossBelow(Callback):
    """Stops once the training loss is below ``threshold``."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        if logs.get("train_loss", math.inf) < self.threshold and state.stop_reason is None:
            state.stop_reason = "loss_below"


class ValRising(Callback):
    """Stops when the validation loss has risen ``epochs`` epochs in a row."""

    def __init__(self, epochs: int, metric: str = "val_loss") -> None:
        self.epochs, self.metric = epochs, metric

    def on_train_begin(self, state: TrainingState) -> None:
        self.previous, self.rises = math.inf, 0

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"previous": np.float64(self.previous), "rises": np.int64(self.rises)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.previous, self.rises = float(state["previous"]), int(state["rises"])

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        value = logs.get(self.metric)
        if value is None:
            return
        self.rises = self.rises + 1 if value > self.previous else 0
        self.previous = value
        if self.rises >= self.epochs and state.stop_reason is None:
            state.stop_reason = "val_rising"


class BestWeights(Monitor):
    """Keeps a copy of the parameters at the best epoch of ``metric``; with
    ``restore=True`` the model ends training holding them."""

    def __init__(self, metric: str = "val_loss", restore: bool = True) -> None:
        super().__init__(metric, 0.0)
        self.restore = restore

    def on_train_begin(self, state: TrainingState) -> None:
        super().on_train_begin(state)
        self.best_epoch = 0
        self.best_params = state.model.params.copy()

    def state_dict(self) -> dict[str, np.ndarray]:
        return {**super().state_dict(), "best_epoch": np.int64(self.best_epoch), "best_params": self.best_params.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        super().load_state_dict(state)
        if np.shape(state["best_params"]) != self.best_params.shape:
            raise ValueError(f"best_params: shape {np.shape(state['best_params'])}, expected {self.best_params.shape}")
        self.best_epoch = int(state["best_epoch"])
        self.best_params[...] = state["best_params"]

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        value = logs.get(self.metric)
        if value is not None and self.improved(value):
            self.best, self.best_epoch = value, int(logs["epoch"])
            self.best_params[...] = state.model.params

    def on_train_end(self, state: TrainingState) -> None:
        # After divergence the parameters are garbage even where still finite; without any
        # finite epoch, the copy taken at the start is still the best there is.
        diverged = state.stop_reason == "diverged" or not np.all(np.isfinite(state.model.params))
        if (self.restore and self.best_epoch > 0) or diverged:
            state.model.params[...] = self.best_params


class GradientNorms(Callback):
    """Adds ``grad_norm.layer{i}``: the Frobenius norm ‖∂L/∂W_i‖ of each layer's weight
    gradient (with the L2 term λW_i when weight decay is on), averaged over the epoch's
    steps; vanishing gradients show as early layers orders of magnitude below the last."""

    def on_train_begin(self, state: TrainingState) -> None:
        self.flat = [g.reshape(-1) for g in state.model.weight_grads]  # views, made once
        self.sums = [0.0] * len(self.flat)
        self.steps = 0

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"sums": np.array(self.sums, dtype=np.float64), "steps": np.int64(self.steps)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.sums = [float(v) for v in state["sums"]]
        self.steps = int(state["steps"])

    def on_batch_end(self, state: TrainingState) -> None:
        sums = self.sums
        for i, flat in enumerate(self.flat):
            sums[i] += math.sqrt(float(np.dot(flat, flat)))
        self.steps += 1

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        for i, total in enumerate(self.sums, start=1):
            logs[f"grad_norm.layer{i}"] = total / max(self.steps, 1)
        self.sums = [0.0] * len(self.flat)
        self.steps = 0
