"""`tunepath train / merge / generate`. torch and transformers are imported inside each command."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Optional

import typer

from advisor.errors import UserError
from tunepath.commands.options import quiet_libraries

app = typer.Typer()


def _is_main() -> bool:
    """Rank 0 (or a single process): the only one that prints under torchrun/accelerate."""
    return os.environ.get("RANK", "0") == "0"


def _show_plan(p: Any) -> None:
    """nanoGPT-style: what was derived from the config, before the long part starts."""
    from advisor.console import err

    if not _is_main():
        return
    d = p.derived
    t = p.config.training
    lines = [
        ("stage", d["stage"]),
        ("parameters", f"{d['parameters']:,} total, {d['trainable']:,} trainable ({d['trainable_percent']:.3g}%)"),
        ("data", d["data"]),
        ("batching", d["batching"]),
        ("effective batch", f"{d['effective_batch_rows']} rows = {t.micro_batch_size} micro x "
                            f"{t.gradient_accumulation_steps} accumulation x {d['world_size']} process(es)"),
        ("tokens per step", f"{d['tokens_per_step']:,}"),
        ("steps", f"{d['steps']:,} ({d['epochs']} epochs) at lr {d['learning_rate']:g}, {t.lr_scheduler}, "
                  f"{d['precision']}"),
    ]
    if d["resume_from"]:
        lines.append(("resume from", d["resume_from"]))
    for k, v in lines:
        err.print(f"[bold]{k:<16}[/]{v}", soft_wrap=True)
    for w in p.warnings:
        err.print(f"[yellow]warning:[/] {w}", soft_wrap=True)


def _samples_json(prepared: Any, n: int) -> dict[str, Any]:
    """What --inspect-data shows, for scripts: the data stats and the first n examples token by token."""
    import dataclasses

    from training.data import IGNORE

    tok = prepared.tokenizer
    return {"stats": dataclasses.asdict(prepared.stats), "samples": [
        {"where": e.where, "tokens": len(e.input_ids), "loss_tokens": sum(1 for lab in e.labels[1:] if lab != IGNORE),
         "ends_with_eos": e.input_ids[-1] == tok.eos_token_id, "input_ids": e.input_ids, "labels": e.labels,
         "pieces": [tok.decode([t]) for t in e.input_ids]} for e in prepared.examples[:n]]}


def _show_samples(prepared: Any, n: int) -> None:
    """Tokens of the first n examples: prompt dim, trained tokens green, EOS marked; then the counts."""
    from rich.markup import escape

    from advisor.console import out
    from training.data import IGNORE

    tok = prepared.tokenizer
    eos = tok.eos_token_id
    s = prepared.stats
    out.print(f"[bold]{s.examples} examples ({s.format})[/]: {s.train_rows} train rows, {s.eval_rows} eval rows, "
              f"{s.truncated} truncated, packing {'on' if s.packed else 'off'}", soft_wrap=True)
    out.print("legend: [dim]no loss[/]  [bold green]loss[/]  [reverse]<eos>[/]  (| separates tokens)")
    for e in prepared.examples[:n]:
        trained = sum(1 for lab in e.labels[1:] if lab != IGNORE)
        ends = e.input_ids[-1] == eos
        out.print(f"\n[bold]-- {e.where}[/]  {len(e.input_ids)} tokens, {trained} with loss, "
                  f"ends with EOS: {'yes' if ends else '[red]no[/]'}", soft_wrap=True)
        parts = []
        for tid, lab in zip(e.input_ids, e.labels):
            piece = escape(tok.decode([tid]) if tid != eos else "<eos>")
            style = "reverse" if tid == eos else ("bold green" if lab != IGNORE else "dim")
            parts.append(f"[{style}]{piece}[/]")
        out.print("[dim]|[/]".join(parts), soft_wrap=True)
    for w in s.warnings:
        out.print(f"[yellow]warning:[/] {w}", soft_wrap=True)


@app.command()
def train(
    config: Path = typer.Argument(..., help="YAML train config (see examples/train/)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a field: --set training.learning_rate=1e-4 (repeatable)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest complete checkpoint in output_dir."),
    force: bool = typer.Option(False, "--force", help="Resume despite changed data/schedule, or start over in a used output_dir."),
    inspect_data: bool = typer.Option(False, "--inspect-data", help="Print tokenized samples with the loss mask, then stop."),
    samples: int = typer.Option(3, "--samples", min=1, help="How many samples --inspect-data shows."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config (defaults + overrides) and stop."),
    as_json: bool = typer.Option(False, "--json", help="Print the run summary (or the --dry-run config, or the --inspect-data samples) as JSON."),
    ray: bool = typer.Option(False, "--ray", help="Train on Ray Train workers (a local Ray cluster unless --ray-address); "
                             "needs tunepath\\[cluster]."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Join this Ray cluster (host:port, "
                                              "ray://host:10001 or auto); implies --ray."),
    workers: int = typer.Option(1, "--workers", min=1, help="Ray Train workers (one process, one DDP rank each)."),
    gpus_per_worker: float = typer.Option(0, "--gpus-per-worker", min=0, help="GPUs per Ray worker (0: CPU, gloo)."),
) -> None:
    """Pretrain, fully fine-tune or PEFT-tune a causal LM from one config; works under torchrun / accelerate launch."""
    from advisor.console import out
    from training.config import load_config

    quiet_libraries()
    if not math.isfinite(gpus_per_worker):
        from advisor.errors import UserError

        raise UserError(f"--gpus-per-worker: expected a finite number >= 0, got {gpus_per_worker}")
    cfg = load_config(config, set_ or [])
    if dry_run:
        data = cfg.model_dump(mode="json")
        # resolved: the stage's default learning rate and the packing decision, not their null placeholders
        data["training"]["learning_rate"] = cfg.learning_rate
        data["data"]["packing"] = cfg.packing  # "auto" is resolved per hardware when the run starts
        if as_json:
            out.print_json(json.dumps(data))
        else:
            import yaml

            out.print(yaml.safe_dump(data, sort_keys=False).rstrip(), markup=False, highlight=False)
        return
    if inspect_data:
        from training.runner import inspect

        prepared = inspect(cfg)
        if as_json:
            print(json.dumps(_samples_json(prepared, samples), indent=2))
        else:
            _show_samples(prepared, samples)
        return
    if ray or ray_address:
        from training.ray_launch import run_on_ray

        summary = run_on_ray(cfg, workers, gpus_per_worker, ray_address, resume=resume, force=force,
                             on_plan=_show_plan)
    else:
        if workers != 1 or gpus_per_worker:
            from advisor.errors import UserError

            raise UserError("--workers/--gpus-per-worker: only with --ray (or launch with torchrun)")
        from training.runner import run

        summary = run(cfg, resume=resume, force=force, on_plan=_show_plan)
    if not _is_main():
        return
    if as_json:
        out.print_json(summary.model_dump_json())
        return
    loss = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
    out.print(f"[bold green]done[/] {summary.steps} steps, {summary.tokens:,} tokens, "
              f"{summary.tokens_per_s:,.0f} tok/s, peak memory {summary.peak_memory_bytes / 2**20:,.0f} MiB "
              f"({summary.peak_memory_kind})")
    out.print(f"train loss {loss(summary.train_loss)} (last {loss(summary.final_loss)}), eval loss "
              f"{loss(summary.eval_loss)}, perplexity {loss(summary.perplexity)}")
    written = [f for f in ("run_summary.json", "loss.svg") if (Path(summary.output_dir) / f).is_file()]
    out.print(f"saved to {summary.output_dir} (with {' and '.join(written)})", soft_wrap=True)


@app.command()
def merge(
    adapter_dir: Path = typer.Argument(..., help="A peft adapter directory (from stage peft)."),
    out_dir: str = typer.Option(..., "--out", help="Where to write the merged model (must not exist or be empty)."),
    base: Optional[str] = typer.Option(None, "--base", help="Base model (default: the one recorded in the adapter)."),
) -> None:
    """Merge a LoRA/DoRA/IA3 adapter into its base (merge_and_unload) and save a plain transformers model."""
    from adapters import merge as do_merge
    from advisor.console import out

    quiet_libraries()
    path = do_merge(str(adapter_dir), str(out_dir), base)
    out.print(f"merged model saved to {path}")


@app.command()
def generate(
    model_dir: Path = typer.Argument(..., help="A model directory (output of train or merge)."),
    prompt: str = typer.Argument(..., help="The user message (rendered with the chat template unless --raw)."),
    adapter: Optional[Path] = typer.Option(None, "--adapter", help="A peft adapter directory to apply."),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", min=1),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="0: greedy."),
    raw: bool = typer.Option(False, "--raw", help="Feed the prompt as plain text (no chat template)."),
) -> None:
    """Generate a reply from a trained model for a quick look."""
    from advisor.console import out
    from training.generate import generate as gen

    if not prompt.strip():   # an empty prompt generated 64 newlines and exited 0
        raise UserError("PROMPT is empty: give the text the model should reply to")
    if not math.isfinite(temperature):   # click's min=0 lets nan through (nan < 0 is false)
        raise UserError(f"--temperature: expected a finite number >= 0, got {temperature}")
    quiet_libraries()
    text = gen(str(model_dir), prompt, str(adapter) if adapter else None, max_new_tokens, chat=not raw,
               temperature=temperature)
    out.print(text, markup=False, highlight=False)
