"""Model selection (``nnctl crossval``): k-fold cross-validation, the choice of the number
of epochs, grid search over spec settings, and the final model.

Procedure, for every combination of the grid (one combination when there is no grid):

1. The non-test rows (the spec's test split is kept aside untouched) are dealt into k
   stratified, seeded folds (``stratified_folds``).
2. For each fold f a network is trained on the other k − 1 folds for every one of
   ``training.epochs`` epochs (no stopping criterion), with fold f as validation rows;
   the input scaling is fitted on the k − 1 training folds. Its validation curve v_f(e)
   of the selection metric (the early-stopping metric when it is a validation metric,
   else ``val_loss``) is kept.
3. The chosen number of epochs is E* = argmin_e (1/k) Σ_f v_f(e) (argmax for accuracy),
   the earliest on ties; the combination's score is that mean, reported with the standard
   deviation over folds at E*. The mean of the per-fold best epochs is reported beside it.

The winner is the combination with the best score; ties go to the network with fewer
parameters, then to the earlier combination. A final model with the winner's settings is
then trained on all non-test rows for E* epochs (no validation rows, no early stopping)
and saved as an ordinary run, with ``crossval/`` inside it::

    runs/<run-id>/crossval/cv.json                      the summary (``--json`` prints it)
                  crossval/fold-01/metrics.csv          each fold's curve (no grid)
                  crossval/combo-01/fold-01/metrics.csv (with a grid)
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import math
import re
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from nnctl.app.errors import SpecError, TrainingFailed, UsageError
from nnctl.app.final_beside import FinalBesideFolds
from nnctl.app.jobs import Job, JobResult, one_blas_thread, run_job
from nnctl.app.model import fold_seed_sequence
from nnctl.app.runs import RunDir, RunStore, iter_columns
from nnctl.app.spec import dump_spec_yaml, lint, parse_spec, read_yaml_value
from nnctl.app.spec_schema import StoppingSpec
from nnctl.app.training import Prepared, RunResult, prepare, train_from_spec
from nnctl.engine.callbacks import metric_mode

DEFAULT_FOLDS = 10
EPOCH_RULE = "argmin over epochs of the validation metric averaged over folds (argmax for accuracy)"
_NOT_SEARCHABLE = {
    "seed": "it would change the rows", "data.source": "it would change the rows", "data.labels": "it would change the rows",
    "data.target": "it would change the rows", "data.task": "it would change the rows",
    "data.split": "it would change the rows", "stopping": "folds and the final model train without stopping criteria",
    "name": "it names the run", "search": "it describes the search", "restarts": "restarts apply to the final model",
}

Progress = Callable[[int, int, str], None]


# ---------------------------------------------------------------- folds and the epoch choice
def stratified_folds(y: np.ndarray | None, n: int, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    """k disjoint, sorted index arrays that together cover range(n).

    With class labels ``y`` the rows of each class are shuffled and dealt round-robin to the
    folds, each class continuing where the previous one stopped, so fold f holds ⌊n_c/k⌋ or
    ⌈n_c/k⌉ rows of class c and fold sizes differ by at most one. Without labels the rows
    are shuffled and dealt the same way."""
    if not 2 <= k <= n:
        raise ValueError(f"need 2 <= k <= n, got k={k}, n={n}")
    groups = [np.arange(n)] if y is None else [np.flatnonzero(y == c) for c in np.unique(y)]
    fold_of = np.empty(n, dtype=np.int64)
    start = 0
    for group in groups:
        order = rng.permutation(group)
        fold_of[order] = (start + np.arange(len(order))) % k
        start += len(order)
    return [np.flatnonzero(fold_of == f) for f in range(k)]


def choose_epoch(curves: np.ndarray, mode: str) -> tuple[int, float, float]:
    """(E*, mean, std) for validation curves of shape (folds, epochs).

    E* (1-based) minimizes (mode 'min') or maximizes (mode 'max') the mean curve
    m(e) = (1/k) Σ_f v_f(e), the earliest epoch on ties; mean = m(E*), std the standard
    deviation of v_f(E*) over folds. Epochs a fold did not reach (NaN) count as the worst
    value, so a diverged fold rules its epochs out; (0, nan, nan) when none is left."""
    worst = np.inf if mode == "min" else -np.inf
    filled = np.where(np.isfinite(curves), curves, worst)
    mean = filled.mean(axis=0)
    oriented = mean if mode == "min" else -mean
    if not np.isfinite(oriented).any():
        return 0, math.nan, math.nan
    e = int(np.argmin(oriented))
    return e + 1, float(mean[e]), float(filled[:, e].std())


# ---------------------------------------------------------------- the grid
def parse_grid_option(item: str) -> tuple[str, list[Any]]:
    """``KEY=V1,V2,...`` → (KEY, [V1, V2, ...]); each value is read as YAML (``4``, ``relu``,
    ``0.01``, ``{name: sgd}``)."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or not text.strip():
        raise UsageError(f"--grid {item!r}: expected KEY=V1,V2,... e.g. model.layers[0].units=2,4,8")
    try:
        values = read_yaml_value(f"[{text}]")
    except ValueError as exc:
        raise UsageError(f"--grid {item!r}: cannot read the values: {exc}") from None
    if not values or any(v is None for v in values):
        raise UsageError(f"--grid {item!r}: expected one or more comma-separated values")
    return key, values


def merge_grid(spec_grid: dict[str, list[Any]], options: Sequence[str]) -> dict[str, tuple[str, list[Any]]]:
    """Key → (where it came from, values): the spec's ``search.grid``, then ``--grid`` options
    (a key given on the command line replaces the spec's)."""
    grid = {key: (f"search.grid.{key}", list(values)) for key, values in spec_grid.items()}
    for item in options:
        key, values = parse_grid_option(item)
        grid[key] = (f"--grid {key}", values)
    for key, (origin, values) in grid.items():
        head = key.split("[")[0]
        for fixed, reason in _NOT_SEARCHABLE.items():
            if head == fixed or head.startswith(fixed + "."):
                raise UsageError(f"{origin}: {key} cannot be searched ({reason})")
        if not values:
            raise UsageError(f"{origin}: no values to try")
    return grid


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _without_override_notes(message: str) -> str:
    """A spec error's first line without the ``--set`` wording of the override that carried it."""
    message = re.sub(r"^--set '.*?': ", "", message.splitlines()[0])
    return re.sub(r" \(from --set .*?\)(?=;|$)", "", message)


def _check_grid_values(base_yaml: str, grid: dict[str, tuple[str, list[Any]]]) -> None:
    """Each value alone on the base spec must give a valid spec: ``--grid KEY=VALUE: problem``."""
    for key, (origin, values) in grid.items():
        for value in values:
            try:
                parse_spec(base_yaml, source="the grid", overrides=[f"{key}={json.dumps(value)}"])
            except SpecError as exc:
                raise SpecError(f"{origin}={_show(value)}: {_without_override_notes(exc.message)}") from None


def _combination_spec(base_yaml: str, settings: dict[str, Any], origins: dict[str, str]):
    """The base spec with ``settings`` applied as overrides and validated; errors name the
    grid option (or spec key) and the value."""
    overrides = [f"{key}={json.dumps(value)}" for key, value in settings.items()]
    try:
        return parse_spec(base_yaml, source="the grid", overrides=overrides)
    except SpecError as exc:
        shown = ", ".join(f"{origins[k]}={_show(v)}" for k, v in settings.items())
        raise SpecError(f"{shown}: {_without_override_notes(exc.message)}") from None


def _cross_validation_spec(spec):
    """The spec a fold (and the final model) trains with: no validation split, no stopping
    criterion (every epoch runs), the last weights kept, no search section."""
    split = spec.data.split.model_copy(update={"validation": 0.0})
    return spec.model_copy(update={
        "data": spec.data.model_copy(update={"split": split}),
        "stopping": StoppingSpec(restore_best=False), "search": None,
    })


def selection_metric(spec) -> str:
    """The validation metric folds are compared by: the early-stopping metric when it is a
    validation metric, else ``val_loss``."""
    es = spec.stopping.early_stopping
    return es.metric if es is not None and es.metric.startswith("val_") else "val_loss"


@dataclass
class _Combination:
    index: int
    settings: dict[str, Any]
    prepared: Prepared
    folds: list[np.ndarray]
    folder: str


def _check_folds(k: int, p: Prepared) -> None:
    y, prep = p.splits.y_train, p.splits.prep
    if k < 2:
        raise UsageError(f"--folds {k}: must be at least 2")
    if prep.task == "classification":
        counts = np.bincount(y, minlength=len(prep.classes))
        c = int(np.argmin(counts))
        if k > counts[c]:
            raise UsageError(f"--folds {k}: above the {counts[c]} non-test rows of the smallest class "
                             f"('{prep.classes[c]}'); use at most {counts[c]} folds")
    elif k > len(y):
        raise UsageError(f"--folds {k}: above the {len(y)} non-test rows; use at most {len(y)} folds")


def plan(spec, folds: int | None, grid_options: Sequence[str], base_dirs: Sequence[Path] = ()) -> list[_Combination]:
    """Every combination, validated against its data, with its folds: all checks of
    ``crossval`` that need no training, before anything is written."""
    if spec.seed == "random":
        spec = spec.model_copy(update={"seed": secrets.randbits(32)})
    k = folds if folds is not None else (spec.search.folds if spec.search is not None else DEFAULT_FOLDS)
    if k < 2:
        raise UsageError(f"--folds {k}: must be at least 2")
    grid = merge_grid(spec.search.grid if spec.search is not None else {}, grid_options)
    base_yaml = dump_spec_yaml(spec.model_copy(update={"search": None}))
    _check_grid_values(base_yaml, grid)
    origins = {key: origin for key, (origin, _) in grid.items()}
    keys = list(grid)
    points = [dict(zip(keys, values)) for values in itertools.product(*(grid[k][1] for k in keys))]
    combos = []
    for i, settings in enumerate(points, start=1):
        combo_spec = _combination_spec(base_yaml, settings, origins) if settings else spec
        try:
            p = prepare(_cross_validation_spec(combo_spec), base_dirs)
        except SpecError as exc:
            if not settings:
                raise
            shown = ", ".join(f"{origins[k]}={_show(v)}" for k, v in settings.items())
            raise SpecError(f"{shown}: {exc.message.splitlines()[0]}", hint=exc.hint) from None
        _check_folds(k, p)
        y = p.splits.y_train if p.splits.prep.task == "classification" else None
        fold_rows = stratified_folds(y, len(p.splits.y_train), k, np.random.default_rng(fold_seed_sequence(p.seed)))
        folder = f"crossval/combo-{i:02d}" if keys else "crossval"
        combos.append(_Combination(i, settings, p, fold_rows, folder))
    return combos


# ---------------------------------------------------------------- the service
@dataclass(frozen=True)
class CrossvalResult:
    """The cross-validation summary (as in cv.json) and the final model's run."""

    cv: dict[str, Any]
    final: RunResult | Any

    def to_dict(self) -> dict[str, Any]:
        return self.cv


def crossval(
    spec, store: RunStore, *, folds: int | None = None, grid: Sequence[str] = (),
    make_executor: Callable[[], Any], base_dirs: Sequence[Path] = (), progress: Progress | None = None,
    callbacks: Sequence[Any] = (), on_warning=None, on_log=None,
) -> CrossvalResult:
    """Cross-validate every combination, pick the winner and its epochs, train the final model.

    Bad input (folds, grid keys or values, the spec, the data, an unreachable scheduler)
    raises before the run directory is created. Ctrl-C cancels the jobs not yet finished,
    marks the run interrupted (completed folds stay in ``crossval/``) and re-raises."""
    started = time.perf_counter()
    combos = plan(spec, folds, grid, base_dirs)
    base = combos[0].prepared
    metric = selection_metric(spec)
    for w in base.warnings:
        if on_warning:
            on_warning(w)
    executor = make_executor()
    try:
        run = store.create(base.spec.name)
        if on_log:
            on_log(f"crossval: run {run.id}; folds in {run.path / 'crossval'}")
        cv = _cv_document(run, combos, metric)
        seconds = cv["seconds"] = {"checks": time.perf_counter() - started}
        jobs = [
            Job(spec=c.prepared.spec, base_dirs=tuple(str(b) for b in base_dirs), val_rows=tuple(rows.tolist()),
                fixed=True, metric=metric, key=(ci, f), label=_label(c, f))
            for ci, c in enumerate(combos) for f, rows in enumerate(c.folds)
        ]
        beside = FinalBesideFolds.plan(combos[0].prepared, executor, base_dirs) if len(combos) == 1 else None
        try:
            results = _run_folds(run, combos, jobs, executor, cv, progress, beside)
            seconds["folds"] = time.perf_counter() - started - seconds["checks"]
            winner = _score(combos, results, cv, metric)
            start = beside.start(cv["winner"]["chosen_epochs"]) if beside is not None else None
            final = _train_final(run, store, combos[winner], cv, base_dirs, callbacks, executor, progress, start)
        except BaseException as exc:
            _mark_stopped(run, cv, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", len(jobs))
            raise
    finally:
        executor.close()
    seconds["final"] = time.perf_counter() - started - seconds["checks"] - seconds["folds"]
    run.write_json("crossval/cv.json", cv)
    return CrossvalResult(cv, final)


def _label(c: _Combination, fold: int) -> str:
    settings = " ".join(f"{k}={v}" for k, v in c.settings.items())
    return f"{settings + ' ' if settings else ''}fold {fold + 1}"


def _grid_values(combos: list[_Combination]) -> dict[str, list[Any]]:
    """Each grid key's values in the order tried."""
    grid: dict[str, list[Any]] = {}
    for c in combos:
        for key, value in c.settings.items():
            if value not in grid.setdefault(key, []):
                grid[key].append(value)
    return grid


def _mark_stopped(run: RunDir, cv: dict[str, Any], status: str, jobs: int) -> None:
    """Record a cross-validation cut short: cv.json with the folds that finished, the run's status."""
    cv["status"] = status
    run.write_json("crossval/cv.json", cv)
    summary = run.read_json("summary.json")
    done = sum(len(c["folds"]) for c in cv["combinations"])
    run.write_json("summary.json", {**summary, "status": status, "stop_reason": status,
                                    "crossval": {"completed_folds": done, "jobs": jobs}})


def _cv_document(run: RunDir, combos: list[_Combination], metric: str) -> dict[str, Any]:
    p = combos[0].prepared
    cv = {
        "run_id": run.id, "status": "running", "folds": len(combos[0].folds), "metric": metric,
        "mode": metric_mode(metric), "epoch_rule": EPOCH_RULE, "seed": p.seed,
        "epochs_per_fold": p.spec.training.epochs,
        "rows": {"non_test": len(p.splits.y_train), "test": len(p.splits.y_test)},
        "grid": _grid_values(combos),
        "combinations": [
            {"index": c.index, "settings": c.settings, "dir": c.folder, "parameters": int(c.prepared.net.params.size),
             "folds": []}
            for c in combos
        ],
    }
    summary = run.read_json("summary.json")
    run.write_json("summary.json", {**summary, "name": p.spec.name, "status": "running", "kind": "crossval"})
    return cv


def _run_folds(run: RunDir, combos: list[_Combination], jobs: list[Job], executor: Any, cv: dict[str, Any],
               progress: Progress | None, beside: FinalBesideFolds | None = None) -> dict[tuple[int, int], JobResult]:
    """Run the fold jobs (and the final model's parts, with ``beside``); each finished
    fold is written at once (its metrics.csv, its row in cv.json's combination) and the
    progress shows the best fold so far."""
    results: dict[tuple[int, int], JobResult] = {}
    mode = cv["mode"]
    best: tuple[float, str] | None = None
    (run.path / "crossval").mkdir(exist_ok=True)
    if progress:
        progress(0, len(jobs), "")
    queued = [beside.first, *jobs] if beside is not None else jobs
    follow = beside.follow if beside is not None else None
    with contextlib.closing(executor.map_unordered(run_job, queued, follow)) as finished:
        for index, result in finished:
            if beside is not None and beside.owns(result):
                continue
            ci, f = result.key
            results[(ci, f)] = result
            _write_fold(run, combos[ci], f, result)
            cv["combinations"][ci]["folds"] = _fold_rows(combos[ci], results, ci)
            value = result.best_value if mode == "min" else -result.best_value
            if math.isfinite(value) and (best is None or value < best[0]):
                best = (value, f"best {cv['metric']}={result.best_value:.4g} ({result.label})")
            if progress:
                progress(len(results), len(jobs), best[1] if best else "")
    return results


def _write_fold(run: RunDir, combo: _Combination, fold: int, result: JobResult) -> None:
    folder = run.path / combo.folder / f"fold-{fold + 1:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    kind = "accuracy" if combo.prepared.splits.prep.task == "classification" else "rmse"
    RunDir(folder).write_text("metrics.csv", history_csv(result.history, combo.prepared.net.n_layers, kind))


def history_csv(rows: list[dict[str, float]], n_layers: int, metric: str) -> str:
    """metrics.csv text (the columns of a run's metrics.csv) from a job's epoch logs."""
    columns = list(iter_columns(n_layers, metric))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else (int(row[c]) if c == "epoch" else repr(row[c])) for c in columns])
    return buf.getvalue()


def _fold_rows(combo: _Combination, results: dict[tuple[int, int], JobResult], ci: int) -> list[dict[str, Any]]:
    out = []
    for f in range(len(combo.folds)):
        r = results.get((ci, f))
        if r is not None:
            out.append({"fold": f + 1, "rows_train": r.rows["train"], "rows_validation": r.rows["validation"],
                        "best_epoch": r.best_epoch, "best_value": _num(r.best_value), "stop_reason": r.stop_reason})
    return out


def _score_combination(c: _Combination, entry: dict[str, Any], fold_results: list[JobResult], mode: str) -> None:
    """Fill in one combination's E*, its score (mean ± std at E*), the per-fold values at
    E* and the mean ± std of the per-fold best values."""
    curves = np.stack([r.curve(c.prepared.spec.training.epochs) for r in fold_results])
    chosen, mean, std = choose_epoch(curves, mode)
    best_values = np.array([r.best_value for r in fold_results], dtype=float)
    for row in entry["folds"]:
        row["value_at_chosen"] = _num(float(curves[row["fold"] - 1, chosen - 1])) if chosen else None
    entry.update(
        chosen_epochs=chosen, score={"mean": _num(mean), "std": _num(std)},
        best_value={"mean": _num(float(best_values.mean())), "std": _num(float(best_values.std()))},
        mean_best_epoch=float(np.mean([r.best_epoch for r in fold_results])), winner=False,
    )


def _score(combos: list[_Combination], results: dict[tuple[int, int], JobResult], cv: dict[str, Any],
           metric: str) -> int:
    """Fill in each combination's scores and the winner's index (0-based)."""
    mode = metric_mode(metric)
    ranking = []
    with np.errstate(invalid="ignore"):  # folds that diverged have no finite best value
        for ci, (c, entry) in enumerate(zip(combos, cv["combinations"])):
            _score_combination(c, entry, [results[(ci, f)] for f in range(len(c.folds))], mode)
            if entry["chosen_epochs"]:
                ranking.append(((entry["score"]["mean"] if mode == "min" else -entry["score"]["mean"]),
                                entry["parameters"], ci))
    if not ranking:
        raise TrainingFailed(f"every fold diverged ({metric} never finite); lower the learning rate")
    winner = min(ranking)[2]
    cv["combinations"][winner]["winner"] = True
    w = cv["combinations"][winner]
    cv["winner"] = {"index": w["index"], "settings": w["settings"], "chosen_epochs": w["chosen_epochs"],
                    "score": w["score"], "parameters": w["parameters"]}
    return winner


def _train_final(run: RunDir, store: RunStore, combo: _Combination, cv: dict[str, Any], base_dirs: Sequence[Path],
                 callbacks: Sequence[Any], executor: Any, progress: Progress | None,
                 start: tuple[dict[str, np.ndarray], list[dict[str, float]]] | None = None) -> Any:
    """The winner's settings on all non-test rows for the chosen epochs, into ``run``: one
    network (``best.npz`` after the last epoch), or the ensemble when the spec has restarts.
    ``start``: that training's state after some epoch, reached beside the folds."""
    p = combo.prepared
    final_spec = p.spec.model_copy(update={
        "training": p.spec.training.model_copy(update={"epochs": cv["winner"]["chosen_epochs"]}),
    })
    cv["status"] = "training final model"
    run.write_json("crossval/cv.json", cv)
    if final_spec.restarts is not None and final_spec.restarts.count > 1:
        from nnctl.app.restarts import train_restarts

        final = train_restarts(final_spec, store, executor=executor, base_dirs=base_dirs, progress=progress,
                               on_warning=None, run=run, fixed=True)
        result = final.run
    else:
        with one_blas_thread():  # as the folds: small products run faster on one thread
            final = result = train_from_spec(final_spec, store, callbacks=callbacks, base_dirs=base_dirs,
                                             on_warning=None, run=run, keep_last=True, start=start,
                                             prepared=replace(p, spec=final_spec,
                                                              warnings=[*lint(final_spec), *p.splits.warnings]))
    cv["status"] = "completed" if result.status == "completed" else result.status
    cv["final"] = {"run_id": result.run_id, "run_dir": result.run_dir, "epochs": result.epochs,
                   "status": result.status, "metrics": result.to_dict()["metrics"]}
    run.write_json("crossval/cv.json", cv)
    summary = run.read_json("summary.json")
    run.write_json("summary.json", {**summary, "kind": "crossval", "crossval": {
        "folds": cv["folds"], "metric": cv["metric"], "winner": cv["winner"], "file": "crossval/cv.json"}})
    if result.status == "interrupted":
        raise KeyboardInterrupt
    return final


def _num(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None

