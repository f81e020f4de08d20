"""Tests for nnctl.app.spec: loading, error messages with key paths and lines, overrides, resolve, lint."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from nnctl.app.errors import SpecError
from nnctl.app.spec import (
    Spec,
    SpecDumper,
    SpecLoader,
    check_needs_validation,
    dump_spec_yaml,
    json_schema,
    lint,
    load_spec,
    parse_spec,
    resolve,
    spec_to_dict,
)

MINIMAL = "data:\n  source: data/iris.csv\nmodel:\n  layers:\n    - units: 8\n"
NO_VALIDATION = MINIMAL.replace("  source: data/iris.csv\n", "  source: data/iris.csv\n  split: {validation: 0}\n")

# A fuller spec; line numbers below refer to this text.
BASE = textwrap.dedent(
    """\
    name: base
    seed: 1
    data:
      source: data/iris.csv
      split:
        validation: 0.2
    model:
      layers:
        - units: 8
          activation: relu
        - units: 4
          activation: tanh
    optimizer:
      name: adam
      lr: 0.01
    training:
      epochs: 50
      batch_size: 16
    stopping:
      early_stopping:
        patience: 5
    """
)


def replace_line(text: str, line: int, new: str) -> str:
    """Replace 1-based ``line`` of ``text``, keeping its indentation."""
    lines = text.splitlines()
    old = lines[line - 1]
    lines[line - 1] = old[: len(old) - len(old.lstrip())] + new
    return "\n".join(lines) + "\n"


def spec_error(text: str, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(text, overrides=overrides)
    assert info.value.code == 2
    return info.value.message


# ---------------------------------------------------------------- bad specs: key path and line
BAD_VALUES = [
    # (line in BASE, replacement, expected fragments of the message)
    (12, "activation: relux", ["model.layers[1].activation: unknown activation 'relux' (line 12)",
                               "expected one of sigmoid, tanh, relu"]),
    (9, '- units: "8"', ["model.layers[0].units: expected an integer, got '8' (a string) (line 9)"]),
    (9, "- units: 8.5", ["model.layers[0].units: expected an integer, got 8.5 (line 9)"]),
    (9, "- units: true", ["model.layers[0].units: expected an integer, got true (a boolean) (line 9)"]),
    (9, "- units: 0", ["model.layers[0].units: must be >= 1, got 0 (line 9)"]),
    (15, "lr: -1", ["optimizer.lr: must be > 0, got -1 (line 15)"]),
    (15, "lr: .nan", ["optimizer.lr: must be a finite number, got nan (line 15)"]),
    (15, "lr: .inf", ["optimizer.lr: must be a finite number, got inf (line 15)"]),
    (15, "lr: fast", ["optimizer.lr: expected a number, got 'fast' (a string) (line 15)"]),
    (10, "dropout: 1.0", ["model.layers[0].dropout: must be < 1, got 1.0 (line 10)"]),
    (17, "epochs: 0", ["training.epochs: must be >= 1, got 0 (line 17)"]),
    (17, "epochs: 1e3", ["training.epochs: expected an integer, got 1000.0 (line 17)"]),
    (18, "batch_size: 0", ["training.batch_size: expected an integer from 1 to", "or 'full', got 0 (line 18)"]),
    (18, "batch_size: half", ["training.batch_size:", "got 'half' (a string) (line 18)"]),
    (2, "seed: -1", ["seed: expected an integer >= 0 or 'random', got -1 (line 2)"]),
    (14, "name: adamw", ["optimizer.name: unknown optimizer 'adamw' (line 14); did you mean 'adam'? "
                         "expected one of sgd, momentum, adagrad, rmsprop, adam"]),
    (20, "early_stoping:", ["stopping.early_stoping: unknown key (line 20); did you mean 'early_stopping'? "
                            "expected one of loss_below, no_improvement, early_stopping, val_rising, restore_best"]),
    (5, "splitt:", ["data.splitt: unknown key (line 5); did you mean 'split'?"]),
    (6, "validation: 0", ["stopping.early_stopping: needs validation rows, but data.split.validation is 0 (line 20)"]),
    (6, "validation: 0.9", ["data.split: validation + test must be below 1", "(line 5)"]),
    (4, "source: ''", ["data.source: must not be empty (line 4)"]),
    (4, "source:", ["data.source: expected text, got null (line 4)"]),
]


@pytest.mark.parametrize(("line", "new", "fragments"), BAD_VALUES, ids=[b[1] for b in BAD_VALUES])
def test_bad_value_names_key_and_line(line: int, new: str, fragments: list[str]) -> None:
    message = spec_error(replace_line(BASE, line, new))
    for fragment in fragments:
        assert fragment in message
    assert "Input should" not in message and "pydantic" not in message
    assert len(message.splitlines()) == 1


def test_bad_activation_message_is_exact() -> None:
    message = spec_error(replace_line(BASE, 10, "activation: relux"))
    assert message == (
        "model.layers[0].activation: unknown activation 'relux' (line 10); did you mean 'relu'? "
        "expected one of sigmoid, tanh, relu, leaky_relu, linear"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model:\n  layers: []\n", "data: missing required key (line 1)"),
        ("data:\n  target: y\nmodel:\n  layers: []\n", "data.source: missing required key (line 1)"),
        ("data:\n  source: a.csv\nmodel:\n  output: softmax\n", "model.layers: missing required key (line 3)"),
        (
            "data: {source: a.csv}\nmodel:\n  layers:\n    - activation: relu\n",
            "model.layers[0].units: missing required key (line 4)",
        ),
    ],
)
def test_missing_key_names_parent_line(text: str, expected: str) -> None:
    assert spec_error(text) == expected


def test_unknown_key_in_optimizer_lists_that_optimizers_keys() -> None:
    text = MINIMAL + "optimizer:\n  name: sgd\n  beta1: 0.9\n"
    assert spec_error(text) == "optimizer.beta1: unknown key (line 8); expected one of name, lr"


def test_unknown_root_key_suggests() -> None:
    message = spec_error(MINIMAL + "optimiser:\n  name: sgd\n")
    assert message.startswith("optimiser: unknown key (line 6); did you mean 'optimizer'? expected one of name, seed")


def test_schedule_name_errors() -> None:
    bad = spec_error(MINIMAL + "training:\n  lr_schedule: {name: cosin}\n")
    assert bad.startswith("training.lr_schedule.name: unknown schedule 'cosin' (line 7); did you mean 'cosine'?")
    missing = spec_error(MINIMAL + "training:\n  lr_schedule: {gamma: 0.5}\n")
    assert missing.startswith("training.lr_schedule.name: missing required key (line 7); expected one of constant")


def test_optimizer_given_as_a_bare_name() -> None:
    message = spec_error(MINIMAL + "optimizer: adam\n")
    assert message == "optimizer: expected a mapping like {name: adam}, got 'adam' (a string) (line 6)"


def test_init_errors() -> None:
    assert spec_error(MINIMAL + "  init: {from: 3}\n") == "model.init.from: expected text, got 3 (line 6)"
    assert spec_error(MINIMAL + "  init: {scheme: kaiming}\n").startswith(
        "model.init.scheme: unknown init scheme 'kaiming' (line 6); expected one of uniform, normal, xavier, he"
    )
    assert spec_error(MINIMAL + "  init: he\n").startswith("model.init: expected a mapping like")


def test_duplicate_key() -> None:
    text = "data:\n  source: a.csv\n  source: b.csv\nmodel:\n  layers: []\n"
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="exp.yaml")
    assert info.value.message == "data.source: duplicate key (line 3); first set at line 2"
    assert info.value.hint == "in exp.yaml"


def test_yaml_syntax_error_is_one_line() -> None:
    message = spec_error("data: {source: a.csv\nmodel:\n  layers: []\n")
    assert message.startswith("<string>: YAML syntax error at line 2, column 6: ")
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "<string>: the spec is empty"),
        ("# only a comment\n", "<string>: the spec is empty"),
        ("- data\n- model\n", "<string>: the spec must be a mapping of keys like 'data:' and 'model:', got a list"),
        ("just text\n", "got 'just text' (a string) (line 1)"),
    ],
)
def test_empty_or_non_mapping_root(text: str, expected: str) -> None:
    assert expected in spec_error(text)


def test_python_tag_is_rejected_cleanly() -> None:
    text = "data: !!python/object/apply:os.system ['echo pwned']\nmodel:\n  layers: []\n"
    assert spec_error(text) == "data: YAML tag '!!python/object/apply:os.system' is not allowed (line 1)"


def test_python_tag_in_override_is_rejected() -> None:
    message = spec_error(MINIMAL, ("data.source=!!python/object/apply:os.system ['echo']",))
    assert message.startswith("--set ") and "cannot read the value" in message


def test_non_text_key() -> None:
    assert spec_error(MINIMAL + "1: x\n") == "the spec: key '1' must be text (line 6); quote it"


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 9)]
    assert "too large" in spec_error("\n".join(lines) + "\n")


def test_merge_keys_work() -> None:
    text = "data: {source: a.csv}\nmodel:\n  layers: [&l {units: 3, activation: tanh}, {<<: *l, units: 5}]\n"
    spec = parse_spec(text)
    assert [(layer.units, layer.activation) for layer in spec.model.layers] == [(3, "tanh"), (5, "tanh")]


def test_many_problems_reported_together() -> None:
    text = textwrap.dedent(
        """\
        data:
          source: a.csv
          normalise: standard
        model:
          layers:
            - units: "8"
              activation: relux
        optimizer: {name: adam, lr: -1}
        training: {epochs: 0}
        """
    )
    lines = spec_error(text).splitlines()
    assert lines == [
        "data.normalise: unknown key (line 3); did you mean 'normalize'? expected one of source, labels, target, task, "
        "categorical, normalize, scale_target, split",
        "model.layers[0].units: expected an integer, got '8' (a string) (line 6)",
        "model.layers[0].activation: unknown activation 'relux' (line 7); did you mean 'relu'? "
        "expected one of sigmoid, tanh, relu, leaky_relu, linear",
        "optimizer.lr: must be > 0, got -1 (line 8)",
        "training.epochs: must be >= 1, got 0 (line 9)",
    ]


def test_needs_validation_is_reported_beside_other_problems() -> None:
    text = replace_line(replace_line(BASE, 6, "validation: 0"), 17, "epochs: 0")
    lines = spec_error(text).splitlines()
    assert lines == [
        "training.epochs: must be >= 1, got 0 (line 17)",
        "stopping.early_stopping: needs validation rows, but data.split.validation is 0 (line 20)",
    ]


@pytest.mark.parametrize(
    ("stopping", "key"),
    [
        ("{val_rising: 3}", "stopping.val_rising"),
        ("{no_improvement: {metric: val_accuracy}}", "stopping.no_improvement.metric"),
    ],
)
def test_other_stopping_rules_need_validation(stopping: str, key: str) -> None:
    text = NO_VALIDATION + f"stopping: {stopping}\n"
    assert spec_error(text) == f"{key}: needs validation rows, but data.split.validation is 0 (line 7)"


def test_train_metric_without_validation_is_fine() -> None:
    spec = parse_spec(NO_VALIDATION + "stopping: {no_improvement: {metric: train_loss}}\n")
    check_needs_validation(spec)  # does not raise


def test_check_needs_validation_on_a_built_spec() -> None:
    spec = parse_spec(BASE)
    bad = spec.model_copy(update={"data": spec.data.model_copy(update={"split": spec.data.split.model_copy(
        update={"validation": 0.0})})})
    with pytest.raises(SpecError, match=r"^stopping\.early_stopping: needs validation rows"):
        check_needs_validation(bad)


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


# ---------------------------------------------------------------- --set overrides
def test_override_int_and_list_index() -> None:
    spec = parse_spec(BASE, overrides=["seed=3", "model.layers[1].units=12", "training.batch_size=full"])
    assert spec.seed == 3 and spec.model.layers[1].units == 12 and spec.training.batch_size == "full"


def test_override_nested_mapping_and_new_section() -> None:
    spec = parse_spec(
        MINIMAL,
        overrides=["training.lr_schedule={name: step, step_size: 5}", "stopping.no_improvement.patience=7"],
    )
    assert spec.training.lr_schedule.name == "step" and spec.training.lr_schedule.step_size == 5
    assert spec.stopping.no_improvement is not None and spec.stopping.no_improvement.patience == 7


def test_override_switches_optimizer_then_validates_its_fields() -> None:
    spec = parse_spec(MINIMAL, overrides=["optimizer.name=sgd"])
    assert spec.optimizer.name == "sgd" and spec.optimizer.lr == 0.01
    # BASE's adam has only lr, so switching to momentum keeps lr and fills mu.
    spec = parse_spec(BASE, overrides=["optimizer.name=momentum"])
    assert (spec.optimizer.name, spec.optimizer.lr, spec.optimizer.mu) == ("momentum", 0.01, 0.9)
    text = MINIMAL + "optimizer:\n  name: adam\n  beta1: 0.8\n"
    message = spec_error(text, ("optimizer.name=sgd",))
    assert message == "optimizer.beta1: unknown key (line 8); expected one of name, lr"


def test_override_into_absent_optimizer_keeps_default_name() -> None:
    spec = parse_spec(MINIMAL, overrides=["optimizer.lr=0.1"])
    assert (spec.optimizer.name, spec.optimizer.lr) == ("adam", 0.1)
    # The default schedule is constant, which has no gamma: that is reported, not guessed around.
    message = spec_error(MINIMAL, ("training.lr_schedule.gamma=0.5",))
    assert message == (
        "training.lr_schedule.gamma: unknown key (from --set training.lr_schedule.gamma=0.5); expected one of name"
    )


def test_override_errors_say_where_the_value_came_from() -> None:
    assert spec_error(MINIMAL, ("optimizer.lr=-2",)) == "optimizer.lr: must be > 0, got -2 (from --set optimizer.lr=-2)"
    assert spec_error(MINIMAL, ("training.epochz=5",)).startswith(
        "training.epochz: unknown key (from --set training.epochz=5); did you mean 'epochs'?"
    )


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("model.layers[3].units=8", "--set 'model.layers[3].units=8': model.layers has 1 item(s), so there is no [3]"),
        ("seed", "--set 'seed': expected KEY=VALUE"),
        ("model..units=3", "--set 'model..units=3': expected KEY=VALUE"),
        ("=3", "--set '=3': expected KEY=VALUE"),
        ("model.layers.units=3", "--set 'model.layers.units=3': model.layers is not a mapping"),
        ("data.source[0]=x", "--set 'data.source[0]=x': data.source is not a list"),
        ("seed={a: [", "--set 'seed={a: [': cannot read the value"),
    ],
)
def test_bad_override(override: str, fragment: str) -> None:
    assert spec_error(MINIMAL, (override,)).startswith(fragment)


# ---------------------------------------------------------------- dump, dict, schema
def test_round_trip_through_yaml() -> None:
    text = textwrap.dedent(
        """\
        name: "007"
        seed: random
        dtype: float64
        data: {source: builtin:iris, categorical: [colour], task: classification, split: {validation: 0.1, test: 0}}
        model:
          input_dropout: 0.1
          layers: [{units: 4, activation: leaky_relu, slope: 0.2, dropout: 0.5}]
          output: softmax
          init: {from: runs/abc/best.npz}
        loss: cross_entropy
        optimizer: {name: rmsprop, alpha: 0.9, eps: 1.0e-7}
        training: {batch_size: full, lr_schedule: {name: inverse_time, decay: 0.001}}
        stopping: {loss_below: 1e-4, early_stopping: {metric: val_accuracy}, val_rising: 3}
        regularization: {l2: 1.0e-5, max_norm: 3}
        """
    )
    spec = parse_spec(text)
    assert spec.model.init.from_ == "runs/abc/best.npz"
    again = parse_spec(dump_spec_yaml(spec))
    assert again == spec
    assert parse_spec(dump_spec_yaml(parse_spec(MINIMAL))) == parse_spec(MINIMAL)


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


def test_loader_is_safe() -> None:
    assert issubclass(SpecLoader, yaml.SafeLoader)
    assert yaml.safe_load("1e-3") == "1e-3"  # the exponent-float resolver stays on SpecLoader only


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


# ---------------------------------------------------------------- robustness
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("data: {source: a, categorical: &c [x, *c]}\nmodel: {layers: []}\n",
         "data.categorical[1]: expected text, got a list (line 1)"),
        ("data: {source: a}\nmodel: {layers: []}\nx: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        ("data: {source: a}\nmodel: {layers: []}\n---\nseed: 1\n",
         "expected a single document in the stream, but found another document"),
        ("data:\n\tsource: a\n", "<string>: YAML syntax error at line 2, column 1"),
        ("data: {source: a}\nmodel: {layers: []}\nstopping:\n", "stopping: expected a mapping, got null (line 3)"),
    ],
    ids=["recursive-alias", "deep-nesting", "two-documents", "tab", "null-section"],
)
def test_odd_yaml_gives_clean_errors(text: str, expected: str) -> None:
    assert expected in spec_error(text)


def test_spec_module_imports_no_cli_or_engine() -> None:
    code = (
        "import sys, nnctl.app.spec; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('typer', 'rich') "
        "or m.startswith(('nnctl.engine', 'nnctl.cli'))]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


_layer = st.fixed_dictionaries(
    {"units": st.integers(1, 100_000)},
    optional={
        "activation": st.sampled_from(["sigmoid", "tanh", "relu", "leaky_relu", "linear"]),
        "dropout": st.floats(0, 0.99),
        "slope": st.floats(0, 10),
    },
)


@settings(max_examples=40, deadline=None)
@given(
    layers=st.lists(_layer, max_size=4),
    seed=st.one_of(st.integers(0, 2**40), st.just("random")),
    batch=st.one_of(st.integers(1, 10_000), st.just("full")),
    lr=st.floats(1e-9, 10),
    name=st.text(min_size=1, max_size=20).filter(lambda s: s.strip() == s and s.isprintable()),
)
def test_round_trip_property(layers: list, seed: object, batch: object, lr: float, name: str) -> None:
    data = {
        "name": name, "seed": seed, "data": {"source": "x.csv"}, "model": {"layers": layers},
        "optimizer": {"name": "sgd", "lr": lr}, "training": {"batch_size": batch},
    }
    spec = parse_spec(yaml.dump(data, Dumper=SpecDumper))
    assert parse_spec(dump_spec_yaml(spec)) == spec
    assert Spec.model_validate(spec_to_dict(spec)) == spec


@pytest.mark.parametrize("name", ["0E0", "1e-3", "-2E+5", "1_0e1"])
def test_a_name_that_reads_as_a_number_is_quoted_when_dumped(name: str) -> None:
    spec = parse_spec(f"name: '{name}'\ndata: {{source: x.csv}}\nmodel: {{layers: []}}\n")
    assert f"name: '{name}'" in dump_spec_yaml(spec)
    assert parse_spec(dump_spec_yaml(spec)).name == name
