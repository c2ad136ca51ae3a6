"""Estimated vs measured training FLOPs and peak memory on tiny models built here.

For each run (model shape x vocabulary x sequence length x method x dtype) it trains a few steps
and prints: FLOPs estimate vs torch.utils.flop_counter.FlopCounterMode (eager attention), and
peak memory estimate vs measured. Measured peak on CPU = live model states (weights + grads +
optimizer states, summed over tensors after a step) + activations saved for backward (summed
over unique storages with saved_tensors_hooks); on CUDA, torch.cuda.max_memory_allocated. RSS
peak is printed beside it (inflated by glibc's allocator). Baseline: accelerate's
estimate-memory method (weights x4 for Adam training, no activations), on the same runs.
Targets (design.md §7): FLOPs within 3 %, peak memory within 10 %.
"""
from __future__ import annotations

import resource

import torch
import transformers
from torch.utils.flop_counter import FlopCounterMode

from advisor.architecture import from_config
from advisor.estimate import TrainSetup, training_flops, training_memory

RUNS = [  # (model_type, hidden, layers, heads, kv_heads, inter, vocab, seq, micro_batch, method, dtype, attention)
    ("llama", 256, 4, 8, 4, 688, 4096, 256, 4, "full", torch.float32, "eager"),
    ("llama", 256, 4, 8, 4, 688, 4096, 256, 4, "lora", torch.float32, "eager"),
    ("qwen2", 128, 2, 4, 2, 352, 16384, 512, 2, "full", torch.float32, "eager"),
    ("qwen2", 128, 2, 4, 2, 352, 16384, 512, 2, "lora", torch.bfloat16, "eager"),
    ("llama", 384, 6, 6, 6, 1024, 2048, 128, 8, "full", torch.bfloat16, "eager"),
    ("llama", 384, 6, 6, 6, 1024, 32000, 128, 4, "lora", torch.float32, "eager"),
    ("llama", 256, 4, 8, 4, 688, 4096, 512, 2, "full", torch.bfloat16, "sdpa"),
    ("qwen2", 256, 4, 8, 2, 688, 8192, 512, 2, "lora", torch.float32, "sdpa"),
]


def _saved_bytes(fn, params=()):
    """Bytes of unique storages saved for backward, excluding the parameters themselves (linears save
    their weight for the input gradient; it is already counted in the model states)."""
    seen, total = {(p.untyped_storage().data_ptr(), p.device) for p in params}, [0]

    def pack(t):
        key = (t.untyped_storage().data_ptr(), t.device)
        if key not in seen:
            seen.add(key)
            total[0] += t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, total[0]


def _state_bytes(model, opt) -> int:
    n = sum(p.numel() * p.element_size() for p in model.parameters())
    n += sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)
    for st in opt.state.values():
        n += sum(v.numel() * v.element_size() for v in st.values() if torch.is_tensor(v) and v.dim() > 0)
    return n


def run(mt, h, L, nh, kv, inter, V, s, b, method, dtype, attention):
    cfg = transformers.AutoConfig.for_model(mt, hidden_size=h, num_hidden_layers=L, num_attention_heads=nh,
                                            num_key_value_heads=kv, intermediate_size=inter, vocab_size=V,
                                            max_position_embeddings=max(s, 128))
    cfg._attn_implementation = attention
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(cfg).to(dtype)
    arch = from_config(cfg.to_dict())
    targets = ["q_proj", "v_proj"]
    if method == "lora":
        import peft
        model = peft.get_peft_model(model, peft.LoraConfig(r=8, target_modules=targets))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    ids = torch.randint(0, V, (b, s))
    setup = TrainSetup(method=method, tokens=b * s, seq_len=s, micro_batch=b, lora_rank=8, target_modules=targets,
                       precision="fp32" if dtype == torch.float32 else "bf16", attention=attention, device="cpu")
    with FlopCounterMode(display=False) as fc:
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
    measured_flops = fc.get_total_flops()
    opt.step()
    opt.zero_grad(set_to_none=False)
    for _ in range(2):  # steady state: optimizer states exist, grads allocated
        out, saved = _saved_bytes(lambda: model(input_ids=ids, labels=ids).loss, list(model.parameters()))
        out.backward()
        opt.step()
        opt.zero_grad(set_to_none=False)
    measured_peak = _state_bytes(model, opt) + saved
    est = training_memory(arch, setup)
    est_flops = training_flops(arch, setup)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    accelerate = 4 * weights  # accelerate estimate-memory: "Training using Adam" = 4x the model size
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    name = f"{mt} h{h} L{L} V{V} s{s} b{b} {method} {str(dtype).split('.')[-1]} {attention}"
    # FlopCounterMode registers no formula for the CPU sdpa kernel (machine-notes.md): eager only
    return name, est_flops, measured_flops if attention == "eager" else None, est.total, measured_peak, accelerate, rss


def main() -> None:
    torch.set_num_threads(2)
    print(f"{'run':50} {'FLOPs err':>10} {'mem est MB':>11} {'measured MB':>12} {'err':>7} "
          f"{'accelerate err':>15} {'RSS MB':>8}")
    worst_f = worst_m = 0.0
    for spec in RUNS:
        name, ef, mf, em, mm, acc, rss = run(*spec)
        fe = (ef - mf) / mf if mf else None
        me, ae = (em - mm) / mm, (acc - mm) / mm
        worst_f, worst_m = max(worst_f, abs(fe or 0)), max(worst_m, abs(me))
        ftxt = f"{fe:>+10.2%}" if fe is not None else f"{'n/a':>10}"
        print(f"{name:50} {ftxt} {em / 1e6:>11.1f} {mm / 1e6:>12.1f} {me:>+7.1%} {ae:>+15.1%} {rss / 1e6:>8.0f}")
    print(f"worst |FLOPs error| {worst_f:.2%} (target 3 %), worst |memory error| {worst_m:.1%} (target 10 %)")


if __name__ == "__main__":
    main()
