"""Scalers: per-unit offset and scale for each ``normalize`` choice, and the target's scaling.

For ``standard``: offset = mean, scale = standard deviation; ``minmax``: offset = min,
scale = max − min; ``minmax_symmetric``: offset = (min + max)/2, scale = (max − min)/2, so
x' = (x − offset)/scale maps [min, max] to [−1, 1]. A constant unit keeps scale 1.
"""

from __future__ import annotations

import numpy as np

from nnctl.app.data import sources

NORMALIZERS = ("none", "minmax", "minmax_symmetric", "standard")


def check_normalize(normalize: str) -> None:
    if normalize not in NORMALIZERS:
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZERS)}; got {normalize!r}")


def safe_scale(scale: np.ndarray, centre: np.ndarray) -> np.ndarray:
    # Constant columns keep scale 1 (x' = x - offset); the tolerance absorbs float noise in std().
    tiny = 1e-12 * np.maximum(1.0, np.abs(centre))
    return np.where(scale > tiny, scale, 1.0)


def fit_scaler(Z: np.ndarray, numeric: np.ndarray, normalize: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit offset and scale for ``normalize`` over the rows of ``Z``; one-hot units stay (0, 1)."""
    offset, scale = np.zeros(Z.shape[1]), np.ones(Z.shape[1])
    if normalize == "none" or not numeric.any():
        return offset, scale
    offset[numeric], scale[numeric] = fit_columns(Z[:, numeric], normalize)
    return offset, scale


def fit_columns(cols: np.ndarray, normalize: str) -> tuple[np.ndarray, np.ndarray]:
    """(offset, scale) of each column of the float64 block ``cols`` (n, k). Give it in Fortran
    order (each column contiguous, as ``Z[:, mask]`` is): NumPy then sums each column pairwise,
    and the same layout keeps the same float results."""
    if normalize == "standard":
        centre, spread = cols.mean(axis=0), cols.std(axis=0)
    elif normalize == "minmax":
        centre, spread = cols.min(axis=0), np.ptp(cols, axis=0)
    else:  # minmax_symmetric: [min, max] -> [-1, 1]
        lo, hi = cols.min(axis=0), cols.max(axis=0)
        centre, spread = (lo + hi) / 2, (hi - lo) / 2
    return centre, safe_scale(spread, centre)


def target_scaling(task: str, y: np.ndarray | None, scale_target: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Regression: (target_mean, target_scale) fitted on training targets ``y`` (n, k), or the
    identity; classification: (None, None)."""
    if task != "regression":
        return None, None
    assert y is not None and y.ndim == 2
    if scale_target:
        return y.mean(axis=0), safe_scale(y.std(axis=0), y.mean(axis=0))
    return np.zeros(y.shape[1]), np.ones(y.shape[1])


def block_rows(n_columns: int) -> int:
    """Rows per block so that a block holds about ``CHUNK_ELEMS`` cells."""
    return max(1, sources.CHUNK_ELEMS // max(n_columns, 1))


def fit_scaler_rows(X: np.ndarray, rows: np.ndarray, normalize: str) -> tuple[np.ndarray, np.ndarray]:
    """``fit_scaler`` over ``X[rows]`` (all units numeric), in float64, a block of rows at a time."""
    d = X.shape[1]
    offset, scale = np.zeros(d), np.ones(d)
    if normalize == "none" or d == 0:
        return offset, scale
    step = block_rows(d)

    def blocks():
        for start in range(0, len(rows), step):
            yield X[rows[start:start + step]].astype(np.float64, copy=False)

    if normalize == "standard":
        total = np.zeros(d)
        for block in blocks():
            total += block.sum(axis=0)
        centre = total / len(rows)
        squares = np.zeros(d)
        for block in blocks():
            block -= centre
            squares += np.einsum("ij,ij->j", block, block)
        spread = np.sqrt(squares / len(rows))
    else:
        lo, hi = np.full(d, np.inf), np.full(d, -np.inf)
        for block in blocks():
            np.minimum(lo, block.min(axis=0), out=lo)
            np.maximum(hi, block.max(axis=0), out=hi)
        if normalize == "minmax":
            centre, spread = lo, hi - lo
        else:  # minmax_symmetric
            centre, spread = (lo + hi) / 2, (hi - lo) / 2
    return centre, safe_scale(spread, centre)
