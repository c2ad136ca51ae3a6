"""The `tunepath` command line: parses, calls the core, renders. No computation lives here.

Backends (rag/, training/) are imported lazily inside their commands, so the advisor's
commands never pay for torch, transformers, sentence-transformers or faiss.
"""
from __future__ import annotations

import os
import sys

import click
import typer
from typer.core import TyperGroup

from advisor.console import err
from advisor.errors import EXIT_INTERNAL, EXIT_USER, UserError


class _Group(TyperGroup):
    """Maps user mistakes to one line + exit 2, and bugs to one line + exit 1 (TUNEPATH_DEBUG=1: traceback)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as e:
            err.print(f"[bold red]error:[/] {e}", soft_wrap=True)
            raise click.exceptions.Exit(EXIT_USER) from None
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, KeyboardInterrupt):
            raise
        except Exception as e:  # a bug, not the user's fault
            if os.environ.get("TUNEPATH_DEBUG"):
                raise
            err.print(f"[bold red]internal error:[/] {type(e).__name__}: {e} "
                      "(set TUNEPATH_DEBUG=1 for the traceback)", soft_wrap=True)
            raise click.exceptions.Exit(EXIT_INTERNAL) from None


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    help="Should we fine-tune? Compare prompting, RAG, PEFT, full fine-tuning and pretraining "
    "for your project - cost, fit and evidence - then run the chosen path.\n\n"
    "Start with [bold]tunepath init spec.yaml[/], edit it, then [bold]tunepath recommend spec.yaml[/].",
)


# --- backends: their modules import only typer at the top ---------------------------------
from rag.cli import app as _rag_app  # noqa: E402
from training.cli import app as _training_app  # noqa: E402

app.add_typer(_rag_app, name="rag")
app.add_typer(_training_app)


def main() -> None:
    app(prog_name="tunepath")


if __name__ == "__main__":
    sys.exit(main())
