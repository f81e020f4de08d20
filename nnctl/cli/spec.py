"""nnctl validate SPEC, nnctl schema"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nnctl.cli import output
from nnctl.cli.options import JsonOpt, SetOpt


def validate(
    spec: Annotated[Path, typer.Argument(metavar="SPEC", help="The experiment spec (YAML).", show_default=False)],
    set_: SetOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Check a spec (and that its data loads) without training.

    Reports every problem with its key path and YAML line (exit 2); warnings for legal
    but poor combinations.  --json prints the resolved spec with defaults filled in.
    """
    with output.handle_errors(json_):
        from nnctl.app.spec import load_spec
        from nnctl.app.training import check_spec

        checked = check_spec(load_spec(spec, set_ or []), base_dirs=[spec.resolve().parent])
        for w in checked.warnings:
            output.warn(w)
        if json_:
            output.print_json({"valid": True, "warnings": checked.warnings, "spec": checked.spec_dict})
            return
        print(f"{spec}: valid ({checked.summary})")


def schema() -> None:
    """Print the spec's JSON Schema (for editors' YAML plugins)."""
    from nnctl.app.spec import json_schema

    output.print_json(json_schema())
