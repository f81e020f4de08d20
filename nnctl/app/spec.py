"""The experiment spec's life: parsed and validated once at the boundary, resolved
against its data, linted, and written back as YAML.

Every problem is reported at once, one line each::

    model.layers[1].activation: unknown activation 'relux' (line 14); did you mean 'relu'? expected one of ...

The schema lives in ``spec_schema``, the YAML reading with line numbers in ``spec_yaml``,
``--set`` overrides in ``spec_overrides`` and the wording of errors in ``spec_errors``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from nnctl.app.errors import SpecError
from nnctl.app.spec_errors import Locator, spec_problems
from nnctl.app.spec_overrides import apply_overrides, read_yaml_value
from nnctl.app.spec_schema import (
    NEEDS_VALIDATION_MESSAGE,
    CheckpointInit,
    DataSpec,
    EarlyStoppingSpec,
    LayerSpec,
    ModelSpec,
    NoImprovementSpec,
    RandomInit,
    RegularizationSpec,
    Spec,
    SplitSpec,
    StoppingSpec,
    TrainingSpec,
    describe_value,
    needs_validation_key,
)
from nnctl.app.spec_yaml import KeyPath, SpecDumper, SpecLoader, format_path, load_yaml

__all__ = [
    "CheckpointInit", "DataSpec", "EarlyStoppingSpec", "LayerSpec", "ModelSpec", "NoImprovementSpec",
    "RandomInit", "RegularizationSpec", "Spec", "SplitSpec", "StoppingSpec", "TrainingSpec",
    "KeyPath", "SpecDumper", "SpecLoader", "check_needs_validation", "dump_spec_yaml", "format_path", "json_schema",
    "lint", "load_spec", "parse_spec", "read_yaml_value", "resolve", "spec_to_dict",
]


def parse_spec(
    text: str,
    source: str = "<string>",
    overrides: Sequence[str] = (),
    default_name: str = "experiment",
) -> Spec:
    """Parse and validate a YAML spec; ``overrides`` are ``KEY=VALUE`` strings applied before validation.

    Raises SpecError with one line per problem (key path, message, line) and hint ``in SOURCE``.
    """
    data, lines = load_yaml(text, source)
    if data is None:
        raise SpecError(f"{source}: the spec is empty; it needs at least 'data:' and 'model:'")
    if not isinstance(data, dict):
        raise SpecError(
            f"{source}: the spec must be a mapping of keys like 'data:' and 'model:', "
            f"got {describe_value(data)} (line {lines.get((), 1)})"
        )
    data.setdefault("name", default_name)
    locator = Locator(lines, apply_overrides(data, overrides))
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError("\n".join(spec_problems(exc, data, locator)), hint=f"in {source}") from None


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> Spec:
    """Read a YAML spec file; its stem is the default ``name``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise SpecError(f"spec file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise SpecError(f"spec file not found: {path} (cannot read it: {reason})") from None
    return parse_spec(text, source=str(path), overrides=overrides, default_name=path.stem or "experiment")


def spec_to_dict(spec: Spec) -> dict[str, Any]:
    """A plain JSON/YAML-compatible dict with every default filled in and aliases (``from``) as keys."""
    return spec.model_dump(mode="json", by_alias=True)


def dump_spec_yaml(spec: Spec) -> str:
    """The spec as YAML, keys in schema order; ``parse_spec(dump_spec_yaml(s)) == s``."""
    return yaml.dump(spec_to_dict(spec), Dumper=SpecDumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file (keys by alias), with each field's description."""
    return Spec.model_json_schema(by_alias=True)


def check_needs_validation(spec: Spec) -> None:
    """Raise SpecError when a stopping criterion needs validation rows but the split has none."""
    key = needs_validation_key(spec_to_dict(spec))
    if key is not None:
        raise SpecError(f"{key}: {NEEDS_VALIDATION_MESSAGE}", hint="set data.split.validation above 0")


def lint(spec: Spec) -> list[str]:
    """Warnings for legal but poor combinations, one line each, starting with the key path."""
    warnings: list[str] = []
    model = spec.model
    if model.output == "softmax" and spec.loss == "squared":
        warnings.append("model.output: softmax output with squared loss learns slowly; use loss: cross_entropy")
    if model.input_dropout >= 0.8:
        warnings.append(f"model.input_dropout: {model.input_dropout} drops most inputs; training may not converge")
    for i, layer in enumerate(model.layers):
        key = f"model.layers[{i}]"
        if layer.activation in ("sigmoid", "tanh") and spec.data.normalize == "none":
            warnings.append(
                f"{key}.activation: {layer.activation} units saturate on unscaled inputs "
                "(data.normalize is none); use normalize: standard"
            )
        if layer.activation != "leaky_relu" and layer.slope != LayerSpec.model_fields["slope"].default:
            warnings.append(f"{key}.slope: ignored, only leaky_relu uses slope (activation is {layer.activation})")
        if layer.dropout >= 0.8:
            warnings.append(f"{key}.dropout: {layer.dropout} drops most units; training may not converge")
    return warnings


def resolve(spec: Spec, task: str, n_classes: int | None) -> Spec:
    """Fill in ``data.task``, ``loss`` and ``model.output`` once the data's task is known.

    loss null: regression → squared; classification → log_loss with sigmoid output, else cross_entropy.
    output null: cross_entropy → softmax; log_loss → sigmoid; squared → linear (regression) or
    sigmoid (classification). Incompatible combinations raise SpecError naming the key.
    """
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    if task == "classification" and n_classes is not None and n_classes < 2:
        raise SpecError(f"data.target: classification needs at least 2 classes, found {n_classes}")
    output = spec.model.output
    loss = spec.loss
    if loss is None:
        if task == "regression":
            loss = "squared"
        else:
            loss = "log_loss" if output == "sigmoid" else "cross_entropy"
    if output is None:
        defaults = {"cross_entropy": "softmax", "log_loss": "sigmoid"}
        output = defaults.get(loss, "linear" if task == "regression" else "sigmoid")
    _check_resolved(task, loss, output, inferred=spec.loss is None)
    return spec.model_copy(
        update={
            "data": spec.data.model_copy(update={"task": task}),
            "model": spec.model.model_copy(update={"output": output}),
            "loss": loss,
        }
    )


def _check_resolved(task: str, loss: str, output: str, inferred: bool) -> None:
    because = f" (loss defaults to {loss} for {task})" if inferred else ""
    if task == "regression" and loss in ("cross_entropy", "log_loss"):
        raise SpecError(f"loss: {loss} is for classification, but the task is regression", hint="use loss: squared")
    if task == "regression" and output == "softmax":
        raise SpecError(
            "model.output: softmax output is for classification, but the task is regression",
            hint="use model.output: linear",
        )
    if loss == "cross_entropy" and output != "softmax":
        raise SpecError(
            f"model.output: cross_entropy loss needs softmax output, got {output!r}{because}",
            hint="set model.output: softmax, or choose a loss that fits the output",
        )
    if loss == "log_loss" and output != "sigmoid":
        raise SpecError(
            f"model.output: log_loss needs sigmoid output, got {output!r}{because}",
            hint="set model.output: sigmoid, or use loss: cross_entropy with softmax",
        )
