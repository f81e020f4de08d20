"""Diagnosis of training troubles: vanishing and exploding gradients from the per-layer
gradient norms of each epoch, saturated sigmoid/tanh units and dead ReLUs from the hidden
activations on the validation rows, and a training stuck where it began (accuracy at
chance level, or a loss that hardly moved: a local minimum or a plateau).

``Diagnosis`` is a callback placed after ``GradientNorms``; each problem is reported once,
as a ``Finding``, through ``on_finding`` when it is first seen, and kept in ``findings``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator

import numpy as np

from nnctl.engine.callbacks import Callback, TrainingState

Array = np.ndarray

VANISHING_RATIO = 1e-3
"""Vanishing: ‖∂L/∂W₁‖ / ‖∂L/∂W_L‖ below this (first layer against the last)."""
EXPLODING_RATIO = 1e3
"""Exploding: ‖∂L/∂W₁‖ / ‖∂L/∂W_L‖ above this, or any layer's norm above EXPLODING_NORM."""
EXPLODING_NORM = 1e3
PATIENCE = 5
"""Epochs in a row a gradient condition must hold (fewer when training is shorter).  An
epoch whose loss or a gradient norm is not finite (training diverged and stops there) is
reported as exploding gradients at once."""
SATURATION_LEVEL = 0.99
"""A sigmoid/tanh unit's activation is saturated beyond ±0.99 of its half-range from the
centre: |a − ½| > 0.99·½ for sigmoid, |a| > 0.99 for tanh."""
SATURATED_FRACTION = 0.5
"""Warn when at least this fraction of a layer's activations (rows × units) is saturated."""
DEAD_FRACTION = 0.5
"""Warn when at least this fraction of a ReLU layer's units is 0 on every validation row."""

STUCK_EPOCHS = 20
"""Stuck is looked for in trainings of at least this many epochs, and only where no other
finding explains it."""
CHANCE_MARGIN = 0.01
"""Stuck: the last epoch's training accuracy at most this above chance level."""
PLATEAU_RATIO = 0.95
"""Stuck: the last epoch's training loss still above this times the first epoch's."""

STATS_CHUNK = 4096
"""Validation rows per block when gathering activation statistics."""

GRADIENT_REMEDIES = ("ReLU-family activations (relu, leaky_relu), He or Xavier initialization "
                     "(model.init.scheme), normalized inputs (data.normalize), fewer layers")


@dataclass(frozen=True)
class Finding:
    """One diagnosed problem: its kind, the epoch it was seen, the 1-based dense layers
    involved, the measured value and a one-line message with remedies."""

    kind: str  # vanishing_gradients | exploding_gradients | saturated_units | dead_relu | stuck
    epoch: int
    layers: tuple[int, ...]
    value: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layers"] = list(self.layers)
        d["value"] = self.value if math.isfinite(self.value) else None
        return d


def saturated_fraction(a: Array, activation: str) -> float:
    """Fraction of entries of ``a`` with |a − c| > 0.99·r: sigmoid c = r = ½, tanh c = 0, r = 1."""
    if a.size == 0:
        return 0.0
    centre, half = (0.5, 0.5) if activation == "sigmoid" else (0.0, 1.0)
    return float(np.count_nonzero(np.abs(a - centre) > SATURATION_LEVEL * half)) / a.size


def dead_fraction(a: Array) -> float:
    """Fraction of units (columns of ``a``) that are 0 on every row: max_rows a_j ≤ 0."""
    if a.size == 0:
        return 0.0
    return float(np.count_nonzero(a.max(axis=0) <= 0.0)) / a.shape[1]


def hidden_activations(model, x: Array) -> Iterator[list[Array]]:
    """For each block of rows of x, every hidden layer's outputs h_l = f_l(h_{l−1} W_l + b_l)
    (no dropout)."""
    x = np.asarray(x, dtype=model.dtype)
    for start in range(0, len(x), STATS_CHUNK):
        h, out = x[start : start + STATS_CHUNK], []
        for w, b, act in zip(model.weights[:-1], model.biases[:-1], model.activations[:-1]):
            h = h @ w
            h += b
            act.forward(h, out=h)
            out.append(h)
        yield out


def activation_stats(model, x: Array) -> list[tuple[str, float]]:
    """Per hidden layer: ('saturated', fraction) for sigmoid/tanh, ('dead', fraction) for
    relu, ('', 0.0) otherwise; gathered a block of rows at a time."""
    kinds = [act.name for act in model.activations[:-1]]
    saturated = [0] * len(kinds)
    unit_max = [np.full(w.shape[1], -np.inf) for w in model.weights[:-1]]
    rows = 0
    for hidden in hidden_activations(model, x):
        rows += len(hidden[0]) if hidden else 0
        for l, (a, kind) in enumerate(zip(hidden, kinds)):
            if kind in ("sigmoid", "tanh"):
                saturated[l] += round(saturated_fraction(a, kind) * a.size)
            elif kind == "relu":
                np.maximum(unit_max[l], a.max(axis=0), out=unit_max[l])
    out = []
    for l, kind in enumerate(kinds):
        n_units = len(unit_max[l])
        if kind in ("sigmoid", "tanh"):
            out.append(("saturated", saturated[l] / max(rows * n_units, 1)))
        elif kind == "relu":
            out.append(("dead", float(np.count_nonzero(unit_max[l] <= 0.0)) / n_units if rows else 0.0))
        else:
            out.append(("", 0.0))
    return out


class Diagnosis(Callback):
    """Watches the logged ``grad_norm.layer{i}`` and, every ``every`` epochs and at the end
    of training, the hidden activations on ``x_val`` (when given); with ``stuck``, at the
    end of training, whether it got anywhere: ``chance`` is the training accuracy of always
    answering the most frequent class (None for regression)."""

    def __init__(self, x_val: Array | None = None, every: int = 10, patience: int = PATIENCE,
                 on_finding: Callable[[Finding], None] | None = None, stuck: bool = False,
                 chance: float | None = None) -> None:
        self.x_val = x_val if x_val is not None and len(x_val) > 0 else None
        self.every = max(1, every)
        self.patience = patience
        self.on_finding = on_finding
        self.stuck, self.chance = stuck, chance

    def on_train_begin(self, state: TrainingState) -> None:
        self.findings: list[Finding] = []
        self.streak = {"vanishing_gradients": 0, "exploding_gradients": 0}
        self.needed = max(1, min(self.patience, state.epochs))
        self.last_checked = 0
        self.first_loss: float | None = None
        self.last_logs: dict[str, float] = {}

    def state_dict(self) -> dict[str, Array]:
        """What a resumed run carries over: the streaks, the last epoch whose activations
        were looked at, and the findings already reported (so none is reported twice)."""
        return {
            "streak": np.array([self.streak["vanishing_gradients"], self.streak["exploding_gradients"]], np.int64),
            "last_checked": np.int64(self.last_checked),
            "findings": np.array(json.dumps([f.to_dict() for f in self.findings])),
        }

    def load_state_dict(self, state: dict[str, Array]) -> None:
        vanishing, exploding = (int(v) for v in state["streak"])
        self.streak = {"vanishing_gradients": vanishing, "exploding_gradients": exploding}
        self.last_checked = int(state["last_checked"])
        self.findings = [
            Finding(d["kind"], d["epoch"], tuple(d["layers"]), math.nan if d["value"] is None else d["value"],
                    d["message"])
            for d in json.loads(str(state["findings"]))
        ]

    def on_epoch_end(self, state: TrainingState, logs: dict[str, float]) -> None:
        norms = [logs[k] for k in sorted((k for k in logs if k.startswith("grad_norm.layer")),
                                         key=lambda k: int(k[len("grad_norm.layer"):]))]
        epoch = int(logs.get("epoch", state.epoch))
        if epoch == 1:
            self.first_loss = logs.get("train_loss")
        self.last_logs = logs
        diverged = not all(math.isfinite(v) for k, v in logs.items() if k.endswith("loss"))
        if len(norms) >= 2:
            self._gradients(norms, epoch, diverged)
        if self.x_val is not None and epoch % self.every == 0:
            self._activations(state.model, epoch)

    def on_train_end(self, state: TrainingState) -> None:
        if self.x_val is not None and state.epoch > self.last_checked and np.all(np.isfinite(state.model.params)):
            self._activations(state.model, state.epoch)
        if self.stuck and getattr(state, "stop_reason", None) != "interrupted":
            self._stuck(int(self.last_logs.get("epoch", state.epoch)))

    # ---- stuck -----------------------------------------------------------------------

    def _stuck(self, epoch: int) -> None:
        """Accuracy at chance level: acc ≤ chance + CHANCE_MARGIN; or a plateau:
        loss_last ≥ PLATEAU_RATIO · loss_1."""
        if epoch < STUCK_EPOCHS or self.findings:
            return
        accuracy, loss = self.last_logs.get("train_accuracy"), self.last_logs.get("train_loss")
        if accuracy is not None and self.chance is not None and accuracy <= self.chance + CHANCE_MARGIN:
            what, value = (f"training accuracy ended at {accuracy:.3g} after {epoch} epochs, chance level "
                           f"(always the most frequent class scores {self.chance:.3g})"), accuracy
        elif (loss is not None and self.first_loss is not None and math.isfinite(loss)
              and loss >= PLATEAU_RATIO * self.first_loss > 0):
            what, value = (f"the training loss hardly moved: {self.first_loss:.4g} at epoch 1, {loss:.4g} "
                           f"at epoch {epoch}"), loss
        else:
            return
        self._report(Finding(
            "stuck", epoch, (), value,
            f"{what}; the network may be stuck in a local minimum or on a plateau; remedies: train several "
            "networks from different initial weights (--restarts N, restarts.count) or another seed "
            "(--set seed=N), a different optimizer.lr"))

    # ---- gradients -------------------------------------------------------------------

    def _gradients(self, norms: list[float], epoch: int, diverged: bool = False) -> None:
        first, last = norms[0], norms[-1]
        n = len(norms)
        ratio = first / last if last > 0 else (math.inf if first > 0 else 1.0)
        vanishing = math.isfinite(ratio) and ratio < VANISHING_RATIO
        biggest = max(range(n), key=lambda i: norms[i] if math.isfinite(norms[i]) else math.inf)
        exploding = (not all(math.isfinite(v) for v in norms) or norms[biggest] > EXPLODING_NORM
                     or ratio > EXPLODING_RATIO)
        for kind, flag in (("vanishing_gradients", vanishing), ("exploding_gradients", exploding)):
            self.streak[kind] = self.streak[kind] + 1 if flag else 0
        at_once = diverged or not all(math.isfinite(v) for v in norms)  # training stops here
        if at_once:
            self.streak["exploding_gradients"] = max(self.streak["exploding_gradients"], self.needed)
        if self.streak["vanishing_gradients"] == self.needed:
            self._report(Finding(
                "vanishing_gradients", epoch, (1, n), ratio,
                f"vanishing gradients: the first hidden layer's gradient norm (layer1, {first:.3g}) stayed below "
                f"1/1000 of the last layer's (layer{n}, {last:.3g}), ratio {ratio:.2g}, for {self.needed} epochs "
                f"up to epoch {epoch}; remedies: {GRADIENT_REMEDIES}"))
        if self.streak["exploding_gradients"] >= self.needed:
            held = " and the loss became NaN or inf" if at_once else f" for {self.needed} epochs"
            self._report(Finding(
                "exploding_gradients", epoch, (1, biggest + 1, n), norms[biggest],
                f"exploding gradients: layer{biggest + 1}'s gradient norm is {norms[biggest]:.3g} "
                f"(layer1 {first:.3g}, layer{n} {last:.3g}){held} at epoch {epoch}; "
                "remedies: training.clip_norm, a smaller optimizer.lr, He or Xavier initialization "
                "(model.init.scheme), normalized inputs (data.normalize), fewer layers"))

    # ---- activations -----------------------------------------------------------------

    def _activations(self, model, epoch: int) -> None:
        self.last_checked = epoch
        with np.errstate(all="ignore"):
            stats = activation_stats(model, self.x_val)
        names = [act.name for act in model.activations[:-1]]
        saturated = [(l, f, names[l - 1]) for l, (k, f) in enumerate(stats, start=1)
                     if k == "saturated" and f >= SATURATED_FRACTION]
        dead = [(l, f, names[l - 1]) for l, (k, f) in enumerate(stats, start=1) if k == "dead" and f >= DEAD_FRACTION]
        if saturated:
            self._report(Finding(
                "saturated_units", epoch, tuple(l for l, _, _ in saturated), max(f for _, f, _ in saturated),
                f"saturated units at epoch {epoch}: {_layer_list(saturated)} of the activations on the validation "
                "rows are beyond ±0.99 of their range, where the derivative is near 0; remedies: normalized inputs "
                "(data.normalize), Xavier initialization, a smaller optimizer.lr, ReLU-family activations"))
        if dead:
            self._report(Finding(
                "dead_relu", epoch, tuple(l for l, _, _ in dead), max(f for _, f, _ in dead),
                f"dead ReLUs at epoch {epoch}: {_layer_list(dead)} of the units are never active on the validation "
                "rows; remedies: a smaller optimizer.lr, He initialization, leaky_relu"))

    def _report(self, finding: Finding) -> None:
        if any(f.kind == finding.kind and f.layers == finding.layers for f in self.findings):
            return
        self.findings.append(finding)
        if self.on_finding is not None:
            self.on_finding(finding)


def _layer_list(items: list[tuple[int, float, str]]) -> str:
    """'layer2 (sigmoid): 73%, layer3 (sigmoid): 91%'."""
    return ", ".join(f"layer{l} ({name}): {frac:.0%}" for l, frac, name in items)
