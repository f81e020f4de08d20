"""Tests for nnctl.app.spec_yaml: odd YAML gives clean errors, dumped specs read back the same."""

from __future__ import annotations

import textwrap

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from nnctl.app.errors import SpecError
from nnctl.app.spec import Spec, dump_spec_yaml, parse_spec, spec_to_dict
from nnctl.app.spec_yaml import SpecDumper, SpecLoader
from tests.app.spec_texts import MINIMAL, spec_error


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


def test_loader_is_safe() -> None:
    assert issubclass(SpecLoader, yaml.SafeLoader)
    assert yaml.safe_load("1e-3") == "1e-3"  # the exponent-float resolver stays on SpecLoader only
