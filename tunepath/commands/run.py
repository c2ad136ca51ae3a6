"""`tunepath run / calibrate`: from the recommendation to a measured local run."""
from __future__ import annotations

import sys
from pathlib import Path

import typer

from advisor.console import err, out
from advisor.errors import UserError
from tunepath.commands.options import JsonOpt, SetOpt, SpecArg, print_json, quiet_libraries

app = typer.Typer()


@app.command(rich_help_panel="Run")
def run(spec: Path = SpecArg,
        path: str = typer.Option(None, "--path", help="Run this path instead of the recommended one: prompting, "
                                                     "rag, peft, full_finetuning, pretraining or rag+peft."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan and its estimates; run nothing."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before starting."),
        html: Path = typer.Option(None, "--html", metavar="PATH",
                                  help="Also write a self-contained HTML summary of the run to PATH (.html): "
                                       "what ran, estimated vs measured as a table and bar chart, the loss "
                                       "curve of training runs and each step's key figures."),
        set_: list[str] = SetOpt, as_json: bool = JsonOpt) -> None:
    """Recommend, then run the chosen path on this machine, estimate beside measurement.

    Uses the spec's `run:` section (local data and models): RAG builds the index, answers the sample
    questions and evaluates on qrels; PEFT, full fine-tuning and pretraining write a TrainConfig and
    train; prompting builds a few-shot prompt and evaluates a local model on held-out examples.
    """
    from tunepath.launcher import check_run_section, execute, plan_run
    from tunepath.render import plan_table, run_summary_table, sample_answers
    from advisor.spec import load_spec

    if html is not None:
        from tunepath.run_report import check_html_path

        if dry_run:
            raise UserError("--html summarises a run; --dry-run runs nothing (drop one of them)")
        check_html_path(html)
    s = load_spec(spec, set_)
    check_run_section(s, spec, set_)
    with err.status("planning: the data is read and batched as the run will batch it"):   # terminals only
        plan = plan_run(s, spec, path)
    if dry_run and as_json:
        print_json(plan.to_dict())
        return
    console = err if as_json else out
    console.print(plan_table(plan))
    console.print(f"[dim]{plan.calibration}[/]")
    if dry_run:
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UserError("not a terminal: add --yes to start the run without a prompt")
        typer.confirm("Start the run?", abort=True)
    quiet_libraries()
    summary = execute(plan, s, on_step=lambda st: err.print(f"[bold cyan]>[/] {st.description}", soft_wrap=True))
    if html is not None:
        from tunepath.run_report import write_run_html

        console.print(f"html summary: {write_run_html(html, plan, summary)}", markup=False, soft_wrap=True)
    if as_json:
        print_json(summary)
        return
    out.print(run_summary_table(summary))
    for line in sample_answers(summary):
        out.print(line, soft_wrap=True)
    out.print(f"summary: {Path(summary['output_dir']) / 'run_summary.json'}")


@app.command(rich_help_panel="Run")
def calibrate(model: str = typer.Option(None, "--model", help="Config.json / model folder / catalog id under 2B "
                                                             "params for the micro-run (default: a 10M Llama)."),
              steps: int = typer.Option(6, "--steps", min=1, help="Timed training steps."),
              as_json: bool = JsonOpt) -> None:
    """Measure this machine for local estimates (training FLOP/s and per-step overhead, embedding chunks/s, memory).

    A short training micro-run, two tiny runs that time a step's per-layer overhead (most of a small model's step
    on a CPU), and an embedding run; `tunepath run` plans then use the measurement and say so.
    """
    from advisor import calibration
    from tunepath.calibrate import measure

    quiet_libraries()
    # a minute or more with no output otherwise; the spinner shows only on a terminal (stderr), never in --json
    with err.status("calibrating: a short training run, two step-overhead probes and an embedding run"):
        cal = measure(model, steps=steps)
    p = calibration.save(cal)
    if as_json:
        print_json({**cal.__dict__, "path": str(p)})
        return
    out.print(cal.describe())
    out.print(f"saved to {p}")
