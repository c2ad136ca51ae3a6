"""`tunepath estimate`: memory, FLOPs, time and cost of training or serving a model."""
from __future__ import annotations

import typer

from advisor.console import out
from advisor.errors import UserError
from tunepath.commands.options import JsonOpt, print_json

app = typer.Typer()


INFERENCE = "inference"


def _check_method(value: str) -> str:
    """A training method from the one table (training/methods.py), or inference."""
    from training.methods import methods

    known = [*methods(), INFERENCE]
    if value not in known:
        import difflib

        close = difflib.get_close_matches(value, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UserError(f"--method {value!r}: expected one of {', '.join(known)}{hint}")
    return value


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
    method: str = typer.Option("lora", "--method", help="full, pretrain, a PEFT method (lora, dora, qlora, ia3, "
                                                        "prompt_tuning, prefix_tuning) or inference."),
    tokens: str = typer.Option(None, "--tokens", help="Training tokens, e.g. 20M (default: Chinchilla 20xN "
                                                      "for pretrain)."),
    gpu: str = typer.Option("A100-80GB", "--gpu", help="GPU catalog id (`tunepath gpus`)."),
    gpus_: int = typer.Option(1, "--gpus", min=1, help="Number of GPUs."),
    rank: int = typer.Option(16, "--rank", min=1, help="LoRA/DoRA/QLoRA rank."),
    virtual_tokens: int = typer.Option(20, "--virtual-tokens", min=1, help="Prompt/prefix tuning: virtual tokens."),
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
    method = _check_method(method)
    if method == INFERENCE:
        inf = estimate_inference(arch, g, prompt_tokens, output_tokens, requests)
        if as_json:
            print_json({"model": {"id": model, "total_params": arch.total_params,
                                   "active_params": arch.active_params}, **inf.to_dict()})
            return
        from tunepath.render import inference_table

        out.print(inference_table(inf, g.id))
        return
    if tokens is None:
        if method != "pretrain":
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
        setup = TrainSetup(method=method, tokens=n_tokens, seq_len=seq_len, micro_batch=micro_batch,
                           gpus=gpus_, zero=zero, grad_checkpointing=grad_checkpointing, precision=precision,
                           optimizer=optimizer, lora_rank=rank, target_modules=targets, mfu=mfu,
                           virtual_tokens=virtual_tokens)
    except ValidationError as e:
        first = e.errors()[0]
        raise UserError(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}, got {first['input']!r}") from None
    est = estimate_training(arch, g, setup)
    if as_json:
        d = est.to_dict()
        d["model"] = {"id": model, "total_params": arch.total_params, "active_params": arch.active_params}
        d["memory_gb"] = est.memory.as_gb()
        d.pop("memory")
        print_json(d)
        return
    from tunepath.render import train_table

    out.print(train_table(est, g.id, gpus_))
    out.print(f"[dim]MFU: {est.mfu_source}[/]")
    for n in est.notes:
        out.print(f"[yellow]note:[/] {n}")
