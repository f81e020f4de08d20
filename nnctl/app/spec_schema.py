"""The experiment spec's schema: pydantic models with a default, a range and a description per field.

Field names of the optimizer and schedule models equal the engine's keyword names, so
``spec.optimizer.model_dump(exclude={"name"})`` can be passed straight to the engine.
Loading, error messages and overrides live in :mod:`nnctl.app.spec`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

Activation = Literal["sigmoid", "tanh", "relu", "leaky_relu", "linear"]
OutputActivation = Literal["softmax", "sigmoid", "linear", "relu"]
Loss = Literal["squared", "log_loss", "cross_entropy"]
Task = Literal["classification", "regression"]
Metric = Literal["train_loss", "val_loss", "train_accuracy", "val_accuracy", "train_rmse", "val_rmse"]

MAXIMIZED_METRICS = frozenset({"train_accuracy", "val_accuracy"})
"""Stopping metrics where larger is better; every other metric is minimized."""

_MAX_EPOCHS = 10_000_000
_MAX_BATCH = 100_000_000
_MAX_SEED = 2**63 - 1


def describe_value(value: Any) -> str:
    """A short, plain rendering of a user's value for an error message: ``'8' (a string)``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"{shown!r} (a string)"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


class _Section(BaseModel):
    # strict: "8" is not 8 and true is not 1; ints are still accepted for float fields.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


# ---------------------------------------------------------------- data
class SplitSpec(_Section):
    """How the rows are split; the rest after validation and test is the training split."""

    validation: float = Field(0.2, ge=0, lt=1, description="Fraction of rows held out for validation.")
    test: float = Field(0.2, ge=0, lt=1, description="Fraction of rows held out for the final test.")
    stratify: bool = Field(True, description="Keep class proportions equal across splits (classification).")

    @model_validator(mode="after")
    def _leave_training_rows(self) -> SplitSpec:
        total = self.validation + self.test
        if total >= 1:
            raise PydanticCustomError(
                "split_total",
                "validation + test must be below 1 so rows remain for training, got {total}",
                {"total": round(total, 12)},
            )
        return self


class DataSpec(_Section):
    """Where the rows come from and how they are prepared."""

    source: str = Field(
        min_length=1,
        description="Path to a CSV, Parquet (.parquet) or .npz file; an IDX folder (train-images-idx3-ubyte[.gz] and "
        "train-labels-idx1-ubyte[.gz], plus the t10k- pair as the test split when present); "
        "an IDX images file (*idx3-ubyte[.gz]); or builtin:NAME.",
    )
    labels: str | None = Field(
        None, min_length=1,
        description="IDX: the labels file (*idx1-ubyte[.gz]) of an IDX images source; null means the "
        "images file's name with images/idx3 turned into labels/idx1.",
    )
    target: str | None = Field(None, min_length=1, description="Target column (CSV, Parquet); null means the last column.")
    task: Task | None = Field(None, description="classification or regression; null means inferred from the data.")
    categorical: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="Columns to one-hot encode (text columns are, always)."
    )
    normalize: Literal["none", "minmax", "minmax_symmetric", "standard"] = Field(
        "standard", description="Input scaling, fitted on the training rows only."
    )
    scale_target: bool = Field(
        True, description="Regression: standardize targets for training; metrics stay in original units."
    )
    missing: Literal["error", "drop_rows", "mean", "median", "most_frequent"] = Field(
        "error", description="Missing cells: an error naming them, drop their rows, or fill each feature column"
        " with its training mean / median / most frequent value (categorical columns: the most frequent category)."
    )
    split: SplitSpec = Field(default=SplitSpec(), description="Validation and test fractions.")


# ---------------------------------------------------------------- model
class LayerSpec(_Section):
    """One hidden layer."""

    units: int = Field(ge=1, le=100_000, description="Number of units.")
    activation: Activation = Field("relu", description="Hidden activation function.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Fraction of this layer's outputs dropped in training.")
    slope: float = Field(0.01, ge=0, le=1e6, description="Negative-side slope; used by leaky_relu only.")


InitScheme = Literal["uniform", "normal", "xavier", "he"]


class RandomInit(_Section):
    """Fresh random weights."""

    scheme: InitScheme = Field("uniform", description="Weight initialization scheme.")
    scale: float = Field(0.05, gt=0, le=1e6, description="Range (uniform) or standard deviation (normal).")


class CheckpointInit(_Section):
    """Weights copied from a checkpoint."""

    from_: str = Field(alias="from", min_length=1, description="Path to a checkpoint .npz to start from.")


def _init_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return "checkpoint" if "from" in value else "random"
    if isinstance(value, CheckpointInit):
        return "checkpoint"
    if isinstance(value, RandomInit):
        return "random"
    return None


InitSpec = Annotated[
    Union[Annotated[RandomInit, Tag("random")], Annotated[CheckpointInit, Tag("checkpoint")]],
    Discriminator(
        _init_kind,
        custom_error_type="init_type",
        custom_error_message="expected a mapping like {scheme: he, scale: 0.05} or {from: run.npz}",
    ),
]


class ModelSpec(_Section):
    """The network's shape."""

    input_dropout: float = Field(0.0, ge=0, lt=1, description="Fraction of inputs dropped in training.")
    layers: list[LayerSpec] = Field(description="Hidden layers, input side first; an empty list means none.")
    output: OutputActivation | None = Field(
        None, description="Output activation; null means chosen from the task and loss."
    )
    init: InitSpec = Field(default=RandomInit(), description="Random initialization or a checkpoint.")


# ---------------------------------------------------------------- optimizers
def _lr(default: float) -> Any:
    return Field(default, gt=0, le=1e6, description="Learning rate.")


class SGD(_Section):
    """Plain stochastic gradient descent."""

    name: Literal["sgd"] = Field("sgd", description="Optimizer name.")
    lr: float = _lr(0.01)


class Momentum(_Section):
    """SGD with classical momentum."""

    name: Literal["momentum"] = Field("momentum", description="Optimizer name.")
    lr: float = _lr(0.01)
    mu: float = Field(0.9, ge=0, lt=1, description="Momentum coefficient.")


class AdaGrad(_Section):
    """AdaGrad: per-parameter rates scaled by accumulated squared gradients."""

    name: Literal["adagrad"] = Field("adagrad", description="Optimizer name.")
    lr: float = _lr(0.01)
    eps: float = Field(1e-10, gt=0, le=1, description="Added to the denominator for stability.")


class RMSProp(_Section):
    """RMSProp: rates scaled by a moving average of squared gradients."""

    name: Literal["rmsprop"] = Field("rmsprop", description="Optimizer name.")
    lr: float = _lr(0.01)
    alpha: float = Field(0.99, gt=0, lt=1, description="Decay of the squared-gradient average.")
    eps: float = Field(1e-8, gt=0, le=1, description="Added to the denominator for stability.")


class Adam(_Section):
    """Adam: bias-corrected first and second moment estimates."""

    name: Literal["adam"] = Field("adam", description="Optimizer name.")
    lr: float = _lr(0.001)
    beta1: float = Field(0.9, ge=0, lt=1, description="Decay of the first-moment estimate.")
    beta2: float = Field(0.999, ge=0, lt=1, description="Decay of the second-moment estimate.")
    eps: float = Field(1e-8, gt=0, le=1, description="Added to the denominator for stability.")


OPTIMIZERS: dict[str, type[_Section]] = {
    "sgd": SGD, "momentum": Momentum, "adagrad": AdaGrad, "rmsprop": RMSProp, "adam": Adam,
}
OptimizerSpec = Annotated[Union[SGD, Momentum, AdaGrad, RMSProp, Adam], Field(discriminator="name")]


# ---------------------------------------------------------------- schedules
class ConstantSchedule(_Section):
    """The learning rate never changes."""

    name: Literal["constant"] = Field("constant", description="Schedule name.")


class StepSchedule(_Section):
    """Multiply the rate by gamma every step_size epochs."""

    name: Literal["step"] = Field("step", description="Schedule name.")
    step_size: int = Field(10, ge=1, le=_MAX_EPOCHS, description="Epochs between decays.")
    gamma: float = Field(0.5, gt=0, le=1, description="Factor applied at each decay.")


class ExponentialSchedule(_Section):
    """Multiply the rate by gamma every epoch."""

    name: Literal["exponential"] = Field("exponential", description="Schedule name.")
    gamma: float = Field(0.95, gt=0, le=1, description="Factor applied each epoch.")


class InverseTimeSchedule(_Section):
    """lr / (1 + decay * epoch)."""

    name: Literal["inverse_time"] = Field("inverse_time", description="Schedule name.")
    decay: float = Field(0.01, ge=0, le=1e6, description="Decay rate per epoch.")


class CosineSchedule(_Section):
    """Cosine annealing from lr down to min_lr over the epochs."""

    name: Literal["cosine"] = Field("cosine", description="Schedule name.")
    min_lr: float = Field(0.0, ge=0, le=1e6, description="Learning rate at the last epoch.")


SCHEDULES: dict[str, type[_Section]] = {
    "constant": ConstantSchedule, "step": StepSchedule, "exponential": ExponentialSchedule,
    "inverse_time": InverseTimeSchedule, "cosine": CosineSchedule,
}
ScheduleSpec = Annotated[
    Union[ConstantSchedule, StepSchedule, ExponentialSchedule, InverseTimeSchedule, CosineSchedule],
    Field(discriminator="name"),
]


# ---------------------------------------------------------------- training and stopping
class TrainingSpec(_Section):
    """The epoch and minibatch loop."""

    epochs: int = Field(200, ge=1, le=_MAX_EPOCHS, description="Maximum number of epochs.")
    batch_size: Annotated[int, Field(ge=1, le=_MAX_BATCH)] | Literal["full"] = Field(
        32, description="Rows per minibatch, or 'full' for full-batch training."
    )
    shuffle: bool = Field(True, description="Shuffle the training rows every epoch.")
    lr_schedule: ScheduleSpec = Field(default=ConstantSchedule(), description="Learning-rate schedule.")
    clip_norm: float | None = Field(
        None, gt=0, le=1e12,
        description="Clip the global gradient norm: g <- g * min(1, clip_norm / ||g||) over all "
        "parameters before each step (a remedy for exploding gradients); null means no clipping.",
    )

    @field_validator("batch_size", mode="before")
    @classmethod
    def _one_batch_error(cls, value: Any) -> Any:
        # One clear error instead of one per union member.
        if value == "full" and isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= _MAX_BATCH:
            return value
        raise PydanticCustomError(
            "batch_size", "expected an integer from 1 to {max} or 'full', got {got}",
            {"max": _MAX_BATCH, "got": describe_value(value)},
        )


class NoImprovementSpec(_Section):
    """Stop when a metric has not improved by min_delta for patience epochs."""

    metric: Metric = Field("train_loss", description="Metric watched; accuracy is maximized, others minimized.")
    patience: int = Field(20, ge=1, le=_MAX_EPOCHS, description="Epochs without improvement before stopping.")
    min_delta: float = Field(1e-4, ge=0, le=1e6, description="Smallest change that counts as improvement.")


class EarlyStoppingSpec(_Section):
    """Stop when a validation metric has not improved for patience epochs."""

    metric: Metric = Field("val_loss", description="Metric watched; accuracy is maximized, others minimized.")
    patience: int = Field(10, ge=1, le=_MAX_EPOCHS, description="Epochs without improvement before stopping.")
    min_delta: float = Field(0.0, ge=0, le=1e6, description="Smallest change that counts as improvement.")


class StoppingSpec(_Section):
    """Termination criteria besides the epoch limit; null disables one."""

    loss_below: float | None = Field(None, gt=0, le=1e12, description="Stop once the training loss is below this.")
    no_improvement: NoImprovementSpec | None = Field(None, description="Stop when a metric stalls.")
    early_stopping: EarlyStoppingSpec | None = Field(None, description="Stop when a validation metric stalls.")
    val_rising: int | None = Field(
        None, ge=1, le=_MAX_EPOCHS, description="Stop after this many epochs of rising validation loss."
    )
    restore_best: bool = Field(True, description="Restore the weights of the best epoch after stopping.")


class RegularizationSpec(_Section):
    """Weight penalties and constraints."""

    l2: float = Field(0.0, ge=0, le=1e6, description="L2 penalty coefficient on weights.")
    max_norm: float | None = Field(None, gt=0, le=1e12, description="Cap on each unit's incoming weight norm.")


class CheckpointSpec(_Section):
    """How often a run saves what it needs to resume."""

    every_seconds: float = Field(
        10.0, ge=0, le=1e9,
        description="Save last.npz at an epoch's end once this many seconds have passed since the last save "
        "(0 = every epoch); always at the end of training and on interrupt.",
    )


# ---------------------------------------------------------------- model selection
class RestartsSpec(_Section):
    """Several trainings from different random initial weights, combined into one model."""

    count: int = Field(1, ge=1, le=1000, description="Number of trainings (members); 1 means a single network.")
    combine: Literal["vote", "mean", "best"] = Field(
        "vote", description="vote: majority of the members' classes; mean: averaged outputs; "
        "best: the member with the best validation metric."
    )


class SearchSpec(_Section):
    """k-fold cross-validation over every combination of the grid (nnctl crossval)."""

    folds: int = Field(10, ge=2, le=100_000, description="Number of cross-validation folds (k).")
    grid: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="Spec key (dotted path, e.g. model.layers[0].units) -> values to try; "
        "every combination is cross-validated.",
    )


# ---------------------------------------------------------------- the spec
def needs_validation_key(spec: dict[str, Any]) -> str | None:
    """The key path that needs validation rows when ``data.split.validation`` is 0, else None.

    Works on a plain (possibly invalid) dict so it can be reported beside other problems.
    """
    data = spec.get("data")
    split = data.get("split") if isinstance(data, dict) else None
    validation = split.get("validation", 0.2) if isinstance(split, dict) else 0.2
    if type(validation) not in (int, float) or validation != 0:
        return None
    stopping = spec.get("stopping")
    if not isinstance(stopping, dict):
        return None
    if stopping.get("early_stopping") is not None:
        return "stopping.early_stopping"
    if stopping.get("val_rising") is not None:
        return "stopping.val_rising"
    no_improvement = stopping.get("no_improvement")
    if isinstance(no_improvement, dict) and str(no_improvement.get("metric", "")).startswith("val_"):
        return "stopping.no_improvement.metric"
    return None


NEEDS_VALIDATION_MESSAGE = "needs validation rows, but data.split.validation is 0"


class Spec(_Section):
    """One experiment: data, model, loss, optimizer, training loop, stopping, regularization."""

    name: str = Field("experiment", min_length=1, max_length=200, description="Experiment name; defaults to the file's stem.")
    seed: Annotated[int, Field(ge=0, le=_MAX_SEED)] | Literal["random"] = Field(
        0, description="Seed for every random generator, or 'random' for a fresh one each run."
    )
    dtype: Literal["float32", "float64"] = Field("float32", description="Floating-point precision.")
    data: DataSpec = Field(description="Data source and preparation.")
    model: ModelSpec = Field(description="Network architecture and initialization.")
    loss: Loss | None = Field(None, description="Loss function; null means chosen from the task and output.")
    optimizer: OptimizerSpec = Field(default=Adam(), description="Optimizer and its parameters.")
    training: TrainingSpec = Field(default=TrainingSpec(), description="Epochs, batches and schedule.")
    stopping: StoppingSpec = Field(default=StoppingSpec(), description="Stopping criteria.")
    regularization: RegularizationSpec = Field(default=RegularizationSpec(), description="Weight penalties.")
    checkpoint: CheckpointSpec = Field(default=CheckpointSpec(), description="Checkpoints for resuming.")
    restarts: RestartsSpec | None = Field(None, description="Train several networks and combine them.")
    search: SearchSpec | None = Field(None, description="Cross-validated search (nnctl crossval).")

    @field_validator("seed", mode="before")
    @classmethod
    def _one_seed_error(cls, value: Any) -> Any:
        if value == "random" and isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_SEED:
            return value
        raise PydanticCustomError(
            "seed", "expected an integer >= 0 or 'random', got {got}", {"got": describe_value(value)}
        )

    @model_validator(mode="after")
    def _validation_rows(self) -> Spec:
        key = needs_validation_key(self.model_dump(by_alias=True))
        if key is not None:
            raise PydanticCustomError("needs_validation", NEEDS_VALIDATION_MESSAGE, {"path": key})
        return self
