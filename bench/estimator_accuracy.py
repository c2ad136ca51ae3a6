"""Estimated vs measured training FLOPs and peak memory on tiny models built here.

For each run (model shape x vocabulary x sequence length x method x dtype) it trains one optimizer step of
two micro-batches (gradient accumulation 2, so gradients are live while the second micro-batch's
activations are, as in real fine-tuning recipes) after a warm-up step, and prints:
- FLOPs: estimate vs torch.utils.flop_counter.FlopCounterMode (eager attention; sdpa on CPU has no
  registered flop formula);
- peak memory: estimate (advisor/estimate.py training_memory) vs a measurement independent of it -
  on CPU the peak of live tensor bytes on torch's memory-profiler timeline, on CUDA
  torch.cuda.max_memory_allocated (training/memprobe.py).
Baseline in the same invocation: accelerate's `estimate-memory` rule for Adam training (4x the model's
weights, no activations). Targets: FLOPs within 3 %, peak memory within 10 %.
`bench/gpu_checks.py` runs the same measurement on CUDA with real architectures.
Usage: python bench/estimator_accuracy.py [--quick]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import transformers  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from advisor.architecture import from_config  # noqa: E402
from advisor.estimate import TrainSetup, training_flops, training_memory  # noqa: E402
from training.memprobe import peak_tensor_bytes  # noqa: E402

RUNS = [  # (model_type, hidden, layers, heads, kv_heads, inter, vocab, seq, micro_batch, method, dtype, attention, ckpt)
    ("llama", 256, 4, 8, 4, 688, 4096, 256, 4, "full", torch.float32, "eager", False),
    ("llama", 256, 4, 8, 4, 688, 4096, 256, 4, "lora", torch.float32, "eager", False),
    ("qwen2", 128, 2, 4, 2, 352, 16384, 512, 2, "full", torch.float32, "eager", False),
    ("qwen2", 128, 2, 4, 2, 352, 16384, 512, 2, "lora", torch.bfloat16, "eager", False),
    ("llama", 384, 6, 6, 6, 1024, 2048, 128, 8, "full", torch.bfloat16, "eager", False),
    ("llama", 384, 6, 6, 6, 1024, 32000, 128, 4, "lora", torch.float32, "eager", False),
    ("llama", 256, 4, 8, 4, 688, 4096, 512, 2, "full", torch.bfloat16, "sdpa", False),
    ("qwen2", 256, 4, 8, 2, 688, 8192, 512, 2, "lora", torch.float32, "sdpa", False),
    ("llama", 256, 4, 8, 4, 688, 4096, 512, 2, "full", torch.float32, "sdpa", True),
    ("llama", 256, 4, 8, 4, 688, 4096, 512, 2, "lora", torch.float32, "sdpa", True),
    # long rows with eager attention: the s x s softmax's backward transient outweighs a layer
    ("llama", 256, 4, 16, 4, 688, 512, 1024, 2, "lora", torch.float32, "eager", True),
    ("llama", 256, 4, 16, 4, 688, 512, 1024, 2, "full", torch.bfloat16, "eager", True),
]
QUICK = [RUNS[0], RUNS[1], RUNS[8]]


def build(mt, h, L, nh, kv, inter, V, s, method, dtype, attention, ckpt, targets=("q_proj", "v_proj"), rank=8):
    cfg = transformers.AutoConfig.for_model(mt, hidden_size=h, num_hidden_layers=L, num_attention_heads=nh,
                                            num_key_value_heads=kv, intermediate_size=inter, vocab_size=V,
                                            max_position_embeddings=max(s, 128))
    cfg._attn_implementation = attention
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(cfg).to(dtype)
    arch = from_config(cfg.to_dict())
    if ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if method == "lora":
        import peft
        model = peft.get_peft_model(model, peft.LoraConfig(r=rank, target_modules=list(targets)))
    model.train()
    return model, arch


def train_step(model, opt, batches):
    """One optimizer step over `batches` micro-batches (gradient accumulation), as HF Trainer runs it."""
    for ids in batches:
        (model(input_ids=ids, labels=ids).loss / len(batches)).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def measure(mt, h, L, nh, kv, inter, V, s, b, method, dtype, attention, ckpt, device="cpu"):
    """(name, est FLOPs, measured FLOPs or None, est peak bytes, measured peak bytes, accelerate baseline)."""
    model, arch = build(mt, h, L, nh, kv, inter, V, s, method, dtype, attention, ckpt)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    batches = [torch.randint(0, V, (b, s), device=device) for _ in range(2)]
    setup = TrainSetup(method=method, tokens=b * s, seq_len=s, micro_batch=b, lora_rank=8,
                       target_modules=["q_proj", "v_proj"], precision="fp32" if dtype == torch.float32 else "bf16",
                       attention=attention, grad_checkpointing=ckpt, device="cpu")
    measured_flops = None
    if attention == "eager" and not ckpt:
        with FlopCounterMode(display=False) as fc:
            model(input_ids=batches[0], labels=batches[0]).loss.backward()
        measured_flops = fc.get_total_flops()
        opt.zero_grad(set_to_none=True)
    train_step(model, opt, batches)                                   # warm-up: optimizer states exist
    _, peak = peak_tensor_bytes(lambda: train_step(model, opt, batches), device)
    est = training_memory(arch, setup).total
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    name = (f"{mt} h{h} L{L} V{V} s{s} b{b} {method} {str(dtype).split('.')[-1]} {attention}"
            + (" ckpt" if ckpt else ""))
    return name, training_flops(arch, setup), measured_flops, est, peak, 4 * weights


def main() -> None:
    torch.set_num_threads(2)
    runs = QUICK if "--quick" in sys.argv else RUNS
    print(f"{'run':58} {'FLOPs err':>10} {'mem est MB':>11} {'peak MB':>9} {'err':>7} {'accelerate err':>15}")
    rows = []
    for spec in runs:
        name, ef, mf, em, mm, acc = measure(*spec)
        fe = (ef - mf) / mf if mf else None
        me, ae = (em - mm) / mm, (acc - mm) / mm
        rows.append({"run": name, "flops_est": ef, "flops_measured": mf, "flops_err": fe, "mem_est": em,
                     "mem_peak_measured": mm, "mem_err": me, "accelerate_err": ae})
        ftxt = f"{fe:>+10.2%}" if fe is not None else f"{'n/a':>10}"
        print(f"{name:58} {ftxt} {em / 1e6:>11.1f} {mm / 1e6:>9.1f} {me:>+7.1%} {ae:>+15.1%}")
    worst_f = max(abs(r["flops_err"]) for r in rows if r["flops_err"] is not None)
    worst_m = max(abs(r["mem_err"]) for r in rows)
    worst_a = max(abs(r["accelerate_err"]) for r in rows)
    print(f"worst |FLOPs error| {worst_f:.2%} (target 3 %), worst |memory error| {worst_m:.1%} (target 10 %), "
          f"accelerate's rule worst {worst_a:.1%}")
    if "--quick" in sys.argv:
        return
    from bench.results import record

    record("estimator_accuracy", baseline="accelerate estimate-memory rule for Adam training (4x weights)",
           target="FLOPs within 3 % of FlopCounterMode; peak memory within 10 % of torch's memory-profiler peak",
           figures={"runs": rows, "worst_flops_err": worst_f, "worst_mem_err": worst_m},
           ratios={"worst_mem_err": worst_m, "accelerate_worst_mem_err": worst_a},
           notes="CPU: peak live tensor bytes from torch.profiler's memory timeline, one optimizer step of 2 "
                 "micro-batches after a warm-up step")


if __name__ == "__main__":
    main()
