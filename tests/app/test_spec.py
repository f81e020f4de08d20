"""Tests for nnctl.app.spec: good specs and their defaults, dump and schema, resolve, lint."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import yaml

from nnctl.app.errors import SpecError
from nnctl.app.spec import (
    Spec,
    dump_spec_yaml,
    json_schema,
    lint,
    load_spec,
    parse_spec,
    resolve,
    spec_to_dict,
)
from tests.app.spec_texts import BASE, MINIMAL


# ---------------------------------------------------------------- good specs
def test_minimal_spec_fills_defaults() -> None:
    spec = parse_spec(MINIMAL)
    assert spec.name == "experiment"
    assert spec.seed == 0 and spec.dtype == "float32"
    assert spec.data.normalize == "standard" and spec.data.split.validation == 0.2 and spec.data.split.stratify
    assert spec.model.layers[0].activation == "relu" and spec.model.layers[0].slope == 0.01
    assert spec.model.init.scheme == "uniform" and spec.model.init.scale == 0.05
    assert spec.loss is None and spec.model.output is None
    assert spec.optimizer.name == "adam" and spec.optimizer.lr == 0.001 and spec.optimizer.beta2 == 0.999
    assert spec.training.epochs == 200 and spec.training.batch_size == 32
    assert spec.training.lr_schedule.name == "constant"
    assert spec.stopping.early_stopping is None and spec.stopping.restore_best
    assert spec.regularization.l2 == 0.0


def test_empty_layer_list_and_yaml_ints_for_floats() -> None:
    spec = parse_spec("data: {source: a.csv}\nmodel: {layers: []}\noptimizer: {name: sgd, lr: 1}\n")
    assert spec.model.layers == [] and spec.optimizer.lr == 1.0 and isinstance(spec.optimizer.lr, float)


def test_exponent_floats_are_numbers() -> None:
    spec = parse_spec(MINIMAL + "optimizer: {name: adam, lr: 1e-3, eps: 1E-8}\n")
    assert spec.optimizer.lr == 1e-3 and spec.optimizer.eps == 1e-8


def test_spec_is_frozen() -> None:
    spec = parse_spec(MINIMAL)
    with pytest.raises(Exception):
        spec.seed = 3  # type: ignore[misc]


def test_load_spec_uses_file_stem_as_name(tmp_path) -> None:
    path = tmp_path / "iris_small.yaml"
    path.write_text(MINIMAL)
    assert load_spec(path).name == "iris_small"
    path.write_text("name: given\n" + MINIMAL)
    assert load_spec(str(path), overrides=["seed=4"]).seed == 4
    assert load_spec(path).name == "given"


def test_load_spec_missing_file(tmp_path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpecError, match="^spec file not found: .*nope.yaml$"):
        load_spec(missing)


def test_load_spec_errors_carry_the_file_name(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("data: [\n")
    with pytest.raises(SpecError, match=rf"^{path}: YAML syntax error at line 2"):
        load_spec(path)


# ---------------------------------------------------------------- dump, dict, schema


def test_spec_to_dict_is_plain_and_complete() -> None:
    spec = parse_spec(MINIMAL + "  init: {from: ck.npz}\n")
    d = spec_to_dict(spec)
    assert d["model"]["init"] == {"from": "ck.npz"}
    assert d["optimizer"] == {"name": "adam", "lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    assert d["stopping"]["early_stopping"] is None and d["training"]["lr_schedule"] == {"name": "constant"}
    assert yaml.safe_load(yaml.safe_dump(d)) == d
    assert Spec.model_validate(d) == spec


def _properties(schema: dict) -> list[tuple[str, dict]]:
    found = [(name, prop) for name, prop in schema.get("properties", {}).items()]
    for sub in schema.get("$defs", {}).values():
        found += _properties(sub)
    return found


def test_json_schema_has_descriptions_and_required() -> None:
    schema = json_schema()
    assert sorted(schema["required"]) == ["data", "model"]
    assert schema["$defs"]["DataSpec"]["required"] == ["source"]
    assert schema["$defs"]["ModelSpec"]["required"] == ["layers"]
    assert "from" in schema["$defs"]["CheckpointInit"]["properties"]
    props = _properties(schema)
    assert len(props) > 40
    assert [name for name, prop in props if not prop.get("description")] == []
    assert schema["properties"]["optimizer"]["default"]["name"] == "adam"


# ---------------------------------------------------------------- resolve
def _with(text: str) -> Spec:
    return parse_spec(MINIMAL + text)


@pytest.mark.parametrize(
    ("extra", "task", "loss", "output"),
    [
        ("", "classification", "cross_entropy", "softmax"),
        ("", "regression", "squared", "linear"),
        ("  output: sigmoid\n", "classification", "log_loss", "sigmoid"),
        ("loss: squared\n", "classification", "squared", "sigmoid"),
        ("loss: squared\n", "regression", "squared", "linear"),
        ("loss: log_loss\n", "classification", "log_loss", "sigmoid"),
        ("loss: cross_entropy\n", "classification", "cross_entropy", "softmax"),
        ("  output: relu\n", "regression", "squared", "relu"),
    ],
)
def test_resolve_defaults(extra: str, task: str, loss: str, output: str) -> None:
    spec = _with(extra)
    resolved = resolve(spec, task, 3 if task == "classification" else None)
    assert (resolved.data.task, resolved.loss, resolved.model.output) == (task, loss, output)
    assert spec.loss is None or spec.loss == loss  # the original is untouched
    assert parse_spec(dump_spec_yaml(resolved)) == resolved


@pytest.mark.parametrize(
    ("extra", "task", "message"),
    [
        ("  output: sigmoid\nloss: cross_entropy\n", "classification", "model.output: cross_entropy loss needs softmax output, got 'sigmoid'"),
        ("  output: linear\n", "classification",
         "model.output: cross_entropy loss needs softmax output, got 'linear' (loss defaults to cross_entropy"),
        ("  output: softmax\nloss: log_loss\n", "classification", "model.output: log_loss needs sigmoid output"),
        ("loss: log_loss\n", "regression", "loss: log_loss is for classification, but the task is regression"),
        ("loss: cross_entropy\n", "regression", "loss: cross_entropy is for classification"),
        ("  output: softmax\n", "regression", "model.output: softmax output is for classification"),
    ],
)
def test_resolve_errors(extra: str, task: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        resolve(_with(extra), task, 3)
    assert info.value.message.startswith(message)
    assert info.value.hint


def test_resolve_rejects_one_class_and_unknown_task() -> None:
    with pytest.raises(SpecError, match="at least 2 classes"):
        resolve(_with(""), "classification", 1)
    with pytest.raises(ValueError):
        resolve(_with(""), "ranking", None)


# ---------------------------------------------------------------- lint
def test_lint_clean_spec_has_no_warnings() -> None:
    assert lint(parse_spec(BASE)) == []


def test_lint_warnings() -> None:
    text = textwrap.dedent(
        """\
        data: {source: a.csv, normalize: none}
        model:
          input_dropout: 0.9
          output: softmax
          layers:
            - {units: 8, activation: tanh}
            - {units: 8, activation: relu, slope: 0.3, dropout: 0.8}
            - {units: 8, activation: leaky_relu, slope: 0.3}
        loss: squared
        """
    )
    warnings = lint(parse_spec(text))
    keys = [w.split(":")[0] for w in warnings]
    assert keys == [
        "model.output",
        "model.input_dropout",
        "model.layers[0].activation",
        "model.layers[1].slope",
        "model.layers[1].dropout",
    ]
    assert all("\n" not in w for w in warnings)


def test_spec_module_imports_no_cli_or_engine() -> None:
    code = (
        "import sys, nnctl.app.spec; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('typer', 'rich') "
        "or m.startswith(('nnctl.engine', 'nnctl.cli'))]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
