"""Tests for nnctl.app.spec_overrides: --set KEY=VALUE applied before validation, errors naming the option."""

from __future__ import annotations

import pytest

from nnctl.app.spec import parse_spec
from tests.app.spec_texts import BASE, MINIMAL, spec_error


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


def test_python_tag_in_override_is_rejected() -> None:
    message = spec_error(MINIMAL, ("data.source=!!python/object/apply:os.system ['echo']",))
    assert message.startswith("--set ") and "cannot read the value" in message
