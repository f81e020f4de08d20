"""Learning-rate schedules, applied per epoch: each maps (base rate η₀, epoch e counted
from 0, total epochs E) to the rate used during epoch e."""

from __future__ import annotations

import math
from typing import Callable

Schedule = Callable[[float, int, int], float]


def constant(lr: float, epoch: int, epochs: int) -> float:
    """η = η₀."""
    return lr


def step(lr: float, epoch: int, epochs: int, step_size: int = 10, gamma: float = 0.5) -> float:
    """η = η₀ · γ^⌊e / step_size⌋."""
    return lr * gamma ** (epoch // step_size)


def exponential(lr: float, epoch: int, epochs: int, gamma: float = 0.95) -> float:
    """η = η₀ · γ^e."""
    return lr * gamma**epoch


def inverse_time(lr: float, epoch: int, epochs: int, decay: float = 0.01) -> float:
    """η = η₀ / (1 + decay · e)."""
    return lr / (1.0 + decay * epoch)


def cosine(lr: float, epoch: int, epochs: int, min_lr: float = 0.0) -> float:
    """η = η_min + ½ (η₀ − η_min)(1 + cos(π e / E))."""
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * epoch / max(epochs, 1)))


SCHEDULES: dict[str, Callable[..., float]] = {
    "constant": constant, "step": step, "exponential": exponential,
    "inverse_time": inverse_time, "cosine": cosine,
}


def make_schedule(name: str, **params: float) -> Schedule:
    """The named schedule with its parameters bound."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; expected one of {', '.join(SCHEDULES)}")
    fn = SCHEDULES[name]
    return lambda lr, epoch, epochs: fn(lr, epoch, epochs, **params)
