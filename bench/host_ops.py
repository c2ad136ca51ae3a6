"""Ops the host dispatches per transformer layer per micro-batch (forward + backward), by training method.

Eager PyTorch issues every aten op from Python; when a micro-batch's kernels are short the GPU waits on that
dispatch (advisor/estimate.py host_seconds), so host time scales with the ops issued. Counted here with a
TorchDispatchMode on CPU for a Hugging Face Llama, plain, with peft LoRA and with IA3, and a Mixtral (its
mixture-of-experts routing), with and without gradient checkpointing: ops per layer = (ops of a 3-layer model - ops of a 1-layer model) / 2, on a warmed-up step. The
estimator's HOST_OPS_* constants are these counts (tests/test_estimator.py recounts them with the installed
transformers and peft, so a release that changes them fails the suite).

    python bench/host_ops.py
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = {  # name: (method, LoRA targets, gradient checkpointing[, mixture of experts])
    "full": ("full", None, False),
    "full, checkpointing": ("full", None, True),
    "lora q,v": ("lora", ["q_proj", "v_proj"], False),
    "lora q,v, checkpointing": ("lora", ["q_proj", "v_proj"], True),
    "lora all-linear": ("lora", "all-linear", False),
    "lora all-linear, checkpointing": ("lora", "all-linear", True),
    "ia3 k": ("ia3", ["k_proj"], False),
    "ia3 k,v,down": ("ia3", ["k_proj", "v_proj", "down_proj"], False),
    "ia3 k, checkpointing": ("ia3", ["k_proj"], True),
    "ia3 k,v,down, checkpointing": ("ia3", ["k_proj", "v_proj", "down_proj"], True),
    "moe full": ("full", None, False, True),
    "moe full, checkpointing": ("full", None, True, True),
    "moe lora q,v": ("lora", ["q_proj", "v_proj"], False, True),
    "moe lora q,v, checkpointing": ("lora", ["q_proj", "v_proj"], True, True),
}


def _model(layers: int, method: str, targets, ckpt: bool, moe: bool = False):
    from transformers import LlamaConfig, LlamaForCausalLM, MixtralConfig, MixtralForCausalLM

    dims = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=layers, num_attention_heads=4,
                num_key_value_heads=2, vocab_size=256, max_position_embeddings=64, use_cache=False)
    if moe:      # Mixtral's 8 experts, 2 per token; transformers' default experts implementation (grouped_mm)
        model = MixtralForCausalLM(MixtralConfig(**dims, num_local_experts=8, num_experts_per_tok=2))
    else:
        model = LlamaForCausalLM(LlamaConfig(**dims))
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=8, target_modules=targets, lora_dropout=0.05))
    elif method == "ia3":         # peft's Llama default scales k, v (outputs) and down_proj (its input)
        from peft import IA3Config, get_peft_model

        model = get_peft_model(model, IA3Config(target_modules=targets,
                                                feedforward_modules=[t for t in targets if t == "down_proj"]))
    if ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if method in ("lora", "ia3"):
            model.enable_input_require_grads()     # as peft's prepare_model_for_kbit_training / the Trainer do
    model.train()
    return model


def ops_of_step(layers: int, method: str, targets, ckpt: bool, moe: bool = False) -> int:
    """aten ops dispatched by one forward + backward of a 2 x 32-token micro-batch, after a warm-up step."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += 1
            return func(*args, **(kwargs or {}))

    torch.manual_seed(0)
    model = _model(layers, method, targets, ckpt, moe)
    ids = torch.randint(0, 256, (2, 32))
    model(input_ids=ids, labels=ids).loss.backward()
    Count.n = 0
    with Count():
        model(input_ids=ids, labels=ids).loss.backward()
    return Count.n


def per_layer(method: str, targets, ckpt: bool, moe: bool = False) -> float:
    return (ops_of_step(3, method, targets, ckpt, moe) - ops_of_step(1, method, targets, ckpt, moe)) / 2


def counts() -> dict[str, float]:
    return {name: per_layer(*case) for name, case in CASES.items()}


def main() -> None:
    import peft
    import torch
    import transformers

    from bench.results import record

    c = counts()
    for name, n in c.items():
        print(f"{name:32} {n:6.0f} ops per layer")
    per_adapter = (c["lora all-linear"] - c["lora q,v"]) / 5          # Llama: 7 linears per layer vs 2
    frozen_base = c["lora q,v"] - 2 * per_adapter
    per_ia3 = {ck: (c[f"ia3 k,v,down{ck}"] - c[f"ia3 k{ck}"]) / 2 for ck in ("", ", checkpointing")}
    moe = {ck: {"trained": c[f"moe full{ck}"] - c[f"full{ck}"], "frozen": c[f"moe lora q,v{ck}"] - c[f"lora q,v{ck}"]}
           for ck in ("", ", checkpointing")}
    ckpt = {k: c[f"{k}, checkpointing"] / c[k] for k in ("full", "lora q,v", "lora all-linear")}
    print(f"per adapted linear {per_adapter:.0f}, frozen layer without adapters {frozen_base:.0f}, "
          f"checkpointing x {min(ckpt.values()):.2f}-{max(ckpt.values()):.2f}; per IA3-scaled linear "
          f"{per_ia3['']:.1f} ({per_ia3[', checkpointing']:.1f} with checkpointing); a mixture-of-experts layer's "
          f"routing adds {moe['']['trained']:.0f} (trained) / {moe['']['frozen']:.0f} (frozen), "
          f"{moe[', checkpointing']['trained']:.0f} / {moe[', checkpointing']['frozen']:.0f} with checkpointing")
    record("host_ops", baseline="none: a count, not a speed",
           figures={"per_layer": c, "per_adapted_linear": per_adapter, "frozen_layer": frozen_base,
                    "per_ia3_linear": per_ia3[""], "per_ia3_linear_checkpointing": per_ia3[", checkpointing"],
                    "moe_extra": moe[""], "moe_extra_checkpointing": moe[", checkpointing"],
                    "checkpointing_factor": ckpt,
                    "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                                 "peft": peft.__version__}},
           notes="HF Llama and Mixtral (8 experts, top 2), hidden 64, 2 x 32 tokens, TorchDispatchMode on CPU; per layer = (3 layers - 1 layer) / 2")


if __name__ == "__main__":
    main()
