"""Memory, FLOPs, time and dollars for training and serving a model (formulas and their sources: docs/method.md).

Pure functions over pydantic models; every formula names its source. Byte counts are in bytes,
reported in GB (1e9 bytes) to match GPU data sheets.
"""
from __future__ import annotations

import functools
import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from advisor.architecture import Architecture, Linear
from advisor.catalog import GPU
from advisor.errors import UserError

GB = 1e9

Method = Literal["full", "pretrain", "lora", "dora", "qlora", "ia3", "prompt_tuning", "prefix_tuning"]
ESTIMABLE_METHODS: tuple[str, ...] = get_args(Method)   # training/methods.py flags the others
Precision = Literal["mixed", "bf16", "fp32"]
# paged-*: bitsandbytes' paged optimizers (states page to CPU memory under pressure instead of OOM;
# the QLoRA paper's paged AdamW, Dettmers et al. 2023 §3). Same bytes as their unpaged versions.
Optimizer = Literal["adamw", "adamw-8bit", "paged-adamw", "paged-adamw-8bit", "sgd"]

# --- MFU defaults -----------------------------------------------------------------------------
# Model-FLOPs utilisation = model FLOPs / (GPU-seconds x dense peak), model FLOPs = 6*P_mm + 6*L*s*d
# per token (PaLM's definition, Chowdhery et al. 2022, App. B, with causal attention counted as the
# kernels compute it: half of the s x s product). Each anchor below is a published run's
# GPU-hours turned into MFU with exactly this formula (bench/estimator_published.py marks these rows
# "fitted"; every other row there is held out). Between anchors the default is interpolated in
# log(params); outside them it is held at the nearest anchor. The runs are whole pretraining jobs,
# so restarts, evaluation and input pipelines are included - what a budget pays for.
MFU_ANCHORS: dict[str, list[tuple[float, float, str]]] = {
    "ampere": [
        (6.738e9, 0.414, "Llama 2 7B: 184,320 A100-80GB GPU-hours for 2T tokens at s=4096 "
                         "(Touvron et al. 2023, Llama 2 paper, Table 2)"),
        (68.98e9, 0.443, "Llama 2 70B: 1,720,320 A100-80GB GPU-hours for 2T tokens at s=4096 "
                         "(Touvron et al. 2023, Table 2)"),
    ],
    "hopper": [
        (8.03e9, 0.167, "Llama 3 8B: 1.3M H100-80GB GPU-hours for 15T tokens at s=8192 "
                        "(Meta Llama 3 model card, 2024)"),
        (70.55e9, 0.296, "Llama 3 70B: 6.4M H100-80GB GPU-hours for 15T tokens at s=8192 "
                         "(Meta Llama 3 model card, 2024)"),
        (405.85e9, 0.359, "Llama 3.1 405B: 30.84M H100-80GB GPU-hours for 15.6T tokens at s=8192 "
                          "(Meta Llama 3.1 model card, 2024; tokens: Dubey et al. 2024, Llama 3 paper, §3)"),
    ],
}
# GPU generations without a published large training run borrow another generation's anchors (assumed).
# Volta (V100) trains in fp16 on first-generation tensor cores; no published large run on it is priced here, so it
# takes Ampere's (assumed: likely generous, as Turing's).
MFU_GENERATION_FALLBACK = {"ada": "ampere", "turing": "ampere", "volta": "ampere", "blackwell": "hopper"}

# Hopper's whole-run anchors price a pretraining budget on tens of thousands of GPUs; a fine-tuning job on
# one node runs at step throughput, where an H100 is not 0.167/0.414 of an A100's utilisation. The same code,
# model, length and GPU count on both cards: MosaicML llm-foundry's benchmark tables
# (scripts/train/benchmarking/README.md, "H100 80GB BF16" and "A100 80GB" MPT rows) give MFU pairs
# (model, row length, GPUs, H100 MFU, A100 MFU). Every method but pretraining on Hopper uses the Ampere
# anchors times the median H100/A100 ratio of these pairs (0.71: an H100 trains 0.71 x 989 / 312 = 2.2x an
# A100's tokens/s in bf16), or Hopper's whole-run anchor where that is higher (a whole run's MFU is a lower
# bound on its steps').
H100_A100_STEP_MFU: tuple[tuple[str, int, int, float, float], ...] = (
    ("1b", 512, 8, 0.4321, 0.6068), ("1b", 1024, 8, 0.4195, 0.6015), ("1b", 2048, 8, 0.4182, 0.5986),
    ("1b", 4096, 8, 0.4026, 0.5900), ("1b", 8192, 8, 0.3773, 0.5669), ("3b", 512, 8, 0.4632, 0.6371),
    ("3b", 1024, 8, 0.4620, 0.6273), ("3b", 4096, 8, 0.4231, 0.6053), ("7b", 1024, 8, 0.4283, 0.5801),
    ("7b", 2048, 8, 0.4644, 0.6423), ("7b", 4096, 8, 0.4042, 0.5484), ("7b", 8192, 8, 0.3714, 0.5447),
    ("13b", 1024, 8, 0.4427, 0.5948), ("13b", 2048, 8, 0.3979, 0.5957), ("13b", 4096, 8, 0.4160, 0.5762),
    ("30b", 1024, 8, 0.3876, 0.5582), ("30b", 2048, 8, 0.3811, 0.5530), ("30b", 4096, 8, 0.3586, 0.5137),
    ("70b", 2048, 32, 0.3615, 0.4856), ("70b", 2048, 64, 0.4257, 0.5333),
)
HOPPER_STEP_RATIO = statistics.median(h / a for *_, h, a in H100_A100_STEP_MFU)
_STEP_SOURCE = (f"x {HOPPER_STEP_RATIO:.2f}, the median H100/A100 MFU of {len(H100_A100_STEP_MFU)} matched MPT runs "
                "(MosaicML llm-foundry, scripts/train/benchmarking/README.md)")
# Adapter methods relative to full training on the same GPU (assumed, as v1's 0.35/0.30 of 0.45):
# frozen-weight backward passes and small adapter matmuls run less efficiently. QLoRA runs the same bf16
# matmuls as LoRA; its extra cost is the NF4 dequantisation, timed separately (qlora_dequant_seconds).
# `tunepath calibrate` measures your own; --mfu overrides.
METHOD_MFU_FACTOR = {"full": 1.0, "pretrain": 1.0, "lora": 0.78, "dora": 0.67, "qlora": 0.78, "ia3": 0.78,
                     "prompt_tuning": 0.78, "prefix_tuning": 0.78}
# Bytes moved per parameter each time bitsandbytes dequantises a 4-bit weight for a matmul: read NF4
# (4.127 bits) + write the bf16 copy (2 bytes).
QLORA_DEQUANT_BYTES = 4.127 / 8 + 2
PREFILL_MFU = 0.5          # assumed: large-batch prefill GEMMs reach about half of peak
# Fraction of peak bandwidth a 16-bit decode step reaches: fitted to vLLM's batch-1 decode of Llama-3.1-8B
# on an A100-40GB (75 tok/s, bench/estimator_published.py); GPUs without their own figure use it (assumed).
DECODE_BANDWIDTH_EFF = 0.73
# Weight-only quantised decode kernels dequantise as they read; the fraction of the 16-bit efficiency they
# reach, fitted to llama.cpp's Q4_0 decode on an RTX 4090 (bench/estimator_published.py).
QUANT_KERNEL_EFF = 0.69


def quant_kernel_eff(weight_bits: float) -> float:
    return 1.0 if weight_bits >= 16 else QUANT_KERNEL_EFF


MAX_NUM_SEQS = 256         # vLLM's default cap on sequences batched per step (--max-num-seqs)
# NF4 + double quantisation costs ~4.127 bits/param (Dettmers et al. 2023, QLoRA §3).
QLORA_BITS = 4.127
CUDA_OVERHEAD_GB = 1.0     # CUDA context + cuBLAS/cuDNN workspaces; 0 on CPU
# Where published runs sat at a card's limit (the longest rows that fit, bench/estimator_published.py), the
# estimate was 81-94 % of the card: above this share a plan may not fit (allocator fragmentation).
MEMORY_MARGIN = 0.8
# MFU_SOURCE: one line for reports (advisor/report.py shows it beside the assumptions).
MFU_SOURCE = ("per GPU generation and model size, interpolated between published runs: "
              + "; ".join(f"{gen}: " + ", ".join(f"{m:.3f} at {p / 1e9:.0f}B ({s.split(':')[0]})"
                                                   for p, m, s in rows) for gen, rows in MFU_ANCHORS.items())
              + f"; hopper, every method but pretraining: the higher of hopper's anchor and ampere's {_STEP_SOURCE}"
              + "; " + ", ".join(f"{g} uses {f}'s" for g, f in MFU_GENERATION_FALLBACK.items())
              + " (assumed); adapters x "
              + ", ".join(f"{k} {v}" for k, v in METHOD_MFU_FACTOR.items() if v != 1.0) + " (assumed)")


# How the estimator held against published figures nothing was fitted to, per kind of estimate: written by
# `python bench/estimator_published.py --docs` from bench/results/estimator_published.json (tests check they agree),
# quoted beside every estimate and in reports so that a reader knows how far to trust the number.
ACCURACY_FILE = Path(__file__).parent / "data" / "estimate_accuracy.json"


@functools.cache
def _accuracy() -> dict:
    return json.loads(ACCURACY_FILE.read_text(encoding="utf-8"))


def accuracy_source() -> str:
    return _accuracy()["source"]


def accuracy_sentence(kind: str) -> str:
    """One line for a kind of estimate ("pretraining time", "fine-tuning time", "memory", "serving")."""
    g = _accuracy()["groups"].get(kind)
    if not g:
        return ""
    return (f"{kind}: within 25 % for {g['within_25pct']} of {g['rows']} published figures nothing was fitted to, "
            f"within 2x for {g['within_2x']} (docs/validation.md)")


def _interpolate(rows: list[tuple[float, float, str]], params: float) -> tuple[float, str]:
    rows = sorted(rows)
    if params <= rows[0][0]:
        return rows[0][1], f"held at the {rows[0][0] / 1e9:.0f}B anchor"
    if params >= rows[-1][0]:
        return rows[-1][1], f"held at the {rows[-1][0] / 1e9:.0f}B anchor"
    for (p0, m0, _), (p1, m1, _) in zip(rows, rows[1:]):
        if p0 <= params <= p1:
            w = (math.log(params) - math.log(p0)) / (math.log(p1) - math.log(p0))
            return m0 + w * (m1 - m0), "interpolated in log(params)"
    raise AssertionError("unreachable")


def default_mfu(generation: str, params: float, method: str = "full") -> tuple[float, str]:
    """Default MFU for a GPU generation, model size and method, with the sentence saying where it came from.

    Pretraining is priced from whole-run anchors (what a pretraining budget paid, restarts included); every
    other method on Hopper from step throughput, the Ampere anchors x the matched H100/A100 ratio, because
    Hopper's only whole runs ran on tens of thousands of GPUs and a fine-tuning job does not."""
    gen = generation if generation in MFU_ANCHORS else MFU_GENERATION_FALLBACK.get(generation, "ampere")
    borrowed = "" if gen == generation else f" ({generation} has no published run: {gen}'s anchors, assumed)"
    rows = sorted(MFU_ANCHORS[gen])
    base, how = _interpolate(rows, params)
    how = f"{how} from {'; '.join(s for _, _, s in rows)}"
    if gen == "hopper" and method != "pretrain":
        # A job's step throughput is at least its whole run's (a whole run adds restarts to the steps).
        amp_rows = sorted(MFU_ANCHORS["ampere"])
        amp, amp_how = _interpolate(amp_rows, params)
        if amp * HOPPER_STEP_RATIO > base:
            base = amp * HOPPER_STEP_RATIO
            how = (f"step throughput: ampere's {amp:.3f} ({amp_how} from "
                   f"{'; '.join(s for _, _, s in amp_rows)}) {_STEP_SOURCE}, above hopper's whole-run anchors")
        else:
            how = f"{how} (hopper's whole runs, at or above ampere's x {HOPPER_STEP_RATIO:.2f} for this size)"
    factor = METHOD_MFU_FACTOR[method]
    src = (f"{gen}{borrowed}, {params / 1e9:.1f}B params: {base:.3f} {how}"
           + (f"; x {factor} for {method} (assumed)" if factor != 1.0 else ""))
    return base * factor, src


class TrainSetup(BaseModel):
    """Everything that changes a training estimate besides the model and GPU."""

    model_config = ConfigDict(extra="forbid")
    method: Method = "lora"
    tokens: float = Field(gt=0, allow_inf_nan=False, description="Training tokens (all epochs).")
    seq_len: int = Field(2048, gt=0)
    micro_batch: int = Field(1, gt=0)
    grad_accum: int = Field(1, gt=0, description="Micro-batches per optimizer step (gradient accumulation).")
    gpus: int = Field(1, gt=0)
    precision: Precision = "mixed"
    optimizer: Optimizer | None = Field(None, description="None: paged-adamw for qlora (as the QLoRA paper), "
                                                          "else adamw.")
    zero: Literal[0, 1, 2, 3] = 0
    grad_checkpointing: bool | None = Field(None, description="None: the method's default - on for qlora "
                                                              "(peft's prepare_model_for_kbit_training turns it "
                                                              "on), off otherwise.")
    attention: Literal["sdpa", "eager", "flash_attention_2"] = Field(
        "sdpa", description="sdpa (tunepath's default), eager, or flash_attention_2 (never the math path).")
    lora_rank: int = Field(16, gt=0)
    virtual_tokens: int = Field(20, gt=0, description="prompt_tuning / prefix_tuning: trained virtual tokens.")
    target_modules: list[str] | Literal["all-linear"] | None = ["q_proj", "v_proj"]
    mfu: float | None = Field(None, gt=0, le=1, allow_inf_nan=False, description="Override the default MFU.")
    device: Literal["cuda", "cpu"] = "cuda"

    @property
    def checkpointing(self) -> bool:
        return self.method == "qlora" if self.grad_checkpointing is None else self.grad_checkpointing

    @property
    def optim(self) -> str:
        return self.optimizer or ("paged-adamw" if self.method == "qlora" else "adamw")


@dataclass
class MemoryBreakdown:
    weights: float
    gradients: float
    optimizer: float
    activations: float
    overhead: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + self.overhead

    def as_gb(self) -> dict[str, float]:
        d = {k: round(v / GB, 3) for k, v in asdict(self).items()}
        d["total"] = round(self.total / GB, 3)
        return d


@dataclass
class TrainEstimate:
    method: Method
    total_params: int
    active_params: int
    trainable_params: int
    tokens: float
    flops: float
    memory: MemoryBreakdown
    memory_per_gpu_gb: float
    gpu_memory_gb: float
    fits: bool
    mfu: float
    mfu_source: str
    hours: float              # wall-clock
    gpu_hours: float
    cost_usd: float | None           # None: the GPU has no price in the catalog
    notes: list[str] = field(default_factory=list)
    grad_checkpointing: bool = False
    optimizer: str = "adamw"
    recompute_flops: float = 0.0
    seq_len: int = 0          # tokens per (packed) row the estimate assumed
    micro_batch: int = 1      # rows per GPU per forward pass
    optimizer_update_hours: float = 0.0   # of `hours`: the bandwidth-bound update after each step
    dequant_hours: float = 0.0            # of `hours`: QLoRA's NF4 dequantisation
    communication_hours: float = 0.0      # data-parallel traffic, overlapped with the compute
    host_bound: bool = False              # the host's dispatch, not the GPU, sets the time (host_seconds)
    accuracy: list[str] = field(default_factory=list)   # how such estimates held against published figures

    def to_dict(self) -> dict:
        return asdict(self)


# --- adapters ---------------------------------------------------------------------------------

def resolve_targets(arch: Architecture, targets: list[str] | str) -> list[str]:
    """`all-linear` = every targetable linear except the output head (peft's definition); None = peft's
    per-architecture default."""
    names = arch.linear_names()
    if targets is None:
        return list(LORA_DEFAULT_TARGETS.get(arch.model_type, []))
    if targets == "all-linear" or targets == ["all-linear"]:
        return names
    unknown = [t for t in targets if t not in names]
    if unknown:
        raise UserError(f"target module(s) {', '.join(unknown)} not in {arch.model_type}; "
                        f"its linear modules are: {', '.join(names)} (or all-linear)")
    return list(targets)


def lora_trainable(arch: Architecture, rank: int, targets: list[str] | str, dora: bool = False) -> int:
    """LoRA adds A (r x in) and B (out x r) per targeted module: r*(in+out) (Hu et al. 2021);
    DoRA adds a magnitude vector of `out` per module (Liu et al. 2024, peft's lora_magnitude_vector)."""
    chosen = set(resolve_targets(arch, targets))
    per_layer = 0
    for lin in arch.layer_linears:
        if lin.targetable and lin.name in chosen:
            per_layer += lin.count * (rank * (lin.in_features + lin.out_features) + (lin.out_features if dora else 0))
    return per_layer * arch.num_layers


# peft 0.21 TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING: what target_modules=None means
LORA_DEFAULT_TARGETS = {"llama": ["q_proj", "v_proj"], "mistral": ["q_proj", "v_proj"], "mixtral": ["q_proj", "v_proj"],
                        "qwen2": ["q_proj", "v_proj"], "qwen3": ["q_proj", "v_proj"], "gemma": ["q_proj", "v_proj"],
                        "gemma2": ["q_proj", "v_proj"], "phi": ["q_proj", "v_proj", "fc1", "fc2"],
                        "phi3": ["qkv_proj"], "gpt2": ["c_attn"], "gpt_neox": ["query_key_value"],
                        "falcon": ["query_key_value"]}


# peft 0.21 TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING / ..._FEEDFORWARD_MODULES_MAPPING
IA3_DEFAULT_TARGETS = {
    "llama": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "mistral": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
    "qwen2": (["q_proj", "v_proj", "down_proj"], ["down_proj"]),
    "qwen3": (["q_proj", "v_proj", "down_proj"], ["down_proj"]),
    "gemma": (["q_proj", "v_proj", "down_proj"], ["down_proj"]),
    "phi": (["q_proj", "v_proj", "fc2"], ["fc2"]),
    "gpt2": (["c_attn", "mlp.c_proj"], ["mlp.c_proj"]),
    "gpt_neox": (["query_key_value", "dense_4h_to_h"], ["dense_4h_to_h"]),
    "falcon": (["query_key_value", "dense_4h_to_h"], ["dense_4h_to_h"]),
}


def _matches(lin, target: str) -> bool:
    """peft matches target names as suffixes of the module path: `mlp.c_proj` or just `c_proj`."""
    scope, _, name = target.rpartition(".")
    return lin.name == name and (not scope or lin.scope == scope)


def ia3_modules(arch: Architecture, targets: list[str] | None = None,
                feedforward: list[str] | None = None) -> list[tuple[Linear, bool]]:
    """The layer linears (IA)^3 scales, each with whether it is a feed-forward module: the given targets, else
    peft's default for the model type."""
    if targets is None:
        if arch.model_type not in IA3_DEFAULT_TARGETS:
            raise UserError(f"IA3 has no default target modules for {arch.model_type}; give target_modules")
        targets, feedforward = IA3_DEFAULT_TARGETS[arch.model_type]
    resolve_targets(arch, [t.rpartition(".")[2] for t in targets])
    return [(lin, any(_matches(lin, f) for f in feedforward or [])) for lin in arch.layer_linears
            if lin.targetable and any(_matches(lin, t) for t in targets)]


def ia3_trainable(arch: Architecture, targets: list[str] | None = None, feedforward: list[str] | None = None) -> int:
    """(IA)^3 learns one scaling vector per targeted module: `out` features, or `in` for feed-forward
    modules, which scale their input (Liu et al. 2022; peft IA3Layer)."""
    return arch.num_layers * sum(lin.count * (lin.in_features if is_ff else lin.out_features)
                                 for lin, is_ff in ia3_modules(arch, targets, feedforward))


def prompt_tuning_trainable(arch: Architecture, num_virtual_tokens: int) -> int:
    """Prompt tuning learns `num_virtual_tokens` embeddings of width hidden_size (Lester et al. 2021)."""
    return num_virtual_tokens * arch.hidden_size


def prefix_tuning_trainable(arch: Architecture, num_virtual_tokens: int) -> int:
    """Prefix tuning learns a key and a value vector per virtual token in every layer (Li & Liang 2021); peft
    sizes them to the key/value width, kv_heads * head_dim, so GQA models train fewer."""
    return num_virtual_tokens * arch.num_layers * 2 * arch.num_kv_heads * arch.head_dim


def trainable_params(arch: Architecture, setup: TrainSetup) -> int:
    """Trainable parameters of each method, counted as peft builds them."""
    m = setup.method
    if m in ("full", "pretrain"):
        return arch.total_params
    if m == "ia3":
        return ia3_trainable(arch, setup.target_modules if isinstance(setup.target_modules, list) else None)
    if m == "prompt_tuning":
        return prompt_tuning_trainable(arch, setup.virtual_tokens)
    if m == "prefix_tuning":
        return prefix_tuning_trainable(arch, setup.virtual_tokens)
    return lora_trainable(arch, setup.lora_rank, setup.target_modules, dora=m == "dora")


# --- FLOPs ------------------------------------------------------------------------------------

def matmul_params(arch: Architecture) -> int:
    """Weights that take part in a matmul per token: all active linears plus the output head
    (also when tied). Embedding lookups, norms and biases cost no matmul FLOPs."""
    per_layer = sum((arch.experts_per_token if lin.expert else lin.count) * lin.in_features * lin.out_features
                    for lin in arch.layer_linears)
    return arch.num_layers * per_layer + arch.vocab_size * arch.hidden_size


_LAYER_INPUT_PROJECTIONS = {"q_proj", "k_proj", "v_proj", "qkv_proj", "c_attn", "query_key_value"}


def training_flops(arch: Architecture, setup: TrainSetup) -> float:
    """Training FLOPs for `setup.tokens` tokens.

    Full / pretraining: 6 * P_mm * T (Kaplan et al. 2020: forward 2, backward 4 per weight and
    token) + 12 * L * s * d_attn * T for the attention score and value matmuls when eager attention
    computes the full s x s product (FlopCounterMode matches this exactly); causal sdpa/FlashAttention
    kernels skip the masked upper triangle, so half of it (Dao 2023, FlashAttention-2 §3.1).
    Adapters (LoRA, DoRA, IA3, prefix tuning): frozen weights need no weight gradient -> 4 * P_mm * T,
    minus the input gradient of the first layer's projections (their input, the frozen embedding,
    needs none), plus 6 * T per adapter parameter. Prompt tuning trains the input itself, so that
    first gradient is needed. Virtual tokens (~20 per row) are not added to T.
    """
    T = setup.tokens
    P = matmul_params(arch)
    attn = attention_flops(arch, setup, passes=3)
    if setup.method in ("full", "pretrain"):
        return 6 * P * T + attn
    first = sum(lin.in_features * lin.out_features for lin in arch.layer_linears
                if lin.name in _LAYER_INPUT_PROJECTIONS)
    if setup.method == "prompt_tuning":
        first = 0
    return 4 * P * T - 2 * first * T + 6 * trainable_params(arch, setup) * T + attn


def attention_flops(arch: Architecture, setup: TrainSetup, passes: int = 3) -> float:
    """Score and value matmuls: 4*L*s*d_attn per token and pass (forward 1 pass, backward 2); half with causal
    kernels (sdpa), which skip the masked triangle."""
    full = 4 * passes * arch.num_layers * setup.seq_len * arch.num_heads * arch.head_dim * setup.tokens
    return full if setup.attention == "eager" else full / 2


def inference_flops_per_token(arch: Architecture, context: int = 0) -> float:
    """2 * N_active per generated token (+ 4 * L * context * d_attn for attention over the context)."""
    return 2 * matmul_params(arch) + 4 * arch.num_layers * context * arch.num_heads * arch.head_dim


def recompute_flops(arch: Architecture, setup: TrainSetup) -> float:
    """Extra FLOPs of full activation recomputation: one more forward pass of every layer, 2*P_layers*T +
    4*L*s*d_attn*T (Korthikanti et al. 2022 §4: recomputation costs a forward pass, ~33 % for full training,
    ~50 % for adapters whose backward is 4N). Not model FLOPs, so not in MFU - but in the time."""
    if not setup.checkpointing:
        return 0.0
    T = setup.tokens
    layers = matmul_params(arch) - arch.vocab_size * arch.hidden_size      # the head is not recomputed
    return 2 * layers * T + attention_flops(arch, setup, passes=1)


# --- memory -----------------------------------------------------------------------------------

def _state_bytes(precision: Precision, optimizer: str) -> tuple[float, float, float]:
    """Bytes per trainable parameter: (weights, gradients, optimizer states).

    mixed: 16-bit weights and gradients + fp32 master copy in the optimizer - 2 + 2 + 12 for AdamW
    (Rajbhandari et al. 2020, ZeRO §3.1: K = 12, 16 bytes/param). 8-bit Adam keeps 2 bytes of moments
    (Dettmers et al. 2022). SGD with momentum keeps one fp32 buffer. Paged optimizers hold the same bytes.
    """
    base = optimizer.removeprefix("paged-")
    moments = {"adamw": 8, "adamw-8bit": 2, "sgd": 4}[base]
    if precision == "mixed":
        return 2, 2, 4 + moments
    if precision == "bf16":     # pure bf16: no master copy, moments kept in the parameter dtype
        return 2, 2, moments / 2 if base != "adamw-8bit" else 2
    return 4, 4, moments        # fp32


def model_state_bytes(params: float, precision: Precision = "mixed", optimizer: str = "adamw", zero: int = 0,
                      gpus: int = 1) -> tuple[float, float, float]:
    """(weights, gradients, optimizer states) per GPU for `params` trainable parameters under ZeRO.

    Rajbhandari et al. 2020 (ZeRO, §5 and Table 1): stage 1 (P_os) partitions the optimizer states over the
    N_d data-parallel GPUs, stage 2 (P_os+g) also the gradients, stage 3 (P_os+g+p) also the parameters:
    (2 + 2 + K)*Psi -> 2*Psi + 2*Psi + K*Psi/N_d -> 2*Psi + (2 + K)*Psi/N_d -> (2 + 2 + K)*Psi/N_d,
    with the bytes of the chosen precision and optimizer in place of 2, 2 and K.
    """
    w, g, o = _state_bytes(precision, optimizer)
    G = max(gpus, 1)
    return (w * params / (G if zero >= 3 else 1), g * params / (G if zero >= 2 else 1),
            o * params / (G if zero >= 1 else 1))


_ATTN_INPUT = {"q_proj", "k_proj", "v_proj", "qkv_proj", "c_attn", "query_key_value"}
_ATTN_OUTPUT = {"o_proj", "dense", "c_proj"}
_MLP_INPUT = {"gate_proj", "up_proj", "gate_up_proj", "c_fc", "fc1", "dense_h_to_4h", "w1", "w3"}


def activation_bytes_per_layer(arch: Architecture, seq_len: int, micro_batch: int, bytes_per: int = 2,
                               attention: str = "sdpa", grad_checkpointing: bool = False,
                               lora_targets: set[str] | None = None, lora_rank: int = 0,
                               adapter_bytes: int | None = None) -> float:
    """Activations one decoder layer saves for backward, in bytes (all of them for full training,
    `lora_targets=None`; for adapters only what the adapters' gradients need).

    Korthikanti et al. 2022 (Table 2) give s*b*h*(34 + 5*a*s/h) for a GPT layer in 16-bit with
    dropout; with full recomputation only the layer input stays (+ one layer being recomputed).
    We count what transformers' Llama-family layers actually save (listed with saved_tensors_hooks
    by bench/estimator_accuracy.py), per token: each RMSNorm keeps its fp32 input and rsqrt, plus
    its normalised output when the norm weight trains, plus its output when a trained linear reads
    it; attention keeps q and the head-repeated k and v (eager also the fp32 softmax and its cast,
    a*s each; sdpa its output and log-sum-exp); a linear keeps its input only when its weight (or
    adapter) trains; the gated MLP keeps gate, activation and up outputs; LoRA keeps each A output.
    `adapter_bytes` wider than `bytes_per` (peft casts adapters of a 16-bit model to fp32 by default,
    `autocast_adapter_dtype=True`, and each adapter casts its input to its own dtype: LoraLayer.
    _cast_input_dtype): every adapted linear then keeps its own copy of its input at that width, q, k
    and v included, instead of sharing the layer's 16-bit tensor (measured on an H200 with
    torch.cuda.max_memory_allocated, bench/results/gpu_checks.json).
    """
    s, b, h, B = seq_len, micro_batch, arch.hidden_size, bytes_per
    full = lora_targets is None
    trains = (lambda names: True) if full else (lambda names: bool(lora_targets & names))
    d_attn = arch.num_heads * arch.head_dim
    inter = arch.intermediate_size * (arch.experts_per_token or 1)
    gated = any(lin.name in ("gate_proj", "gate_up_proj", "w1") for lin in arch.layer_linears)

    # adapters that cast their input keep private copies (counted below) instead of the shared tensor
    copies = not full and adapter_bytes is not None and adapter_bytes != B
    shared = (lambda names: False) if copies else trains

    def norm(read_by_trained: bool) -> float:
        return 4 * h + 4 + (B * h if full else 0) + (B * h if read_by_trained else 0)

    per_token = norm(shared(_ATTN_INPUT)) + norm(shared(_MLP_INPUT))
    per_token += B * 3 * d_attn                                       # q, repeated k and v
    if attention == "eager":
        per_token += arch.num_heads * s * (4 + (B if B != 4 else 0))  # fp32 softmax (+ its cast)
    else:
        per_token += B * d_attn + 4 * arch.num_heads                 # sdpa output + log-sum-exp
    per_token += B * d_attn if shared(_ATTN_OUTPUT) else 0             # o_proj input
    per_token += B * (3 if gated else 1) * inter                      # gate/act/up (or fc1) outputs
    per_token += B * inter if shared({"down_proj", "fc2", "dense_4h_to_h", "w2", "c_proj"}) else 0
    if not full:
        adapted = [lin for lin in arch.layer_linears if lin.name in lora_targets]
        A = adapter_bytes or B
        per_token += A * lora_rank * len(adapted)
        if copies:
            per_token += A * sum(lin.in_features for lin in adapted)
    if grad_checkpointing:
        return s * b * B * h          # the layer input; recompute adds one layer once (training_memory)
    return s * b * per_token


def logits_bytes(arch: Architecture, seq_len: int, micro_batch: int, bytes_per: int = 2, full: bool = True) -> float:
    """The loss at its peak, while its backward runs: the fp32 log-softmax it saved (4 bytes * b * s * V),
    the fp32 gradient of the log-probabilities and the fp32 gradient of the logits (4 + 4 more) - 12 bytes
    per vocabulary entry and token (transformers upcasts logits to fp32 for the loss; measured on CPU with
    torch's memory profiler, bench/estimator_accuracy.py). Korthikanti's per-layer formula leaves the head
    out, yet with 128k-256k vocabularies it rivals a whole layer. Plus the final norm's fp32 input (+ its
    outputs when the head trains)."""
    return seq_len * micro_batch * (12 * arch.vocab_size + 4 * arch.hidden_size + 4
                                    + (2 * bytes_per * arch.hidden_size if full else 0))


def sdpa_math_path(arch: Architecture, setup: TrainSetup) -> bool:
    """True where CUDA sdpa falls back to its math kernel (which keeps the s x s softmax, as eager does): fp32
    inputs - fp32 training, or QLoRA's fp32 residual stream - with grouped KV heads (see training_memory).
    transformers' flash_attention_2 casts fp32 inputs to 16 bits instead, so it never does."""
    fp32 = setup.precision == "fp32" or setup.method == "qlora"
    return setup.device == "cuda" and setup.attention == "sdpa" and fp32 and arch.num_kv_heads < arch.num_heads


def attention_backward_bytes(arch: Architecture, seq_len: int, micro_batch: int, bytes_per: int = 2) -> float:
    """The transient of an s x s attention (eager, or sdpa's math kernel) while one layer's backward runs: the
    gradient of the probabilities (compute dtype) and the fp32 gradient of the scores softmax's backward makes
    from it are alive together, (B + 4) bytes per head, query and key. Nothing saves them, so no per-layer
    count has them, yet they sit on top of everything stored (measured on CPU with torch's memory profiler:
    1.7-1.9 s x s fp32 tensors per head at fp32, 1.4 at bf16, bench/estimator_accuracy.py)."""
    return arch.num_heads * seq_len * seq_len * micro_batch * (bytes_per + 4)


def training_memory(arch: Architecture, setup: TrainSetup) -> MemoryBreakdown:
    N = arch.total_params
    G = setup.gpus
    ckpt = setup.checkpointing
    qlora = setup.method == "qlora"
    # QLoRA: prepare_model_for_kbit_training casts the embeddings, norms and head to fp32 (peft utils/other.py),
    # so the residual stream and every activation run in fp32 (bitsandbytes casts each 4-bit linear's output
    # back to its input's dtype). On CUDA, sdpa with fp32 inputs and grouped KV heads has neither the flash
    # kernel (16-bit only) nor the memory-efficient one (no GQA): it takes the math path, which keeps the fp32
    # softmax as eager does (measured on an H200 for Qwen2.5-0.5B and TinyLlama, bench/results/gpu_checks.json).
    act_bytes = 4 if setup.precision == "fp32" or qlora else 2
    attention = "eager" if sdpa_math_path(arch, setup) else setup.attention
    full = setup.method in ("full", "pretrain")
    targets = None if full else set(resolve_targets(arch, setup.target_modules))
    adapter_bytes = None if full else 4          # peft keeps adapters in fp32 (autocast_adapter_dtype=True)
    layer = lambda c: activation_bytes_per_layer(arch, setup.seq_len, setup.micro_batch, act_bytes,  # noqa: E731
                                                 attention, c, targets, setup.lora_rank, adapter_bytes)
    head_bytes = 4 if qlora else act_bytes   # peft casts the 16-bit head to fp32 for QLoRA
    loss = logits_bytes(arch, setup.seq_len, setup.micro_batch, head_bytes, full)
    # With checkpointing the loss's backward buffers are freed before the first layer is recomputed, so the
    # peak is the larger of the two on top of the stored layer inputs (measured, bench/estimator_accuracy.py).
    # An s x s attention's backward adds its transient to the layer whose backward runs (after the loss's).
    grad_attn = attention_backward_bytes(arch, setup.seq_len, setup.micro_batch, act_bytes) \
        if attention == "eager" else 0.0
    acts = arch.num_layers * layer(ckpt) + (max(loss, layer(False) + grad_attn) if ckpt else max(loss, grad_attn))
    overhead = CUDA_OVERHEAD_GB * GB if setup.device == "cuda" else 0.0
    zero = setup.zero if G > 1 else 0
    if zero == 3:
        # ZeRO-3 gathers one layer's full weights to compute it (+ prefetches the next): 2 layers live.
        largest = max(arch.params_per_layer, arch.vocab_size * arch.hidden_size)
        overhead += 2 * largest * _state_bytes(setup.precision, setup.optim)[0]
    if full:
        weights, grads, optim = model_state_bytes(N, setup.precision, setup.optim, zero, G)
        return MemoryBreakdown(weights=weights, gradients=grads, optimizer=optim, activations=acts,
                               overhead=overhead)
    trainable = trainable_params(arch, setup)
    if setup.method == "qlora":
        # bitsandbytes quantises the decoder linears to NF4; prepare_model_for_kbit_training casts every
        # other (16-bit) parameter - embeddings, norms, the output head - to fp32 (peft utils/other.py).
        linear = arch.num_layers * sum(lin.count * lin.in_features * lin.out_features for lin in arch.layer_linears)
        frozen = linear * QLORA_BITS / 8 + (N - linear) * 4
    else:
        frozen = N * (4 if setup.precision == "fp32" else 2)
    if zero == 3:
        frozen /= G
    w, g, o = model_state_bytes(trainable, setup.precision, setup.optim, zero, G)
    return MemoryBreakdown(weights=frozen + w, gradients=g, optimizer=o, activations=acts, overhead=overhead)


# --- time and money ---------------------------------------------------------------------------

def micro_batches_per_gpu(setup: TrainSetup) -> float:
    return setup.tokens / (setup.seq_len * setup.micro_batch * setup.gpus)


def optimizer_steps(setup: TrainSetup) -> float:
    return micro_batches_per_gpu(setup) / setup.grad_accum


def qlora_dequant_seconds(arch: Architecture, gpu: GPU, setup: TrainSetup) -> float:
    """bitsandbytes dequantises every NF4 weight to bf16 on each pass that uses it (QLoRA paper §3: "we
    dequantize the storage data type to the computation data type to perform the forward and backward
    pass"): forward, backward, and the recomputed forward under checkpointing - once per micro-batch,
    whatever its token count. A bandwidth-bound pass over the weights."""
    if setup.method != "qlora" or setup.device != "cuda":
        return 0.0
    linear = arch.num_layers * sum(lin.count * lin.in_features * lin.out_features for lin in arch.layer_linears)
    passes = 3 if setup.checkpointing else 2
    bw = gpu.bandwidth_gbs * 1e9 * gpu.decode_bandwidth_efficiency
    return micro_batches_per_gpu(setup) * passes * linear * QLORA_DEQUANT_BYTES / bw


def fp32_matmul_flops(arch: Architecture, setup: TrainSetup, total: float) -> tuple[float, float]:
    """(FLOPs that run in fp32 on CUDA cores, the 16-bit FLOPs they replace). fp32 training runs every matmul in
    fp32 (PyTorch keeps TF32 off by default: torch.backends.cuda.matmul.allow_tf32); sdpa's math kernel (QLoRA's
    fp32 residual stream with grouped KV heads, sdpa_math_path) runs the attention's score and value matmuls in
    fp32 over the whole s x s product, masked half included - the time of a tensor-core estimate would be far
    too short. `total`: the training and recomputation FLOPs of the setup."""
    if setup.device != "cuda":
        return 0.0, 0.0
    if setup.precision == "fp32":
        return total, total
    if not sdpa_math_path(arch, setup):
        return 0.0, 0.0
    passes = 4 if setup.checkpointing else 3
    eager = setup.model_copy(update={"attention": "eager"})
    return attention_flops(arch, eager, passes), attention_flops(arch, setup, passes)


# Eager PyTorch issues every op of every layer from Python, and the GPU cannot run ahead of the host: a micro-batch
# whose kernels are short waits on the dispatch, so its time is the ops issued x the host's time per op.
# Ops per layer per micro-batch (forward + backward), counted on a Hugging Face Llama with and without peft LoRA and
# gradient checkpointing (bench/host_ops.py; tests/test_estimator.py recounts them): a fully trained layer, a frozen
# layer, each LoRA/DoRA-adapted linear on top of a frozen one, and each linear (IA)^3 scales (one elementwise
# product and its gradients, where a LoRA adapter runs dropout and two matmuls), and what a mixture-of-experts layer
# adds to a dense one (a Mixtral's router, top-k and grouped expert matmuls, transformers' default grouped_mm experts;
# the same trained or frozen). Checkpointing replays the forward's ops.
HOST_OPS = {False: {"full": 211, "frozen": 168, "adapter": 35, "ia3": 10, "moe": 46},
            True: {"full": 338, "frozen": 260, "adapter": 56.6, "ia3": 17, "moe": 72}}
# Host time per op: LitGPT's resource tables (tutorials/resource-tables.md, 2023-10-20: A100-SXM4-40GB, PyTorch 2.1,
# LoRA r=8 on query and value, ~110-token Alpaca rows) show a micro-batch of 1, 2 or 4 rows taking nearly the same
# time - 141.6 ms for Llama 2 7B at micro-batch 1, over 32 layers of a frozen layer + 2 adapters' ops (fitted there;
# the other rows of that table and the H200 step times of bench/gpu_checks.py check it, docs/validation.md).
HOST_SECONDS_PER_OP = 141.6e-3 / 32 / (HOST_OPS[False]["frozen"] + 2 * HOST_OPS[False]["adapter"])


def host_ops_per_layer(arch: Architecture, setup: TrainSetup) -> float:
    ops = HOST_OPS[setup.checkpointing]
    moe = ops["moe"] if arch.num_experts else 0
    if setup.method in ("full", "pretrain"):
        return ops["full"] + moe
    if setup.method in ("lora", "dora", "qlora"):
        chosen = set(resolve_targets(arch, setup.target_modules))
        adapted = sum(lin.count for lin in arch.layer_linears if lin.targetable and lin.name in chosen)
        return ops["frozen"] + moe + adapted * ops["adapter"]
    if setup.method == "ia3":
        targets = setup.target_modules if isinstance(setup.target_modules, list) else None
        return ops["frozen"] + moe + sum(lin.count for lin, _ in ia3_modules(arch, targets)) * ops["ia3"]
    return ops["frozen"] + moe


def host_seconds(arch: Architecture, setup: TrainSetup) -> float:
    """The host's dispatch time over the run (per GPU): a floor under the GPU time, not added to it - while kernels
    are long the host runs ahead and hides (estimate_training takes the longer of the two). Only short micro-batches
    (small models, short rows) meet it; there a larger micro-batch costs almost nothing extra."""
    if setup.device != "cuda":
        return 0.0
    return micro_batches_per_gpu(setup) * arch.num_layers * host_ops_per_layer(arch, setup) * HOST_SECONDS_PER_OP


# NCCL's ring collectives reach about this share of a link's bandwidth on large messages (assumed, as the "busbw"
# nccl-tests reports against the link's rate).
COMM_EFFICIENCY = 0.8
PCIE4_GBS = 32.0           # PCIe Gen4 x16 each way: GPUs without an interconnect_gbs of their own (assumed)


def communication_seconds(arch: Architecture, gpu: GPU, setup: TrainSetup) -> float:
    """Data-parallel traffic per GPU over the GPU-to-GPU link (interconnect_gbs). ZeRO 0-2 all-reduce the gradients
    once per optimizer step, 2 x their bytes x (G-1)/G; ZeRO-3 also all-gathers every parameter for each
    micro-batch's forward and backward and reduce-scatters its gradients - 3 x where data parallelism moves 2 x
    (Rajbhandari et al. 2020, ZeRO §7). Frameworks overlap it with compute, so the step takes the longer of the
    two (estimate_training); over NVLink it hides, over PCIe - above all without peer-to-peer - it can dominate.
    Beyond one node (8 GPUs) the network between nodes is usually slower than NVLink; it is not modelled."""
    G = setup.gpus
    if G <= 1 or setup.device != "cuda":
        return 0.0
    w, g, _ = _state_bytes(setup.precision, setup.optim)
    share = (G - 1) / G
    trainable = trainable_params(arch, setup)
    if setup.zero >= 3:
        frozen_bytes = QLORA_BITS / 8 if setup.method == "qlora" else 2
        weights = trainable * w + (arch.total_params - trainable) * frozen_bytes
        moved = micro_batches_per_gpu(setup) * (2 * weights + trainable * g) * share
    else:
        moved = optimizer_steps(setup) * 2 * trainable * g * share
    return moved / ((gpu.interconnect_gbs or PCIE4_GBS) * 1e9 * COMM_EFFICIENCY)


def optimizer_update_seconds(arch: Architecture, gpu: GPU, setup: TrainSetup) -> float:
    """The update after each optimizer step is bandwidth-bound: one pass reads the gradients, optimizer states and
    weights and writes states and weights back, 2w + g + 2o bytes per trainable parameter (the bytes of
    _state_bytes: 30 for mixed-precision AdamW), as torch's fused AdamW does - tunepath's optimizer on CUDA and
    transformers' default with torch >= 2.8 (torch.optim.AdamW's foreach default makes several passes). ZeRO >= 1
    splits it over the GPUs. Negligible for adapters and for pretraining's million-token steps; for full
    fine-tuning of short rows without accumulation it rivals the step's compute."""
    if setup.device != "cuda":
        return 0.0
    w, g, o = _state_bytes(setup.precision, setup.optim)
    params = trainable_params(arch, setup) / (setup.gpus if setup.zero >= 1 else 1)
    bw = gpu.bandwidth_gbs * 1e9 * gpu.decode_bandwidth_efficiency
    return optimizer_steps(setup) * params * (2 * w + g + 2 * o) / bw


def estimate_training(arch: Architecture, gpu: GPU, setup: TrainSetup) -> TrainEstimate:
    if setup.method == "qlora" and setup.device != "cuda":
        raise UserError("qlora needs a CUDA GPU (bitsandbytes 4-bit); on CPU use lora")
    flops = training_flops(arch, setup)
    extra = recompute_flops(arch, setup)
    mem = training_memory(arch, setup)
    if setup.mfu:
        mfu, src = setup.mfu, "given (--mfu)"
    else:
        mfu, src = default_mfu(gpu.generation, arch.active_params, setup.method)
    dequant = qlora_dequant_seconds(arch, gpu, setup)
    update = optimizer_update_seconds(arch, gpu, setup)
    fp32, fp32_replaced = fp32_matmul_flops(arch, setup, flops + extra)
    fp32_peak = gpu.fp32_tflops or gpu.bf16_tflops / 8
    fp32_s = fp32 / (setup.gpus * fp32_peak * 1e12 * mfu)
    device = (flops + extra - fp32_replaced) / (setup.gpus * gpu.bf16_tflops * 1e12 * mfu) + fp32_s + dequant
    host = host_seconds(arch, setup)
    compute = max(device, host)
    comm = communication_seconds(arch, gpu, setup)
    seconds = max(compute, comm) + update      # communication overlaps the compute; the update follows both
    hours = seconds / 3600
    notes = []
    if host > device:
        per_mb = micro_batches_per_gpu(setup)
        notes.append(f"each micro-batch ({setup.micro_batch} x {setup.seq_len:,} tokens) is {device / per_mb * 1e3:,.0f} ms "
                     f"of GPU work but ~{host / per_mb * 1e3:,.0f} ms of host dispatch ({arch.num_layers} layers x "
                     f"~{host_ops_per_layer(arch, setup):.0f} eager PyTorch ops at {HOST_SECONDS_PER_OP * 1e6:.0f} us, "
                     "LitGPT's resource tables), so the host sets the time: a larger --micro-batch or longer rows cost "
                     "almost nothing extra")
    if comm > compute:
        link = gpu.interconnect_gbs or PCIE4_GBS
        notes.append(f"communication ({'ZeRO-3 parameter gathers and ' if setup.zero >= 3 else ''}gradient reduction "
                     f"over {link:g} GB/s links) takes {comm / compute:.1f}x the compute, so it sets the time: "
                     "larger micro-batches, fewer GPUs or NVLink GPUs (`tunepath gpus`) shorten it")
    rows = setup.micro_batch * setup.grad_accum * setup.gpus
    if update > 0.1 * seconds:
        notes.append(f"the optimizer update after each of {optimizer_steps(setup):,.0f} steps adds "
                     f"{update / seconds:.0%} of the time (bandwidth-bound, {rows:,} row{'s' * (rows != 1)} a "
                     "step): --grad-accum takes fewer, larger steps")
    if setup.precision == "fp32" and setup.device == "cuda":
        notes.append(f"fp32 training runs every matmul on CUDA cores ({fp32_peak:g} TFLOP/s against "
                     f"{gpu.bf16_tflops:g} for bf16 tensor cores; PyTorch keeps TF32 off by default): --precision mixed is the usual choice")
    if dequant >= 0.01 * seconds:
        notes.append(f"qlora: NF4 dequantisation adds {dequant / seconds:.0%} of the time (per micro-batch, "
                     "bandwidth-bound)")
    if not gpu.bf16 and setup.precision != "fp32":
        notes.append(f"{gpu.id} has no bf16: fp16 mixed precision with loss scaling")
    if extra:
        notes.append(f"gradient checkpointing recomputes the forward pass: +{extra / flops:.0%} FLOPs in the time")
    if sdpa_math_path(arch, setup):
        flash = training_memory(arch, setup.model_copy(update={"attention": "flash_attention_2"}))
        if mem.total > 1.05 * flash.total or fp32_s > 0.1 * seconds:
            notes.append(f"sdpa with fp32 inputs and grouped KV heads takes the math kernel, which keeps the "
                         f"{setup.seq_len:,}x{setup.seq_len:,} softmax: {(mem.total - flash.total) / GB:.1f} GB of "
                         f"the peak" + (f", and runs the attention in fp32 on CUDA cores: {fp32_s / seconds:.0%} of "
                                        "the time" if setup.precision != "fp32" else "")
                         + f"; --attention flash_attention_2 would need {flash.total / GB:.1f} GB (in a training "
                         f"config: model.attn_implementation flash_attention_2, or varlen with packing, which needs no "
                         f"flash-attn build)")
    sequences = setup.tokens / setup.seq_len
    if setup.gpus > sequences / setup.micro_batch:
        notes.append(f"{sequences:,.0f} sequences of {setup.seq_len:,} tokens keep at most "
                     f"{max(1, int(sequences / setup.micro_batch)):,} of the {setup.gpus:,} GPUs busy (micro-batch "
                     f"{setup.micro_batch}): the time assumes all of them")
    window = arch.max_position_embeddings
    if window and setup.seq_len > window:
        notes.append(f"{setup.seq_len:,}-token rows exceed the model's {window:,} positions "
                     "(max_position_embeddings): training that long needs RoPE scaling or another context "
                     "extension, and the model meets positions it never saw in pretraining")
    if MEMORY_MARGIN * gpu.memory_bytes < mem.total <= gpu.memory_bytes:
        notes.append(f"the peak is {mem.total / gpu.memory_bytes:.0%} of the {gpu.memory_gb:g} GiB card: where "
                     "published runs sat at a card's limit the estimate was 81-94 % of the card (allocator "
                     "fragmentation; docs/validation.md): a shorter row or a smaller micro-batch (or checkpointing, "
                     "if off) buys a margin")
    if gpu.usd_per_hour is None:
        notes.append(f"no cost: {gpu.no_price_reason()}")
    if setup.method == "qlora" and setup.grad_checkpointing is None:
        notes.append("qlora: gradient checkpointing on and paged AdamW, as peft's prepare_model_for_kbit_training "
                     "and the QLoRA paper run it (--no-grad-checkpointing / --optimizer to change)")
    per_gpu = mem.total
    return TrainEstimate(
        method=setup.method, total_params=arch.total_params, active_params=arch.active_params,
        trainable_params=trainable_params(arch, setup), tokens=setup.tokens, flops=flops, memory=mem,
        memory_per_gpu_gb=per_gpu / GB, gpu_memory_gb=gpu.memory_bytes / GB, fits=per_gpu <= gpu.memory_bytes,
        mfu=mfu, mfu_source=src, hours=hours, gpu_hours=hours * setup.gpus,
        cost_usd=None if gpu.usd_per_hour is None else hours * setup.gpus * gpu.usd_per_hour, notes=notes,
        grad_checkpointing=setup.checkpointing,
        optimizer=setup.optim, recompute_flops=extra, seq_len=setup.seq_len, micro_batch=setup.micro_batch,
        optimizer_update_hours=update / 3600, dequant_hours=dequant / 3600, communication_hours=comm / 3600,
        host_bound=host > device,
        accuracy=[accuracy_sentence("pretraining time" if setup.method == "pretrain" else "fine-tuning time"),
                  accuracy_sentence("memory")])


def chinchilla_tokens(params: int) -> float:
    """Compute-optimal pretraining tokens, ~20 per parameter (Hoffmann et al. 2022)."""
    return 20.0 * params


@dataclass
class InferenceEstimate:
    weights_gb: float
    kv_cache_gb: float
    kv_bytes_per_token: int
    memory_gb: float
    gpus_per_replica: int
    prefill_tokens_per_s: float
    decode_tokens_per_s_batch1: float
    decode_tokens_per_s: float
    concurrency: int                 # the batch decoded together: memory-limited, capped at MAX_NUM_SEQS
    gpu_seconds_per_request: float
    replicas: int
    monthly_gpu_hours: float
    monthly_usd: float | None        # None: the GPU has no price in the catalog
    weight_bits: int = 16
    bandwidth_efficiency: float = DECODE_BANDWIDTH_EFF
    max_batch: int = 1
    engine: str = ("a vLLM-class server: continuous batching, paged KV cache, CUDA graphs (Kwon et al. 2023); "
                   "transformers' generate() or a server without CUDA graphs decodes several times slower")
    accuracy: str = field(default_factory=lambda: accuracy_sentence("serving"))

    def to_dict(self) -> dict:
        return asdict(self)


def kv_bytes_per_token(arch: Architecture, bytes_per: float = 2) -> int:
    """K and V for every layer: 2 * L * n_kv_heads * head_dim * bytes (Llama-2-7B: 512 KiB)."""
    return int(2 * arch.num_layers * arch.num_kv_heads * arch.head_dim * bytes_per)


def _layer_linear_params(arch: Architecture, batch: int = 1) -> float:
    """Decoder-layer weights a decode step reads for `batch` sequences. Dense: all of them. MoE: each token
    picks k of E experts, so a batch touches E * (1 - (1 - k/E)^batch) distinct experts in expectation."""
    total = 0.0
    for lin in arch.layer_linears:
        copies = lin.count
        if lin.expert and arch.num_experts:
            k, E = arch.experts_per_token, arch.num_experts
            copies = E * (1 - (1 - k / E) ** batch)
        total += copies * lin.in_features * lin.out_features
    return arch.num_layers * total


def weight_bytes(arch: Architecture, weight_bits: int = 16) -> float:
    """Bytes the served weights occupy: decoder linears and an untied output head at `weight_bits` (weight-only
    int8/int4 as in GPTQ/AWQ/llama.cpp), the rest (embeddings, norms, biases) in 16 bits."""
    quantised = _layer_linear_params(arch, batch=10**9 if arch.num_experts else 1)
    if not arch.tied_embeddings:
        quantised += arch.vocab_size * arch.hidden_size
    return quantised * weight_bits / 8 + (arch.total_params - quantised) * 2


def decode_step_seconds(arch: Architecture, gpu: GPU, batch: int, context: float, weight_bits: int = 16,
                        gpus: int = 1, kv_bits: int = 16) -> float:
    """One decode step for `batch` sequences at mean `context` tokens: the slower of streaming the weights +
    reading every sequence's KV cache (bandwidth-bound; Pope et al. 2022, "Efficiently Scaling Transformer
    Inference" §2) and the batch's matmuls (compute-bound). The input embedding is a row lookup, not a
    stream; the output head (tied or not) is a full matmul and is streamed."""
    head_bits = 16 if arch.tied_embeddings else weight_bits
    streamed = (_layer_linear_params(arch, batch) * weight_bits + arch.vocab_size * arch.hidden_size * head_bits) / 8
    streamed += batch * context * kv_bytes_per_token(arch, kv_bits / 8)
    eff = gpu.decode_bandwidth_efficiency * quant_kernel_eff(weight_bits)
    t_bw = streamed / (gpus * gpu.bandwidth_gbs * 1e9 * eff)
    t_compute = batch * inference_flops_per_token(arch, int(context)) / (gpus * gpu.bf16_tflops * 1e12 * PREFILL_MFU)
    return max(t_bw, t_compute)


def replica_gpus(need: float, usable: float, overhead: float, gpu_id: str) -> int:
    """The fewest GPUs n with need + n * overhead <= n * usable (closed form: a search up to 4,096 GPUs ended
    in an internal StopIteration for a model or request that needs more)."""
    if usable <= overhead:
        raise UserError(f"GPU {gpu_id}: {usable / GB:.3g} GB usable is not more than the {overhead / GB:.3g} GB "
                        "each GPU keeps for CUDA; check its memory_gb")
    n = max(1, math.ceil(need / (usable - overhead)))
    while need + n * overhead > n * usable:          # float rounding at the boundary
        n += 1
    while n > 1 and need + (n - 1) * overhead <= (n - 1) * usable:
        n -= 1
    return n


def tensor_parallel_size(arch: Architecture, n: int) -> int:
    """The smallest count >= n that tensor parallelism can split the model over: vLLM refuses a size that does
    not divide the attention heads ("Total number of attention heads (64) must be divisible by tensor parallel
    size (7)", vllm/config.py verify_with_parallel_config), so a 70B model that needs 7 x 24 GB is served on 8.
    A count beyond the heads (pipeline parallelism) is kept as is."""
    for size in range(n, arch.num_heads + 1):
        if arch.num_heads % size == 0:
            return size
    return n


def estimate_inference(arch: Architecture, gpu: GPU, prompt_tokens: int, output_tokens: int,
                       requests_per_month: float, concurrency: int | None = None, weight_bits: int = 16,
                       max_utilisation: float = 0.5, kv_bits: int = 16,
                       gpus_per_replica: int | None = None) -> InferenceEstimate:
    """Self-hosted serving the way vLLM/TGI run it.

    A replica is the fewest GPUs that hold the weights plus one full-length request's KV cache (a model that
    fits one GPU is served by one GPU: no tensor parallelism assumed). Prefill is compute-bound (2*N FLOPs
    per prompt token + attention, at PREFILL_MFU); decode is bandwidth-bound: each step streams the weights
    once for the whole batch and reads each sequence's KV cache (decode_step_seconds). Continuous batching
    (Yu et al. 2022, Orca; Kwon et al. 2023, vLLM) keeps up to `concurrency` sequences in flight: by default
    as many as the memory left after the weights holds (PagedAttention wastes little), capped at vLLM's
    max_num_seqs. Replicas are sized so the month's traffic keeps them at most `max_utilisation` busy
    (traffic is bursty), with at least one always-on replica.
    """
    w_bytes = weight_bytes(arch, weight_bits)
    ctx = prompt_tokens + output_tokens
    kv_tok = kv_bytes_per_token(arch, kv_bits / 8)
    kv_req = kv_tok * max(ctx, 1)
    overhead = CUDA_OVERHEAD_GB * GB
    usable = 0.9 * gpu.memory_bytes             # vLLM's gpu_memory_utilization default 0.9
    g = gpus_per_replica or tensor_parallel_size(arch, replica_gpus(w_bytes + kv_req, usable, overhead, gpu.id))
    room = g * usable - w_bytes - g * overhead
    max_batch = max(1, min(MAX_NUM_SEQS, int(room // kv_req))) if room > 0 else 1
    batch = max(1, min(concurrency or max_batch, max_batch))
    mean_ctx = prompt_tokens + output_tokens / 2
    peak = g * gpu.bf16_tflops * 1e12
    prefill_tps = peak * PREFILL_MFU / inference_flops_per_token(arch, prompt_tokens // 2)
    step = decode_step_seconds(arch, gpu, batch, mean_ctx, weight_bits, g, kv_bits)
    decode_tps = batch / step
    decode_b1 = 1 / decode_step_seconds(arch, gpu, 1, mean_ctx, weight_bits, g, kv_bits)
    sec_per_req = prompt_tokens / prefill_tps + output_tokens / decode_tps   # replica-seconds
    busy_hours = requests_per_month * sec_per_req / 3600
    replicas = max(1, math.ceil(busy_hours / (730 * max_utilisation)))
    gpu_hours = replicas * g * 730
    kv = kv_req * batch
    return InferenceEstimate(
        weights_gb=w_bytes / GB, kv_cache_gb=kv / GB, kv_bytes_per_token=kv_tok, memory_gb=(w_bytes + kv) / GB
        + g * CUDA_OVERHEAD_GB, gpus_per_replica=g, prefill_tokens_per_s=prefill_tps,
        decode_tokens_per_s_batch1=decode_b1, decode_tokens_per_s=decode_tps, concurrency=batch,
        gpu_seconds_per_request=sec_per_req * g, replicas=replicas, monthly_gpu_hours=gpu_hours,
        monthly_usd=None if gpu.usd_per_hour is None else gpu_hours * gpu.usd_per_hour, weight_bits=weight_bits,
        bandwidth_efficiency=gpu.decode_bandwidth_efficiency * quant_kernel_eff(weight_bits),
        max_batch=max_batch)


def hosted_monthly_usd(total_params: int, requests_per_month: float, input_tokens: float, output_tokens: float,
                       cached_input_tokens: float = 0.0, moe: bool = False) -> float:
    """Serverless price: tokens x list price of the model's tier (advisor/data/api_prices.yaml). Providers
    tier mixture-of-experts models by total parameters on their own, cheaper ladder (Fireworks: "MoE 0B-56B
    (Mixtral 8x7B)")."""
    from advisor.catalog import api_prices
    prices = api_prices()
    tier = prices.tier_for(total_params, moe=moe)
    per_req = (input_tokens * tier.input_per_m + cached_input_tokens * tier.input_per_m * prices.cached_input_factor
               + output_tokens * tier.output_per_m) / 1e6
    return requests_per_month * per_req
