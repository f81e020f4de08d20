"""nnctl train --restarts N: several networks, one ensemble run."""

from __future__ import annotations

from pathlib import Path

import typer

from nnctl.cli import output


def with_restarts(spec, count: int | None, combine: str | None):
    """The spec with ``--restarts`` / ``--combine`` applied over its ``restarts`` section."""
    from nnctl.app.ensemble import COMBINE_RULES
    from nnctl.app.errors import UsageError
    from nnctl.app.spec_schema import RestartsSpec

    if count is not None and count < 1:
        raise UsageError(f"--restarts {count}: must be at least 1")
    if combine is not None and combine not in COMBINE_RULES:
        raise UsageError(f"--combine {combine!r}: expected one of {', '.join(COMBINE_RULES)}")
    current = spec.restarts or RestartsSpec()
    update = {k: v for k, v in (("count", count), ("combine", combine)) if v is not None}
    return spec.model_copy(update={"restarts": current.model_copy(update=update)})


def train_ensemble(spec, spec_path: Path, runs_dir, json_: bool, quiet: bool, workers, executor, scheduler) -> None:
    from nnctl.app.executors import make_executor
    from nnctl.app.restarts import train_restarts
    from nnctl.app.runs import RunStore
    from nnctl.cli.progress import job_progress

    bar = job_progress(output.use_rich(), output.stderr_console, "restarts") if not (json_ or quiet) else None
    try:
        result = train_restarts(
            spec, RunStore(runs_dir), make_executor=lambda: make_executor(executor, workers, scheduler),
            base_dirs=[spec_path.resolve().parent], progress=bar, on_warning=output.warn,
        )
    finally:
        if bar is not None:
            bar.close()
    run = result.run
    if json_:
        output.print_json(result.to_dict())
    elif quiet:
        print(run.run_id)
    else:
        _render(result)
    if run.status != "completed":
        output.log(f"error: every member {run.stop_reason}; see {run.run_dir}")
        raise typer.Exit(1)


def _render(result) -> None:
    run = result.run
    head = (f"run {run.run_id}: {run.status}, {len(result.members)} restarts combined by {result.combine}, "
            f"best member {result.chosen + 1}, seed={run.seed}")
    rows = {f"member {m['member']} (test)": m["metrics"].get("test") or m["metrics"]["train"] for m in result.members}
    if output.use_rich(typer.get_text_stream("stdout")):
        console = output.stdout_console()
        console.print(head)
        console.print(output.metrics_table("members", rows))
        console.print(output.metrics_table(f"ensemble ({result.combine})", run.metrics))
        console.print(f"saved to [bold]{run.run_dir}[/bold]")
        return
    print(head)
    for m in result.members:
        split = "test" if m["metrics"].get("test") else "train"
        parts = " ".join(f"{k}={output.fmt(v)}" for k, v in m["metrics"][split].items())
        print(f"member {m['member']} {split}: best_epoch={m['best_epoch']} {parts}")
    for line in output.metrics_lines(run.metrics):
        print(f"ensemble {line}")
    print(f"saved to {run.run_dir}")
