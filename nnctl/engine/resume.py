"""Everything a stopped ``fit`` needs to go on exactly where it left off, as named arrays.

``capture`` after a stop (or at an epoch end) and ``restore`` at the start of the next
``fit`` carry: the finished epoch count, the states of the shuffling and dropout random
generators, the optimizer's state (velocities, moments, step count), each callback's
state (best metric, patience counters, best weights, ...) and, for an epoch stopped
part-way, an ``EpochCursor``.  The learning-rate schedule is a function of the epoch,
so the epoch fixes its position.  Restoring all of it makes the continued run take the
same steps, bit for bit, as one never stopped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

Array = np.ndarray


@dataclass
class EpochCursor:
    """An epoch stopped part-way: the visiting ``order`` drawn for it, how many rows of it
    were trained on (``position``), and the running sums of its training loss and metric
    (``loss``; ``seen`` rows; predicted classes ``pred`` or squared errors ``sq``)."""

    position: int
    order: Array
    loss: float
    seen: int
    pred: Array | None
    sq: Array


def callback_keys(callbacks: Sequence[object]) -> list[str]:
    """A stable name per callback: its ``state_key`` where it has one, else its class
    name, numbered when a class repeats. Two callbacks with one ``state_key`` raise
    ValueError."""
    explicit = [getattr(cb, "state_key", "") for cb in callbacks]
    named = [k for k in explicit if k]
    if len(set(named)) != len(named):
        raise ValueError(f"callbacks share a state key: {sorted(k for k in set(named) if named.count(k) > 1)}")
    names = [type(cb).__name__ for cb in callbacks]
    return [key or (n if names.count(n) == 1 else f"{n}{names[:i].count(n)}")
            for i, (key, n) in enumerate(zip(explicit, names))]


def capture(state, callbacks: Sequence[object]) -> dict[str, Array]:
    """The resumable state of a fit (``TrainingState`` ``state``) as ``fit.*``,
    ``optimizer.*``, ``callback.<Name>.*`` and ``cursor.*`` arrays."""
    out: dict[str, Array] = {"fit.epoch": np.int64(state.epoch)}
    if state.stop_reason not in (None, "interrupted"):
        out["fit.stop_reason"] = np.array(state.stop_reason)  # training had ended
    for name, rng in state.rngs.items():
        out[f"fit.rng.{name}"] = np.array(json.dumps(rng.bit_generator.state))
    for key, value in state.optimizer.state_dict().items():
        out[f"optimizer.{key}"] = np.asarray(value)
    for name, cb in zip(callback_keys(callbacks), callbacks):
        for key, value in cb.state_dict().items():
            out[f"callback.{name}.{key}"] = np.asarray(value)
    c = state.cursor
    if c is not None:
        out.update({
            "cursor.position": np.int64(c.position), "cursor.order": c.order, "cursor.loss": np.float64(c.loss),
            "cursor.seen": np.int64(c.seen), "cursor.sq": c.sq,
        })
        if c.pred is not None:
            out["cursor.pred"] = c.pred
    return out


def restore(state, callbacks: Sequence[object], arrays: Mapping[str, Array]) -> tuple[int, EpochCursor | None]:
    """Load what ``capture`` wrote into ``state`` (its generators and optimizer, and the
    stop reason of a training that had ended) and the callbacks; returns (finished
    epochs, cursor of the unfinished epoch or None).
    A missing key or wrong shape raises ValueError naming it."""
    try:
        epoch = int(_get(arrays, "fit.epoch"))
        for name, rng in state.rngs.items():
            rng.bit_generator.state = json.loads(str(_get(arrays, f"fit.rng.{name}")))
        opt = {k[len("optimizer."):]: v for k, v in arrays.items() if k.startswith("optimizer.")}
        state.optimizer.load_state_dict(opt)
        for name, cb in zip(callback_keys(callbacks), callbacks):
            prefix = f"callback.{name}."
            cb_state = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            if cb_state or cb.state_dict():
                try:
                    cb.load_state_dict(cb_state)
                except KeyError as exc:
                    raise KeyError(prefix + str(exc.args[0])) from None
    except KeyError as exc:
        raise ValueError(f"{exc.args[0]}: missing") from None
    if "fit.stop_reason" in arrays:
        state.stop_reason = str(arrays["fit.stop_reason"])
    cursor = None
    if "cursor.position" in arrays:
        cursor = EpochCursor(
            position=int(arrays["cursor.position"]), order=np.asarray(_get(arrays, "cursor.order")),
            loss=float(_get(arrays, "cursor.loss")), seen=int(_get(arrays, "cursor.seen")),
            pred=np.array(arrays["cursor.pred"]) if "cursor.pred" in arrays else None,
            sq=np.array(_get(arrays, "cursor.sq"), dtype=np.float64),
        )
    return epoch, cursor


def _get(arrays: Mapping[str, Array], key: str) -> Array:
    if key not in arrays:
        raise KeyError(key)
    return arrays[key]
