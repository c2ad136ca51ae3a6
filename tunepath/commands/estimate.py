"""`tunepath estimate`: memory, FLOPs, time and cost of training or serving a model."""
from __future__ import annotations

import typer

from advisor.console import err, out
from advisor.errors import UserError
from tunepath.commands.options import JsonOpt, print_json

app = typer.Typer()


INFERENCE = "inference"


def _check_method(value: str) -> str:
    """A training method from the one table (training/methods.py), or inference."""
    from training.methods import methods

    known = [*methods(), INFERENCE]
    value = next((k for k in known if k.lower() == value.strip().lower()), value)   # LoRA, QLoRA, IA3 as papers write them
    if value not in known:
        import difflib

        close = difflib.get_close_matches(value, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UserError(f"--method {value!r}: expected one of {', '.join(known)}{hint}")
    return value


# Training options only some methods read (peft's LoraConfig r / target_modules, IA3Config target_modules,
# PromptTuningConfig / PrefixTuningConfig num_virtual_tokens).
_METHOD_OPTIONS = {"--rank": ("lora", "dora", "qlora"), "--target-modules": ("lora", "dora", "qlora", "ia3"),
                   "--virtual-tokens": ("prompt_tuning", "prefix_tuning")}


@app.command(rich_help_panel="Advisor")
def estimate(
    ctx: typer.Context,
    model: str = typer.Option(..., "--model", help="Catalog id or path to a config.json / model folder."),
    method: str = typer.Option("lora", "--method", help="full, pretrain, a PEFT method (lora, dora, qlora, ia3, "
                                                        "prompt_tuning, prefix_tuning) or inference."),
    tokens: str = typer.Option(None, "--tokens", help="Training tokens, e.g. 20M: required for training "
                                                      "methods but pretrain (default: Chinchilla 20xN)."),
    gpu: str = typer.Option("A100-80GB", "--gpu", help="GPU catalog id (`tunepath gpus`)."),
    gpus_: str = typer.Option("1", "--gpus", help="Number of GPUs."),
    rank: str = typer.Option("16", "--rank", help="LoRA/DoRA/QLoRA rank."),
    virtual_tokens: str = typer.Option("20", "--virtual-tokens", help="Prompt/prefix tuning: virtual tokens."),
    target_modules: str = typer.Option(None, "--target-modules",
                                       help="Comma-separated module names, or all-linear (default: peft's default "
                                            "for the model type, e.g. q_proj,v_proj for Llama, c_attn for GPT-2)."),
    seq_len: str = typer.Option("2048", "--seq-len", help="Sequence length."),
    micro_batch: str = typer.Option("1", "--micro-batch", help="Sequences per GPU per forward pass."),
    grad_accum: str = typer.Option("1", "--grad-accum", help="Micro-batches per optimizer step (gradient "
                                                             "accumulation): the update runs once per step."),
    zero: str = typer.Option("0", "--zero", help="DeepSpeed ZeRO stage (0-3)."),
    grad_checkpointing: bool = typer.Option(None, "--grad-checkpointing/--no-grad-checkpointing",
                                            help="Recompute activations (default: on for qlora, as peft's "
                                                 "prepare_model_for_kbit_training; off otherwise).",
                                            show_default=False),
    precision: str = typer.Option("mixed", "--precision", help="mixed | bf16 | fp32."),
    attention: str = typer.Option("sdpa", "--attention", help="sdpa (what tunepath trains with) | "
                                                            "flash_attention_2 | eager: the attention kernel."),
    optimizer: str = typer.Option(None, "--optimizer", help="adamw | adamw-8bit | paged-adamw | paged-adamw-8bit "
                                                            "| sgd (default: paged-adamw for qlora, else adamw)."),
    mfu: str = typer.Option(None, "--mfu", help="Override the default MFU, (0, 1]."),
    prompt_tokens: str = typer.Option("1000", "--prompt-tokens", help="Inference: prompt tokens/request."),
    output_tokens: str = typer.Option("250", "--output-tokens", help="Inference: output tokens/request."),
    requests: str = typer.Option("100000", "--requests-per-month", help="Inference: traffic."),
    weight_bits: str = typer.Option("16", "--weight-bits", help="Inference: weight bits, 16 | 8 | 4 "
                                                                "(weight-only int8/int4)."),
    concurrency: str = typer.Option(None, "--concurrency", help="Inference: sequences batched per decode step "
                                                                "(default: as many as memory holds, <= 256)."),
    as_json: bool = JsonOpt,
) -> None:
    """Estimate memory, FLOPs, time and cost of training or serving a model on given GPUs.

    Example: tunepath estimate --model meta-llama/Llama-2-7b-hf --method lora --tokens 20M --gpu A100-80GB
    """
    from pydantic import ValidationError

    from advisor import catalog
    from advisor.estimate import TrainSetup, chinchilla_tokens, estimate_inference, estimate_training
    from advisor.options import ESTIMATE_LIMITS, check_options

    # every numeric option is text until advisor.options says it is a finite number in range (one line, exit 2)
    n = check_options({"--tokens": tokens, "--gpus": gpus_, "--rank": rank, "--virtual-tokens": virtual_tokens,
                       "--seq-len": seq_len, "--micro-batch": micro_batch, "--grad-accum": grad_accum,
                       "--zero": zero, "--mfu": mfu,
                       "--prompt-tokens": prompt_tokens, "--output-tokens": output_tokens,
                       "--requests-per-month": requests, "--weight-bits": weight_bits,
                       "--concurrency": concurrency}, ESTIMATE_LIMITS)
    arch = catalog.architecture(model)
    g = catalog.gpu(gpu)
    method = _check_method(method)
    # options of the other kind of estimate are ignored: say which, so a script's typo does not pass unseen
    # options the user gave (not left at their defaults) that the other kind of estimate reads
    given = {p.opts[0] for p in ctx.command.params
             if p.name and getattr(ctx.get_parameter_source(p.name), "name", "DEFAULT") != "DEFAULT"}
    train_only = {"--tokens", "--gpus", "--zero", "--rank", "--virtual-tokens", "--target-modules", "--seq-len",
                  "--micro-batch", "--grad-accum", "--grad-checkpointing", "--precision", "--optimizer", "--mfu",
                  "--attention"}
    serve_only = {"--prompt-tokens", "--output-tokens", "--requests-per-month", "--weight-bits", "--concurrency"}
    order = [p.opts[0] for p in ctx.command.params].index
    ignored = sorted(given & (train_only if method == INFERENCE else serve_only), key=order)
    if ignored:
        err.print(f"note: {', '.join(ignored)} ignored for --method {method} "
                  f"({'training' if method == INFERENCE else 'serving'} options)", soft_wrap=True)
    # and the options of other training methods: --rank given to full fine-tuning was dropped without a word
    unused = sorted(opt for opt, users in _METHOD_OPTIONS.items() if opt in given and method not in users
                    and method != INFERENCE)
    if unused:
        err.print(f"note: {', '.join(unused)} ignored for --method {method} (used by "
                  f"{'; '.join(f'{o}: ' + ', '.join(_METHOD_OPTIONS[o]) for o in sorted(unused, key=order))})",
                  soft_wrap=True)
    if method != INFERENCE and n["--zero"] and n["--gpus"] == 1:
        err.print(f"note: --zero {n['--zero']} on 1 GPU partitions nothing (ZeRO shards over the data-parallel "
                  "GPUs: Rajbhandari et al. 2020); the estimate is that of --zero 0", soft_wrap=True)
    if method != INFERENCE and attention == "flash_attention_2" and g.generation in ("turing", "volta"):
        raise UserError(f"--attention flash_attention_2: FlashAttention-2 runs on Ampere, Ada and Hopper GPUs, not "
                        f"on {g.id} ({g.generation}; flash-attention's README); use sdpa or eager")
    if method == INFERENCE:
        from advisor.costs import context_window

        window = context_window(model)
        if window and n["--prompt-tokens"] + n["--output-tokens"] > window:
            err.print(f"note: {n['--prompt-tokens'] + n['--output-tokens']:,} tokens a request exceed the "
                      f"model's {window:,}-token window", soft_wrap=True)
        inf = estimate_inference(arch, g, n["--prompt-tokens"], n["--output-tokens"], n["--requests-per-month"],
                                 concurrency=n["--concurrency"], weight_bits=n["--weight-bits"])
        if as_json:
            print_json({"model": {"id": model.strip(), "total_params": arch.total_params,
                                  "active_params": arch.active_params}, **inf.to_dict()})
            return
        from tunepath.render import inference_table

        out.print(inference_table(inf, g.id))
        out.print(f"[dim]assumes {inf.engine}[/]")
        if inf.monthly_usd is None:
            from rich.markup import escape

            out.print(f"[yellow]note:[/] no cost: {escape(g.no_price_reason())}")
        if inf.accuracy:
            out.print(f"[dim]accuracy: {inf.accuracy}[/]")
        return
    if tokens is None:
        if method != "pretrain":
            raise UserError("--tokens is required for training estimates (e.g. --tokens 20M)")
        n_tokens = chinchilla_tokens(arch.total_params)
    else:
        n_tokens = n["--tokens"]
    if target_modules is None:      # peft's default for the model type (advisor.estimate.LORA_DEFAULT_TARGETS)
        from advisor.estimate import resolve_targets

        targets = None
        if method in ("lora", "dora", "qlora") and not resolve_targets(arch, None):
            raise UserError(f"--target-modules: peft has no default for model_type {arch.model_type!r}; name the "
                            f"modules ({', '.join(arch.linear_names())}) or all-linear")
    else:
        targets = "all-linear" if target_modules.strip() == "all-linear" else \
            [t.strip() for t in target_modules.split(",") if t.strip()]
        if not targets:
            raise UserError("--target-modules: expected comma-separated module names or all-linear, got an empty list")
    if method in ("lora", "dora", "qlora"):
        from advisor.estimate import resolve_targets

        dims = [min(lin.in_features, lin.out_features) for lin in arch.layer_linears
                if lin.name in resolve_targets(arch, targets)]
        if dims and n["--rank"] > min(dims):
            raise UserError(f"--rank: at most {min(dims):,} for these modules (a rank-r update of a d x k "
                            f"matrix needs r <= min(d, k)), got {n['--rank']:,}")
    try:
        setup = TrainSetup(method=method, tokens=n_tokens, seq_len=n["--seq-len"], micro_batch=n["--micro-batch"],
                           grad_accum=n["--grad-accum"], gpus=n["--gpus"], zero=n["--zero"],
                           grad_checkpointing=grad_checkpointing,
                           precision=precision, optimizer=optimizer, lora_rank=n["--rank"], target_modules=targets,
                           mfu=n["--mfu"], virtual_tokens=n["--virtual-tokens"], attention=attention)
    except ValidationError as e:
        first = e.errors()[0]
        raise UserError(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}, got {first['input']!r}") from None
    est = estimate_training(arch, g, setup)
    if as_json:
        d = est.to_dict()
        d["model"] = {"id": model.strip(), "total_params": arch.total_params, "active_params": arch.active_params}
        d["memory_gb"] = est.memory.as_gb()
        d.pop("memory")
        print_json(d)
        return
    from rich.markup import escape

    from tunepath.render import train_table

    out.print(train_table(est, g.id, n["--gpus"]))
    out.print(f"[dim]MFU: {escape(est.mfu_source)}[/]")
    for line in filter(None, est.accuracy):
        out.print(f"[dim]accuracy: {line}[/]")
    for note in est.notes:
        out.print(f"[yellow]note:[/] {escape(note)}")     # notes name the user's model path
