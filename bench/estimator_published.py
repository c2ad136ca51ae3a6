"""The estimator against published figures: papers, model cards, requirement tables, throughput pages.

Every row is one published number, the setup it was measured under, its source, tunepath's estimate for
that setup and the ratio estimate / published. Rows marked "fitted" are the ones a default was fitted
to (advisor/estimate.py MFU_ANCHORS, advisor/data/gpus.yaml decode_bandwidth_efficiency,
QUANT_KERNEL_EFF): they cannot validate anything and are reported apart. Every other row is held out.
Rows outside 25 % carry a written reason. Baseline (same invocation): the estimator as it was before
v2 - one MFU of 0.45 for every GPU (0.35 LoRA, 0.25 QLoRA), DeepSpeed's ZeRO estimator formulas, no
checkpointing default for QLoRA, one bandwidth efficiency of 0.7, the input embedding streamed.

Targets: >= 90 % of rows within 25 %, every row within 2x.
Usage: python bench/estimator_published.py [--no-record] | --docs (writes docs/validation.md and
advisor/data/estimate_accuracy.json, what the CLI and reports quote, from the results)
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advisor import catalog  # noqa: E402
from advisor.architecture import Architecture, from_config  # noqa: E402
from advisor.estimate import (  # noqa: E402
    GB,
    PREFILL_MFU,
    TrainSetup,
    decode_step_seconds,
    default_mfu,
    inference_flops_per_token,
    model_state_bytes,
    training_flops,
    training_memory,
    estimate_training,
)


def llama(h: int, layers: int, heads: int, kv: int, inter: int, vocab: int, tied: bool = False) -> Architecture:
    """A Llama-family config with the published dimensions of the model named in each row."""
    return from_config({"model_type": "llama", "hidden_size": h, "num_hidden_layers": layers,
                        "num_attention_heads": heads, "num_key_value_heads": kv, "intermediate_size": inter,
                        "vocab_size": vocab, "tie_word_embeddings": tied})


# Published configs (config.json of each release) for models not in the catalog.
LLAMA1 = {"7B": llama(4096, 32, 32, 32, 11008, 32000), "13B": llama(5120, 40, 40, 40, 13824, 32000),
          "33B": llama(6656, 60, 52, 52, 17920, 32000), "65B": llama(8192, 80, 64, 64, 22016, 32000)}
LLAMA3_70B = llama(8192, 80, 64, 8, 28672, 128256)
LLAMA31_405B = llama(16384, 126, 128, 8, 53248, 128256)
SMOLLM3_3B = llama(2048, 36, 16, 4, 11008, 128256, tied=True)
QWEN25_3B = from_config({"model_type": "qwen2", "hidden_size": 2048, "num_hidden_layers": 36,
                         "num_attention_heads": 16, "num_key_value_heads": 2, "intermediate_size": 11008,
                         "vocab_size": 151936, "tie_word_embeddings": True})


def arch(mid: str) -> Architecture:
    return catalog.architecture(mid)


def gpu(gid: str):
    return catalog.gpu(gid)


@dataclass
class Row:
    group: str
    setup: str
    published: float
    unit: str
    source: str
    estimate: Callable[[], float]
    fitted: str = ""            # what was fitted to this row ("" = held out)
    reason: str = ""            # why the row may sit outside 25 %
    baseline: Callable[[], float] | None = None
    value: float = field(default=math.nan)
    base_value: float = field(default=math.nan)

    @property
    def ratio(self) -> float:
        return self.value / self.published


# --- training time ------------------------------------------------------------------------------

def pretrain_gpu_hours(a: Architecture, gid: str, tokens: float, seq: int, mfu: float | None = None,
                       batch_tokens: float = 4e6) -> float:
    """GPU-hours of a pretraining run whose optimizer steps hold `batch_tokens` (Llama and LLaMA: 4M, Touvron et
    al. 2023 Table 1; Llama 3: up to 16M, Dubey et al. 2024 §3.4; TinyLlama: 2M)."""
    g = gpu(gid)
    est = estimate_training(a, g, TrainSetup(method="pretrain", tokens=tokens, seq_len=seq, mfu=mfu,
                                             grad_accum=max(1, round(batch_tokens / seq))))
    return est.gpu_hours


def old_gpu_hours(a: Architecture, gid: str, tokens: float, seq: int, method: str = "pretrain") -> float:
    """v1: one MFU per method for every GPU and size, no recompute in the time."""
    setup = TrainSetup(method=method, tokens=tokens, seq_len=seq, grad_checkpointing=False, attention="eager")
    mfu = {"full": 0.45, "pretrain": 0.45, "lora": 0.35, "dora": 0.30, "qlora": 0.25}[method]
    return training_flops(a, setup) / (gpu(gid).bf16_tflops * 1e12 * mfu) / 3600


def train_tokens_per_s(a: Architecture, gid: str, method: str, seq: int, micro_batch: int, ckpt: bool,
                       targets="all-linear", rank: int = 8) -> float:
    """Tokens per GPU per second of a training run (LLaMA-Factory's TGS)."""
    g = gpu(gid)
    setup = TrainSetup(method=method, tokens=1e9, seq_len=seq, micro_batch=micro_batch, grad_checkpointing=ckpt,
                       target_modules=targets, lora_rank=rank)
    return 1e9 / (estimate_training(a, g, setup).hours * 3600)


def old_train_tokens_per_s(a, gid, method, seq, micro_batch, ckpt, targets="all-linear", rank=8) -> float:
    setup = TrainSetup(method=method, tokens=1e9, seq_len=seq, micro_batch=micro_batch, target_modules=targets,
                       lora_rank=rank, attention="eager", grad_checkpointing=False)
    mfu = {"full": 0.45, "pretrain": 0.45, "lora": 0.35, "qlora": 0.25}[method]
    return 1e9 / (training_flops(a, setup) / (gpu(gid).bf16_tflops * 1e12 * mfu))


# --- training memory ----------------------------------------------------------------------------

def train_memory_gb(a: Architecture, method: str, seq: int, micro_batch: int, ckpt: bool | None,
                    targets="all-linear", rank: int = 8, attention: str = "sdpa") -> float:
    setup = TrainSetup(method=method, tokens=1, seq_len=seq, micro_batch=micro_batch, grad_checkpointing=ckpt,
                       target_modules=targets, lora_rank=rank, attention=attention)
    return training_memory(a, setup).total / GB


def old_train_memory_gb(a, method, seq, micro_batch, ckpt, targets="all-linear", rank=8, attention="sdpa"):
    """v1 for QLoRA: no checkpointing unless asked, 16-bit non-quantised parameters."""
    setup = TrainSetup(method=method, tokens=1, seq_len=seq, micro_batch=micro_batch, grad_checkpointing=bool(ckpt),
                       target_modules=targets, lora_rank=rank, attention=attention, optimizer="adamw")
    m = training_memory(a, setup)
    if method == "qlora":
        linear = a.num_layers * sum(lin.count * lin.in_features * lin.out_features for lin in a.layer_linears)
        m.weights -= (a.total_params - linear) * 2              # v1 kept them 16-bit
    return m.total / GB


# --- serving ------------------------------------------------------------------------------------

def decode_tps(a: Architecture, gid: str, batch: int, context: float, bits: float = 16) -> float:
    """Decode tokens/s per sequence... summed over the batch."""
    return batch / decode_step_seconds(a, gpu(gid), batch, context, bits)


def old_decode_b1(a: Architecture, gid: str, bits: float = 16) -> float:
    """v1: every parameter (input embedding included) streamed at 70 % of peak bandwidth."""
    return gpu(gid).bandwidth_gbs * 1e9 * 0.7 / (a.active_params * bits / 8)


def serve_throughput(a: Architecture, gid: str, batch: int, prompt: int, output: int) -> float:
    """Output tokens/s of a continuously batched server with `batch` requests in flight: each request's
    prefill (compute-bound) runs between decode steps."""
    g = gpu(gid)
    prefill_s = prompt * inference_flops_per_token(a, prompt // 2) / (g.bf16_tflops * 1e12 * PREFILL_MFU)
    step = decode_step_seconds(a, g, batch, prompt + output / 2)
    return batch * output / (batch * prefill_s + output * step)


LF = "LLaMA-Factory wiki 'Performance comparison' (hiyouga/LLaMA-Factory, 2024-04)"
LF_SETUP = "LLaMA2-7B, batch 4, LoRA r=8 all linear, max length 1024, gradient checkpointing (LLaMA-Factory default)"
UNSLOTH_CTX = ("unslothai/unsloth README, 'Context length benchmarks' (Hugging Face + FA2 column; the card's VRAM "
               "is an upper bound on the peak)")
LF_LONG = "LLaMA2-7B QLoRA 4-bit, A100-40GB, batch 1, r=8 all linear, FlashAttention-2, gradient checkpointing"

# LLaMA-Factory's long-context QLoRA table: (row length, published tokens/s/GPU)
LF_LONG_TABLE = ((1024, 2_295), (2048, 2_741), (4096, 2_926), (8192, 3_128), (16384, 3_542), (32768, 2_216))


ROWS: list[Row] = [
    # --- pretraining GPU-hours on A100 (Llama 2 / LLaMA papers) ---
    Row("pretraining time", "Llama 2 7B, 2T tokens, s=4096, A100-80GB", 184_320, "GPU-h",
        "Touvron et al. 2023 (Llama 2), Table 2",
        lambda: pretrain_gpu_hours(arch("meta-llama/Llama-2-7b-hf"), "A100-80GB", 2e12, 4096),
        fitted="ampere MFU anchor",
        baseline=lambda: old_gpu_hours(arch("meta-llama/Llama-2-7b-hf"), "A100-80GB", 2e12, 4096)),
    Row("pretraining time", "Llama 2 13B, 2T tokens, s=4096, A100-80GB", 368_640, "GPU-h",
        "Touvron et al. 2023 (Llama 2), Table 2",
        lambda: pretrain_gpu_hours(arch("meta-llama/Llama-2-13b-hf"), "A100-80GB", 2e12, 4096),
        baseline=lambda: old_gpu_hours(arch("meta-llama/Llama-2-13b-hf"), "A100-80GB", 2e12, 4096)),
    Row("pretraining time", "Llama 2 70B, 2T tokens, s=4096, A100-80GB", 1_720_320, "GPU-h",
        "Touvron et al. 2023 (Llama 2), Table 2",
        lambda: pretrain_gpu_hours(arch("meta-llama/Llama-2-70b-hf"), "A100-80GB", 2e12, 4096),
        fitted="ampere MFU anchor",
        baseline=lambda: old_gpu_hours(arch("meta-llama/Llama-2-70b-hf"), "A100-80GB", 2e12, 4096)),
    *[Row("pretraining time", f"LLaMA {k}, {t / 1e12:g}T tokens, s=2048, A100-80GB", h, "GPU-h",
          "Touvron et al. 2023 (LLaMA), Table 15",
          (lambda k=k, t=t: pretrain_gpu_hours(LLAMA1[k], "A100-80GB", t, 2048)),
          reason="LLaMA 13B ran at a higher MFU (0.54) than Llama 2 7B/70B (0.45/0.46), the anchors",
          baseline=(lambda k=k, t=t: old_gpu_hours(LLAMA1[k], "A100-80GB", t, 2048)))
      for k, t, h in (("7B", 1e12, 82_432), ("13B", 1e12, 135_168), ("33B", 1.4e12, 530_432),
                      ("65B", 1.4e12, 1_022_362))],
    Row("pretraining time", "TinyLlama 1.1B, s=2048, 16x A100-40GB: tokens/s per GPU", 24_000, "tok/s/GPU",
        "TinyLlama README (jzhang38/TinyLlama): 24k tokens/s/A100-40G, 56 % MFU",
        lambda: 1 / (pretrain_gpu_hours(arch("TinyLlama/TinyLlama-1.1B-Chat-v1.0"), "A100-40GB", 1.0, 2048,
                                       batch_tokens=2e6) * 3600),
        reason="a small model on a 16-GPU run: no published anchor below 7B on A100",
        baseline=lambda: 1 / (old_gpu_hours(arch("TinyLlama/TinyLlama-1.1B-Chat-v1.0"), "A100-40GB", 1.0, 2048)
                              * 3600)),
    # --- pretraining GPU-hours on H100 (Llama 3 / 3.1 model cards, Llama 3 paper) ---
    Row("pretraining time", "Llama 3 8B, 15T tokens, s=8192, H100-80GB", 1.3e6, "GPU-h", "Meta Llama 3 model card (2024)",
        lambda: pretrain_gpu_hours(arch("meta-llama/Meta-Llama-3-8B"), "H100-SXM", 15e12, 8192),
        fitted="hopper MFU anchor",
        baseline=lambda: old_gpu_hours(arch("meta-llama/Meta-Llama-3-8B"), "H100-SXM", 15e12, 8192)),
    Row("pretraining time", "Llama 3 70B, 15T tokens, s=8192, H100-80GB", 6.4e6, "GPU-h", "Meta Llama 3 model card (2024)",
        lambda: pretrain_gpu_hours(LLAMA3_70B, "H100-SXM", 15e12, 8192), fitted="hopper MFU anchor",
        baseline=lambda: old_gpu_hours(LLAMA3_70B, "H100-SXM", 15e12, 8192)),
    Row("pretraining time", "Llama 3.1 8B, 15T tokens, s=8192, H100-80GB", 1.46e6, "GPU-h",
        "Meta Llama 3.1 model card (2024)",
        lambda: pretrain_gpu_hours(arch("meta-llama/Llama-3.1-8B"), "H100-SXM", 15e12, 8192),
        baseline=lambda: old_gpu_hours(arch("meta-llama/Llama-3.1-8B"), "H100-SXM", 15e12, 8192)),
    Row("pretraining time", "Llama 3.1 70B, 15T tokens, s=8192, H100-80GB", 7.0e6, "GPU-h",
        "Meta Llama 3.1 model card (2024)", lambda: pretrain_gpu_hours(LLAMA3_70B, "H100-SXM", 15e12, 8192),
        baseline=lambda: old_gpu_hours(LLAMA3_70B, "H100-SXM", 15e12, 8192)),
    Row("pretraining time", "Llama 3.1 405B, 15.6T tokens, s=8192, H100-80GB", 30.84e6, "GPU-h",
        "Meta Llama 3.1 model card (2024); tokens: Dubey et al. 2024 (Llama 3 paper) §3",
        lambda: pretrain_gpu_hours(LLAMA31_405B, "H100-SXM", 15.6e12, 8192),
        fitted="hopper MFU anchor",
        baseline=lambda: old_gpu_hours(LLAMA31_405B, "H100-SXM", 15.6e12, 8192)),
    Row("pretraining time", "SmolLM3 3B, 11.2T tokens, s=4096, 384x H100 for 24 days", 384 * 24 * 24, "GPU-h",
        "Hugging Face blog 'SmolLM3: smol, multilingual, long-context reasoner' (2025-07-08): 384 H100s, 24 days; "
        "HuggingFaceTB/SmolLM3-3B-checkpoints: 2,359,296-token batches",
        lambda: pretrain_gpu_hours(SMOLLM3_3B, "H100-SXM", 11.2e12, 4096, batch_tokens=2_359_296),
        reason="the H100 whole-run default below 70B is Llama 3 8B's 0.167 (16k GPUs); SmolLM3's run on 384 GPUs "
               "reached about 0.29: whole-run efficiency of small models differs 1.7x between the two published "
               "runs, and the default keeps Meta's",
        baseline=lambda: old_gpu_hours(SMOLLM3_3B, "H100-SXM", 11.2e12, 4096)),
    Row("pretraining time", "Llama 3 405B, 16,384 H100, s=8192: TFLOP/s per GPU", 400, "TFLOP/s",
        "Dubey et al. 2024 (Llama 3 paper), Table 4 (41 % BF16 MFU)",
        lambda: default_mfu("hopper", LLAMA31_405B.active_params)[0] * gpu("H100-SXM").bf16_tflops,
        reason="Table 4 is steady-state step throughput; the default comes from whole-run GPU-hours, which "
               "also pay for 466 job interruptions and restarts (Llama 3 paper §3.3.4)",
        baseline=lambda: 0.45 * gpu("H100-SXM").bf16_tflops),
    # --- fine-tuning throughput (LLaMA-Factory wiki) ---
    Row("fine-tuning time", f"{LF_SETUP}, 16-bit LoRA, HF (sdpa), A100: tokens/s/GPU", 2_392, "tok/s/GPU", LF,
        lambda: train_tokens_per_s(arch("meta-llama/Llama-2-7b-hf"), "A100-80GB", "lora", 1024, 4, True),
        baseline=lambda: old_train_tokens_per_s(arch("meta-llama/Llama-2-7b-hf"), "A100-80GB", "lora", 1024, 4,
                                                True)),
    Row("fine-tuning time", f"{LF_SETUP}, QLoRA 4-bit, HF, A100: tokens/s/GPU", 2_415, "tok/s/GPU", LF,
        lambda: train_tokens_per_s(arch("meta-llama/Llama-2-7b-hf"), "A100-80GB", "qlora", 1024, 4, True),
        reason="the LoRA MFU factor (0.78 of full) is an assumption",
        baseline=lambda: old_train_tokens_per_s(arch("meta-llama/Llama-2-7b-hf"), "A100-80GB", "qlora", 1024, 4,
                                                True)),
    *[Row("fine-tuning time", f"{LF_LONG}, length {s:,}: tokens/s/GPU", tgs, "tok/s/GPU", LF,
          (lambda s=s: train_tokens_per_s(arch("meta-llama/Llama-2-7b-hf"), "A100-40GB", "qlora", s, 1, True)),
          reason="the published tokens/s rises with length (2,295 at 1k to 3,542 at 16k) where one utilisation "
                 "for every length makes it fall: short rows pay per-step costs (Python, kernel launches), long "
                 "rows' large matmuls run nearer peak than the whole-run pretraining anchors",
          baseline=(lambda s=s: old_train_tokens_per_s(arch("meta-llama/Llama-2-7b-hf"), "A100-40GB", "qlora", s, 1,
                                                       True)))
      for s, tgs in LF_LONG_TABLE],
    # --- memory: ZeRO paper ---
    *[Row("memory", f"ZeRO Table 1: 7.5B params, mixed-precision Adam, 64 GPUs, {name}", gb, "GB",
          "Rajbhandari et al. 2020 (ZeRO), Table 1",
          (lambda z=z: sum(model_state_bytes(7.5e9, "mixed", "adamw", z, 64)) / GB),
          baseline=(lambda z=z: (16 * 7.5e9 if z == 0 else 2 * 7.5e9 + 2 * 7.5e9 + 12 * 7.5e9 / 64 if z == 1
                                 else 4 * 7.5e9 + 16 * 7.5e9 / 64 if z == 2 else 18 * 7.5e9 / 64) / GB))
      for z, name, gb in ((0, "baseline DP", 120), (1, "P_os", 31.4), (2, "P_os+g", 16.6), (3, "P_os+g+p", 1.9))],
    # --- memory: fine-tuning peaks ---
    Row("memory", f"{LF_SETUP}, 16-bit LoRA, HF: peak VRAM", 18, "GB", LF,
        lambda: train_memory_gb(arch("meta-llama/Llama-2-7b-hf"), "lora", 1024, 4, True),
        baseline=lambda: old_train_memory_gb(arch("meta-llama/Llama-2-7b-hf"), "lora", 1024, 4, True)),
    Row("memory", f"{LF_SETUP}, QLoRA 4-bit, HF: peak VRAM", 9, "GB", LF,
        lambda: train_memory_gb(arch("meta-llama/Llama-2-7b-hf"), "qlora", 1024, 4, None),
        baseline=lambda: old_train_memory_gb(arch("meta-llama/Llama-2-7b-hf"), "qlora", 1024, 4, True)),
    *[Row("memory", f"{LF_LONG}, length {s:,}: peak VRAM", gb, "GB", LF,
          (lambda s=s: train_memory_gb(arch("meta-llama/Llama-2-7b-hf"), "qlora", s, 1, None)),
          reason="the published VRAM is what the GPU reported (allocator reserve included), in whole GB",
          baseline=(lambda s=s: old_train_memory_gb(arch("meta-llama/Llama-2-7b-hf"), "qlora", s, 1, None)))
      for s, gb in ((1024, 6), (2048, 7), (4096, 9), (8192, 12), (16384, 19), (32768, 32))],
    Row("memory", "QLoRA 4-bit, LLaMA 65B (README requirement table; batch 1, length 512 assumed)", 48, "GB",
        "LLaMA-Factory README, hardware requirement table; QLoRA paper: 65B on one 48 GB GPU",
        lambda: train_memory_gb(LLAMA1["65B"], "qlora", 512, 1, None),
        baseline=lambda: old_train_memory_gb(LLAMA1["65B"], "qlora", 512, 1, None)),
    Row("memory", "QLoRA 4-bit, 7B (README requirement table; batch 1, length 512 assumed)", 6, "GB",
        "LLaMA-Factory README, hardware requirement table",
        lambda: train_memory_gb(arch("meta-llama/Llama-2-7b-hf"), "qlora", 512, 1, None),
        baseline=lambda: old_train_memory_gb(arch("meta-llama/Llama-2-7b-hf"), "qlora", 512, 1, None)),
    Row("memory", "LoRA 16-bit, 7B (README requirement table; batch 1, length 512, checkpointing assumed)", 16, "GB",
        "LLaMA-Factory README, hardware requirement table",
        lambda: train_memory_gb(arch("meta-llama/Llama-2-7b-hf"), "lora", 512, 1, True),
        baseline=lambda: old_train_memory_gb(arch("meta-llama/Llama-2-7b-hf"), "lora", 512, 1, True)),
    Row("memory", "Unsloth QLoRA 4-bit, Llama 3 70B: minimum VRAM (batch 1, length 512 assumed)", 41, "GB",
        "Unsloth docs, 'Unsloth Requirements' fine-tuning VRAM table",
        lambda: train_memory_gb(LLAMA3_70B, "qlora", 512, 1, None),
        reason="Unsloth keeps embeddings and head in 16 bits and offloads checkpointed activations to CPU; "
               "peft casts them to fp32 (8.4 GB at 70B with a 128k vocabulary)",
        baseline=lambda: old_train_memory_gb(LLAMA3_70B, "qlora", 512, 1, None)),
    Row("memory", "Unsloth QLoRA 4-bit, Llama 3 8B: minimum VRAM (batch 1, length 512 assumed)", 6, "GB",
        "Unsloth docs, 'Unsloth Requirements' fine-tuning VRAM table",
        lambda: train_memory_gb(arch("meta-llama/Meta-Llama-3-8B"), "qlora", 512, 1, None),
        reason="Unsloth keeps embeddings and head in 16 bits and offloads checkpointed activations to CPU; "
               "peft casts them to fp32 (4.2 GB at 8B with a 128k vocabulary)",
        baseline=lambda: old_train_memory_gb(arch("meta-llama/Meta-Llama-3-8B"), "qlora", 512, 1, None)),
    # --- memory: the longest context Hugging Face + FlashAttention-2 QLoRA fits on a card (the whole column) ---
    *[Row("memory", f"HF + FlashAttention-2 QLoRA 4-bit, {name}, r=32 all linear, batch 1, rows padded to "
                    f"{s:,} tokens (the longest that fit a {gb} GB card, {gb} GiB): peak VRAM", gb * 2**30 / 1e9,
          "GB", UNSLOTH_CTX,
          (lambda a=a, s=s: train_memory_gb(a, "qlora", s, 1, None, rank=32, attention="flash_attention_2")),
          baseline=(lambda a=a, s=s: old_train_memory_gb(a, "qlora", s, 1, None, rank=32,
                                                         attention="flash_attention_2")))
      for name, a, gb, s in (("Llama 3.1 8B", arch("meta-llama/Llama-3.1-8B"), 12, 932),
                             ("Llama 3.1 8B", arch("meta-llama/Llama-3.1-8B"), 16, 2_551),
                             ("Llama 3.1 8B", arch("meta-llama/Llama-3.1-8B"), 24, 5_789),
                             ("Llama 3.1 8B", arch("meta-llama/Llama-3.1-8B"), 40, 12_264),
                             ("Llama 3.1 8B", arch("meta-llama/Llama-3.1-8B"), 48, 15_502),
                             ("Llama 3.1 8B", arch("meta-llama/Llama-3.1-8B"), 80, 28_454),
                             ("Llama 3.3 70B", LLAMA3_70B, 80, 6_916))],
    # --- serving: vLLM and llama.cpp ---
    Row("serving", "vLLM, Llama-3.1-8B bf16, 1x A100-40GB, 1024 in / 128 out, 1 request: decode tok/s", 75,
        "tok/s", "johnmusgrave.com, 'vLLM throughput-latency sweep on NVIDIA A100' (vLLM 0.23)",
        lambda: decode_tps(arch("meta-llama/Llama-3.1-8B"), "A100-40GB", 1, 1088),
        fitted="HBM decode_bandwidth_efficiency",
        baseline=lambda: old_decode_b1(arch("meta-llama/Llama-3.1-8B"), "A100-40GB")),
    Row("serving", "vLLM, same setup: output throughput at 8 concurrent / at 1", 6.6, "x",
        "johnmusgrave.com, 'vLLM throughput-latency sweep on NVIDIA A100' (vLLM 0.23)",
        lambda: serve_throughput(arch("meta-llama/Llama-3.1-8B"), "A100-40GB", 8, 1024, 128)
        / serve_throughput(arch("meta-llama/Llama-3.1-8B"), "A100-40GB", 1, 1024, 128),
        reason="the concurrency-1 run's 1,024-token prefills are a larger share of its time than modelled"),
    Row("serving", "vLLM, Llama-3.1-8B bf16, 1x A40, 100 in / 600 out, 50 concurrent: median time per output "
        "token", 35.96, "ms", "databasemart.com, 'A40 vLLM Benchmark: 7B to 14B LLMs' (50 concurrent requests)",
        lambda: 1e3 * decode_step_seconds(arch("meta-llama/Llama-3.1-8B"), gpu("A40"), 50, 400),
        reason="the A40's bandwidth efficiency is the A100's (assumed); the median TPOT also carries the "
               "prefills interleaved with decode steps",
        baseline=lambda: 1e3 * (arch("meta-llama/Llama-3.1-8B").active_params * 2) / (696e9 * 0.7)),
    Row("serving", "vLLM, Qwen3-8B bf16, 1x RTX 4090, 1 request: decode tok/s", 58.7, "tok/s",
        "AlexsJones/llmfit PR #1046 (community benchmark, vLLM)",
        lambda: decode_tps(arch("Qwen/Qwen3-8B"), "RTX-4090", 1, 300),
        reason="the RTX 4090's bandwidth efficiency is the A100's (assumed); this run reached 0.88 of its "
               "1,008 GB/s",
        baseline=lambda: old_decode_b1(arch("Qwen/Qwen3-8B"), "RTX-4090")),
    Row("serving", "llama.cpp, Qwen2.5-3B Q4_0 (4.5 bits/weight), RTX 4090, tg128: decode tok/s", 236.06, "tok/s",
        "ggml-org/llama.cpp PR #12183 (llama-bench on an RTX 4090, fa=0)",
        lambda: decode_tps(QWEN25_3B, "RTX-4090", 1, 64, 4.5), fitted="QUANT_KERNEL_EFF (int4)",
        baseline=lambda: old_decode_b1(QWEN25_3B, "RTX-4090", 4.5)),
    Row("serving", "llama.cpp, Llama 3 8B Q6_K (6.56 bits/weight), RTX 4090: generation tok/s", 93, "tok/s",
        "dmatora/LLM-inference-speed-benchmarks issue #10 (llama.cpp server, RTX 4090)",
        lambda: decode_tps(arch("meta-llama/Meta-Llama-3-8B"), "RTX-4090", 1, 256, 6.56),
        baseline=lambda: old_decode_b1(arch("meta-llama/Meta-Llama-3-8B"), "RTX-4090", 6.56)),
    Row("serving", "ExLlama, Llama 2 7B GPTQ 4-bit (~4.15 bits/weight), RTX 4090: decode tok/s", 152.56, "tok/s",
        "mlc-ai/llm-perf-bench PR #1 (RTX 4090, CUDA 11.8)",
        lambda: decode_tps(arch("meta-llama/Llama-2-7b-hf"), "RTX-4090", 1, 256, 4.15),
        reason="ExLlama's fused 4-bit kernels reach more of the bandwidth than llama.cpp's, where the int4 "
               "kernel factor was fitted",
        baseline=lambda: old_decode_b1(arch("meta-llama/Llama-2-7b-hf"), "RTX-4090", 4.15)),
    Row("serving", "MLC LLM, Llama 2 7B q4f16 (~4.5 bits/weight), RTX 4090: decode tok/s", 191.0, "tok/s",
        "mlc-ai/llm-perf-bench PR #1 (RTX 4090, CUDA 11.8)",
        lambda: decode_tps(arch("meta-llama/Llama-2-7b-hf"), "RTX-4090", 1, 256, 4.5),
        reason="MLC's compiled 4-bit kernels reach more of the bandwidth than llama.cpp's, where the int4 "
               "kernel factor was fitted",
        baseline=lambda: old_decode_b1(arch("meta-llama/Llama-2-7b-hf"), "RTX-4090", 4.5)),
    Row("serving", "llama.cpp, Qwen2.5-3B Q4_0, RTX 4090, pp512: prefill tok/s", 18_155, "tok/s",
        "ggml-org/llama.cpp PR #12183 (llama-bench on an RTX 4090, fa=0)",
        lambda: gpu("RTX-4090").bf16_tflops * 1e12 * PREFILL_MFU / inference_flops_per_token(QWEN25_3B, 256),
        reason="llama.cpp multiplies Q4_0 weights on int8 tensor cores (MMQ), whose peak is 2x the fp16 "
               "peak the estimate uses",
        baseline=lambda: gpu("RTX-4090").bf16_tflops * 1e12 * 0.5 / (2 * QWEN25_3B.active_params)),
]


def evaluate() -> list[Row]:
    for r in ROWS:
        r.value = r.estimate()
        r.base_value = r.baseline() if r.baseline else math.nan
    return ROWS


def counts(ratios) -> dict:
    """Within 25 % means 0.8 <= ratio <= 1.25 (symmetric in log terms); within 2x means 0.5 <= ratio <= 2."""
    rs = list(ratios)
    w25 = sum(1 for x in rs if 0.8 <= x <= 1.25)
    return {"rows": len(rs), "within_25pct": w25, "within_2x": sum(1 for x in rs if 0.5 <= x <= 2.0),
            "share_within_25pct": round(w25 / len(rs), 3)}


def summary(rows: list[Row]) -> dict:
    held = [r for r in rows if not r.fitted]
    return {"all": counts(r.ratio for r in rows), "held_out": counts(r.ratio for r in held),
            "baseline_all": counts(r.base_value / r.published for r in rows if r.baseline)}


def long_context_diagnosis() -> dict:
    """Why the LLaMA-Factory long-context QLoRA throughput rows miss: the utilisation each published figure
    implies (model FLOPs + recomputation per second / peak, less the modelled dequantisation), and the best
    least-squares fit of `step = FLOPs / (peak * u) + c` over 1k-16k - one utilisation plus a fixed per-step
    cost - to show whether such a model could explain them without a per-length fit."""
    from advisor.estimate import qlora_dequant_seconds, recompute_flops

    a, g = arch("meta-llama/Llama-2-7b-hf"), gpu("A100-40GB")
    peak = g.bf16_tflops * 1e12
    rows, xs, ys = [], [], []
    for s, tgs in LF_LONG_TABLE:
        setup = TrainSetup(method="qlora", tokens=s, seq_len=s, micro_batch=1, grad_checkpointing=True,
                           target_modules="all-linear", lora_rank=8)
        flops = training_flops(a, setup) + recompute_flops(a, setup)
        compute_s = s / tgs - qlora_dequant_seconds(a, g, setup)
        rows.append({"seq": s, "published_tok_s": tgs, "step_s": s / tgs, "implied_utilisation": flops / compute_s / peak})
        if s <= 16384:
            xs.append(flops / peak)
            ys.append(compute_s)
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return {"rows": rows, "fit_1k_16k": {"utilisation": 1 / slope, "per_step_s": my - slope * mx},
            "default_utilisation": default_mfu("ampere", a.active_params, "qlora")[0]}


PEFT_MMQA = ("huggingface/peft method_comparison/MetaMathQA/results/{}.json (Llama-3.2-3B, 1x L40S, bf16 weights, "
             "torch.optim.AdamW, batches of 4, no accumulation, 4,198,051 tokens in 20,000 rows)")
LLAMA32_3B = llama(3072, 28, 24, 8, 8192, 128256, tied=True)


def short_rows_peft() -> list[dict]:
    """peft's own method comparison: full fine-tuning and LoRA of Llama-3.2-3B on short rows (210 tokens on
    average), one optimizer step per batch of 4. Kept beside the table, not in it: its batches are padded to
    their longest row, and the published tokens/s counts real tokens only, so the setup cannot be expressed
    exactly (the padding, unknown, would lower the estimate). It is what the optimizer-update time is checked
    against: without it the full fine-tuning estimate is 3.4x too fast."""
    from advisor.estimate import optimizer_update_seconds

    out = []
    for name, method, targets, rank, published in (
            ("full-finetuning--llama-3.2-3B-lr_0.00001", "full", None, 16, 2_310),
            ("lora--llama-3.2-3B-rank32", "lora", ["q_proj", "v_proj"], 32, 6_780)):
        kw = {"target_modules": targets} if targets else {}
        setup = TrainSetup(method=method, tokens=4_198_051, seq_len=210, micro_batch=4, precision="bf16",
                           grad_checkpointing=False, lora_rank=rank, **kw)
        est = estimate_training(LLAMA32_3B, gpu("L40S"), setup)
        secs = est.hours * 3600
        update = optimizer_update_seconds(LLAMA32_3B, gpu("L40S"), setup)
        out.append({"run": name, "source": PEFT_MMQA.format(name), "published_tok_s": published,
                    "estimate_tok_s": setup.tokens / secs, "ratio": setup.tokens / secs / published,
                    "ratio_without_update": setup.tokens / (secs - update) / published,
                    "update_share": update / secs})
    return out


ULT = ("ljm565/universal-llm-trainer README, 'GPU memory and training speed' (one author; transformers 4.49, "
       "torch 2.5.1, 1x H100, batch 2, 8,192-token rows, gradient checkpointing, AdamW, bf16)")


def h100_hf_single_author() -> list[dict]:
    """The only single-node H100 Hugging Face training figures found (a blind review's search): Llama-3.1-8B full,
    LoRA and QLoRA (r=8, all linear layers) at 8,192-token rows. Beside the table, not in it: one author's README,
    each figure one run, and 'sec/step' had to be read as per micro-batch (per optimizer step it would exceed the
    card's peak). QLoRA's row checks the fp32 math-kernel attention time; before it the estimate was 3.9x."""
    out = []
    a = arch("meta-llama/Llama-3.1-8B")
    for name, kw, tok_s, gib in (
            ("full", {"method": "full", "precision": "bf16"}, 16_384 / 4.7, 78),
            ("lora", {"method": "lora", "precision": "bf16", "grad_accum": 32}, 16_384 / 6.4, 36),
            ("qlora", {"method": "qlora", "optimizer": "adamw", "grad_accum": 32}, 16_384 / 26.1, 48)):
        setup = TrainSetup(tokens=1e9, seq_len=8192, micro_batch=2, grad_checkpointing=True, lora_rank=8,
                           target_modules="all-linear", **kw)
        est = estimate_training(a, gpu("H100-SXM"), setup)
        out.append({"run": name, "source": ULT, "published_tok_s": tok_s, "estimate_tok_s": 1e9 / (est.hours * 3600),
                    "ratio": 1e9 / (est.hours * 3600) / tok_s, "published_peak_gib": gib,
                    "estimate_peak_gib": est.memory.total / 2**30,
                    "memory_ratio": est.memory.total / 2**30 / gib, "fits": est.fits})
    return out


def blind_check_2() -> list[dict]:
    """The second blind check (bench/published_blind2.py): 27 figures a reviewer collected by a fixed rule, run
    through the CLI exactly as a user would type them (`tunepath estimate ... --json`). Reported apart from the
    table: nothing in the estimator was fitted or changed for them."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from published_blind2 import ROWS as BLIND, reason

    return run_cli_rows(BLIND, lambda row: reason(row["setup"]))


def third_check() -> list[dict]:
    """The third check (bench/published_check3.py): every single-GPU Hugging Face baseline row of IBM
    fms-acceleration's A100-80GB reference benchmark (time and max_memory_allocated) and every LoRA row of LitGPT's
    resource tables (time per micro-batch, where the host's dispatch sets the time), through the CLI."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from published_check3 import ROWS as THIRD, reason

    return run_cli_rows(THIRD, reason)


def run_cli_rows(rows: list[dict], reason: Callable[[dict], str]) -> list[dict]:
    """Each row through `tunepath estimate ... --json` exactly as a user would type it; the row's metric read from
    the JSON. A row's "{config}" argument is its published config.json, written to a temporary file."""
    import json
    import tempfile

    from typer.testing import CliRunner

    from advisor.estimate import CUDA_OVERHEAD_GB
    from tunepath.cli import app

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            args = list(row["args"])
            if "config" in row:
                cfg = Path(tmp) / f"{len(out)}.json"
                cfg.write_text(json.dumps(row["config"]))
                args = [str(cfg) if a == "{config}" else a for a in args]
            res = CliRunner().invoke(app, ["estimate", *args, "--json"])
            if res.exit_code != 0:
                raise RuntimeError(f"estimate {' '.join(args)}: {res.output}")
            j = json.loads(res.stdout)
            m = row["metric"]
            value = {"gpu_hours": lambda: j["gpu_hours"],
                     "tflops_per_gpu": lambda: j["flops"] / (j["gpu_hours"] * 3600) / 1e12,
                     "tok_s_per_gpu": lambda: j["tokens"] / (j["gpu_hours"] * 3600),
                     "memory_gb": lambda: j["memory_gb"]["total"],
                     "decode_step_ms": lambda: 1000 * float(args[args.index("--concurrency") + 1])
                     / j["decode_tokens_per_s"],
                     "serve_out_tok_s": lambda: float(args[args.index("--output-tokens") + 1]) * j["gpus_per_replica"]
                     / j["gpu_seconds_per_request"],
                     # torch.cuda.max_memory_allocated counts no CUDA context or library workspaces
                     "max_allocated_gb": lambda: j["memory_gb"]["total"] - CUDA_OVERHEAD_GB,
                     "ms_per_micro_batch": lambda: 1000 * j["hours"] * 3600
                     / (j["tokens"] / (j["seq_len"] * j["micro_batch"]))}[m]()
            command = "tunepath estimate " + " ".join("<config.json>" if a.startswith(tmp) else a for a in args)
            out.append({"group": row["group"], "setup": row["setup"], "published": row["published"],
                        "unit": row["unit"], "source": row["source"], "note": row.get("note", ""), "command": command,
                        "estimate": value, "ratio": value / row["published"], "reason": reason(row),
                        "fitted": row.get("fitted", "")})
    return out


def blind_summary(rows: list[dict]) -> dict:
    groups = sorted({r["group"] for r in rows})
    return {**counts(r["ratio"] for r in rows),
            "by_group": {g: counts(r["ratio"] for r in rows if r["group"] == g) for g in groups}}


def main() -> None:
    rows = evaluate()
    print(f"{'group':10} {'setup':96} {'published':>12} {'estimate':>12} {'ratio':>6} {'v1':>6}  source")
    for r in rows:
        mark = " [fitted]" if r.fitted else ""
        flag = "" if 0.8 <= r.ratio <= 1.25 else "  <- outside 25 %: " + (r.reason or "NO REASON")
        print(f"{r.group:10} {r.setup[:96]:96} {r.published:>12,.4g} {r.value:>12,.4g} {r.ratio:>6.2f} "
              f"{r.base_value / r.published:>6.2f}  {r.source}{mark}{flag}")
    d = long_context_diagnosis()
    print("LLaMA-Factory long-context QLoRA, implied utilisation by length: "
          + ", ".join(f"{r['seq']:,}: {r['implied_utilisation']:.2f}" for r in d["rows"])
          + f" (default {d['default_utilisation']:.2f}); one utilisation + a per-step cost, fitted to 1k-16k: "
          f"{d['fit_1k_16k']['utilisation']:.2f} and {d['fit_1k_16k']['per_step_s']:.2f} s a step")
    for r in short_rows_peft():
        print(f"beside the table: {r['run']}: published {r['published_tok_s']:,} tok/s, estimate "
              f"{r['estimate_tok_s']:,.0f} ({r['ratio']:.2f}; {r['ratio_without_update']:.2f} without the optimizer "
              f"update, {r['update_share']:.0%} of the time)")
    for r in h100_hf_single_author():
        print(f"beside the table: H100 {r['run']} (single-author README): published {r['published_tok_s']:,.0f} tok/s, "
              f"estimate {r['estimate_tok_s']:,.0f} ({r['ratio']:.2f}); peak {r['published_peak_gib']} GiB, estimate "
              f"{r['estimate_peak_gib']:.1f} ({r['memory_ratio']:.2f}{'' if r['fits'] else ', estimated not to fit'})")
    blind = blind_check_2()
    for r in blind:
        flag = "" if 0.8 <= r["ratio"] <= 1.25 else "  <- outside 25 %: " + (r["reason"] or "NO REASON")
        print(f"blind check 2: {r['group']:10} {r['setup'][:90]:90} {r['published']:>10,.4g} {r['estimate']:>10,.4g} "
              f"{r['ratio']:>6.2f}{flag}")
    bs = blind_summary(blind)
    print(f"blind check 2: {bs['within_25pct']}/{bs['rows']} within 25 % ({bs['share_within_25pct']:.0%}), "
          f"{bs['within_2x']}/{bs['rows']} within 2x")
    third = third_check()
    for r in third:
        flag = "  [fitted]" if r["fitted"] else ("" if 0.8 <= r["ratio"] <= 1.25 else
                                                 "  <- outside 25 %: " + (r["reason"] or "NO REASON"))
        print(f"third check: {r['group']:10} {r['setup'][:90]:90} {r['published']:>10,.4g} {r['estimate']:>10,.4g} "
              f"{r['ratio']:>6.2f}{flag}")
    ts = blind_summary([r for r in third if not r["fitted"]])
    print(f"third check (held out): {ts['within_25pct']}/{ts['rows']} within 25 % ({ts['share_within_25pct']:.0%}), "
          f"{ts['within_2x']}/{ts['rows']} within 2x")
    s = summary(rows)
    for k, v in s.items():
        print(f"{k}: {v['within_25pct']}/{v['rows']} within 25 % ({v['share_within_25pct']:.0%}), "
              f"{v['within_2x']}/{v['rows']} within 2x")
    if "--no-record" in sys.argv:
        return
    from bench.results import record

    record("estimator_published", baseline="the v1 estimator (one MFU 0.45/0.35/0.25 for every GPU, DeepSpeed "
                                           "ZeRO formulas, no QLoRA checkpointing default, bandwidth 0.7 with "
                                           "the input embedding streamed), same rows",
           target=">= 90 % of rows within 25 %, every row within 2x",
           figures={"rows": [{"group": r.group, "setup": r.setup, "published": r.published, "unit": r.unit,
                              "source": r.source, "estimate": r.value, "ratio": r.ratio, "v1_estimate": r.base_value,
                              "v1_ratio": r.base_value / r.published, "fitted": r.fitted, "reason": r.reason}
                             for r in rows], "summary": s, "long_context_qlora": long_context_diagnosis(),
                    "short_rows_peft": short_rows_peft(), "h100_hf_single_author": h100_hf_single_author(),
                    "blind_check_2": {"rows": blind, "summary": bs}, "third_check": {"rows": third, "summary": ts}},
           ratios={"held_out_share_within_25pct": s["held_out"]["share_within_25pct"],
                   "blind_check_2_share_within_25pct": bs["share_within_25pct"],
                   "third_check_share_within_25pct": ts["share_within_25pct"],
                   "v1_share_within_25pct": s["baseline_all"]["share_within_25pct"]},
           notes="ratio = estimate / published; 'fitted' rows set a default and validate nothing")


def _groups_within_25(summary: dict) -> str:
    """'memory 12/15, pretraining time 3/9, ...': rows within 25 % per group of a check's summary."""
    return ", ".join(f"{g} {v['within_25pct']}/{v['rows']}" for g, v in summary["by_group"].items())


def blind_check_lines(blind: dict | None) -> list[str]:
    """The second blind check's section of docs/validation.md."""
    if not blind:
        return []
    bs = blind["summary"]
    groups = _groups_within_25(bs)
    lines = [
        "## Second blind check (beside the table)",
        "",
        f"{bs['rows']} published figures that a reviewer who had not worked on the estimator collected by a rule fixed "
        "before running anything (bench/published_blind2.py: every figure found in scope and clearly stated; for "
        "litgpt's table every single-GPU row of a catalog model, so memory is over-represented). Each ran through "
        "`tunepath estimate ... --json` as written below; nothing was fitted or changed for them afterwards. "
        f"**{bs['within_25pct']}/{bs['rows']} ({bs['share_within_25pct']:.0%}) within 25 %, {bs['within_2x']}/"
        f"{bs['rows']} within 2x** (by group, within 25 %: {groups}). This is the estimator's out-of-sample "
        "accuracy on figures nobody tuned it against: whole-run pretraining efficiency scatters from MFU 0.30 to "
        "0.66 between published runs on the same GPU, fine-tuning memory is estimated for the peft stack tunepath "
        "trains with (other stacks use less), and serving on an H100 lacks a fixed per-step engine cost.",
        "",
    ]

    def note(r: dict) -> str:
        if 0.8 <= r["ratio"] <= 1.25:
            return r["note"]
        return f"outside 25 %: {r['reason']}; {r['note']}" if r["note"] else f"outside 25 %: {r['reason']}"

    return lines + cli_rows_table(blind["rows"], note)


def cli_rows_table(rows: list[dict], note: Callable[[dict], str]) -> list[str]:
    """The markdown table of rows run through the CLI (run_cli_rows), each with its command and a note."""
    lines = ["| # | what | setup | published | estimate | ratio | command | source | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rows, 1):
        lines.append(f"| {i} | {r['group']} | {r['setup']} | {r['published']:,.4g} {r['unit']} | {r['estimate']:,.4g} | "
                     f"{r['ratio']:.3f} | `{r['command']}` | {r['source']} | {note(r)} |")
    return lines + [""]


def third_check_lines(third: dict | None) -> list[str]:
    """The third check's section of docs/validation.md."""
    if not third:
        return []
    ts = third["summary"]
    groups = _groups_within_25(ts)
    lines = [
        "## Third check: fms-acceleration and LitGPT, whole tables (beside the table)",
        "",
        "Two published sets of one-GPU fine-tuning figures, taken whole by the rule in bench/published_check3.py: every",
        "single-GPU Hugging Face baseline row of IBM fms-acceleration's A100-80GB reference benchmark (tokens/s and",
        "torch.cuda.max_memory_allocated; the estimate less its 1 GB for the CUDA context), and every unquantised and",
        "bnb.nf4 LoRA row of LitGPT's resource tables (time per micro-batch of ~110-token rows; not the bnb.nf4-dq rows). The LitGPT Llama 2 7B row at micro-batch 1",
        "set the host-dispatch floor (advisor/estimate.py `HOST_SECONDS_PER_OP`, times the ops each layer issues,",
        "counted by bench/host_ops.py) and counts nowhere; without the floor those rows were priced at the GPU's",
        "few milliseconds of matmuls per micro-batch, whatever the number of layers. The mechanism itself (a time",
        "nearly flat in the micro-batch) was read off this same LitGPT table, so its other rows check the op counts",
        "across models and the per-op time, not a blind prediction.",
        f"**Held out: {ts['within_25pct']}/{ts['rows']} ({ts['share_within_25pct']:.0%}) within 25 %, {ts['within_2x']}/"
        f"{ts['rows']} within 2x** (by group, within 25 %: {groups}). Memory holds on a 2025 Hugging Face stack;",
        "fine-tuning time on large packed micro-batches is pessimistic: that stack's step throughput is above the",
        "whole-run MFU anchors the estimate uses, and no default was refitted to these rows.",
        "",
    ]
    return lines + cli_rows_table(third["rows"], lambda r: "**fitted**: HOST_SECONDS_PER_OP" if r["fitted"] else (
        "" if 0.8 <= r["ratio"] <= 1.25 else f"outside 25 %: {r['reason']}"))


def write_docs(path: Path = Path(__file__).resolve().parents[1] / "docs" / "validation.md") -> None:
    """docs/validation.md from the recorded results (bench/results/estimator_published.json and
    estimator_accuracy.json): every number there comes from those files."""
    import json

    res = Path(__file__).resolve().parent / "results"
    pub = json.loads((res / "estimator_published.json").read_text())
    acc = json.loads((res / "estimator_accuracy.json").read_text())
    gpu = res / "gpu_checks.json"
    s = pub["figures"]["summary"]
    lcq = pub["figures"]["long_context_qlora"]
    lines = [
        "# Validation of the estimator",
        "",
        "Generated by `python bench/estimator_published.py --docs` from `bench/results/estimator_published.json`",
        f"(run {pub['date']}, commit {pub['commit']}) and `bench/results/estimator_accuracy.json` (run {acc['date']},",
        f"commit {acc['commit']}, {acc['cpu']}). Ratio = estimate / published. Rows marked **fitted** set a default",
        "(advisor/estimate.py `MFU_ANCHORS`, `DECODE_BANDWIDTH_EFF`, `QUANT_KERNEL_EFF`) and validate nothing;",
        "every other row is held out. The tests assert held-out rows only (tests/test_estimator.py).",
        "",
        "## Summary",
        "",
        "| rows | within 25 % | within 2x |",
        "|---|---|---|",
        f"| all {s['all']['rows']} | {s['all']['within_25pct']} ({s['all']['share_within_25pct']:.0%}) | "
        f"{s['all']['within_2x']} |",
        f"| held out {s['held_out']['rows']} | {s['held_out']['within_25pct']} "
        f"({s['held_out']['share_within_25pct']:.0%}) | {s['held_out']['within_2x']} |",
        f"| v1 estimator, same rows ({s['baseline_all']['rows']} with a v1 equivalent) | "
        f"{s['baseline_all']['within_25pct']} ({s['baseline_all']['share_within_25pct']:.0%}) | "
        f"{s['baseline_all']['within_2x']} |",
        "",
        f"Target: {pub['target']}. "
        + ("Met." if s["all"]["share_within_25pct"] >= 0.9 and s["all"]["within_2x"] == s["all"]["rows"] else
           "The 25 % target is **not met**; every row is within 2x. Each row outside 25 % says why below."),
        "",
        "## Published figures",
        "",
        "| # | what | setup | published | estimate | ratio | v1 ratio | source | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(pub["figures"]["rows"], 1):
        note = f"**fitted**: {r['fitted']}" if r["fitted"] else ""
        if not 0.8 <= r["ratio"] <= 1.25:
            note = (note + "; " if note else "") + f"outside 25 %: {r['reason']}"
        v1 = f"{r['v1_ratio']:.2f}" if r["v1_ratio"] == r["v1_ratio"] else "-"
        lines.append(f"| {i} | {r['group']} | {r['setup']} | {r['published']:,.4g} {r['unit']} | "
                     f"{r['estimate']:,.4g} | {r['ratio']:.3f} | {v1} | {r['source']} | {note} |")
    lines += [
        "",
        "Known limits. The H100 MFU anchors (Llama 3 8B 0.167, 70B 0.296, 405B 0.359) are whole-run figures of jobs on",
        "thousands of GPUs and price pretraining only. Every other method on an H100 runs at step throughput: the A100",
        "default times 0.71, the median H100/A100 MFU of 20 matched MPT runs in MosaicML llm-foundry's benchmark tables",
        "(same code, model, length and GPU count), or the H100 whole-run anchor where that is higher. No single-node H100",
        "fine-tuning figure in the table checks it yet (`tunepath calibrate` or `--mfu` to use your own).",
        "QLoRA's throughput at long sequences is underestimated (rows with LLaMA-Factory's long-context table):",
        "the estimate matches at 1k tokens and is half the published figure at 16k. The utilisation each row",
        "implies (model FLOPs with recomputation, less the modelled dequantisation) rises with length: "
        + ", ".join(f"{r['seq']:,}: {r['implied_utilisation']:.2f}" for r in lcq["rows"])
        + f" (default {lcq['default_utilisation']:.2f}). One utilisation plus a fixed per-step cost, fitted to",
        f"1k-16k, needs {lcq['fit_1k_16k']['utilisation']:.2f} and {lcq['fit_1k_16k']['per_step_s']:.2f} s a step - "
        f"nearly all of the 1k row's {lcq['rows'][0]['step_s']:.2f} s - so no such simple mechanism explains the table, and nothing",
        "is fitted to it: the rows stay as a held-out miss. On CUDA, sdpa with fp32 inputs",
        "(QLoRA's residual stream) and grouped KV heads takes the math kernel, whose memory grows with the square",
        "of the length; `tunepath estimate` says so and prices `--attention flash_attention_2` beside it (the",
        "Hugging Face + FlashAttention-2 rows above are estimated that way). Ada, Turing and Blackwell GPUs",
        "borrow another generation's anchors, and GDDR GPUs the A100's bandwidth efficiency (assumed).",
        "",
        "Beside the table: peft's own method comparison (Llama-3.2-3B on one L40S, rows of 210 tokens on average,",
        "one optimizer step per batch of 4) - its batches are padded to their longest row while its tokens/s counts",
        "real tokens, so the setup cannot be expressed exactly. "
        + "; ".join(f"{r['run']}: published {r['published_tok_s']:,} tok/s, estimate {r['estimate_tok_s']:,.0f} "
                    f"(ratio {r['ratio']:.2f}; {r['ratio_without_update']:.2f} without the optimizer update)"
                    for r in pub["figures"].get("short_rows_peft", [])) + ".",
        "The bandwidth-bound optimizer update after each step is {:.0%} of the full fine-tuning estimate here;".format(
            next((r["update_share"] for r in pub["figures"].get("short_rows_peft", []) if r["run"].startswith("full")), 0)),
        "the rest of the gap is the padding and torch.optim.AdamW's default multi-pass (foreach) update, where the",
        "estimate assumes the fused kernel tunepath trains with. LoRA's micro-batches of 4 x 210 tokens are short",
        "enough that the host-dispatch floor (third check, below) sets its time; without it LoRA was 1.33x too fast.",
        "",
        "Also beside the table: the only single-node H100 Hugging Face training figures found, from one author's README",
        "(Llama-3.1-8B, batch 2, 8,192-token rows, checkpointing; 'sec/step' read as per micro-batch). "
        + "; ".join(f"{r['run']}: {r['published_tok_s']:,.0f} tok/s published, estimate ratio {r['ratio']:.2f}, peak "
                    f"memory ratio {r['memory_ratio']:.2f}" + ("" if r["fits"] else " (estimated not to fit the card)")
                    for r in pub["figures"].get("h100_hf_single_author", [])) + ".",
        "QLoRA there runs its attention on fp32 inputs, which the estimate now times on CUDA cores (it was 3.9x too",
        "fast). Its memory is 1.46x: with transformers 5 (tunepath's), fp32 sdpa with grouped KV heads and no padding",
        "mask takes the math kernel and keeps the s x s softmax; transformers 4.49, which that run used, repeated the",
        "KV heads first (enable_gqa came with huggingface/transformers PR #39412, July 2025), so the memory-efficient",
        "kernel (fp32-capable, no s x s buffer) served. LoRA is the largest",
        "miss: that run's LoRA reached 0.73 of its full fine-tuning's tokens/s, where the estimate's LoRA factor",
        "(0.78, assumed) gives about 1.0.",
        "",
        "Not in the table, on purpose: Llama 3.2 1B/3B (370k/460k H100-hours on 9T tokens) were trained with",
        "logit distillation from Llama 3.1 8B/70B, so the teachers' forward passes, which a fine-tuning estimate",
        "does not have, dominate their GPU-hours.",
        "",
        *blind_check_lines(pub["figures"].get("blind_check_2")),
        *third_check_lines(pub["figures"].get("third_check")),
        "## Peak memory against a measurement (CPU, tiny models)",
        "",
        "`bench/estimator_accuracy.py`: one optimizer step of two micro-batches after a warm-up step; measured =",
        "peak of live tensor bytes on torch's memory-profiler timeline (training/memprobe.py), which knows nothing",
        "of the formula. Baseline: accelerate's estimate-memory rule (4x the weights for Adam).",
        "",
        "| run | FLOPs error vs FlopCounterMode | estimate MB | measured peak MB | error | accelerate's rule |",
        "|---|---|---|---|---|---|",
    ]
    for r in acc["figures"]["runs"]:
        fe = f"{r['flops_err']:+.2%}" if r["flops_err"] is not None else "n/a (sdpa)"
        lines.append(f"| {r['run']} | {fe} | {r['mem_est'] / 1e6:,.1f} | {r['mem_peak_measured'] / 1e6:,.1f} | "
                     f"{r['mem_err']:+.1%} | {r['accelerate_err']:+.1%} |")
    lines += ["", f"Worst memory error {acc['figures']['worst_mem_err']:.1%} (target 10 %), worst FLOPs error "
                  f"{acc['figures']['worst_flops_err']:.2%} (target 3 %).", "", "## On a GPU", ""]
    if gpu.exists():
        g = json.loads(gpu.read_text())
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from gpu_checks import estimate_gb

        lines += [f"`bench/gpu_checks.py` on {g['device']} ({g['date']}, commit {g['commit']}; seq "
                  f"{g['figures']['rows'][0]['seq']}, micro-batch {g['figures']['rows'][0]['micro_batch']}, two "
                  "micro-batches per step). *Then*: the estimate of the code that ran; *now*: this commit's.", "",
                  "| model | method | checkpointing | max_memory_allocated GB | estimate then | error then | "
                  "estimate now | error now |", "|---|---|---|---|---|---|---|---|"]
        tq = next(r for r in g["figures"]["rows"] if "TinyLlama" in r["model"] and r["method"] == "qlora"
                  and r["grad_checkpointing"])
        tq_now = estimate_gb(tq["model"], tq["method"], tq["grad_checkpointing"], tq["seq"], tq["micro_batch"])
        for r in g["figures"]["rows"]:
            now = estimate_gb(r["model"], r["method"], r["grad_checkpointing"], r["seq"], r["micro_batch"])
            lines.append(f"| {r['model']} | {r['method']} | {r['grad_checkpointing']} | {r['measured_gb']:.2f} | "
                         f"{r['estimate_gb']:.2f} | {r['error']:+.1%} | {now:.2f} | "
                         f"{(now - r['measured_gb']) / r['measured_gb']:+.1%} |")
        lines += ["", "What the first GPU run taught the estimator (advisor/estimate.py, each from the library's source):",
                  "",
                  "- peft keeps adapters of a 16-bit model in fp32 (`autocast_adapter_dtype=True`) and each adapter "
                  "casts its input to its own dtype, so every adapted linear keeps a private fp32 copy of its input "
                  "(LoRA without checkpointing was 14-22 % under).",
                  "- `prepare_model_for_kbit_training` casts embeddings, norms and head to fp32, so QLoRA's whole "
                  "residual stream runs in fp32; on CUDA, fp32 sdpa with grouped KV heads takes the math kernel, "
                  "which keeps the fp32 softmax (QLoRA without checkpointing was 41-59 % under).",
                  "",
                  "The *now* column is therefore not independent evidence: those two mechanisms were found by reading "
                  "this table. Two rows stay outside 10 %: TinyLlama full fine-tuning with checkpointing (the bench "
                  "used torch's foreach AdamW, whose step allocates a temporary the size of the parameters; the "
                  "Trainer runs the fused AdamW the estimate assumes, and the bench now does too) and TinyLlama QLoRA "
                  f"with checkpointing. That row was {-tq['error']:.0%} under when measured; its peak is the "
                  "recomputed layer's backward, where the math kernel's s x s softmax gradient is alive. That "
                  "transient was then measured on CPU with eager attention (1.4-1.9 s x s fp32 tensors per head, now "
                  "in the estimate and in bench/estimator_accuracy.py's table), which takes the row to "
                  f"{(tq['measured_gb'] - tq_now) / tq['measured_gb']:.0%} under; the rest "
                  f"({tq['measured_gb'] - tq_now:.1f} GB) is unexplained, perhaps the math kernel's own masking "
                  "copies. The next GPU run of `bash bench/gpu_checks.sh memory` is the check of both."]
        from gpu_checks import estimate_step_s

        lines += ["", "The same run timed each step (two micro-batches of 2 x 1,024 tokens and one optimizer step; "
                  "single steps, so noisy). No number was fitted to these times, but they are not a blind check: the floor "
                  "first took a fixed time per layer, which left LoRA and QLoRA up to 2.6x under on these rows, and was then "
                  "rebuilt to count each adapter's ops. They check the host-dispatch floor "
                  "(advisor/estimate.py `HOST_SECONDS_PER_OP` x the ops each layer issues, bench/host_ops.py; the "
                  "time per op set on LitGPT's table, third check above) on a real GPU. *GPU work alone*: the "
                  "estimate without the floor.", "",
                  "| model | method | checkpointing | measured step s | estimate now | ratio | host-bound | "
                  "GPU work alone | ratio |", "|---|---|---|---|---|---|---|---|---|"]
        ratios, alone = [], []
        for r in g["figures"]["rows"]:
            args = (r["model"], r["method"], r["grad_checkpointing"], r["seq"], r["micro_batch"], r["gpu"])
            now, bound = estimate_step_s(*args)
            work, _ = estimate_step_s(*args, host_floor=False)
            ratios.append((r["method"], now / r["step_s"]))
            alone.append(work / r["step_s"])
            lines.append(f"| {r['model']} | {r['method']} | {r['grad_checkpointing']} | {r['step_s']:.3f} | {now:.3f} | "
                         f"{now / r['step_s']:.2f} | {'yes' if bound else 'no'} | {work:.3f} | {work / r['step_s']:.2f} |")
        every = [x for _, x in ratios]
        unq = [x for m, x in ratios if m != "qlora"]
        q = [x for m, x in ratios if m == "qlora"]
        lines += ["", f"Step time estimate / measured: {min(every):.2f}-{max(every):.2f} with the floor (full and LoRA "
                  f"{min(unq):.2f}-{max(unq):.2f}, QLoRA {min(q):.2f}-{max(q):.2f}), {min(alone):.2f}-{max(alone):.2f} "
                  "on the GPU's work alone. QLoRA runs longer than its ops say: bitsandbytes' 4-bit layers do Python "
                  "work per call beyond the aten ops counted on an unquantised model."]
    else:
        lines += ["Not run yet: no GPU was available when this page was generated. `bench/gpu_checks.py` is ready:",
                  "on a CUDA machine it builds Qwen2.5-0.5B and TinyLlama-1.1B (Llama) at random init from the",
                  "catalog's config.json (SmolLM-1.7B with `--large`), runs full fine-tuning, LoRA and QLoRA",
                  "(bitsandbytes NF4, prepare_model_for_kbit_training, paged AdamW), each with and without gradient",
                  "checkpointing, and compares the estimate with `torch.cuda.max_memory_allocated`, recording",
                  "`bench/results/gpu_checks.json` with the GPU's name; rerun `--docs` to add its table here."]
    lines += ["", "## Prices (advisor/data/gpus.yaml, api_prices.yaml)", "",
              "Quotes per provider class, each with the page it was read from and the date read. They were read",
              "from stored copies of the pages, some of them aggregators quoting the provider (named as such);",
              "rows without a quote say so. Costs use the GPU-cloud class unless a catalog file sets",
              "`price_class:`; a TUNEPATH_CATALOG file overrides any quote.", "",
              "| GPU | class | $/GPU-hour | source | read |", "|---|---|---|---|---|"]
    for g in catalog.gpus().values():
        if not g.prices:
            price = "-" if g.usd_per_hour is None else f"{g.usd_per_hour:.2f}"     # no quote found: no price
            lines.append(f"| {g.id} | - | {price} | {g.price_source} | - |")
        for c, q in g.prices.items():
            lines.append(f"| {g.id} | {catalog.PRICE_CLASS_LABELS[c]} | {q.usd_per_hour:.2f} | {q.source} | {q.date} |")
    api = catalog.api_prices()
    lines += ["", f"Hosted API ($/1M tokens, {api.source}):", "", "| ladder | up to | $/1M in | $/1M out | source |",
              "|---|---|---|---|---|"]
    lines += [f"| {name} | {t.max_params_b:g}B | {t.input_per_m:.2f} | {t.output_per_m:.2f} | {t.source} |"
              for name, tiers in (("dense", api.tiers), ("MoE (total params)", api.moe_tiers)) for t in tiers]
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


ACCURACY = Path(__file__).resolve().parents[1] / "advisor" / "data" / "estimate_accuracy.json"


def accuracy_by_group(pub: dict) -> dict:
    """How the estimator held against published figures nothing was fitted to - the table's held-out rows and the
    blind check - per kind of estimate: what `tunepath estimate` and the report quote beside an estimate."""
    rows = [r for r in pub["figures"]["rows"] if not r["fitted"]]
    rows += pub["figures"].get("blind_check_2", {}).get("rows", [])
    rows += [r for r in pub["figures"].get("third_check", {}).get("rows", []) if not r["fitted"]]
    out = {g: {k: v for k, v in counts(r["ratio"] for r in rows if r["group"] == g).items()
               if k != "share_within_25pct"} for g in sorted({r["group"] for r in rows})}
    return {"source": f"docs/validation.md (bench/estimator_published.py, run {pub['date']}, commit {pub['commit']}): "
                      "held-out rows of the published table, the blind check and the third check", "groups": out}


def write_accuracy(path: Path = ACCURACY) -> None:
    import json

    pub = json.loads((Path(__file__).resolve().parent / "results" / "estimator_published.json").read_text())
    path.write_text(json.dumps(accuracy_by_group(pub), indent=1, sort_keys=True) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    if "--docs" in sys.argv:
        write_docs()
        write_accuracy()
    else:
        main()
