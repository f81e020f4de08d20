"""Restart ensembles: several networks trained from different initial weights, combined.

    runs/<run-id>/ensemble.json        combine rule, member checkpoints, the best member
                  members/01/best.npz  each member's kept weights + preprocessing state
                  members/01/metrics.csv
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from nnctl.app import data as data_mod
from nnctl.app.errors import NnctlError
from nnctl.app.networks import build_network
from nnctl.app.runs import RunDir
from nnctl.engine.metrics import predicted_classes
from nnctl.engine.network import MLP

ENSEMBLE_FILE = "ensemble.json"
COMBINE_RULES = ("vote", "mean", "best")


def class_probabilities(a: np.ndarray) -> np.ndarray:
    """Output activations as class probabilities (n, C): a single sigmoid unit p becomes
    the two columns (1 − p, p); softmax rows are used as they are."""
    if a.shape[1] == 1:
        return np.hstack([1.0 - a, a])
    return a


def majority_vote(classes: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """The class most members predict, per row.

    ``classes``: (members, n) class indices; ``probabilities``: (members, n, C). Among
    classes with the most votes the one with the largest summed probability Σₘ pₘ(c)
    wins (then the lowest index).
    """
    members, n = classes.shape
    n_classes = probabilities.shape[2]
    counts = np.zeros((n, n_classes), dtype=np.int64)
    for m in range(members):
        np.add.at(counts, (np.arange(n), classes[m]), 1)
    tied = counts == counts.max(axis=1, keepdims=True)
    score = np.where(tied, probabilities.sum(axis=0, dtype=np.float64), -np.inf)
    return score.argmax(axis=1)


def _inverse_link(a: np.ndarray, output: str) -> np.ndarray:
    """Logits z whose output activation gives ``a``: log a for softmax (softmax(log a) = a
    when rows sum to 1), log(a / (1 − a)) for sigmoid, a itself otherwise."""
    tiny = np.finfo(a.dtype).tiny if a.dtype.kind == "f" else 1e-300
    if output == "softmax":
        return np.log(np.maximum(a, tiny))
    if output == "sigmoid":
        eps = np.finfo(a.dtype).eps
        p = np.clip(a, eps, 1 - eps)
        return np.log(p) - np.log1p(-p)
    return a


@dataclass
class Ensemble:
    """Members combined by ``combine``; answers like one network (``logits``, ``sizes``,
    ``dtype``, ``activations``) so split metrics and evaluation take it as it is.

    vote: each row's class is the members' majority (``majority_vote``); outputs and loss
    are those of the mean output. mean: outputs ā = (1/M) Σₘ aₘ (probabilities, or
    regression values), classes from ā. best: member ``chosen`` alone.
    """

    members: Sequence[MLP]
    combine: str
    chosen: int = 0

    def __post_init__(self) -> None:
        if self.combine not in COMBINE_RULES:
            raise ValueError(f"unknown combine rule {self.combine!r}; expected one of {', '.join(COMBINE_RULES)}")
        if not self.members:
            raise ValueError("an ensemble needs at least one member")
        first = self.members[0]
        self.sizes, self.dtype, self.activations = first.sizes, first.dtype, first.activations

    def logits(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.combine == "best":
            return self.members[self.chosen].logits(x)
        a = np.mean([m.logits(x)[1] for m in self.members], axis=0).astype(self.dtype)
        return _inverse_link(a, self.activations[-1].name), a

    def predict_classes(self, x: np.ndarray) -> np.ndarray:
        if self.combine == "best":
            return predicted_classes(self.members[self.chosen].logits(x)[1])
        outputs = [m.logits(x)[1] for m in self.members]
        if self.combine == "mean":
            return predicted_classes(np.mean(outputs, axis=0))
        classes = np.stack([predicted_classes(a) for a in outputs])
        return majority_vote(classes, np.stack([class_probabilities(a) for a in outputs]))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.logits(x)[1]


def member_dir(index: int) -> str:
    """Folder of member ``index`` (1-based) inside the run."""
    return f"members/{index:02d}"


def load_ensemble(run: RunDir, spec: Any) -> tuple[Ensemble, data_mod.Preprocessor]:
    """The run's ensemble (from ensemble.json and each member's best.npz) and its preprocessing."""
    info = run.read_json(ENSEMBLE_FILE)
    members, prep = [], None
    for name in info.get("members", []):
        state = run.load_checkpoint(f"{name}/best.npz")
        try:
            prep = data_mod.Preprocessor.from_arrays(state)
            last = max(int(k[5:].split(".")[0]) for k in state if k.startswith("layer") and k.endswith(".weight"))
            net = build_network(spec, len(prep.input_names), state[f"layer{last}.weight"].shape[1])
            net.load_state_dict(state)
        except (KeyError, ValueError) as exc:
            raise NnctlError(f"{run.file(name)}/best.npz: {exc}") from None
        members.append(net)
    if prep is None:
        raise NnctlError(f"{run.file(ENSEMBLE_FILE)}: lists no members")
    try:
        return Ensemble(members, str(info.get("combine")), int(info.get("chosen", 0))), prep
    except ValueError as exc:
        raise NnctlError(f"{run.file(ENSEMBLE_FILE)}: {exc}") from None
