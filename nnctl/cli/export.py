"""nnctl export RUN --out model.onnx"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from nnctl.cli import output
from nnctl.cli.options import JsonOpt, RunsDirOpt


def export(
    run: Annotated[str, typer.Argument(help="Run id, a unique prefix of one, or 'latest'.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", metavar="FILE", help="Write the model here, e.g. model.onnx.", show_default=False)],
    format_: Annotated[Optional[str], typer.Option(
        "--format", metavar="onnx", help="File format [default: from the suffix of --out].")] = None,
    runs_dir: RunsDirOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Write a saved run's model as an ONNX graph.

    Needs the onnx package: pip install 'nnctl[onnx]'.

    The graph holds the whole model as `nnctl predict` applies it: the stored scaling and
    one-hot coding, the layers (no dropout) and the outputs: `label` and `probabilities`
    (classification) or `prediction` in the target's units (regression).  Numeric feature
    columns go in as one float64 input `X`, each categorical column as a string input
    named after it.  --json prints the inputs, outputs, opset and IR version written.
    """
    with output.handle_errors(json_):
        from nnctl.app.export import export_run
        from nnctl.app.runs import RunStore

        result = export_run(RunStore(runs_dir), run, out, format_)
        if json_:
            output.print_json(result.to_dict())
            return
        output.log(f"wrote {result.out} ({result.format}, opset {result.opset['ai.onnx']}) from run {result.run_id}")
        for spec in result.inputs:
            output.log(f"  input  {spec['name']}: {spec['type']} {_shape(spec['shape'])}  {', '.join(spec['columns'])}")
        for spec in result.outputs:
            output.log(f"  output {spec['name']}: {spec['type']} {_shape(spec['shape'])}")


def _shape(shape: list) -> str:
    return "[" + ", ".join("N" if s is None else str(s) for s in shape) + "]"
