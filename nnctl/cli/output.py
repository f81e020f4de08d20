"""Rendering of results (rich tables on a terminal, plain lines otherwise, or JSON) and
the one place where errors become a stderr line and an exit code."""

from __future__ import annotations

import json
import math
import os
import sys
import traceback
from contextlib import contextmanager
from typing import Any, Iterator

import typer

EXIT_INTERRUPTED = 130


def use_rich(stream=None) -> bool:
    """Rich output only on a terminal and when NO_COLOR is unset."""
    stream = stream or sys.stderr
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def stdout_console():
    from rich.console import Console

    return Console(highlight=False)


def log(message: str) -> None:
    """A log line on stderr."""
    print(message, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    log(f"warning: {message}")


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=_default) + "\n")
    sys.stdout.flush()


@contextmanager
def handle_errors(json_mode: bool = False) -> Iterator[None]:
    """Turn NnctlError into one stderr line per problem and its exit code (2 for bad input,
    1 for failed training); Ctrl-C into exit 130.  Other exceptions are internal errors:
    one line, exit 1, the traceback only with NNCTL_DEBUG=1."""
    from nnctl.app.errors import Aborted, NnctlError

    try:
        yield
    except NnctlError as exc:
        for line in exc.message.splitlines():
            log(f"error: {line}")
        if exc.hint:
            log(f"hint: {exc.hint}")
        if json_mode:
            print_json({"error": exc.to_dict()})
        raise typer.Exit(exc.code) from None
    except KeyboardInterrupt:
        log("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Aborted:
        log("aborted: stopped at once; the run keeps its last checkpoint and can be resumed")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except typer.Exit:
        raise
    except Exception as exc:  # an unexpected failure is still reported on one line
        if os.environ.get("NNCTL_DEBUG"):
            traceback.print_exc()
        log(f"internal error: {type(exc).__name__}: {exc} (set NNCTL_DEBUG=1 for a traceback)")
        if json_mode:
            print_json({"error": {"code": "internal", "message": f"{type(exc).__name__}: {exc}", "hint": None}})
        raise typer.Exit(1) from None


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"
    return str(value)


def metrics_table(title: str | None, metrics: dict[str, dict[str, Any]]):
    """A rich table: one row per split, one column per metric."""
    from rich.table import Table

    columns = [c for c in ("loss", "accuracy", "rmse", "mae", "r2") if any(c in m for m in metrics.values())]
    table = Table(title=title, title_justify="left")
    table.add_column("split")
    for c in columns:
        table.add_column(c, justify="right")
    table.add_column("rows", justify="right")
    for split, values in metrics.items():
        if values:
            table.add_row(split, *(fmt(values.get(c)) for c in columns), fmt(values.get("rows")))
    return table


def metrics_lines(metrics: dict[str, dict[str, Any]]) -> list[str]:
    """Plain 'split: key=value ...' lines."""
    lines = []
    for split, values in metrics.items():
        if values:
            parts = " ".join(f"{k}={fmt(v)}" for k, v in values.items() if k != "confusion")
            lines.append(f"{split}: {parts}")
    return lines


def _default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)
