"""The Dask executor gives the numbers of local workers (a LocalCluster of 2 processes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from nnctl.app.executors import DaskExecutor, LocalExecutor  # noqa: E402
from nnctl.app.restarts import train_restarts  # noqa: E402
from nnctl.app.runs import RunStore, load_npz  # noqa: E402
from nnctl.app.selection import crossval  # noqa: E402
from nnctl.app.spec import load_spec  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(scope="module")
def scheduler() -> str:
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def _without_ids(cv: dict) -> dict:
    cv = json.loads(json.dumps(cv))
    for doc in (cv, cv["final"]):
        doc.pop("run_id")
    cv["final"].pop("run_dir")
    cv.pop("seconds")  # wall-clock times differ between runs
    return cv


def test_crossval_on_dask_equals_local(scheduler: str, tmp_path: Path) -> None:
    spec = load_spec(CONFIGS / "iris.yaml", ["training.epochs=8"])
    kwargs = dict(folds=3, grid=["model.layers[0].units=3,5"], base_dirs=[CONFIGS])
    local = crossval(spec, RunStore(tmp_path / "local"), make_executor=lambda: LocalExecutor(1), **kwargs)
    dask = crossval(spec, RunStore(tmp_path / "dask"), make_executor=lambda: DaskExecutor(scheduler), **kwargs)
    assert _without_ids(dask.cv) == _without_ids(local.cv)


def test_crossval_on_dask_with_the_final_model_beside_the_folds_equals_local(scheduler: str, tmp_path: Path) -> None:
    """One combination on 2 Dask workers: the final model trains beside the folds, its
    second part queued on the cluster when the first is done."""
    spec = load_spec(CONFIGS / "iris.yaml", ["training.epochs=12"])
    kwargs = dict(folds=3, base_dirs=[CONFIGS])
    local = crossval(spec, RunStore(tmp_path / "local"), make_executor=lambda: LocalExecutor(1), **kwargs)
    dask = crossval(spec, RunStore(tmp_path / "dask"), make_executor=lambda: DaskExecutor(scheduler), **kwargs)
    assert _without_ids(dask.cv) == _without_ids(local.cv)
    a, b = (load_npz(Path(r.final.run_dir) / "last.npz") for r in (local, dask))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_restarts_on_dask_equal_local(scheduler: str, tmp_path: Path) -> None:
    spec = load_spec(CONFIGS / "iris.yaml", ["training.epochs=8", "restarts.count=3"])
    local = train_restarts(spec, RunStore(tmp_path / "local"), base_dirs=[CONFIGS])
    dask = train_restarts(spec, RunStore(tmp_path / "dask"), make_executor=lambda: DaskExecutor(scheduler),
                          base_dirs=[CONFIGS])
    assert dask.members == local.members and dask.run.metrics == local.run.metrics
