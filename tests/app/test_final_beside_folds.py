"""The crossval final model trained beside the folds: recorded from a kept state, it is
the same run, bit for bit, as the one trained after the folds; and the executors' queued
follow-up jobs that carry it."""

from __future__ import annotations

import csv
import json
import operator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from nnctl.app.folds import cross_validation_spec
from nnctl.app.executors import LocalExecutor
from nnctl.app.final_beside import FinalBesideFolds
from nnctl.app.jobs import run_job
from nnctl.app.runs import RunStore, load_npz
from nnctl.app.selection import crossval, plan
from nnctl.app.spec import load_spec
from nnctl.app.training import train_from_spec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _same_run(a: Path, b: Path) -> None:
    """Every checkpoint array, every metrics.csv number but the timing, and the summary's results."""
    for name in ("best.npz", "last.npz"):
        x, y = load_npz(a / name), load_npz(b / name)
        assert x.keys() == y.keys(), name
        for key in x:
            assert np.array_equal(x[key], y[key]), f"{name} {key}"

    def rows(run: Path) -> list[dict[str, str]]:
        with (run / "metrics.csv").open() as fh:
            return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]

    assert rows(a) == rows(b)
    sa, sb = (json.loads((r / "summary.json").read_text()) for r in (a, b))
    for key in ("status", "stop_reason", "epochs", "best_epoch", "best_metric", "metrics", "diagnosis", "warnings"):
        assert sa[key] == sb[key], key
    assert (a / "spec.yaml").read_text() == (b / "spec.yaml").read_text()


def _parts(spec) -> tuple[FinalBesideFolds, object]:
    """The final model's two parts, run here, one after the other."""
    (combo,) = plan(spec, 3, [], [CONFIGS])
    beside = FinalBesideFolds.plan(combo.prepared, LocalExecutor(2), [CONFIGS])
    assert beside is not None
    for _, result in LocalExecutor(1).map_unordered(run_job, [beside.first], beside.follow):
        assert beside.owns(result)
    assert sorted(beside.parts) == [1, 2]
    return beside, combo


@pytest.mark.parametrize("epochs", [6, 7, 20, 21, 33, 40])
def test_a_run_that_goes_on_from_a_kept_state_equals_one_trained_from_the_start(tmp_path: Path, epochs: int) -> None:
    spec = load_spec(CONFIGS / "iris.yaml", ["training.epochs=40", "model.layers[0].dropout=0.2"])
    beside, combo = _parts(cross_validation_spec(spec))
    p = combo.prepared
    final_spec = p.spec.model_copy(update={"training": p.spec.training.model_copy(update={"epochs": epochs})})
    start = beside.start(epochs)
    assert start is not None
    state, logs = start
    kept = int(state["fit.epoch"])
    assert kept <= epochs and kept > epochs - beside.first.snapshots and len(logs) == kept
    went_on = train_from_spec(final_spec, RunStore(tmp_path / "a"), base_dirs=[CONFIGS], keep_last=True, start=start)
    fresh = train_from_spec(final_spec, RunStore(tmp_path / "b"), base_dirs=[CONFIGS], keep_last=True)
    assert went_on.resumed_from is None and went_on.epochs == fresh.epochs == epochs
    _same_run(Path(went_on.run_dir), Path(fresh.run_dir))


def test_crossval_with_the_final_model_beside_the_folds_equals_one_worker(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec(CONFIGS / "iris.yaml", ["training.epochs=30"])
    used: list[int] = []
    original = FinalBesideFolds.start

    def spy(self, epochs: int):
        start = original(self, epochs)
        used.append(-1 if start is None else int(start[0]["fit.epoch"]))
        return start

    monkeypatch.setattr(FinalBesideFolds, "start", spy)
    results = {w: crossval(spec, RunStore(tmp_path / str(w)), folds=4, make_executor=lambda w=w: LocalExecutor(w),
                           base_dirs=[CONFIGS]) for w in (1, 2)}
    assert len(used) == 1 and used[0] > 0  # only the two-worker crossval kept states, and one was used
    one, two = (results[w].cv for w in (1, 2))
    for doc in (one, two):
        doc.pop("seconds")
        for d in (doc, doc["final"]):
            d.pop("run_id"), d.pop("run_dir", None)
    assert one == two
    _same_run(Path(results[1].final.run_dir), Path(results[2].final.run_dir))


@pytest.mark.parametrize("override, reason", [
    (["training.lr_schedule={name: cosine}"], "the schedule depends on the epoch count"),
    (["training.epochs=5"], "too few epochs"),
    (["restarts={count: 3}"], "the final model is an ensemble"),
])
def test_the_final_model_trains_after_the_folds_where_beside_could_differ(override: list[str], reason: str) -> None:
    spec = cross_validation_spec(load_spec(CONFIGS / "iris.yaml", ["training.epochs=30", *override]))
    (combo,) = plan(spec, 3, [], [CONFIGS])
    assert FinalBesideFolds.plan(combo.prepared, LocalExecutor(2), [CONFIGS]) is None, reason


def test_the_final_model_trains_after_the_folds_with_one_worker_or_a_grid(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    spec = cross_validation_spec(load_spec(CONFIGS / "iris.yaml", ["training.epochs=30"]))
    (combo,) = plan(spec, 3, [], [CONFIGS])
    assert FinalBesideFolds.plan(combo.prepared, LocalExecutor(1), [CONFIGS]) is None
    planned: list[object] = []
    monkeypatch.setattr(FinalBesideFolds, "plan", classmethod(lambda cls, *a: planned.append(a)))
    crossval(load_spec(CONFIGS / "iris.yaml", ["training.epochs=6"]), RunStore(tmp_path), folds=2,
             grid=["model.layers[0].units=2,4"], make_executor=lambda: LocalExecutor(1), base_dirs=[CONFIGS])
    assert planned == []  # with a grid the winner is unknown until the folds end


def test_a_kept_state_is_used_only_up_to_the_chosen_epochs(tmp_path: Path) -> None:
    spec = load_spec(CONFIGS / "iris.yaml", ["training.epochs=40"])
    beside, _ = _parts(cross_validation_spec(spec))
    every = beside.first.snapshots
    assert every == 2 and beside.half == 20
    assert int(beside.start(40)[0]["fit.epoch"]) == 40
    assert int(beside.start(39)[0]["fit.epoch"]) == 39  # each of the last `every` epochs is kept
    assert int(beside.start(37)[0]["fit.epoch"]) == 36
    assert beside.start(5) is None  # below MIN_EPOCHS
    second = beside.parts.pop(2)
    assert int(beside.start(39)[0]["fit.epoch"]) == 20  # without the second part: the first's last state
    beside.parts[2] = replace(second, snapshots={})
    assert int(beside.start(39)[0]["fit.epoch"]) == 20
    beside.parts[2] = second


# ---------------------------------------------------------------- follow-up jobs
def _follow(index: int, result: int) -> list[int]:
    return [result * 10] if abs(result) < 10 else []


@pytest.mark.parametrize("workers", [1, 2])
def test_follow_up_jobs_join_the_queue_with_the_next_indexes(workers: int) -> None:
    executor = LocalExecutor(workers)
    try:
        out = dict(executor.map_unordered(operator.neg, [1, 2, 3], _follow))
    finally:
        executor.close()
    assert sorted(out) == [0, 1, 2, 3, 4, 5]
    assert [out[i] for i in (0, 1, 2)] == [-1, -2, -3]
    # follow-ups are numbered as they are queued, in the order their parents finished
    assert {out[i] for i in (3, 4, 5)} == {10, 20, 30}
    if workers == 1:
        assert [out[i] for i in (3, 4, 5)] == [10, 20, 30]


def test_workers_start_in_the_background_and_a_missing_preload_module_is_no_hang() -> None:
    executor = LocalExecutor(2, preload=("nnctl.app.jobs", "no_such_module_anywhere"))
    try:
        executor.start()  # returns at once; the pool comes up in the background
        assert dict(executor.map_unordered(operator.neg, [4, 5])) == {0: -4, 1: -5}
        assert dict(executor.map_unordered(operator.neg, [6])) == {0: -6}  # the same workers serve the next map
    finally:
        executor.close()
