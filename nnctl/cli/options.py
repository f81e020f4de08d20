"""Option aliases shared by the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout (for scripts).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the essential result (the run id).")]
RunsDirOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--runs-dir", metavar="DIR", envvar="NNCTL_RUNS_DIR", show_envvar=False,
        help="Directory holding the runs [default: $NNCTL_RUNS_DIR, else ./runs].",
    ),
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--set", metavar="KEY=VALUE",
        help="Override a spec key (dotted path, YAML value), e.g. --set training.epochs=50 "
        "--set model.layers[0].units=8. Repeatable.",
    ),
]
WorkersOpt = Annotated[
    Optional[int],
    typer.Option("--workers", metavar="N", help="Local worker processes for independent jobs [default: the number of cores].",
                 show_default=False),
]
ExecutorOpt = Annotated[
    str,
    typer.Option("--executor", metavar="local|dask",
                 help="Run jobs in local processes, or on a Dask distributed cluster (needs --scheduler)."),
]
SchedulerOpt = Annotated[
    Optional[str],
    typer.Option("--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://127.0.0.1:8786."),
]
