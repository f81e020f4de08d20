"""Tests for nnctl.app.assembly: one assembly for runs, folds, restart members and final
models; callback state under explicit keys; checkpoints from before the keys."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from nnctl.app import assembly
from nnctl.app.assembly import STATE_KEYS, Purpose, Rows, Training, assemble, upgrade_state_keys
from nnctl.app.executors import LocalExecutor
from nnctl.app.jobs import Job, run_job
from nnctl.app.restarts import train_restarts
from nnctl.app.runs import RunStore, load_npz
from nnctl.app.selection import crossval
from nnctl.app.spec import load_spec, parse_spec
from nnctl.app.training import prepare, resume_run, train_from_spec
from nnctl.engine.callbacks import Callback

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
APP = Path(assembly.__file__).parent


def test_only_the_assembly_imports_the_engines_fit() -> None:
    importers = []
    for path in sorted(APP.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "nnctl.engine.trainer":
                if any(a.name == "fit" for a in node.names):
                    importers.append(path.name)
            if isinstance(node, ast.Attribute) and node.attr == "fit" and getattr(node.value, "id", "") == "trainer":
                importers.append(path.name)
    assert importers == ["assembly.py"]


def test_runs_folds_members_and_final_models_all_train_through_the_assembly(tmp_path: Path, monkeypatch) -> None:
    kinds: list[str] = []
    calls = {"fit": 0}
    run, engine_fit = Training.run, assembly.fit

    def recording_run(self, resume=None):
        kinds.append(self.purpose.kind)
        return run(self, resume)

    def counting_fit(*args, **kwargs):
        calls["fit"] += 1
        return engine_fit(*args, **kwargs)

    monkeypatch.setattr(Training, "run", recording_run)
    monkeypatch.setattr(assembly, "fit", counting_fit)
    store = RunStore(tmp_path)
    train_from_spec(load_spec(CONFIGS / "iris.yaml", ["training.epochs=3"]), store, base_dirs=[CONFIGS])
    assert kinds == ["run"]
    crossval(load_spec(CONFIGS / "iris.yaml", ["training.epochs=3"]), store, folds=2,
             make_executor=lambda: LocalExecutor(1), base_dirs=[CONFIGS])
    assert kinds == ["run", "fold", "fold", "final"]
    train_restarts(load_spec(CONFIGS / "xor.yaml", ["training.epochs=5", "restarts={count: 2}"]), store,
                   make_executor=lambda: LocalExecutor(1), base_dirs=[CONFIGS])
    assert kinds == ["run", "fold", "fold", "final", "member", "member"]
    assert calls["fit"] == len(kinds)


def test_the_purpose_decides_stopping_diagnosis_and_the_best_epoch_metric() -> None:
    p = prepare(load_spec(CONFIGS / "iris.yaml", ["training.epochs=4"]), [CONFIGS])
    rows = Rows.of(p.splits)
    run = assemble(p.spec, rows, Purpose("run", "val_loss"), net=p.net)
    assert list(run.state) == ["gradient_norms", "diagnosis", "stopping.early_stopping", "best_weights"]
    assert all(cb.state_key == key for key, cb in run.state.items())
    fold = assemble(p.spec, rows, Purpose("fold", "val_accuracy", fixed=True))
    assert list(fold.state) == ["gradient_norms", "best_weights"] and fold.best.metric == "val_accuracy"
    assert fold.net is not p.net and np.array_equal(fold.net.params, p.net.params)  # the same initial weights
    member = assemble(p.spec, rows, Purpose("member", "val_loss", member=1))
    assert not np.array_equal(member.net.params, p.net.params)  # member 1 starts elsewhere
    assert set(run.state) <= set(STATE_KEYS)
    with pytest.raises(ValueError, match="kind 'restart'"):
        Purpose("restart", "val_loss")


@pytest.mark.parametrize("layers, threads", [("[{units: 16}]", 1), ("[{units: 1024}, {units: 1024}]", 2)])
def test_a_training_runs_on_the_blas_threads_its_shapes_ask_for(layers: str, threads: int, monkeypatch) -> None:
    """Small steps run on one BLAS thread, large ones on every thread the library has,
    and the fit itself runs with that many (read inside the loop)."""
    from threadpoolctl import threadpool_info

    monkeypatch.setattr(assembly, "blas_threads", lambda: 2)
    spec = load_spec(CONFIGS / "digits.yaml", ["training.epochs=1", f"model.layers={layers}",
                                               "training.batch_size=128"])
    p = prepare(spec, [CONFIGS])
    training = assemble(p.spec, Rows.of(p.splits), Purpose("run", "val_loss"), net=p.net)
    assert training.threads == threads

    seen: list[int] = []

    class ReadThreads(Callback):
        def on_epoch_end(self, state, logs) -> None:
            seen.append(max(i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"))

    training.add(ReadThreads())
    training.run()
    assert seen == [threads]


def test_jobs_and_runs_share_the_loop_settings_clip_norm_included() -> None:
    """A fold or restart job trains with the settings a run does: clip_norm changes a
    job's training exactly as it changes a run's."""
    text = (CONFIGS / "iris.yaml").read_text()
    base = ["training.epochs=3", "data.split.validation=0", "stopping.early_stopping=null",
            "optimizer={name: sgd, lr: 0.5}"]
    specs = [prepare(parse_spec(text, overrides=[*base, *extra])).spec
             for extra in ([], ["training.clip_norm=0.01"])]
    curves = [run_job(Job(spec=s, fixed=True, metric="train_loss")).history for s in specs]
    assert [r["train_loss"] for r in curves[0]] != [r["train_loss"] for r in curves[1]]
    # With plain SGD, a gradient clipped to norm 0.01 moves the weights at most 0.005 a step.
    assert curves[1][-1]["train_loss"] > curves[0][-1]["train_loss"]


def test_member_zero_trains_as_the_plain_run(tmp_path: Path) -> None:
    spec = load_spec(CONFIGS / "iris.yaml", ["training.epochs=12"])
    result = train_from_spec(spec, RunStore(tmp_path), base_dirs=[CONFIGS])
    job = run_job(Job(spec=prepare(spec, [CONFIGS]).spec, kind="member", base_dirs=(str(CONFIGS),), member=0,
                      metric="val_loss"))
    best = load_npz(Path(result.run_dir) / "best.npz")
    assert all(np.array_equal(best[k], v) for k, v in job.state.items())


def _stopped_run(tmp_path: Path, epochs: int):
    class StopAfter(Callback):
        def on_epoch_end(self, state, logs) -> None:
            state.stop_requested = state.epoch >= 3

    spec = load_spec(CONFIGS / "iris.yaml", [f"training.epochs={epochs}", "model.layers[0].dropout=0.1"])
    store = RunStore(tmp_path)
    return spec, store, train_from_spec(spec, store, callbacks=[StopAfter()], base_dirs=[CONFIGS])


def test_a_checkpoint_names_each_callbacks_state_by_its_key(tmp_path: Path) -> None:
    _, _, stopped = _stopped_run(tmp_path, 8)
    saved = {k.split(".", 1)[1].rsplit(".", 1)[0] for k in load_npz(Path(stopped.run_dir) / "last.npz")
             if k.startswith("callback.")}
    assert saved == {"gradient_norms", "diagnosis", "stopping.early_stopping", "best_weights"}


def test_a_checkpoint_with_class_name_keys_still_resumes_bit_for_bit(tmp_path: Path) -> None:
    spec, store, stopped = _stopped_run(tmp_path / "a", 8)
    whole = train_from_spec(spec, RunStore(tmp_path / "b"), base_dirs=[CONFIGS])
    last = Path(stopped.run_dir) / "last.npz"
    legacy = {"gradient_norms": "GradientNorms", "diagnosis": "Diagnosis",
              "stopping.early_stopping": "EarlyStopping", "best_weights": "BestWeights"}
    arrays = {}
    for key, value in load_npz(last).items():
        for new, old in legacy.items():
            if key.startswith(f"callback.{new}."):
                key = f"callback.{old}." + key[len(f"callback.{new}."):]
        arrays[key] = value
    assert "callback.BestWeights.best_params" in arrays
    np.savez(last, **arrays)
    resumed = resume_run(store, stopped.run_id)
    assert resumed.resumed_from == 3 and resumed.epochs == whole.epochs
    a, b = load_npz(Path(resumed.run_dir) / "last.npz"), load_npz(Path(whole.run_dir) / "last.npz")
    assert set(a) == set(b)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_upgrade_leaves_keyed_state_alone_and_numbers_repeated_classes() -> None:
    from nnctl.engine.callbacks import NoImprovement

    state = {"first": NoImprovement("val_loss", 3), "second": NoImprovement("train_loss", 3)}
    old = {"callback.NoImprovement0.wait": np.int64(1), "callback.NoImprovement1.wait": np.int64(2), "x": np.int64(0)}
    assert upgrade_state_keys(old, state) == {"callback.first.wait": 1, "callback.second.wait": 2, "x": 0}
    keyed = {"callback.first.wait": np.int64(1)}
    assert upgrade_state_keys(keyed, state) == keyed
