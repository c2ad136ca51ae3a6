"""The memory estimate against torch.cuda.max_memory_allocated on a CUDA GPU, with real architectures.

Architectures from the catalog's config.json files, at random init (nothing downloaded): Qwen2.5-0.5B and
TinyLlama-1.1B (a Llama 1.1B) by default, SmolLM-1.7B (Llama 1.7B) with --large. For each: full fine-tuning
(bf16 weights, AdamW), LoRA r=16 on all linear layers (bf16), QLoRA (NF4 + double quantisation through
bitsandbytes, prepare_model_for_kbit_training, paged AdamW 32-bit), each with and without gradient
checkpointing. One optimizer step of 2 micro-batches after a warm-up step, as bench/estimator_accuracy.py
does on CPU. Prints estimate, measured peak, error, step time and the MFU it implies (beside the default
MFU for the GPU's generation), and records bench/results/gpu_checks.json with the GPU's name.
Estimates exclude the CUDA context (max_memory_allocated does not see it).

Needs: a CUDA GPU, torch with CUDA, transformers, peft, bitsandbytes (for QLoRA rows; skipped without it).
Usage: python bench/gpu_checks.py [--seq 1024] [--batch 2] [--large] [--only qwen|llama]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advisor import catalog  # noqa: E402
from advisor.estimate import CUDA_OVERHEAD_GB, GB, TrainSetup, default_mfu, recompute_flops, training_flops  # noqa: E402
from advisor.estimate import estimate_training, training_memory  # noqa: E402,F401

MODELS = {"qwen": "Qwen/Qwen2.5-0.5B", "llama": "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
          "llama-large": "HuggingFaceTB/SmolLM-1.7B"}
METHODS = ("full", "lora", "qlora")


def train_setup(method: str, ckpt: bool, seq: int, batch: int, attention: str = "sdpa") -> TrainSetup:
    """The estimator's description of what run_one runs (bf16 weights; peft's fp32 adapters; paged AdamW)."""
    return TrainSetup(method=method, tokens=2 * batch * seq, seq_len=seq, micro_batch=batch,
                      precision="bf16" if method == "full" else "mixed", grad_checkpointing=ckpt,
                      target_modules="all-linear", lora_rank=16, attention=attention, device="cuda",
                      optimizer="adamw" if method != "qlora" else "paged-adamw")


def estimate_gb(mid: str, method: str, ckpt: bool, seq: int, batch: int, attention: str = "sdpa") -> float:
    """The estimate for one row, without the CUDA context (max_memory_allocated does not see it)."""
    return (training_memory(catalog.architecture(mid), train_setup(method, ckpt, seq, batch, attention)).total
            - CUDA_OVERHEAD_GB * GB) / GB


def estimate_step_s(mid: str, method: str, ckpt: bool, seq: int, batch: int, gpu_id: str, attention: str = "sdpa",
                    host_floor: bool = True) -> tuple[float, bool]:
    """(seconds, host-bound) of one run_one step - two micro-batches, one optimizer step - as the estimator prices
    it; host_floor=False: the GPU's work alone, as before advisor/estimate.py's host_seconds existed."""
    from advisor import estimate

    setup = train_setup(method, ckpt, seq, batch, attention).model_copy(update={"grad_accum": 2})
    saved = estimate.HOST_SECONDS_PER_OP
    estimate.HOST_SECONDS_PER_OP = saved if host_floor else 0.0
    try:
        est = estimate_training(catalog.architecture(mid), catalog.gpu(gpu_id), setup)
    finally:
        estimate.HOST_SECONDS_PER_OP = saved
    return est.hours * 3600, est.host_bound


def _model(mid: str, method: str, ckpt: bool, tmp: Path, attention: str = "sdpa"):
    import torch
    import transformers

    from training.memprobe import peak_tensor_bytes  # noqa: F401  (same probe as the CPU bench)

    _, raw = catalog.model_config(mid)
    cfg = transformers.AutoConfig.for_model(**{k: v for k, v in raw.items()
                                               if k not in ("architectures", "transformers_version", "auto_map",
                                                            "_name_or_path", "torch_dtype")})
    cfg._attn_implementation = attention
    torch.manual_seed(0)
    if method == "qlora":
        import peft

        path = tmp / mid.replace("/", "__")
        if not path.exists():
            transformers.AutoModelForCausalLM.from_config(cfg).to(torch.bfloat16).save_pretrained(path)
        q = transformers.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                            bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)
        model = transformers.AutoModelForCausalLM.from_pretrained(path, quantization_config=q, dtype=torch.bfloat16,
                                                                  device_map={"": 0})
        model = peft.prepare_model_for_kbit_training(model, use_gradient_checkpointing=ckpt,
                                                     gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        model = transformers.AutoModelForCausalLM.from_config(cfg).to(torch.bfloat16).cuda()
        if ckpt:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if method in ("lora", "qlora"):
        import peft

        model = peft.get_peft_model(model, peft.LoraConfig(r=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    model.train()
    return model


def run_one(mid: str, method: str, ckpt: bool, seq: int, batch: int, tmp: Path, attention: str = "sdpa") -> dict:
    import torch

    from training.memprobe import peak_tensor_bytes

    arch = catalog.architecture(mid)
    gpu = catalog.gpu_for_device(torch.cuda.get_device_name())
    model = _model(mid, method, ckpt, tmp, attention)
    params = [p for p in model.parameters() if p.requires_grad]
    if method == "qlora":
        import bitsandbytes as bnb

        opt = bnb.optim.PagedAdamW32bit(params, lr=1e-4)
    else:
        opt = torch.optim.AdamW(params, lr=1e-4, fused=True)  # what the Trainer runs on CUDA (adamw_torch_fused)
    batches = [torch.randint(0, arch.vocab_size, (batch, seq), device="cuda") for _ in range(2)]

    def step():
        for ids in batches:
            (model(input_ids=ids, labels=ids).loss / len(batches)).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()                                            # warm-up: optimizer states exist
    t0 = time.perf_counter()
    _, peak = peak_tensor_bytes(step, "cuda")
    seconds = time.perf_counter() - t0
    setup = train_setup(method, ckpt, seq, batch, attention)
    est = estimate_gb(mid, method, ckpt, seq, batch, attention) * GB
    row = {"model": mid, "method": method, "grad_checkpointing": ckpt, "seq": seq, "micro_batch": batch,
           "attention": attention,
           "estimate_gb": est / GB, "measured_gb": peak / GB, "error": (est - peak) / peak, "step_s": seconds}
    if gpu:
        mfu = (training_flops(arch, setup)) / (seconds * gpu.bf16_tflops * 1e12)
        # the step's time as the estimator prices it (two micro-batches, one optimizer step): at 0.5-1B and
        # 1-2k-token micro-batches the host's dispatch (estimate.host_seconds) may set it, not the GPU
        est_s, host_bound = estimate_step_s(mid, method, ckpt, seq, batch, gpu.id, attention)
        row.update(gpu=gpu.id, implied_mfu=mfu, implied_mfu_with_recompute=(training_flops(arch, setup)
                   + recompute_flops(arch, setup)) / (seconds * gpu.bf16_tflops * 1e12),
                   default_mfu=default_mfu(gpu.generation, arch.active_params, method)[0],
                   estimate_step_s=est_s, step_time_ratio=est_s / seconds, host_bound=host_bound)
    del model, opt
    torch.cuda.empty_cache()
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--large", action="store_true", help="also SmolLM-1.7B (Llama architecture)")
    ap.add_argument("--only", choices=sorted(MODELS))
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of full,lora,qlora")
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager", "flash_attention_2"],
                    help="attention kernel (flash_attention_2 needs a flash-attn build)")
    ap.add_argument("--name", default="gpu_checks", help="results file name (a long-row run: gpu_checks_long)")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        sys.exit("bench/gpu_checks.py needs a CUDA GPU (torch.cuda.is_available() is False); "
                 "bench/estimator_accuracy.py is the CPU version")
    try:
        import bitsandbytes  # noqa: F401
        methods = tuple(m for m in METHODS if m in args.methods.split(","))
    except ImportError:
        print("bitsandbytes not installed: QLoRA rows skipped")
        methods = tuple(m for m in ("full", "lora") if m in args.methods.split(","))
    models = [MODELS[args.only]] if args.only else [MODELS["qwen"], MODELS["llama"]]
    if args.large:
        models.append(MODELS["llama-large"])
    name = torch.cuda.get_device_name()
    print(f"GPU: {name}; seq {args.seq}, micro-batch {args.batch}, 2 micro-batches per step, {args.attn}")
    print(f"{'model':38} {'method':6} {'ckpt':5} {'est GB':>7} {'peak GB':>8} {'err':>7} {'step s':>7} {'MFU':>6} "
          f"{'default':>7}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mid in models:
            for method in methods:
                for ckpt in (False, True):
                    try:
                        r = run_one(mid, method, ckpt, args.seq, args.batch, Path(tmp), args.attn)
                    except torch.cuda.OutOfMemoryError:
                        print(f"{mid:38} {method:6} {ckpt!s:5} OOM")
                        torch.cuda.empty_cache()
                        continue
                    rows.append(r)
                    print(f"{mid:38} {method:6} {ckpt!s:5} {r['estimate_gb']:>7.2f} {r['measured_gb']:>8.2f} "
                          f"{r['error']:>+7.1%} {r['step_s']:>7.3f} {r.get('implied_mfu', 0):>6.3f} "
                          f"{r.get('default_mfu', 0):>7.3f}  est step {r.get('estimate_step_s', 0):.3f} s"
                          + (" (host-bound)" if r.get("host_bound") else ""))
    worst = max((abs(r["error"]) for r in rows), default=float("nan"))
    print(f"worst |memory error| {worst:.1%} (target 10 %)")
    times = [r["step_time_ratio"] for r in rows if "step_time_ratio" in r]
    if times:
        print(f"step time estimate / measured: {min(times):.2f} - {max(times):.2f} (host-bound rows: "
              f"{sum(1 for r in rows if r.get('host_bound'))} of {len(rows)})")
    from bench.results import record

    record(args.name, baseline="torch.cuda.max_memory_allocated (measured) vs advisor training_memory",
           target="peak memory within 10 %", figures={"rows": rows, "worst_mem_err": worst},
           ratios={"worst_mem_err": worst}, device=name,
           notes="random-init catalog architectures; QLoRA via bitsandbytes NF4 + double quant, paged AdamW 32-bit")


if __name__ == "__main__":
    main()
