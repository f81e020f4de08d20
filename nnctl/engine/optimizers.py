"""Optimizers, in increasing order of complexity.  Each holds only its own state and
applies one update rule, in place, to the flat parameter buffer ``w`` given its
gradient ``g``: ``step(w, g)``.  ``lr`` is set by the learning-rate schedule.

The adaptive rules follow the documented defaults of torch.optim (Adagrad,
RMSprop and Adam), eps added after the square root.  The compiled steps
(``accel/updates.py``) apply the same rules in one pass, operation for operation in
the same order, with bit-identical results.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

Array = np.ndarray


class SGD:
    """Plain gradient descent.

    Notes
    -----
    w ← w − η g
    """

    def __init__(self, size: int, lr: float = 0.01, dtype: type | np.dtype = np.float32) -> None:
        self.lr = float(lr)
        self._tmp = np.zeros(size, dtype=dtype)  # scratch, so that a step allocates nothing

    def step(self, w: Array, g: Array) -> None:
        """Update the parameters ``w`` in place from their gradient ``g``."""
        tmp = self._tmp
        np.multiply(g, self.lr, out=tmp)
        w -= tmp

    def state_dict(self) -> dict[str, Array]:
        return {}

    def load_state_dict(self, state: dict[str, Array]) -> None:
        _load(self, state, ())


class Momentum(SGD):
    """Momentum as an exponential moving average of scaled gradients.

    Notes
    -----
    v ← μ v + (1 − μ) η g ;  w ← w − v      (v₀ = 0, μ = 0.9 typical)
    """

    def __init__(self, size: int, lr: float = 0.01, mu: float = 0.9, dtype=np.float32) -> None:
        super().__init__(size, lr, dtype)
        self.mu = float(mu)
        self.v = np.zeros(size, dtype=dtype)

    def step(self, w: Array, g: Array) -> None:
        c = (1.0 - self.mu) * self.lr
        v, tmp = self.v, self._tmp
        v *= self.mu
        np.multiply(g, c, out=tmp)
        v += tmp
        w -= v

    def state_dict(self) -> dict[str, Array]:
        return {"v": self.v.copy()}

    def load_state_dict(self, state: dict[str, Array]) -> None:
        _load(self, state, ("v",))


class AdaGrad(SGD):
    """AdaGrad (Duchi et al., 2011), as torch.optim.Adagrad with lr_decay 0.

    Notes
    -----
    s ← s + g² ;  w ← w − η g / (√s + ε)      (s₀ = 0, ε = 1e−10)
    """

    def __init__(self, size: int, lr: float = 0.01, eps: float = 1e-10, dtype=np.float32) -> None:
        super().__init__(size, lr, dtype)
        self.eps = float(eps)
        self.s = np.zeros(size, dtype=dtype)

    def step(self, w: Array, g: Array) -> None:
        s, tmp = self.s, self._tmp
        np.multiply(g, g, out=tmp)
        s += tmp
        np.sqrt(s, out=tmp)
        tmp += self.eps
        np.divide(g, tmp, out=tmp)
        tmp *= self.lr
        w -= tmp

    def state_dict(self) -> dict[str, Array]:
        return {"s": self.s.copy()}

    def load_state_dict(self, state: dict[str, Array]) -> None:
        _load(self, state, ("s",))


class RMSProp(SGD):
    """RMSProp (Tieleman & Hinton, 2012), as torch.optim.RMSprop (no momentum, not centered).

    Notes
    -----
    v ← α v + (1 − α) g² ;  w ← w − η g / (√v + ε)      (v₀ = 0, α = 0.99, ε = 1e−8)
    """

    def __init__(self, size: int, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8, dtype=np.float32) -> None:
        super().__init__(size, lr, dtype)
        self.alpha, self.eps = float(alpha), float(eps)
        self.v = np.zeros(size, dtype=dtype)

    def step(self, w: Array, g: Array) -> None:
        v, tmp = self.v, self._tmp
        v *= self.alpha
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - self.alpha
        v += tmp
        np.sqrt(v, out=tmp)
        tmp += self.eps
        np.divide(g, tmp, out=tmp)
        tmp *= self.lr
        w -= tmp

    def state_dict(self) -> dict[str, Array]:
        return {"v": self.v.copy()}

    def load_state_dict(self, state: dict[str, Array]) -> None:
        _load(self, state, ("v",))


class Adam(SGD):
    """Adam (Kingma & Ba, 2015) with bias correction, as torch.optim.Adam.

    Notes
    -----
    t ← t + 1 ;  m ← β₁ m + (1 − β₁) g ;  v ← β₂ v + (1 − β₂) g²
    w ← w − (η / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
    (m₀ = v₀ = 0, β₁ = 0.9, β₂ = 0.999, ε = 1e−8); the division by √(1 − β₂ᵗ) is taken
    as a product with its reciprocal (within a rounding of torch's quotient).
    """

    def __init__(
        self, size: int, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
        eps: float = 1e-8, dtype=np.float32,
    ) -> None:
        super().__init__(size, lr, dtype)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.m = np.zeros(size, dtype=dtype)
        self.v = np.zeros(size, dtype=dtype)
        self.t = 0

    def corrections(self) -> tuple[float, float]:
        """(η / (1 − β₁ᵗ), 1 / √(1 − β₂ᵗ)) at the current step count t: the step size and
        the bias correction of √v, as a factor (a product is cheaper than a quotient)."""
        return self.lr / (1.0 - self.beta1**self.t), 1.0 / math.sqrt(1.0 - self.beta2**self.t)

    def step(self, w: Array, g: Array) -> None:
        self.t += 1
        step_size, inv_bc2 = self.corrections()
        b1, b2, m, v, tmp = self.beta1, self.beta2, self.m, self.v, self._tmp
        m *= b1
        np.multiply(g, 1.0 - b1, out=tmp)
        m += tmp
        v *= b2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - b2
        v += tmp
        np.sqrt(v, out=tmp)
        tmp *= inv_bc2
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= step_size
        w -= tmp

    def state_dict(self) -> dict[str, Array]:
        return {"m": self.m.copy(), "v": self.v.copy(), "t": np.array(self.t)}

    def load_state_dict(self, state: dict[str, Array]) -> None:
        _load(self, state, ("m", "v"))
        self.t = int(state["t"])


def _load(opt: SGD, state: dict[str, Array], keys: tuple[str, ...]) -> None:
    for key in keys:
        if key not in state:
            raise ValueError(f"optimizer.{key}: missing")
        dest = getattr(opt, key)
        if np.shape(state[key]) != dest.shape:
            raise ValueError(f"optimizer.{key}: shape {np.shape(state[key])}, expected {dest.shape}")
        dest[...] = state[key]


OPTIMIZERS: dict[str, Callable[..., SGD]] = {
    "sgd": SGD, "momentum": Momentum, "adagrad": AdaGrad, "rmsprop": RMSProp, "adam": Adam,
}


def make_optimizer(name: str, size: int, dtype=np.float32, **hyper: float) -> SGD:
    """Build the named optimizer for a flat buffer of ``size`` parameters."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](size, dtype=dtype, **hyper)
