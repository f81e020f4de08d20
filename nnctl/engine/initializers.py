"""Weight initializers.  Each takes an explicit ``np.random.Generator`` and returns
(weight of shape (fan_in, fan_out), bias of shape (fan_out,)) in float64; the
network casts them, so float32 and float64 runs start from the same numbers."""

from __future__ import annotations

from typing import Callable

import numpy as np

Array = np.ndarray
Init = Callable[[np.random.Generator, int, int, float], tuple[Array, Array]]


def uniform(rng: np.random.Generator, fan_in: int, fan_out: int, scale: float = 0.05):
    """Weights and biases drawn from U(−scale, scale): random, close to zero."""
    w = rng.uniform(-scale, scale, size=(fan_in, fan_out))
    b = rng.uniform(-scale, scale, size=fan_out)
    return w, b


def normal(rng: np.random.Generator, fan_in: int, fan_out: int, scale: float = 0.05):
    """Weights and biases drawn from N(0, scale²): random, close to zero."""
    w = rng.normal(0.0, scale, size=(fan_in, fan_out))
    b = rng.normal(0.0, scale, size=fan_out)
    return w, b


def xavier(rng: np.random.Generator, fan_in: int, fan_out: int, scale: float = 1.0):
    """Glorot & Bengio (2010): W ~ U(−r, r), r = scale·√(6 / (fan_in + fan_out)); b = 0."""
    r = scale * np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-r, r, size=(fan_in, fan_out)), np.zeros(fan_out)


def he(rng: np.random.Generator, fan_in: int, fan_out: int, scale: float = 1.0):
    """He et al. (2015): W ~ N(0, σ²), σ = scale·√(2 / fan_in); b = 0."""
    return rng.normal(0.0, scale * np.sqrt(2.0 / fan_in), size=(fan_in, fan_out)), np.zeros(fan_out)


INITIALIZERS: dict[str, Init] = {"uniform": uniform, "normal": normal, "xavier": xavier, "he": he}


def get_initializer(name: str) -> Init:
    if name not in INITIALIZERS:
        raise ValueError(f"unknown initializer {name!r}; expected one of {', '.join(INITIALIZERS)}")
    return INITIALIZERS[name]
