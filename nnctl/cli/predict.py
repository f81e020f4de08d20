"""nnctl predict RUN --data FILE"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from nnctl.cli import output
from nnctl.cli.options import JsonOpt, RunsDirOpt


def predict(
    run: Annotated[str, typer.Argument(metavar="RUN", help="Run id, a unique prefix of one, or 'latest'.", show_default=False)],
    data: Annotated[Path, typer.Option("--data", metavar="FILE", help="CSV (or .npz) with the training feature columns.",
                                       show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", metavar="FILE", help="Write the predictions CSV here (default: stdout).")] = None,
    keep: Annotated[Optional[list[str]], typer.Option(
        "--keep", metavar="COL", help="Copy this column (an id) into the output, first; repeatable.")] = None,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", metavar="N", help="Rows read and predicted at a time.")] = 50_000,
    runs_dir: RunsDirOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Predict every row of a file with a saved run.

    Uses the run's best weights and stored preprocessing.
    Writes a CSV, rows in the file's order: the --keep columns, then `prediction` (the class
    label) and one `p_<class>` probability column per class, or the predicted value for
    regression.  The file must have the training feature columns; a missing one is refused,
    naming it.  Other columns (the target, ids) are ignored, with a note naming them,
    as evaluate --data does.
    With --json (which needs --out), a summary document is printed.
    """
    with output.handle_errors(json_):
        from nnctl.app.errors import UsageError
        from nnctl.app.prediction import predict_file
        from nnctl.app.runs import RunStore

        if json_ and out is None:
            raise UsageError("--json needs --out FILE (the predictions CSV goes there)")
        try:
            result = predict_file(RunStore(runs_dir), run, data, out, keep or [], chunk_rows, stream=sys.stdout)
        except BrokenPipeError:  # the reader went away (| head): not an error
            sys.stdout = open(os.devnull, "w")
            raise typer.Exit(0) from None
        for w in result.warnings:
            output.warn(w)
        if json_:
            output.print_json(result.to_dict())
        elif out is not None:
            output.log(f"{result.rows} predictions written to {out}")
