"""nnctl gradcheck SPEC"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from nnctl.cli import output
from nnctl.cli.options import JsonOpt, SetOpt


def gradcheck(
    spec: Annotated[Path, typer.Argument(metavar="SPEC", help="The experiment spec (YAML).", show_default=False)],
    set_: SetOpt = None,
    batch: Annotated[int, typer.Option("--batch", metavar="ROWS", help="Training rows in the batch checked.")] = 16,
    samples: Annotated[int, typer.Option(
        "--samples", metavar="N", help="Entries checked per weight and per bias block (random ones); 0 checks all.")] = 50,
    tolerance: Annotated[float, typer.Option("--tolerance", metavar="X", help="Largest relative error that passes.")] = 1e-6,
    json_: JsonOpt = False,
) -> None:
    """Check backpropagation with central differences, layer by layer.

    Builds the network in float64 with the spec's initialization, takes a small batch of
    its training rows, holds dropout masks fixed, and prints each layer's relative error
    ‖g_bp − g_fd‖ / max(‖g_bp‖ + ‖g_fd‖, 1e-3) for its weights and biases
    (step h = 1e-4; entries whose step crosses a ReLU kink are skipped).
    Exit 1 when a layer is above the tolerance, 2 for a bad spec or data.
    """
    with output.handle_errors(json_):
        from nnctl.app.gradcheck import gradcheck_spec
        from nnctl.app.spec import load_spec

        result = gradcheck_spec(load_spec(spec, set_ or []), base_dirs=[spec.resolve().parent],
                                batch=batch, samples=samples, tolerance=tolerance)
        if json_:
            output.print_json(result.to_dict())
        else:
            _render(result)
        if not result.passed:
            bad = ", ".join(f"layer{l['layer']}" for l in result.layers if l["max_error"] > result.tolerance)
            output.log(f"fail: gradient check above tolerance {result.tolerance:g} in {bad}")
            raise typer.Exit(1)


def _render(result) -> None:
    head = f"{result.name}: network {result.network}, float64, {result.rows} rows, tolerance {result.tolerance:g}"
    cols = ("layer", "shape", "activation", "checked", "grad_norm", "weight_error", "bias_error", "max_error")
    rows = [
        (f"layer{l['layer']}", "x".join(map(str, l["shape"])), l["activation"], str(l["checked"]),
         f"{l['grad_norm']:.3g}", f"{l['weight_error']:.2e}", f"{l['bias_error']:.2e}", f"{l['max_error']:.2e}",
         "ok" if l["max_error"] <= result.tolerance else "FAIL")
        for l in result.layers
    ]
    if output.use_rich(sys.stdout):
        from rich.table import Table

        table = Table(title=head, title_justify="left")
        for c in (*cols, ""):
            table.add_column(c, justify="left" if c in ("layer", "shape", "activation", "") else "right",
                             overflow="fold")
        for r in rows:
            table.add_row(*r[:-1], f"[green]{r[-1]}[/green]" if r[-1] == "ok" else f"[bold red]{r[-1]}[/bold red]")
        output.stdout_console().print(table)
    else:
        print(head)
        for r in rows:
            print(" ".join(f"{c}={v}" for c, v in zip((*cols, "result"), r)))
