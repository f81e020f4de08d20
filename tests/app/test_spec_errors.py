"""Tests for nnctl.app.spec_errors: each bad value one line with its key path, YAML line and the nearest choice."""

from __future__ import annotations

import textwrap

import pytest

from nnctl.app.errors import SpecError
from nnctl.app.spec import check_needs_validation, parse_spec
from tests.app.spec_texts import BASE, MINIMAL, NO_VALIDATION, replace_line, spec_error


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
        "data.normalise: unknown key (line 3); did you mean 'normalize'? expected one of source, "
        "labels, target, task, categorical, normalize, scale_target, missing, split",
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
