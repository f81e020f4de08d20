"""nnctl runs [list options], nnctl runs show RUN, nnctl runs compare RUN RUN..., nnctl runs rm RUN"""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer

from nnctl.cli import output
from nnctl.cli.commands import Command, Group
from nnctl.cli.options import JsonOpt, RunsDirOpt

RunArg = Annotated[str, typer.Argument(metavar="RUN", help="Run id, a unique prefix of one, or 'latest'.", show_default=False)]

app = typer.Typer(
    help="List, show, compare and remove runs.", no_args_is_help=False, add_completion=False,
    cls=Group, rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_COLUMNS = ("run_id", "name", "status", "stop_reason", "best_epoch", "best", "test", "duration", "created")


@app.callback(invoke_without_command=True)
def runs(
    ctx: typer.Context,
    name: Annotated[Optional[str], typer.Option("--name", metavar="TEXT", help="Only runs whose name contains this text.")] = None,
    status: Annotated[Optional[str], typer.Option(
        "--status", metavar="STATUS", help="Only runs with this status: created, running, completed, interrupted, "
        "diverged, failed, broken.")] = None,
    since: Annotated[Optional[str], typer.Option(
        "--since", metavar="WHEN", help="Only runs created since: a duration (30m, 2h, 7d) or a date (2026-11-26).")] = None,
    sort: Annotated[str, typer.Option(
        "--sort", metavar="KEY", help="Order by created (newest first), name, status, duration, epochs, best_epoch, "
        "val_loss, val_accuracy, val_rmse, test_loss, test_accuracy, test_rmse or best_metric.")] = "created",
    runs_dir: RunsDirOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List runs, newest first: id, name, status, stop reason, best epoch and validation
    metric, test metric, duration and creation time."""
    if ctx.invoked_subcommand is not None:
        return
    with output.handle_errors(json_):
        from nnctl.app.run_index import list_runs
        from nnctl.app.runs import RunStore

        infos = list_runs(RunStore(runs_dir), name=name, status=status, since=since, sort=sort)
        if json_:
            output.print_json({"runs": [i.to_dict() for i in infos]})
            return
        rows = [_row(i) for i in infos]
        if not rows:
            output.log("no runs")
            return
        if output.use_rich(sys.stdout):
            console = output.stdout_console()
            console.print(_rich_table(infos, console.width))
        else:
            for r in rows:
                print(" ".join(f"{c}={r[c]}" for c in _COLUMNS))


def _row(info) -> dict[str, str]:
    best = ", ".join(f"{k}={output.fmt(v)}" for k, v in info.best_metric.items()) or "-"
    test = _headline(info.test)
    return {
        "run_id": info.run_id, "name": info.name or "-", "status": info.status,
        "stop_reason": info.stop_reason or "-", "best_epoch": output.fmt(info.best_epoch), "best": best,
        "test": test, "duration": f"{info.seconds:.3g}s" if isinstance(info.seconds, (int, float)) else "-",
        "created": info.created or "-",
    }


def _rich_table(infos, width: int):
    """A compact table: the name is part of the id; the metric names go into the headers
    when every run shares them; no cell is cut: on a narrow terminal the creation time,
    stop reason, name and duration are left out, in this order (``runs show`` has them)."""
    from rich import box
    from rich.table import Table

    best_names = {next(iter(i.best_metric), None) for i in infos} - {None}
    test_names = {_headline(i.test).split("=")[0] for i in infos} - {"-"}
    best_head = f"best\n{best_names.pop()}" if len(best_names) == 1 else "best"
    test_head = f"test\n{test_names.pop()}" if len(test_names) == 1 else "test"
    heads = ["run", "name", "status", "stop", "best\nepoch", best_head, test_head, "time", "created"]
    rows = []
    for i in infos:
        row = _row(i)
        best = ", ".join(output.fmt(v) if best_head != "best" else f"{k}={output.fmt(v)}"
                         for k, v in i.best_metric.items()) or "-"
        test = _headline(i.test)
        created = (i.created or "-")[:16].replace("T", " ")
        rows.append([i.run_id, i.name or "-", i.status, i.stop_reason or "-", row["best_epoch"], best,
                     test.split("=")[-1] if test_head != "test" else test, row["duration"], created])
    # no cell is cut: columns that do not fit are left out, the least needed first
    widths = [max(len(line) for line in [*(r[j] for r in rows), *heads[j].splitlines()]) for j in range(len(heads))]
    keep = list(range(len(heads)))
    for drop in (8, 3, 1, 7, 4, 6):
        if sum(widths[j] for j in keep) + 3 * (len(keep) - 1) <= width:
            break
        keep.remove(drop)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for j in keep:
        table.add_column(heads[j], no_wrap=True, min_width=widths[j], justify="left" if j < 4 or j == 8 else "right")
    for r in rows:
        table.add_row(*(r[j] for j in keep))
    return table


def _headline(metrics: dict[str, Any]) -> str:
    for key in ("accuracy", "rmse", "loss"):
        if isinstance(metrics.get(key), (int, float)):
            return f"{key}={output.fmt(metrics[key])}"
    return "-"


@app.command(cls=Command)
def show(run: RunArg, runs_dir: RunsDirOpt = None, json_: JsonOpt = False) -> None:
    """A run's resolved spec, summary and final metrics."""
    with output.handle_errors(json_):
        from nnctl.app.run_index import show_run
        from nnctl.app.runs import RunStore

        shown = show_run(RunStore(runs_dir), run)
        if json_:
            output.print_json(shown)
            return
        info, summary = shown["run"], shown["summary"]
        print(f"run {info['run_id']}: {info['status']}, stop_reason={info['stop_reason'] or '-'}, "
              f"epochs={output.fmt(info['epochs'])}, best_epoch={output.fmt(info['best_epoch'])}")
        if info["problem"]:
            print(f"problem: {info['problem']}")
        diagnosis = [d.get("message", str(d)) if isinstance(d, dict) else str(d) for d in summary.get("diagnosis") or []]
        for w in summary.get("warnings") or []:
            if w not in diagnosis:
                print(f"warning: {w}")
        for message in diagnosis:
            print(f"diagnosis: {message}")
        metrics = shown["metrics"]
        if metrics:
            if output.use_rich(sys.stdout):
                output.stdout_console().print(output.metrics_table(None, metrics))
            else:
                for line in output.metrics_lines(metrics):
                    print(line)
        print("spec:")
        print(shown["spec_yaml"].rstrip() or "  (missing)")


@app.command(cls=Command)
def compare(
    run: Annotated[list[str], typer.Argument(metavar="RUN", help="Two or more run ids (or prefixes, or 'latest').", show_default=False)],
    runs_dir: RunsDirOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Metrics of runs side by side, and where their specs differ."""
    with output.handle_errors(json_):
        from nnctl.app.run_index import compare_runs
        from nnctl.app.runs import RunStore

        result = compare_runs(RunStore(runs_dir), run)
        if json_:
            output.print_json(result)
            return
        ids = [r["run_id"] for r in result["runs"]]
        rows = _metric_rows(result["metrics"], ids)
        diff_rows = [(key, [_value(v) for v in values]) for key, values in result["spec_diff"].items()]
        if output.use_rich(sys.stdout):
            from rich.table import Table

            console = output.stdout_console()
            for title, body in (("metrics", rows), ("spec differences", diff_rows)):
                table = Table(title=title, title_justify="left")
                table.add_column("", overflow="fold")
                for i in ids:
                    table.add_column(i, justify="right", overflow="fold")
                for key, values in body:
                    table.add_row(key, *values)
                console.print(table)
            if not diff_rows:
                console.print("the resolved specs are identical")
        else:
            print("runs: " + " ".join(ids))
            for key, values in rows:
                print(f"{key}: " + " ".join(values))
            print("spec differences:" + ("" if diff_rows else " none"))
            for key, values in diff_rows:
                print(f"  {key}: " + " | ".join(values))


def _metric_rows(metrics: dict[str, dict], ids: list[str]) -> list[tuple[str, list[str]]]:
    rows = []
    for split in ("train", "validation", "test"):
        keys: list[str] = []
        for i in ids:
            keys += [k for k, v in (metrics[i].get(split) or {}).items() if k not in keys and not isinstance(v, list)]
        for k in keys:
            rows.append((f"{split}.{k}", [output.fmt((metrics[i].get(split) or {}).get(k)) for i in ids]))
    return rows


def _value(value: Any) -> str:
    return "-" if value is None else str(value)


@app.command(cls=Command)
def rm(
    run: RunArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts).")] = False,
    runs_dir: RunsDirOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Delete a run's directory, after confirmation (or --yes)."""
    with output.handle_errors(json_):
        from nnctl.app.errors import UsageError
        from nnctl.app.run_index import remove_run
        from nnctl.app.runs import RunStore

        store = RunStore(runs_dir)
        target = store.resolve(run)
        if not yes:
            try:
                confirmed = typer.confirm(f"remove run {target.id}?", err=True)
            except typer.Abort:  # no answer (end of input)
                raise UsageError(f"runs rm {target.id}: not confirmed; pass --yes in scripts") from None
            if not confirmed:
                output.log("not removed")
                raise typer.Exit(1)
        removed = remove_run(store, target.id)
        if json_:
            output.print_json({"removed": removed})
        else:
            output.log(f"removed {removed}")
