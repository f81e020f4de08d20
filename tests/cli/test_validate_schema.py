"""``nnctl validate``, ``nnctl schema`` and the help texts."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.cli._helpers import CONFIGS, nnctl, nnctl_subprocess
from tests.idx_files import unshipped_data_args

SHIPPED = sorted(CONFIGS.glob("*.yaml"))


def test_configs_are_shipped() -> None:
    assert {p.stem for p in SHIPPED} >= {"iris", "digits", "breast_cancer", "diabetes", "xor", "mnist1d"}


@pytest.mark.parametrize("config", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_config_validates(config, tmp_path) -> None:
    out = nnctl("validate", config, *unshipped_data_args(config, tmp_path))
    assert out.exit_code == 0, out.output
    assert out.stdout.startswith(f"{config}: valid (")
    assert "error" not in out.stderr


@pytest.mark.parametrize(
    ("config", "task", "loss", "output"),
    [
        ("iris", "classification", "cross_entropy", "softmax"),
        ("breast_cancer", "classification", "log_loss", "sigmoid"),
        ("diabetes", "regression", "squared", "linear"),
        ("xor", "classification", "squared", "sigmoid"),
    ],
)
def test_validate_json_prints_the_resolved_spec(config: str, task: str, loss: str, output: str) -> None:
    out = nnctl("validate", CONFIGS / f"{config}.yaml", "--json")
    assert out.exit_code == 0, out.output
    document = out.json()
    assert document["valid"] is True
    assert isinstance(document["warnings"], list)
    spec = document["spec"]
    assert spec["data"]["task"] == task
    assert spec["loss"] == loss
    assert spec["model"]["output"] == output
    # defaults are filled in
    assert spec["dtype"] == "float32"
    assert spec["training"]["lr_schedule"] == {"name": "constant"}
    assert spec["regularization"]["max_norm"] is None


def test_validate_fills_in_loss_and_output_left_out(tmp_path) -> None:
    spec = tmp_path / "minimal.yaml"
    spec.write_text("data: {source: builtin:iris, target: species}\nmodel:\n  layers: [{units: 4}]\n")
    out = nnctl("validate", spec, "--json")
    assert out.exit_code == 0, out.output
    resolved = out.json()["spec"]
    assert resolved["name"] == "minimal"
    assert resolved["loss"] == "cross_entropy" and resolved["model"]["output"] == "softmax"
    assert resolved["data"]["task"] == "classification"


def test_validate_reports_warnings(tmp_path) -> None:
    unscaled = ("--set", "data.normalize=none")
    out = nnctl("validate", CONFIGS / "xor.yaml", *unscaled)
    assert out.exit_code == 0
    assert "warning: model.layers[0].activation" in out.stderr
    assert "warning" not in nnctl("validate", CONFIGS / "xor.yaml").stderr
    document = nnctl("validate", CONFIGS / "xor.yaml", *unscaled, "--json").json()
    assert any("model.layers[0].activation" in w for w in document["warnings"])


def test_validate_with_set(tmp_path) -> None:
    out = nnctl("validate", CONFIGS / "iris.yaml", "--set", "training.epochs=7", "--json")
    assert out.exit_code == 0
    assert out.json()["spec"]["training"]["epochs"] == 7


def test_validated_spec_round_trips_through_yaml(tmp_path) -> None:
    resolved = nnctl("validate", CONFIGS / "digits.yaml", "--json").json()["spec"]
    copy = tmp_path / "copy.yaml"
    copy.write_text(yaml.safe_dump(resolved))
    again = nnctl("validate", copy, "--json")
    assert again.exit_code == 0, again.output
    assert again.json()["spec"] == resolved


def test_schema() -> None:
    out = nnctl("schema")
    assert out.exit_code == 0
    schema = out.json()
    assert {"data", "model", "optimizer", "training", "stopping"} <= set(schema["properties"])
    assert schema["properties"]["model"]["description"]
    assert set(schema["required"]) == {"data", "model"}
    defs = schema["$defs"]
    layer = defs["LayerSpec"]["properties"]
    assert layer["units"]["description"] == "Number of units."
    assert set(layer["activation"]["enum"]) == {"sigmoid", "tanh", "relu", "leaky_relu", "linear"}
    assert "from" in defs["CheckpointInit"]["properties"]  # keys by alias
    undocumented = [
        f"{name}.{key}" for name, d in defs.items() for key, p in d.get("properties", {}).items()
        if not p.get("description")
    ]
    assert undocumented == []


def test_root_help_lists_the_commands() -> None:
    out = nnctl("--help")
    assert out.exit_code == 0
    for command in ("train", "evaluate", "validate", "schema"):
        assert re.search(rf"^\W*{command}\b", out.stdout, re.MULTILINE), command


def test_no_arguments_shows_help() -> None:
    out = nnctl_subprocess()
    assert out.exit_code in (0, 2)
    assert "train" in out.output and "Traceback" not in out.output


def test_train_help_mentions_set_and_json() -> None:
    out = nnctl("train", "--help")
    assert out.exit_code == 0
    for flag in ("--set", "--json", "--runs-dir", "--quiet"):
        assert flag in out.stdout
    assert "Exit codes" in out.stdout


def test_runs_dir_help_shows_its_default() -> None:
    out = nnctl("train", "--help")
    assert "./runs" in out.stdout


def test_version() -> None:
    from nnctl import __version__

    out = nnctl("--version")
    assert out.exit_code == 0
    assert out.stdout.strip() == f"nnctl {__version__}"


def test_python_dash_m_help() -> None:
    out = nnctl_subprocess("--help")
    assert out.exit_code == 0
    assert "evaluate" in out.stdout
