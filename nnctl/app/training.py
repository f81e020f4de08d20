"""``nnctl train`` and ``nnctl resume``: spec → data → engine → run directory."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nnctl.app import data as data_mod
from nnctl.app.assembly import Purpose, Rows, Training, assemble, best_metric, check_metric_names, logged_metric
from nnctl.app.checkpoints import Checkpointer, MetricsLogger, spec_differences, spec_hash
from nnctl.app.errors import Aborted, DataError, NnctlError, SpecError, StorageError
from nnctl.app.interrupts import StopRequest, stop_on_signals
from nnctl.app.networks import new_network, output_units
from nnctl.app.resources import check_fits_in_memory
from nnctl.app.results import RunResult, final_metrics, json_metrics, summary_base
from nnctl.app.runs import RunDir, RunStore, iter_columns
from nnctl.app.notes import inference_notes, inferred_task_note, with_reason
from nnctl.app.seeds import seed_sequences
from nnctl.app.spec import dump_spec_yaml, lint, parse_spec, resolve, spec_to_dict
from nnctl.app.values import finite_or_none
from nnctl.engine.callbacks import Callback

__all__ = ["Prepared", "RunResult", "best_metric", "check_spec", "prepare", "resume_run", "train_from_spec"]


@dataclass
class Prepared:
    """A spec resolved against its data, with everything training needs, before any run
    directory exists."""

    spec: Any
    seed: int
    splits: Any
    metric: str
    units: int
    warnings: list[str]
    net: Any  # the initialized network

    @property
    def summary(self) -> str:
        s, sp = self.spec, self.splits
        sizes = [sp.X_train.shape[1], *(layer.units for layer in s.model.layers), self.units]
        return (f"{s.data.task}, network {'-'.join(map(str, sizes))}, output {s.model.output}, loss {s.loss}, "
                f"rows train/val/test {len(sp.X_train)}/{len(sp.X_val)}/{len(sp.X_test)}")

    @property
    def spec_dict(self) -> dict[str, Any]:

        return spec_to_dict(self.spec)


def check_spec(spec, base_dirs: Sequence[Path] = ()) -> Prepared:
    """Validate a spec against its data without training (``nnctl validate``)."""
    return prepare(spec, base_dirs)


def prepare(spec, base_dirs: Sequence[Path] = ()) -> Prepared:
    """Draw the seed if 'random', load and split the data, and fill in the defaults that
    follow the task (loss, output activation); raises SpecError / DataError."""
    seed = secrets.randbits(32) if spec.seed == "random" else int(spec.seed)
    spec = spec.model_copy(update={"seed": seed})
    split_ss = seed_sequences(seed)[0]
    splits = data_mod.load_splits(spec.data, np.random.default_rng(split_ss), dtype=np.dtype(spec.dtype), base_dirs=base_dirs)
    prep = splits.prep
    n_classes = len(prep.classes) if prep.classes is not None else None
    given, inferred = spec, inference_notes(spec, prep)
    metric = logged_metric(prep.task)
    try:
        spec = resolve(spec, prep.task, n_classes)
        check_metric_names(spec, metric)
    except SpecError as exc:  # say why the task is what it is, when it was inferred
        raise with_reason(exc, inferred_task_note(given, prep)) from None
    if len(splits.X_val) == 0 and spec.stopping.early_stopping is not None:
        raise SpecError("stopping.early_stopping: needs validation rows, but the validation split is empty")
    n_targets = splits.y_train.shape[1] if splits.y_train.ndim == 2 else 1
    units = output_units(prep.task, n_classes, spec.model.output, n_targets)
    bs = len(splits.X_train) if spec.training.batch_size == "full" else min(spec.training.batch_size, len(splits.X_train))
    check_fits_in_memory(spec, splits.X_train.shape[1], units, bs)
    warnings = [*inferred, *lint(spec), *splits.warnings]
    net = new_network(spec, splits.X_train.shape[1], units, member=0, base_dirs=base_dirs)
    return Prepared(spec, seed, splits, metric, units, warnings, net)


def train_from_spec(
    spec, store: RunStore, callbacks: Sequence[Callback] = (), base_dirs: Sequence[Path] = (),
    on_warning=None, run: RunDir | None = None, keep_last: bool = False,
    start: tuple[dict[str, np.ndarray], Sequence[dict[str, float]]] | None = None,
    prepared: Prepared | None = None,
) -> RunResult:
    """Train the spec's network and record it in a new run directory.

    Everything that can be wrong with the spec or data is checked before the run
    directory is created, so bad input never leaves a half-written run.

    ``run``: record into this already-created run directory instead (``nnctl crossval``
    writes its folds there first). ``keep_last``: the kept model (best.npz) is the one
    after the last epoch, whatever the best epoch was (a fixed-length final training).
    ``start``: (state, logs) of this very training begun elsewhere: the parameters and
    resumable state after some epoch, as a checkpoint holds them, and the logs of the
    epochs up to it; the run records those and trains the rest, with the same result as
    training here from the beginning (it is not reported as resumed).
    ``prepared``: what ``prepare(spec)`` returns, when the caller has it already (its
    network initialized and not yet trained).
    """
    started = time.time()
    p = prepared if prepared is not None else prepare(spec, base_dirs)
    for w in p.warnings:
        if on_warning:
            on_warning(w)
    run = run if run is not None else store.create(p.spec.name)
    with run.lock():
        try:
            run.write_text("spec.yaml", dump_spec_yaml(p.spec))
        except OSError as exc:
            raise StorageError(f"{run.file('spec.yaml')}: cannot write ({exc.strerror})") from None
        base = {**summary_base(run, p, base_dirs, started), **({"keep_last": True} if keep_last else {})}
        if start is None:
            return _train(run, p, base, callbacks, None, started, on_warning, keep_last)
        state, logs = start
        _write_metrics(run, p, logs)
        p.net.load_state_dict(state)
        return _train(run, p, base, callbacks, dict(state), started, on_warning, keep_last, recorded=True)


def _write_metrics(run: RunDir, p: Prepared, logs: Sequence[dict[str, float]]) -> None:
    """metrics.csv with a row per epoch of ``logs``, as ``MetricsLogger`` writes them."""
    try:
        writer = run.metrics_writer(list(iter_columns(p.net.n_layers, p.metric)))
        for row in logs:
            writer.write({**row, "epoch": int(row["epoch"])})
        writer.close()
    except OSError as exc:
        raise StorageError(f"{run.file('metrics.csv')}: cannot write ({exc.strerror})") from None


def resume_run(
    store: RunStore, ref: str, spec=None, force: bool = False, callbacks: Sequence[Callback] = (),
    on_warning=None, spec_dirs: Sequence[Path] = (), on_log=None,
) -> RunResult:
    """Continue an interrupted run from its last checkpoint (or from the start if it has
    none) with the run's own spec, to the same result as a run never interrupted.

    ``spec``: a spec the caller expects the run to have (``train SPEC --resume``); it
    and the data must match what the run was trained with, unless ``force``, in which
    case the given spec (or changed data) is used from the checkpoint on.
    ``on_log``: told "resuming run ID from epoch N" before training goes on.
    """
    started = time.time()
    run = store.resolve(ref)
    summary = run.read_json("summary.json")
    status = run.status()
    if status == "completed":
        return _completed_result(run, summary)
    if status == "diverged":
        raise NnctlError(f"run {run.id} diverged (loss became NaN or inf); resuming it would diverge again",
                         hint="lower the learning rate or normalize the inputs, and train again")
    if summary.get("kind") == "crossval" and not summary.get("keep_last"):
        raise NnctlError(f"run {run.id} is a cross-validation stopped during its folds; it cannot be resumed",
                         hint=f"run nnctl crossval again (the finished folds are in {run.file('crossval')})")
    if run.file("ensemble.json").exists() or run.file("members").is_dir():
        raise NnctlError(f"run {run.id} combines several restarts; resume continues single trainings only",
                         hint="train the spec again")
    with run.lock():
        run.remove_temp_files()
        stored = parse_spec(run.file("spec.yaml").read_text(encoding="utf-8"), source=str(run.file("spec.yaml")))
        base_dirs = [Path(b) for b in summary.get("base_dirs", [])]
        if spec is not None:
            if spec.seed == "random":
                spec = spec.model_copy(update={"seed": stored.seed})
            p = prepare(spec, spec_dirs or base_dirs)
            differences = spec_differences(stored, p.spec)
            if differences and not force:
                raise SpecError(f"the spec differs from run {run.id}'s: " + "; ".join(differences),
                                hint="resume with the run's own spec (nnctl resume RUN), or pass --force to use this one")
            base_dirs = list(spec_dirs) or base_dirs
        else:
            p = prepare(stored, base_dirs)
        if p.splits.data_hash != summary.get("data_hash") and not force:
            raise DataError(f"{p.spec.data.source}: the data changed since run {run.id} was trained (hash differs)",
                            hint="restore the original data, or pass --force to go on with the new data")
        for w in p.warnings:
            if on_warning:
                on_warning(w)
        arrays = _resume_arrays(run)
        if arrays is not None and spec is None and not force and "fit.spec_hash" in arrays \
                and str(arrays["fit.spec_hash"]) != spec_hash(p.spec):
            raise SpecError(f"{run.file('spec.yaml')}: changed since the run's last checkpoint",
                            hint="put the run's spec back, or pass --force to go on with the changed one")
        if arrays is not None:
            try:
                p.net.load_state_dict(arrays)
            except ValueError as exc:
                raise NnctlError(f"{run.file('last.npz')}: {exc}") from None
        if spec is not None:
            run.write_text("spec.yaml", dump_spec_yaml(p.spec))
        keep_last = bool(summary.get("keep_last", False))
        base = {**summary_base(run, p, base_dirs, started), "created": summary.get("created"),
                "resumed": int(summary.get("resumed", 0)) + 1, **({"keep_last": True} if keep_last else {})}
        if on_log:
            on_log(f"resuming run {run.id} from epoch {int(arrays['fit.epoch']) if arrays is not None else 0}")
        return _train(run, p, base, callbacks, arrays, started, on_warning, keep_last)


def _resume_arrays(run: RunDir) -> dict[str, np.ndarray] | None:
    """last.npz when it holds a resumable state, else None (start from the beginning)."""
    if not run.file("last.npz").exists():
        return None
    arrays = run.load_checkpoint("last.npz")
    return arrays if "fit.epoch" in arrays else None


def _train(run: RunDir, p: Prepared, base: dict[str, Any], callbacks: Sequence[Callback],
           resume: dict[str, np.ndarray] | None, started: float, on_warning=None,
           keep_last: bool = False, recorded: bool = False) -> RunResult:
    """Train ``p`` into ``run`` (from ``resume`` when given) and write its summary.
    ``keep_last``: a final model (fixed length, the last weights kept). ``recorded``:
    ``resume`` is the state of a training begun elsewhere, not a resume."""
    spec, splits = p.spec, p.splits
    purpose = Purpose("final" if keep_last else "run", best_metric(spec, len(splits.X_val) > 0), fixed=keep_last)
    training = assemble(spec, Rows.of(splits), purpose, net=p.net,
                        on_finding=(lambda f: on_warning(f.message)) if on_warning else None)
    resumed_from = int(resume["fit.epoch"]) if resume is not None else None
    fixed = {**splits.prep.to_arrays(), "fit.spec_hash": np.array(spec_hash(spec)),
             "fit.data_hash": np.array(splits.data_hash)}
    try:
        run.write_json("summary.json", {**base, "status": "running"})
        writer = run.metrics_writer(list(iter_columns(p.net.n_layers, p.metric)),
                                    keep_through=resumed_from if resume is not None else None)
    except OSError as exc:
        raise StorageError(f"{run.path}: cannot write ({exc.strerror})") from None
    stop = StopRequest()
    training.add(MetricsLogger(writer),
                 Checkpointer(run, p.net, training.best, fixed, spec.checkpoint.every_seconds, training.callbacks),
                 stop, *callbacks)
    fit_started = time.time()
    result = _fit(run, training, stop, writer, base, resume)
    fit_seconds = time.time() - fit_started
    if keep_last:  # a fixed-length training keeps the model after its last epoch
        try:
            run.save_checkpoint("best.npz", {**p.net.state_dict(), **fixed})
        except OSError as exc:
            raise StorageError(f"{run.file('best.npz')}: cannot write ({exc.strerror})") from None
    best = training.best
    best_epoch = result.epochs if keep_last else best.best_epoch
    metrics = final_metrics(p.net, spec, splits)
    status = {"diverged": "diverged", "interrupted": "interrupted"}.get(result.stop_reason, "completed")
    findings = training.diagnosis.findings if training.diagnosis is not None else []
    summary = {
        **base, "status": status, "stop_reason": result.stop_reason, "epochs": result.epochs,
        "step": {"kind": result.step, "blas_threads": training.threads},
        "best_epoch": best_epoch, "best_metric": {best.metric: finite_or_none(best.best)},
        "metrics": json_metrics(metrics), "seconds": {"total": time.time() - started, "training": fit_seconds},
        "warnings": [*p.warnings, *(f.message for f in findings)],
        "diagnosis": [f.to_dict() for f in findings],
    }
    try:
        run.write_json("summary.json", summary)
    except OSError as exc:
        raise StorageError(f"{run.file('summary.json')}: cannot write ({exc.strerror})",
                           hint=f"free space, then: nnctl resume {run.id}") from None
    return RunResult(
        run_id=run.id, run_dir=str(run.path), name=spec.name, status=status, stop_reason=result.stop_reason,
        epochs=result.epochs, best_epoch=best_epoch, seed=p.seed, task=splits.prep.task, metrics=metrics,
        warnings=summary["warnings"], seconds=time.time() - started, diagnosis=summary["diagnosis"],
        resumed_from=None if recorded else resumed_from,
    )


def _fit(run: RunDir, training: Training, stop: StopRequest, writer, base: dict[str, Any],
         resume: dict[str, np.ndarray] | None):
    """``training.run`` with signals turned into stop requests; a failure is recorded in
    summary.json and becomes the error the user reads."""
    try:
        with stop_on_signals(stop):
            return training.run(resume)
    except Aborted:
        raise  # stop at once: the files on disk are whole, the run reads as interrupted
    except ValueError as exc:  # a checkpoint whose state does not fit this run
        writer.close()
        raise NnctlError(f"{run.file('last.npz')}: {exc}") from None
    except BaseException as exc:
        writer.close()
        error = exc.message if isinstance(exc, NnctlError) else f"{type(exc).__name__}: {exc}"
        try:
            run.write_json("summary.json", {**base, "status": "failed", "error": error})
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise StorageError(f"{run.path}: cannot write ({exc.strerror or exc}); the last good checkpoint is kept",
                               hint=f"free space, then: nnctl resume {run.id}") from None
        raise


def _completed_result(run: RunDir, summary: dict[str, Any]) -> RunResult:
    return RunResult(
        run_id=run.id, run_dir=str(run.path), name=summary.get("name", ""), status="completed",
        stop_reason=summary.get("stop_reason", ""), epochs=int(summary.get("epochs", 0)),
        best_epoch=int(summary.get("best_epoch", 0)), seed=int(summary.get("seed", 0)), task=summary.get("task", ""),
        metrics=summary.get("metrics", {}), already_complete=True,
    )
