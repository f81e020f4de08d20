"""Restarts (``restarts: {count: N, combine: vote | mean | best}``): N trainings of the same
network on the same split from different random initial weights, run as independent
jobs and saved as one run whose model is their ensemble.

Member i trains with the initialization and shuffling streams of
``member_seed_sequences(seed, i)`` (member 0 is exactly the plain ``nnctl train``). The
best member is the one with the best value of the run's best-epoch metric (the
early-stopping metric, else the validation loss, else the training loss); ``best.npz``
holds it, and ``evaluate`` uses the whole ensemble described in ``ensemble.json``.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from nnctl.app.assembly import best_metric
from nnctl.app.checkpoints import history_csv
from nnctl.app.ensemble import ENSEMBLE_FILE, Ensemble, member_dir
from nnctl.app.errors import SpecError
from nnctl.app.jobs import Job, JobResult, run_job
from nnctl.app.networks import build_network
from nnctl.app.results import RunResult, final_metrics, json_metrics, summary_base
from nnctl.app.runs import RunDir, RunStore
from nnctl.app.spec import dump_spec_yaml
from nnctl.app.training import Prepared, prepare
from nnctl.app.values import finite_or_none
from nnctl.engine.callbacks import metric_mode


@dataclass(frozen=True)
class RestartsResult:
    """The run (metrics are the ensemble's) and each member's record."""

    run: RunResult
    combine: str
    chosen: int
    members: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.run.to_dict(), "combine": self.combine, "chosen_member": self.chosen + 1,
                "members": self.members}


def check_restarts(spec, task: str) -> None:
    """``vote`` needs classes."""
    if spec.restarts is not None and spec.restarts.combine == "vote" and task != "classification":
        raise SpecError("restarts.combine: vote needs classes, but the task is regression; use mean or best")


def train_restarts(
    spec, store: RunStore, *, executor=None, make_executor: Callable[[], Any] | None = None,
    base_dirs: Sequence[Path] = (), progress: Callable[[int, int, str], None] | None = None,
    on_warning=None, run: RunDir | None = None, fixed: bool = False,
) -> RestartsResult:
    """Train ``spec.restarts.count`` members and save their ensemble as one run.

    ``fixed``: every member runs all ``training.epochs`` with no stopping criterion and
    keeps its last weights (the final model of ``crossval``). Bad input raises before the
    run directory is created; Ctrl-C marks the run interrupted, keeps the finished members
    and re-raises."""
    started = time.time()
    p = prepare(spec, base_dirs)
    spec, splits = p.spec, p.splits
    check_restarts(spec, splits.prep.task)
    for w in p.warnings:
        if on_warning:
            on_warning(w)
    count, combine = spec.restarts.count, spec.restarts.combine
    metric = best_metric(spec, len(splits.X_val) > 0)
    own = executor is None
    if own:
        executor = make_executor() if make_executor is not None else _inline()
    try:
        run = run if run is not None else store.create(spec.name)
        run.write_text("spec.yaml", dump_spec_yaml(spec))
        base = {**summary_base(run, p, base_dirs, started), "kind": "restarts"}
        run.write_json("summary.json", {**base, "status": "running"})
        jobs = [Job(spec=spec, kind="member", base_dirs=tuple(str(b) for b in base_dirs), member=i, fixed=fixed, metric=metric,
                    key=(i,), label=f"member {i + 1}") for i in range(count)]
        results = _run_members(run, p, jobs, executor, base, progress)
    finally:
        if own:
            executor.close()
    return _save_ensemble(run, p, results, combine, metric, base, started)


def _inline() -> Any:
    from nnctl.app.executors import LocalExecutor

    return LocalExecutor(1)


def _run_members(run: RunDir, p: Prepared, jobs: list[Job], executor: Any, base: dict[str, Any],
                 progress: Callable[[int, int, str], None] | None) -> list[JobResult]:
    """Run the member jobs; each finished member's files are written at once."""
    results: dict[int, JobResult] = {}
    best: tuple[float, str] | None = None
    prep_arrays = p.splits.prep.to_arrays()
    if progress:
        progress(0, len(jobs), "")
    try:
        with contextlib.closing(executor.map_unordered(run_job, jobs)) as finished:
            for index, result in finished:
                results[index] = result
                folder = run.path / member_dir(index + 1)
                folder.mkdir(parents=True, exist_ok=True)
                member = RunDir(folder)
                member.write_text("metrics.csv", history_csv(result.history, p.net.n_layers, p.metric))
                member.save_checkpoint("best.npz", {**result.state, **prep_arrays})
                value = result.best_value if metric_mode(result.metric) == "min" else -result.best_value
                if math.isfinite(value) and (best is None or value < best[0]):
                    best = (value, f"best {result.metric}={result.best_value:.4g} ({result.label})")
                if progress:
                    progress(len(results), len(jobs), best[1] if best else "")
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        run.write_json("summary.json", {**base, "status": status, "stop_reason": status,
                                        "members_completed": len(results)})
        raise
    return [results[i] for i in range(len(jobs))]


def _save_ensemble(run: RunDir, p: Prepared, results: list[JobResult], combine: str, metric: str,
                   base: dict[str, Any], started: float) -> RestartsResult:
    """Load the members, pick the best, measure members and ensemble, write ensemble.json,
    best.npz and summary.json."""
    spec, splits = p.spec, p.splits
    nets = []
    for r in results:
        net = build_network(spec, splits.X_train.shape[1], p.units)
        net.load_state_dict(r.state)
        nets.append(net)
    sign = 1.0 if metric_mode(metric) == "min" else -1.0
    scores = [sign * r.best_value if math.isfinite(r.best_value) else math.inf for r in results]
    chosen = int(np.argmin(scores))
    ensemble = Ensemble(nets, combine, chosen)
    metrics = final_metrics(ensemble, spec, splits)
    members = [
        {"member": i + 1, "dir": member_dir(i + 1), "status": _status(r), "stop_reason": r.stop_reason,
         "epochs": r.epochs, "best_epoch": r.best_epoch, "best_metric": {metric: finite_or_none(r.best_value)},
         "metrics": json_metrics(final_metrics(net, spec, splits))}
        for i, (r, net) in enumerate(zip(results, nets))
    ]
    run.write_json(ENSEMBLE_FILE, {"combine": combine, "members": [member_dir(i + 1) for i in range(len(results))],
                                   "chosen": chosen, "metric": metric})
    run.save_checkpoint("best.npz", {**results[chosen].state, **splits.prep.to_arrays()})
    status = "completed" if any(m["status"] == "completed" for m in members) else "diverged"
    stop_reason = "restarts" if status == "completed" else "diverged"
    epochs = max(r.epochs for r in results)
    run.write_json("summary.json", {
        **base, "status": status, "stop_reason": stop_reason, "epochs": epochs,
        "best_epoch": results[chosen].best_epoch, "best_metric": {metric: finite_or_none(results[chosen].best_value)},
        "metrics": json_metrics(metrics), "ensemble": {"combine": combine, "count": len(results),
                                                        "chosen_member": chosen + 1},
        "members": members, "seconds": {"total": time.time() - started},
    })
    result = RunResult(
        run_id=run.id, run_dir=str(run.path), name=spec.name, status=status, stop_reason=stop_reason,
        epochs=epochs, best_epoch=results[chosen].best_epoch, seed=p.seed, task=splits.prep.task,
        metrics=metrics, warnings=p.warnings, seconds=time.time() - started,
    )
    return RestartsResult(result, combine, chosen, members)


def _status(r: JobResult) -> str:
    return "diverged" if r.stop_reason == "diverged" else "completed"
