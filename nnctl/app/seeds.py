"""Random streams: every generator a training uses comes from the spec's seed through
these independent seed sequences."""

from __future__ import annotations

import numpy as np


def seed_sequences(seed: int) -> tuple[np.random.SeedSequence, ...]:
    """Independent seed sequences (data split, initialization, training) from one seed,
    so that e.g. changing the split leaves the initial weights unchanged."""
    return tuple(np.random.SeedSequence(seed).spawn(3))


def fold_seed_sequence(seed: int) -> np.random.SeedSequence:
    """The stream that assigns rows to cross-validation folds: the fourth child of the
    spec seed's sequence, independent of the split, initialization and training streams."""
    return np.random.SeedSequence(seed, spawn_key=(3,))


def member_seed_sequences(seed: int, member: int) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    """(initialization, training) streams of restart member ``member`` (0-based).

    Member 0 uses the plain run's streams, so one restart equals ``nnctl train``; member
    i > 0 uses the i-th children of those streams (spawn keys (1, i) and (2, i)). The data
    split is the same for every member."""
    if member == 0:
        return seed_sequences(seed)[1:]  # type: ignore[return-value]
    return np.random.SeedSequence(seed, spawn_key=(1, member)), np.random.SeedSequence(seed, spawn_key=(2, member))
