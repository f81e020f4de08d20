"""nnctl gradcheck: passes for every shipped config, fails for a wrong derivative."""

from __future__ import annotations

import pytest

from nnctl.engine import activations
from nnctl.engine.activations import Activation, sigmoid, tanh
from tests.cli._helpers import CONFIGS, nnctl
from tests.idx_files import unshipped_data_args

SHIPPED = sorted(CONFIGS.glob("*.yaml"))


@pytest.mark.parametrize("config", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_gradcheck_passes_for_every_shipped_config(config, tmp_path) -> None:
    out = nnctl("gradcheck", config, "--samples", "15", "--json", *unshipped_data_args(config, tmp_path))
    assert out.exit_code == 0, out.output
    result = out.json()
    assert result["passed"] is True and result["tolerance"] == 1e-6
    n_layers = len(result["network"].split("-")) - 1
    assert [layer["layer"] for layer in result["layers"]] == list(range(1, n_layers + 1))
    for layer in result["layers"]:
        assert layer["checked"] > 0 and layer["max_error"] <= 1e-6
        assert layer["grad_norm"] > 0  # a zero gradient would pass trivially


@pytest.mark.parametrize("config, name, forward, wrong", [
    ("vanishing_sigmoid", "sigmoid", sigmoid, lambda a: 1.01 * a * (1.0 - a)),
    ("iris", "tanh", tanh, lambda a: 1.0 - a**2 + 0.01),
])
def test_gradcheck_fails_for_a_wrong_derivative(monkeypatch, config, name, forward, wrong) -> None:
    monkeypatch.setitem(activations.ACTIVATIONS, name, Activation(name, forward, wrong))
    out = nnctl("gradcheck", CONFIGS / f"{config}.yaml", "--samples", "15", "--json")
    assert out.exit_code == 1, out.output
    result = out.json()
    assert result["passed"] is False
    failing = [layer["layer"] for layer in result["layers"] if layer["max_error"] > 1e-6]
    n_layers = len(result["layers"])
    assert failing == list(range(1, n_layers))  # every layer below a wrong hidden derivative
    assert "fail: gradient check above tolerance" in out.stderr


def test_plain_table_and_tolerance_option() -> None:
    out = nnctl("gradcheck", CONFIGS / "xor.yaml")
    assert out.exit_code == 0
    assert [line.split()[0] for line in out.stdout.splitlines()[1:]] == ["layer=layer1", "layer=layer2"]
    assert all(line.endswith("result=ok") for line in out.stdout.splitlines()[1:])
    strict = nnctl("gradcheck", CONFIGS / "xor.yaml", "--tolerance", "1e-15")
    assert strict.exit_code == 1


@pytest.mark.parametrize("args", [("missing.yaml",), (CONFIGS / "xor.yaml", "--batch", "0"),
                                  (CONFIGS / "xor.yaml", "--samples", "-1"), (CONFIGS / "xor.yaml", "--tolerance", "0")])
def test_gradcheck_bad_input(args) -> None:
    out = nnctl("gradcheck", *args)
    assert out.exit_code == 2 and len(out.error_lines()) == 1
