"""The crossval final model trained beside the folds (``nnctl crossval`` with several
workers): its two parts as jobs, and the state a final run goes on from."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nnctl.app.assembly import best_metric
from nnctl.app.jobs import Job, JobResult
from nnctl.app.training import Prepared


class FinalBesideFolds:
    """The final model trained beside the folds, before its number of epochs is known.

    With one combination and several workers, the final network (all non-test rows, the
    spec's seed streams, no stopping) is trained for the spec's full epoch count in two
    parts, keeping its resumable state after every ``every``-th epoch (about ``SNAPSHOTS``
    in all) and after each of the last ``every`` (cross-validation without stopping often
    chooses one of the last epochs): the first half is queued ahead of the folds, the second behind them once the
    first is done, so the workers finish together and little final training is left for
    after the folds.  When E* is chosen, the run goes on from the state after the last
    kept epoch s ≤ E* (``train_from_spec(start=...)``) and trains E* − s epochs, with the
    same result, bit for bit, as training it for E* epochs from the start.  Not used
    where that could differ or cost too much: a learning-rate schedule that depends on
    the epoch count (cosine), restarts, a grid, one worker, fewer than ``MIN_EPOCHS``
    epochs, or kept states above ``MAX_BYTES``.
    """

    SNAPSHOTS = 20
    MAX_BYTES = 256 * 2**20
    MIN_EPOCHS = 6  # below, the final training is short, and diagnosis depends on the count

    def __init__(self, job: Job, half: int) -> None:
        self.first, self.half = job, half
        self.parts: dict[int, JobResult] = {}

    @classmethod
    def plan(cls, p: Prepared, executor: Any, base_dirs: Sequence[Path]) -> "FinalBesideFolds | None":
        """The first part's job for the prepared cross-validation spec ``p`` (the one
        combination), or None where the final model should train after the folds."""
        if getattr(executor, "workers", 1) < 2:
            return None
        spec, epochs = p.spec, p.spec.training.epochs
        if (epochs < cls.MIN_EPOCHS or spec.training.lr_schedule.name == "cosine"
                or (spec.restarts is not None and spec.restarts.count > 1)):
            return None
        if 4 * p.net.params.size * p.net.dtype.itemsize * (2 * cls.SNAPSHOTS + 2) > cls.MAX_BYTES:
            return None  # parameters, best weights and two optimizer moments per kept state
        half = epochs // 2
        job = Job(spec=spec, kind="final", base_dirs=tuple(str(b) for b in base_dirs), fixed=True,
                  metric=best_metric(spec, has_val=False), key=("final", 1),
                  label=f"final model, epochs 1-{half}", snapshots=max(1, -(-epochs // cls.SNAPSHOTS)),
                  stop_after=half)
        return cls(job, half)

    def owns(self, result: JobResult) -> bool:
        """Whether ``result`` is a part of the final model (kept here)."""
        if result.key[:1] != ("final",):
            return False
        self.parts[result.key[1]] = result
        return True

    def follow(self, index: int, result: JobResult) -> list[Job]:
        """The second part, queued when the first finished with a state to go on from."""
        if result.key != ("final", 1) or self.half not in result.snapshots:
            return []
        epochs = self.first.spec.training.epochs
        return [replace(self.first, key=("final", 2), label=f"final model, epochs {self.half + 1}-{epochs}",
                        start=result.snapshots[self.half], stop_after=None)]

    def start(self, epochs: int) -> tuple[dict[str, np.ndarray], list[dict[str, float]]] | None:
        """(state after the last kept epoch s ≤ ``epochs``, logs of epochs 1..s), or None
        when there is none (or ``epochs`` is too small to use one)."""
        if epochs < self.MIN_EPOCHS:
            return None
        snapshots = {e: s for part in self.parts.values() for e, s in part.snapshots.items()}
        kept = [e for e in snapshots if e <= epochs]
        if not kept:
            return None
        s = max(kept)
        logs = sorted((row for part in self.parts.values() for row in part.history if row["epoch"] <= s),
                      key=lambda r: r["epoch"])
        if [int(r["epoch"]) for r in logs] != list(range(1, s + 1)):
            return None
        return snapshots[s], logs
