"""Options shared by several command groups, and JSON output."""
from __future__ import annotations

import json
import os

import typer

SpecArg = typer.Argument(..., help="Project spec, YAML or JSON (`tunepath init` writes a starter).", show_default=False)
SetOpt = typer.Option(None, "--set", help="Override a spec field: --set traffic.requests_per_month=1e6 (repeatable).")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")


def print_json(data) -> None:
    """JSON on stdout for scripts: non-finite numbers are a bug, never emitted as bare NaN."""
    print(json.dumps(data, indent=2, default=str, allow_nan=False))
WideOpt = typer.Option(False, "--wide", help="Every column and the full source texts (for wide terminals).")


def quiet_libraries() -> None:
    """Library deprecation chatter (transformers/peft FutureWarnings) is not for tunepath's users: every
    command that trains or embeds calls this before it imports a backend."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
