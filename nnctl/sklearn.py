"""scikit-learn estimators over nnctl's engine: ``NNClassifier`` and ``NNRegressor``.

They train the network an experiment spec describes through the same assembly as
``nnctl train`` (``app.assembly``: network, initialization, optimizer, loop settings and
stopping callbacks), on arrays instead of a data source, and keep everything in memory:
no runs directory is written unless ``save_run`` is called.  The input scaling is a
``Preprocessor`` fitted on the training rows, as in a run.

The spec is built from, in order: the estimator defaults below (or ``spec``, a YAML file
or a dict in the spec's layout, as the base), then every constructor parameter that is
not None.  Needs scikit-learn (``pip install 'nnctl[sklearn]'``); nothing else in nnctl
imports this module.
"""

from __future__ import annotations

import copy
import re
import secrets
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nnctl.engine.callbacks import Callback

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError("nnctl.sklearn needs scikit-learn: pip install 'nnctl[sklearn]'") from None

try:  # scikit-learn ≥ 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    def _validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)

__all__ = ["NNClassifier", "NNRegressor", "EXPECTED_FAILED_CHECKS"]

EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {"NNClassifier": {}, "NNRegressor": {}}
"""Per estimator, the scikit-learn checks expected to fail, each with its reason (none:
``check_estimator`` passes whole).  Given to ``check_estimator(...,
expected_failed_checks=...)``; scikit-learn before 1.6 reads them from the tags."""

ESTIMATOR_DEFAULTS: dict[str, Any] = {
    "name": "sklearn",
    "seed": 0,
    "dtype": "float64",
    "data": {"source": "<arrays>", "normalize": "standard", "scale_target": True,
             "split": {"validation": 0.0, "test": 0.0}},
    "model": {"layers": [{"units": 64, "activation": "relu"}], "init": {"scheme": "he"}},
    "optimizer": {"name": "adam", "lr": 0.001},
    "training": {"epochs": 200, "batch_size": 32},
    "stopping": {"no_improvement": {"metric": "train_loss", "patience": 10, "min_delta": 1e-4}},
}
"""The base spec when no ``spec`` is given: one ReLU layer of 64 units, Adam at 0.001,
up to 200 epochs of minibatches of 32, stopping once the training loss has not fallen by
1e-4 for 10 epochs; float64, inputs standardized."""


class _NNEstimator(BaseEstimator):
    """The parameters and the training shared by the classifier and the regressor.

    Parameters
    ----------
    hidden_layer_sizes : units per hidden layer, input side first (``model.layers[*].units``)
    activation : one name for every hidden layer, or one per layer (``model.layers[*].activation``)
    output : the output activation (``model.output``); None: chosen from the loss
    loss : ``loss`` (cross_entropy, log_loss, squared); None: chosen from the task
    optimizer : ``optimizer.name`` (sgd, momentum, adagrad, rmsprop, adam)
    learning_rate : ``optimizer.lr``
    epochs : ``training.epochs`` (the most epochs trained)
    batch_size : ``training.batch_size`` (an int, or "full")
    dropout : one rate for every hidden layer, or one per layer (``model.layers[*].dropout``)
    l2 : ``regularization.l2``
    early_stopping : True: hold out ``validation_fraction`` of the rows and stop when the
        validation loss has not improved for ``patience`` epochs (``stopping.early_stopping``),
        keeping the best epoch's weights; False: train on every row
    validation_fraction : the held-out fraction for early stopping (``data.split.validation``)
    patience : epochs without improvement before stopping (early stopping, or the training
        loss's ``stopping.no_improvement``)
    seed : ``seed``: the split, the initial weights, shuffling and dropout all follow from it
    spec : a spec file (path) or dict used as the base instead of ``ESTIMATOR_DEFAULTS``
    """

    _task = ""

    def __init__(
        self,
        hidden_layer_sizes: Sequence[int] | None = None,
        activation: str | Sequence[str] | None = None,
        output: str | None = None,
        loss: str | None = None,
        optimizer: str | None = None,
        learning_rate: float | None = None,
        epochs: int | None = None,
        batch_size: int | str | None = None,
        dropout: float | Sequence[float] | None = None,
        l2: float | None = None,
        early_stopping: bool | None = None,
        validation_fraction: float | None = None,
        patience: int | None = None,
        seed: int | None = None,
        spec: str | Path | dict | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output = output
        self.loss = loss
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.dropout = dropout
        self.l2 = l2
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.seed = seed
        self.spec = spec

    # ------------------------------------------------------------ the spec
    def spec_dict(self) -> dict[str, Any]:
        """The spec (as a dict in the YAML layout) this estimator trains with."""
        d = _base_spec(self.spec)
        model = d.setdefault("model", {})
        layers = [dict(layer) for layer in model.get("layers", [])]
        if self.hidden_layer_sizes is not None:
            sizes = [int(self.hidden_layer_sizes)] if isinstance(self.hidden_layer_sizes, (int, np.integer)) \
                else [int(u) for u in self.hidden_layer_sizes]
            template = layers[0] if layers else {}
            layers = [{**template, **(layers[i] if i < len(layers) else {}), "units": u} for i, u in enumerate(sizes)]
        for key, value in (("activation", self.activation), ("dropout", self.dropout)):
            if value is not None:
                values = [value] * len(layers) if isinstance(value, (str, int, float)) else list(value)
                if len(values) != len(layers):
                    raise ValueError(f"{key}: {len(values)} values for {len(layers)} hidden layers")
                for layer, v in zip(layers, values):
                    layer[key] = v
        model["layers"] = layers
        if self.output is not None:
            model["output"] = self.output
        if self.loss is not None:
            d["loss"] = self.loss
        if self.optimizer is not None and self.optimizer != d.get("optimizer", {}).get("name"):
            d["optimizer"] = {"name": self.optimizer}
        if self.learning_rate is not None:
            d.setdefault("optimizer", {})["lr"] = self.learning_rate
        training = d.setdefault("training", {})
        for key, value in (("epochs", self.epochs), ("batch_size", self.batch_size)):
            if value is not None:
                training[key] = value
        if self.l2 is not None:
            d.setdefault("regularization", {})["l2"] = self.l2
        if self.seed is not None:
            d["seed"] = self.seed
        self._stopping(d)
        return d

    def _stopping(self, d: dict[str, Any]) -> None:
        stopping = d.setdefault("stopping", {})
        split = d.setdefault("data", {}).setdefault("split", {})
        split["test"] = 0.0
        if self.early_stopping is not None:
            stopping["early_stopping"] = {"metric": "val_loss"} if self.early_stopping else None
        es = stopping.get("early_stopping")
        if es is not None:
            if self.patience is not None:
                es["patience"] = self.patience
            fraction = self.validation_fraction if self.validation_fraction is not None else split.get("validation")
            split["validation"] = 0.1 if not fraction else fraction
        else:
            split["validation"] = 0.0
            if self.patience is not None and stopping.get("no_improvement") is not None:
                stopping["no_improvement"]["patience"] = self.patience

    def _resolved_spec(self, n_classes: int | None):
        import yaml

        from nnctl.app.errors import NnctlError
        from nnctl.app.spec import parse_spec, resolve

        try:
            spec = parse_spec(yaml.safe_dump(self.spec_dict()), source=f"{type(self).__name__} parameters")
            return resolve(spec.model_copy(update={"restarts": None, "search": None}), self._task, n_classes)
        except NnctlError as exc:
            # the line numbers point into a generated YAML text: only the key paths help here
            raise ValueError(re.sub(r" \(line \d+\)", "", exc.message).replace("\n", "; ")) from None

    # ------------------------------------------------------------ training
    def _fit(self, X: np.ndarray, y: np.ndarray, classes: Sequence[str] | None, target: str = "y"):
        """Train on rows X (float64) and targets y (class indices, or (n, k) values);
        ``target`` names the target column in a saved run."""
        from nnctl.app.assembly import Purpose, Rows, assemble, best_metric
        from nnctl.app.data import Preprocessor, split_indices
        from nnctl.app.errors import NnctlError
        from nnctl.app.seeds import seed_sequences

        spec = self._resolved_spec(len(classes) if classes is not None else None)
        if spec.seed == "random":  # drawn once here, and kept in spec_
            spec = spec.model_copy(update={"seed": secrets.randbits(32)})
        dtype = np.dtype(spec.dtype)
        split_ss = seed_sequences(int(spec.seed))[0]
        strata = y if self._task == "classification" else None
        try:
            train, val, _ = split_indices(len(X), spec.data.split.validation, 0.0, strata,
                                          np.random.default_rng(split_ss), "early_stopping")
        except NnctlError as exc:
            raise ValueError(exc.message) from None
        names = _feature_columns(self)
        raw = {name: X[train, j] for j, name in enumerate(names)}
        y_rows = y.reshape(len(y), -1) if self._task == "regression" else None
        prep = Preprocessor.fit(raw, task=self._task, target=target, feature_columns=names, categorical=(),
                                normalize=spec.data.normalize, classes=classes,
                                y=None if y_rows is None else y_rows[train], scale_target=spec.data.scale_target)
        targets = y if y_rows is None else prep.scale_targets(y_rows, np.float64)
        x_all = prep.transform(X, dtype=dtype)
        rows = Rows(x_all[train], targets[train], x_all[val], targets[val], prep)
        base_dirs = [Path(self.spec).parent] if isinstance(self.spec, (str, Path)) else []
        training = assemble(spec, rows, Purpose("estimator", best_metric(spec, rows.has_val)), base_dirs=base_dirs)
        curve = _LossCurve()
        training.add(curve)
        with np.errstate(over="ignore", invalid="ignore"):
            result = training.run()
        net, best = training.net, training.best
        if result.stop_reason == "diverged":
            raise ValueError(f"{type(self).__name__}: training diverged (the loss became NaN or inf); "
                             "lower learning_rate")
        self.spec_ = _plain(spec)
        self.preprocessor_ = prep
        self.state_ = net.state_dict()
        self.n_iter_ = int(result.epochs)
        self.best_epoch_ = int(best.best_epoch)
        self.stop_reason_ = str(result.stop_reason)
        self.loss_curve_ = curve.losses
        return self

    def _outputs(self, X) -> np.ndarray:
        """The network's output activations for rows X (validated against the fitted shape)."""
        from nnctl.app.networks import build_network
        from nnctl.app.spec import parse_spec

        check_is_fitted(self)
        X = _validate_data(self, X, reset=False, dtype=np.float64)
        import yaml

        spec = parse_spec(yaml.safe_dump(self.spec_), source="fitted spec")
        units = self.state_[f"layer{len(spec.model.layers) + 1}.bias"].shape[0]
        net = build_network(spec, self.preprocessor_.n_inputs, units)
        net.load_state_dict(self.state_)
        with np.errstate(over="ignore"):
            return net.predict(self.preprocessor_.transform(X, dtype=net.dtype))

    def _more_tags(self) -> dict[str, Any]:  # scikit-learn < 1.6
        return {"_xfail_checks": EXPECTED_FAILED_CHECKS.get(type(self).__name__, {}),
                "multioutput": self._task == "regression"}

    def save_run(self, runs_dir: str | Path | None = None) -> str:
        """Write the fitted model as a run (spec.yaml, best.npz, summary.json) in ``runs_dir``
        (default ``$NNCTL_RUNS_DIR`` or ./runs), for ``nnctl predict``, ``evaluate --data``
        and ``export``; returns the run id.  Nothing else writes files."""
        import yaml

        from nnctl.app.runs import RunStore
        from nnctl.app.spec import dump_spec_yaml, parse_spec

        check_is_fitted(self)
        spec = parse_spec(yaml.safe_dump(self.spec_), source="fitted spec")
        run = RunStore(runs_dir).create(spec.name)
        with run.lock():
            run.write_text("spec.yaml", dump_spec_yaml(spec))
            run.save_checkpoint("best.npz", {**self.state_, **self.preprocessor_.to_arrays()})
            prep = self.preprocessor_
            run.write_json("summary.json", {
                **run.read_json("summary.json"), "kind": "sklearn", "name": spec.name, "status": "completed",
                "stop_reason": self.stop_reason_, "epochs": self.n_iter_, "best_epoch": self.best_epoch_,
                "seed": int(spec.seed), "task": prep.task, "data_source": spec.data.source,
                "classes": list(prep.classes) if prep.classes is not None else None,
            })
        return run.id

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags


class NNClassifier(ClassifierMixin, _NNEstimator):
    """A multilayer perceptron classifier trained by nnctl's engine.

    Fitted attributes: ``classes_`` (sorted labels), ``n_features_in_``,
    ``feature_names_in_`` (when X has string column names), ``spec_`` (the resolved
    spec, a dict), ``preprocessor_`` (the fitted input scaling), ``state_`` (weights
    by name, as a checkpoint holds them), ``n_iter_`` (epochs run), ``best_epoch_``,
    ``stop_reason_``, ``loss_curve_`` (training loss per epoch).  Two classes use a
    softmax over two units unless ``output='sigmoid'`` (one unit, log_loss).
    """

    _task = "classification"

    def fit(self, X, y):
        """Train on rows X (n, features) and class labels y (n,)."""
        target = _target_name(y)
        X, y = _validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"NNClassifier needs at least 2 classes; the data has only one class "
                             f"({self.classes_[0]!r})")
        labels = [str(c) for c in self.classes_]
        if len(set(labels)) != len(labels):  # e.g. 1 and '1'
            labels = [f"{i}:{c}" for i, c in enumerate(labels)]
        return self._fit(X, codes.astype(np.int64), labels, target)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n, n_classes), columns in the order of ``classes_``."""
        a = self._outputs(X).astype(np.float64)
        return np.hstack([1.0 - a, a]) if a.shape[1] == 1 else a

    def predict(self, X) -> np.ndarray:
        """The most probable class per row (labels from ``classes_``)."""
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags


class NNRegressor(RegressorMixin, _NNEstimator):
    """A multilayer perceptron regressor trained by nnctl's engine; one or several targets.

    Targets are standardized for training (``data.scale_target``) and predictions come
    back in their original units.  Fitted attributes as for ``NNClassifier``, without
    ``classes_``.
    """

    _task = "regression"

    def fit(self, X, y):
        """Train on rows X (n, features) and targets y, shape (n,) or (n, k)."""
        target = _target_name(y)
        X, y = _validate_data(self, X, y, dtype=np.float64, y_numeric=True, multi_output=True)
        self._y_ndim = int(np.ndim(y))
        return self._fit(X, np.asarray(y, dtype=np.float64), None, target)

    def predict(self, X) -> np.ndarray:
        """Predictions in the targets' units: shape (n,) when fitted on a 1-D y, else (n, k)."""
        check_is_fitted(self)
        y = self.preprocessor_.inverse_target(self._outputs(X))
        return y[:, 0] if self._y_ndim == 1 else y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class _LossCurve(Callback):
    """Collects the training loss of every epoch."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_epoch_end(self, state, logs: dict[str, float]) -> None:
        self.losses.append(float(logs["train_loss"]))


def _base_spec(spec: str | Path | dict | None) -> dict[str, Any]:
    """A deep copy of the base spec: the defaults, a dict, or a YAML file's mapping."""
    if spec is None:
        return copy.deepcopy(ESTIMATOR_DEFAULTS)
    if isinstance(spec, dict):
        base = copy.deepcopy(spec)
    else:
        import yaml

        try:
            base = yaml.safe_load(Path(spec).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"spec: cannot read {spec} ({exc.strerror or exc})") from None
        if not isinstance(base, dict):
            raise ValueError(f"spec: {spec} does not hold a mapping of spec keys")
    base.setdefault("data", {})["source"] = "<arrays>"
    base["data"].pop("target", None)
    base["data"].pop("task", None)
    base["data"].pop("categorical", None)
    return base


def _target_name(y) -> str:
    """The name of a pandas Series target, else 'y' (the target column of a saved run)."""
    name = getattr(y, "name", None)
    return name if isinstance(name, str) and name else "y"


def _feature_columns(estimator) -> list[str]:
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    return [f"x{j}" for j in range(estimator.n_features_in_)]


def _plain(spec) -> dict[str, Any]:
    from nnctl.app.spec import spec_to_dict

    return spec_to_dict(spec)
