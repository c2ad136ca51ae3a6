"""Options shared by several command groups, and JSON output."""
from __future__ import annotations

import json

import typer

SpecArg = typer.Argument(..., help="Project spec, YAML or JSON (`tunepath init` writes a starter).", show_default=False)
SetOpt = typer.Option(None, "--set", help="Override a spec field: --set traffic.requests_per_month=1e6 (repeatable).")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")


def print_json(data) -> None:
    """JSON on stdout for scripts: non-finite numbers are a bug, never emitted as bare NaN."""
    print(json.dumps(data, indent=2, default=str, allow_nan=False))
WideOpt = typer.Option(False, "--wide", help="Every column and the full source texts (for wide terminals).")
