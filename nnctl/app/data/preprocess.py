"""The fitted preprocessing: one-hot encoders, fills for missing cells, input and target scaling.

Every statistic is fitted on the training rows only and then applied unchanged to
validation, test and later files (``evaluate --data``, ``predict``, the Python API).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnctl.app.data import imputer
from nnctl.app.data.labels import (Coded, canonical_label, distinct, label_codes, list_names, map_distinct,
                                   natural_sorted, number_label)
from nnctl.app.data.scalers import block_rows, check_normalize, fit_columns, fit_scaler, target_scaling
from nnctl.app.errors import DataError


def _frozen(array: Any) -> np.ndarray:
    out = np.array(array, dtype=np.float64)
    out.setflags(write=False)
    return out


def _str_array(items: Iterable[str]) -> np.ndarray:
    return np.array([str(i) for i in items], dtype=str)


@dataclass(frozen=True, eq=False)
class Preprocessor:
    """The fitted map from raw columns to network inputs, and from targets to training targets.

    Inputs: a missing cell of a column in ``fills`` takes its fill value; each categorical
    column becomes one unit per training category (one-hot; an unseen category is all zeros),
    each numeric column one unit; then ``x' = (x - offset) / scale`` per unit. One-hot units
    and constant columns keep ``scale = 1``.

    Targets: class indices into ``classes`` (classification), or
    ``y' = (y - target_mean) / target_scale`` per output (regression; identity unless scaled).
    """

    task: str
    feature_columns: tuple[str, ...]
    target: str
    categorical: dict[str, tuple[str, ...]]
    normalize: str
    offset: np.ndarray
    scale: np.ndarray
    classes: tuple[str, ...] | None = None
    target_mean: np.ndarray | None = None
    target_scale: np.ndarray | None = None
    fills: dict[str, float | str] = field(default_factory=dict)
    missing: str = "error"
    input_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        names: list[str] = []
        for column in self.feature_columns:
            if column in self.categorical:
                names.extend(f"{column}={value}" for value in self.categorical[column])
            else:
                names.append(column)
        object.__setattr__(self, "input_names", tuple(names))
        for attr in ("offset", "scale", "target_mean", "target_scale"):
            if getattr(self, attr) is not None:
                object.__setattr__(self, attr, _frozen(getattr(self, attr)))
        if self.offset.shape != (len(names),) or self.scale.shape != (len(names),):
            raise ValueError(f"offset/scale need shape ({len(names)},), one per input unit")

    @property
    def n_inputs(self) -> int:
        return len(self.input_names)

    @property
    def n_outputs(self) -> int:
        """Output units: one per class, or one per regression target."""
        if self.classes is not None:
            return len(self.classes)
        assert self.target_mean is not None
        return len(self.target_mean)

    @property
    def numeric_units(self) -> np.ndarray:
        """Boolean mask over input units: True where the unit is a numeric column."""
        flags = [
            flag
            for column in self.feature_columns
            for flag in ([False] * len(self.categorical[column]) if column in self.categorical else [True])
        ]
        return np.array(flags, dtype=bool)

    @classmethod
    def fit(
        cls,
        raw: Mapping[str, np.ndarray],
        *,
        task: str,
        target: str,
        feature_columns: Sequence[str],
        categorical: Iterable[str],
        normalize: str,
        classes: Sequence[str] | None = None,
        y: np.ndarray | None = None,
        scale_target: bool = False,
        missing: str = "error",
        label: str = "data",
        rows: np.ndarray | None = None,
    ) -> Preprocessor:
        """Fit fills, categories, input scaling and target scaling on training rows ``raw`` (and
        ``y``); with ``rows``, on those rows of ``raw`` (taken one column at a time)."""
        check_normalize(normalize)
        wanted = set(categorical)

        def take(name: str) -> Any:
            values = raw[name] if isinstance(raw[name], Coded) else np.asarray(raw[name]).reshape(-1)
            return values if rows is None else values[rows]

        fills = {}
        if missing in imputer.FILLS:
            fills = imputer.fit_fills({c: take(c) for c in feature_columns}, tuple(wanted), missing, label)
        categories = {c: natural_sorted(distinct(imputer.fill(c, take(c), fills, True)))
                      for c in feature_columns if c in wanted}
        n_units = sum(len(categories.get(c, (c,))) for c in feature_columns)
        target_mean, target_scale = target_scaling(task, y, scale_target)
        identity = cls(task, tuple(feature_columns), target, categories, "none",
                       np.zeros(n_units), np.ones(n_units),
                       tuple(classes) if classes is not None else None, target_mean, target_scale, fills, missing)
        numeric = [c for c in feature_columns if c not in wanted]
        offset, scale = np.zeros(n_units), np.ones(n_units)
        if normalize != "none" and numeric:
            # the numeric units' block of the encoded rows, built column by column
            cols = np.empty((len(take(numeric[0])), len(numeric)), order="F")  # as Z[:, mask] is
            for i, name in enumerate(numeric):
                cols[:, i] = identity._raw_column(name, take(name))
            units = identity.numeric_units
            offset[units], scale[units] = fit_columns(cols, normalize)
        return identity.with_scaling(offset, scale, normalize=normalize)

    def with_scaling(self, offset: np.ndarray, scale: np.ndarray, target_mean: np.ndarray | None = None,
                     target_scale: np.ndarray | None = None, normalize: str | None = None) -> Preprocessor:
        """This preprocessor with other input scaling (and target scaling, when given)."""
        return Preprocessor(
            self.task, self.feature_columns, self.target, self.categorical, normalize or self.normalize,
            offset, scale, self.classes,
            self.target_mean if target_mean is None else target_mean,
            self.target_scale if target_scale is None else target_scale, self.fills, self.missing)

    def encode(self, raw: Any, dtype: Any = np.float64,
               rows: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Transformed inputs, C-contiguous ``dtype`` (computed in float64, a block of rows at
        a time), and, per categorical column, the values not seen in training. ``rows``: only
        these rows of ``raw``, in this order."""
        columns = self._raw_columns(raw)
        codes: dict[str, np.ndarray] = {}
        unseen: dict[str, np.ndarray] = {}
        for name, values in zip(self.feature_columns, columns):
            if name in self.categorical:
                codes[name] = label_codes(values, self.categorical[name])
                new = codes[name] < 0 if rows is None else codes[name][rows] < 0
                if new.any():
                    labels = values.labels() if isinstance(values, Coded) else values
                    unseen[name] = (labels if rows is None else labels[rows])[new]
        n_rows = len(rows) if rows is not None else len(columns[0]) if columns else len(np.asarray(raw))
        out = np.empty((n_rows, self.n_inputs), dtype)
        step = block_rows(self.n_inputs)
        block = np.empty((min(step, n_rows), self.n_inputs))
        for start in range(0, n_rows, step):
            take = slice(start, start + step) if rows is None else rows[start:start + step]
            Z = block[:len(out[start:start + step])]
            j = 0
            for name, values in zip(self.feature_columns, columns):
                if name not in self.categorical:
                    Z[:, j] = values[take]
                    j += 1
                    continue
                k = len(self.categorical[name])
                Z[:, j:j + k] = codes[name][take][:, None] == np.arange(k)
                j += k
            Z -= self.offset
            Z /= self.scale
            out[start:start + step] = Z
        return out, unseen

    def transform(self, raw: Any, dtype: Any = np.float32) -> np.ndarray:
        """Raw rows to network inputs, C-contiguous ``dtype`` of shape (n, n_inputs).

        ``raw`` is a mapping column -> values (numbers, or labels, also ``Coded``, for categorical
        columns), or a 2-D array whose columns are ``feature_columns`` in order. Unseen categories
        encode as zeros.
        """
        return self.encode(raw, dtype)[0]

    def inverse_target(self, y: Any) -> np.ndarray:
        """Network outputs back to the data's terms.

        Classification: class indices (n,) or scores (n, C) -> class labels (str, shape (n,)).
        Regression: scaled targets (n,) or (n, k) -> original units, shape (n, k).
        """
        y = np.asarray(y)
        if self.task == "classification":
            assert self.classes is not None
            indices = y.argmax(axis=1) if y.ndim == 2 else y.astype(np.int64)
            return np.asarray(self.classes, dtype=str)[indices]
        assert self.target_mean is not None and self.target_scale is not None
        y = y.astype(np.float64).reshape(len(y), -1)
        return y * self.target_scale + self.target_mean

    def encode_labels(self, labels: np.ndarray) -> np.ndarray:
        """Class labels (str) to int64 indices; -1 marks a label not among ``classes``."""
        assert self.classes is not None
        return label_codes(labels, self.classes)

    def scale_targets(self, y: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """Regression targets (n, k) in data units to training units."""
        assert self.target_mean is not None and self.target_scale is not None
        return np.ascontiguousarray((y - self.target_mean) / self.target_scale, dtype=dtype)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain numeric and unicode arrays (keys ``prep.*``) that load with ``allow_pickle=False``."""
        arrays = {
            "prep.task": np.array(self.task),
            "prep.target": np.array(self.target),
            "prep.normalize": np.array(self.normalize),
            "prep.feature_columns": _str_array(self.feature_columns),
            "prep.categorical": _str_array(self.categorical),
            "prep.offset": np.array(self.offset),
            "prep.scale": np.array(self.scale),
        }
        for i, categories in enumerate(self.categorical.values()):
            arrays[f"prep.categories.{i}"] = _str_array(categories)
        if self.classes is not None:
            arrays["prep.classes"] = _str_array(self.classes)
        if self.target_mean is not None and self.target_scale is not None:
            arrays["prep.target_mean"] = np.array(self.target_mean)
            arrays["prep.target_scale"] = np.array(self.target_scale)
        if self.missing != "error":  # runs from before fills had none of these keys
            arrays["prep.missing"] = np.array(self.missing)
            arrays["prep.fill_columns"] = _str_array(self.fills)
            arrays["prep.fill_numbers"] = np.array(
                [np.nan if isinstance(v, str) else float(v) for v in self.fills.values()], dtype=np.float64)
            arrays["prep.fill_labels"] = _str_array(v if isinstance(v, str) else "" for v in self.fills.values())
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Preprocessor:
        """Rebuild from ``to_arrays()`` output (e.g. an ``np.load``-ed checkpoint)."""

        def get(key: str) -> np.ndarray:
            if key not in arrays:
                raise DataError(f"checkpoint preprocessor: array '{key}' missing")
            return np.asarray(arrays[key])

        def strings(key: str) -> tuple[str, ...]:
            return tuple(str(v) for v in get(key).reshape(-1))

        names = strings("prep.categorical")
        categorical = {name: strings(f"prep.categories.{i}") for i, name in enumerate(names)}
        has_target_scaling = "prep.target_mean" in arrays
        fills: dict[str, float | str] = {}
        if "prep.missing" in arrays:
            for name, number, text in zip(strings("prep.fill_columns"), get("prep.fill_numbers"),
                                          strings("prep.fill_labels")):
                fills[name] = text if name in categorical else float(number)
        return cls(
            task=str(get("prep.task")[()]),
            feature_columns=strings("prep.feature_columns"),
            target=str(get("prep.target")[()]),
            categorical=categorical,
            normalize=str(get("prep.normalize")[()]),
            offset=get("prep.offset"),
            scale=get("prep.scale"),
            classes=strings("prep.classes") if "prep.classes" in arrays else None,
            target_mean=get("prep.target_mean") if has_target_scaling else None,
            target_scale=get("prep.target_scale") if has_target_scaling else None,
            fills=fills,
            missing=str(get("prep.missing")[()]) if "prep.missing" in arrays else "error",
        )

    def _raw_columns(self, raw: Any) -> list[Any]:
        if isinstance(raw, Mapping):
            absent = [c for c in self.feature_columns if c not in raw]
            if absent:
                raise DataError(f"input has no column '{absent[0]}'; expected: {list_names(self.feature_columns)}")
            columns = [raw[c] if isinstance(raw[c], Coded) else np.asarray(raw[c]).reshape(-1)
                       for c in self.feature_columns]
        else:
            array = np.asarray(raw)
            if array.ndim != 2 or array.shape[1] != len(self.feature_columns):
                raise DataError(f"input has shape {array.shape}; expected (n, {len(self.feature_columns)})")
            columns = [array[:, j] for j in range(array.shape[1])]
        return [self._raw_column(name, values) for name, values in zip(self.feature_columns, columns)]

    def _raw_column(self, name: str, values: Any) -> Any:
        if name in self.categorical:
            if isinstance(values, Coded):
                labels: Any = values.relabel(lambda v: canonical_label(v.strip()))
            elif values.dtype.kind in "USO":
                labels = map_distinct(values, lambda v: canonical_label(str(v).strip()), object).astype(str)
            else:
                labels = map_distinct(values, number_label, object).astype(str)
            return imputer.fill(name, labels, self.fills, True)
        try:
            numbers = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"column '{name}': values are not numbers") from None
        numbers = imputer.fill(name, numbers, self.fills, False)
        if not np.isfinite(numbers).all():
            raise DataError(f"column '{name}': value {numbers[~np.isfinite(numbers)][0]} is not finite")
        return numbers


def refit_scaling(prep: Preprocessor, Z: np.ndarray, y: np.ndarray | None = None,
                  scale_target: bool = False) -> Preprocessor:
    """``prep`` with its input scaling fitted again on other rows: ``Z`` holds them encoded
    but unscaled (one-hot units as they are), and for regression ``y`` their targets in
    data units (n, k). Categories, classes and fills stay; the scaling is fitted as in ``fit``."""
    offset, scale = fit_scaler(Z, prep.numeric_units, prep.normalize)
    if prep.task == "regression":
        return prep.with_scaling(offset, scale, *target_scaling(prep.task, y, scale_target))
    return prep.with_scaling(offset, scale)
