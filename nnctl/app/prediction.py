"""Predictions of a saved run: ``load_run`` (the Python API) and ``predict_file``
(``nnctl predict``), both through the run's stored preprocessing.

A CSV or Parquet file is read a chunk of rows at a time (the data package's streaming
readers), so files larger than memory stream through; rows keep their order.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnctl.app.data import raw_features, read_chunks_of
from nnctl.app.data.labels import list_names
from nnctl.app.data.npz import read_npz_arrays
from nnctl.app.errors import DataError, UsageError
from nnctl.app.evaluation import load_model
from nnctl.app.notes import unused_columns_note
from nnctl.app.runs import AtomicTextWriter, RunDir, RunStore

CHUNK_ROWS = 50_000


class LoadedRun:
    """A trained run ready to predict on raw feature rows.

    ``X`` is a 2-D array whose columns are ``feature_columns`` in order, or a mapping (or
    DataFrame) from column name to values; categorical columns take their labels.
    """

    def __init__(self, run: RunDir, checkpoint: str = "best.npz") -> None:
        self.run_id = run.id
        self.path = run.path
        self.spec, self.net, self.prep = load_model(run, checkpoint)
        self.task: str = self.prep.task
        self.feature_columns: tuple[str, ...] = self.prep.feature_columns
        self.classes: tuple[str, ...] | None = self.prep.classes

    def __repr__(self) -> str:
        return f"LoadedRun({self.run_id!r}, task={self.task!r}, features={len(self.feature_columns)})"

    def _outputs(self, X: Any) -> np.ndarray:
        if hasattr(X, "columns") and not isinstance(X, Mapping):  # a DataFrame
            X = {str(c): np.asarray(X[c]) for c in X.columns}
        x = self.prep.transform(X, dtype=self.net.dtype)
        return self.net.predict(x)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), columns in the order of ``classes``;
        a single sigmoid unit p gives the columns (1 − p, p)."""
        if self.task != "classification":
            raise UsageError(f"run {self.run_id} is a regression; predict_proba needs a classifier")
        return probabilities(self._outputs(X))

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (str, shape (n,)) for classification; values in the target's original
        units for regression, shape (n,) for one target or (n, k)."""
        a = self._outputs(X)
        if self.task == "classification":
            return self.prep.inverse_target(probabilities(a))
        y = self.prep.inverse_target(a)
        return y[:, 0] if y.shape[1] == 1 else y


def probabilities(a: np.ndarray) -> np.ndarray:
    """Softmax outputs unchanged; one sigmoid column p as (1 − p, p)."""
    a = np.asarray(a, dtype=np.float64)
    return np.hstack([1.0 - a, a]) if a.shape[1] == 1 else a


def load_run(path_or_id: str | Path, runs_dir: str | Path | None = None, checkpoint: str = "best.npz") -> LoadedRun:
    """A run by its directory (a path holding spec.yaml) or by id / prefix / 'latest' in
    ``runs_dir`` (default ``$NNCTL_RUNS_DIR`` or ./runs)."""
    path = Path(path_or_id)
    if (path / "spec.yaml").is_file() and (isinstance(path_or_id, Path) or len(path.parts) > 1):
        return LoadedRun(RunDir(path), checkpoint)
    return LoadedRun(RunStore(runs_dir).resolve(str(path_or_id)), checkpoint)


# ---------------------------------------------------------------- nnctl predict
@dataclass(frozen=True)
class PredictResult:
    run_id: str
    source: str
    out: str | None
    rows: int
    columns: list[str]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "source": self.source, "out": self.out, "rows": self.rows,
                "columns": self.columns, "warnings": self.warnings}


def output_columns(model: LoadedRun, keep: Sequence[str]) -> list[str]:
    """The columns of a predictions file: kept columns, then ``prediction`` and one
    ``p_<class>`` per class (classification), or ``prediction`` per target (regression)."""
    if model.task == "classification":
        return [*keep, "prediction", *(f"p_{c}" for c in model.classes or ())]
    k = model.prep.n_outputs
    return [*keep, *(["prediction"] if k == 1 else [f"prediction_{j}" for j in range(k)])]


def predict_file(store: RunStore, ref: str, data: Path, out: Path | None, keep: Sequence[str] = (),
                 chunk_rows: int = CHUNK_ROWS, stream=None) -> PredictResult:
    """Predict every row of ``data`` with run ``ref``'s best weights; write the CSV to ``out``
    (atomically) or to ``stream``."""
    if chunk_rows < 1:
        raise UsageError(f"--chunk-rows {chunk_rows}: must be at least 1")
    model = LoadedRun(store.resolve(ref))
    columns = output_columns(model, keep)
    if len(set(columns)) != len(columns):
        raise UsageError(f"--keep: a kept column clashes with an output column ({', '.join(columns)})")
    rows, unused = 0, []
    if out is not None:
        with AtomicTextWriter(out, shared=True) as fh:
            rows, unseen = _write_predictions(model, data, keep, chunk_rows, fh, unused)
    else:
        rows, unseen = _write_predictions(model, data, keep, chunk_rows, stream, unused)
    warnings = [unused_columns_note(str(data), unused)] if unused else []
    warnings += [f"{data}: column '{c}' has {n} row(s) with categories not seen in training; encoded as all zeros"
                for c, n in unseen.items()]
    return PredictResult(model.run_id, str(data), str(out) if out is not None else None, rows, columns, warnings)


def _write_predictions(model: LoadedRun, data: Path, keep: Sequence[str], chunk_rows: int,
                       fh, unused: list[str]) -> tuple[int, dict[str, int]]:
    """Rows written, and per categorical column the count of rows with an unseen category;
    the file's columns the model does not use are appended to ``unused``."""
    chunks = read_chunks(data, model, keep, chunk_rows, unused)
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(output_columns(model, keep))
    rows, unseen = 0, {}
    for kept, raw in chunks:
        preds = _predictions(model, raw, unseen)
        kept_rows = list(zip(*kept)) if kept else [()] * len(preds)
        writer.writerows([*k, *p] for k, p in zip(kept_rows, preds))
        rows += len(preds)
    return rows, unseen


def _predictions(model: LoadedRun, raw: Mapping[str, np.ndarray], unseen: dict[str, int]) -> list[list[str]]:
    z, new = model.prep.encode(raw)
    for column, values in new.items():
        unseen[column] = unseen.get(column, 0) + len(values)
    a = model.net.predict(np.ascontiguousarray(z, dtype=model.net.dtype))
    if model.task == "classification":
        p = probabilities(a)
        labels = model.prep.inverse_target(p)
        return [[label, *(repr(float(v)) for v in row)] for label, row in zip(labels, p)]
    return [[repr(float(v)) for v in row] for row in model.prep.inverse_target(a)]


def read_chunks(path: Path, model: LoadedRun, keep: Sequence[str], chunk_rows: int,
                unused: list[str] | None = None) -> Iterator[tuple[list[list[str]], dict[str, np.ndarray]]]:
    """(kept columns' cells, raw feature columns) for each chunk of ``chunk_rows`` rows.

    The header is checked here, before the first chunk is asked for; columns the model
    does not use are ignored, and appended to ``unused``."""
    label = str(path)
    if path.suffix.lower() == ".npz":
        if keep:
            raise UsageError("--keep: an .npz file has no named columns to keep")
        arrays = read_npz_arrays(path, label)
        _check_columns(label, [f"x{j}" for j in range(arrays.X.shape[1])], model, (), unused)
        return (([], {f"x{j}": arrays.X[s:s + chunk_rows, j] for j in range(arrays.X.shape[1])})
                for s in range(0, len(arrays.X), chunk_rows))
    names, chunks = read_chunks_of(path, label, chunk_rows)
    _check_columns(label, names, model, keep, unused)
    return ((_kept_cells(batch, keep), raw_features(table, model.prep)) for table, batch in chunks)


def _kept_cells(batch, keep: Sequence[str]) -> list[list[str]]:
    """The kept columns' cells as written (numbers of a Parquet file as their shortest text)."""
    index = {name.strip(): j for j, name in enumerate(batch.schema.names)}
    return [["" if v is None else str(v) for v in batch.column(index[c]).to_pylist()] for c in keep]


def _check_columns(label: str, names: Sequence[str], model: LoadedRun, keep: Sequence[str],
                   unused: list[str] | None = None) -> dict[str, int]:
    """Column positions; the file must hold every training feature column; the others
    (besides the target and the kept columns) are appended to ``unused``."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"{label}, line 1: duplicate column name '{name}'")
        seen.add(name)
    features = model.feature_columns
    missing = [c for c in features if c not in seen]
    allowed = {*features, model.prep.target, *keep}
    extra = [c for c in names if c not in allowed]
    absent_keep = [c for c in keep if c not in seen]
    if unused is not None:
        unused.extend(extra)
    if missing:
        raise DataError(f"{label}: missing column(s) {', '.join(repr(c) for c in missing)}",
                        hint=f"the model's feature columns: {list_names(features)}")
    if absent_keep:
        raise DataError(f"{label}: --keep column(s) {', '.join(repr(c) for c in absent_keep)} not found")
    return {name: j for j, name in enumerate(names)}
