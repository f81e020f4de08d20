"""The command classes every nnctl command is built from: plain help text that reads
cleanly at 80 columns (usage ``nnctl train [OPTIONS] SPEC``, no type placeholders, no
markup), and argument errors reported like every other error: one ``error:`` line on
stderr, exit 2, and the ``{"error": {...}}`` document on stdout under ``--json``."""

from __future__ import annotations

import sys
from typing import Any, Sequence

from typer.core import TyperArgument, TyperCommand, TyperGroup


def _argument_name(param: TyperArgument) -> str:
    """``SPEC``, ``[RUN]`` or ``RUN...``: the metavar, else the name in capitals."""
    name = param.metavar or (param.name or "").upper()
    if param.nargs != 1:
        name += "..."
    return name if param.required else f"[{name}]"


def _usage_pieces(command, ctx) -> list[str]:
    pieces = [command.options_metavar] if command.options_metavar else []
    for param in command.get_params(ctx):
        if isinstance(param, TyperArgument):
            pieces.append(_argument_name(param))
        else:
            pieces.extend(param.get_usage_pieces(ctx))
    return pieces


def _format_options(command, ctx, formatter) -> None:
    arguments, options = [], []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        if isinstance(param, TyperArgument):
            arguments.append((_argument_name(param).strip("[]"), param.help or ""))
        else:
            options.append(record)
    for title, rows in (("Arguments", arguments), ("Options", options)):
        if rows:
            with formatter.section(title):
                formatter.write_dl(rows)


class Command(TyperCommand):
    """One nnctl command."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        return _usage_pieces(self, ctx)

    def format_options(self, ctx, formatter) -> None:
        _format_options(self, ctx, formatter)


class Group(TyperGroup):
    """A group of commands (the root, ``nnctl runs``); the root turns argument errors
    into nnctl's one-line errors."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        return [*_usage_pieces(self, ctx), self.subcommand_metavar]

    def format_options(self, ctx, formatter) -> None:
        _format_options(self, ctx, formatter)
        self.format_commands(ctx, formatter)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        from typer import _click
        from typer.exceptions import Abort

        argv = list(sys.argv[1:] if args is None else args)
        if not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except _click.exceptions.NoArgsIsHelpError as exc:
            exc.show()
            code = exc.exit_code
        except _click.exceptions.ClickException as exc:
            code = usage_error(exc, json_mode="--json" in argv)
        except Abort:
            print("aborted", file=sys.stderr)
            code = 1
        sys.exit(code if isinstance(code, int) else 0)


def usage_error(exc, json_mode: bool) -> int:
    """Report an argument error on one stderr line (and as JSON under ``--json``); the
    exit code, 2."""
    from nnctl.cli import output

    message = usage_message(exc)
    ctx = getattr(exc, "ctx", None)
    hint = f"{ctx.command_path} --help lists the arguments and options" if ctx is not None else None
    output.log(f"error: {message}")
    if json_mode:
        output.print_json({"error": {"code": "usage_error", "message": message, "hint": hint}})
    return 2


def usage_message(exc) -> str:
    """Click's message as one nnctl line: lower case start, no final period, the
    did-you-mean in brackets."""
    from typer import _click

    if isinstance(exc, _click.exceptions.NoSuchOption):
        text = f"no such option: {exc.option_name}"
        if exc.possibilities:
            text += f" (did you mean {' or '.join(exc.possibilities)}?)"  # closest first
        return text
    text = " ".join(exc.format_message().split())
    head, said, suggestion = text.partition(". Did you mean ")
    text = f"{head} (did you mean {suggestion})" if said else text.rstrip(".")
    return text[:1].lower() + text[1:]
