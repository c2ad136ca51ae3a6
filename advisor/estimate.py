"""Memory, FLOPs, time and dollars for training and serving a model (design.md §6).

Pure functions over pydantic models; every formula names its source. Byte counts are in bytes,
reported in GB (1e9 bytes) to match GPU data sheets.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from advisor.architecture import Architecture
from advisor.catalog import GPU
from advisor.errors import UserError

GB = 1e9

Method = Literal["full", "pretrain", "lora", "dora", "qlora", "ia3", "prompt_tuning", "prefix_tuning"]
ESTIMABLE_METHODS: tuple[str, ...] = get_args(Method)   # training/methods.py flags the others
Precision = Literal["mixed", "bf16", "fp32"]
Optimizer = Literal["adamw", "adamw-8bit", "sgd"]

# Model-FLOPs utilisation defaults, with model FLOPs = 6N + 12*L*s*d per token (PaLM's MFU
# definition, Chowdhery et al. 2022, App. B). Llama 2 paper (Touvron et al. 2023, Table 2): 7B on
# 2T tokens at s=4096 took 184,320 A100-80GB GPU-hours -> MFU 0.45 (0.39 counting 6ND only);
# 70B took 1,720,320 -> 0.46. Adapter
# training runs small extra kernels and frozen-weight backward passes; QLoRA adds NF4
# dequantisation (Dettmers et al. 2023 report it slower than 16-bit LoRA). The adapter numbers
# are assumptions: `tunepath calibrate` measures your own.
DEFAULT_MFU = {"full": 0.45, "pretrain": 0.45, "lora": 0.35, "dora": 0.30, "qlora": 0.25, "ia3": 0.35,
               "prompt_tuning": 0.35, "prefix_tuning": 0.35}
MFU_SOURCE = ("full/pretrain 0.45: Llama 2 paper (184,320 A100-h for 7B x 2T tokens at s=4096 -> MFU 0.45 "
              "with attention FLOPs counted); "
              "lora/ia3/prompt/prefix tuning 0.35, dora 0.30, qlora 0.25: assumed (adapter and NF4 kernels are "
              "less efficient)")
PREFILL_MFU = 0.5          # assumed: large-batch prefill GEMMs reach about half of peak
DECODE_BANDWIDTH_EFF = 0.7  # assumed: decode reaches ~70 % of peak memory bandwidth
# NF4 + double quantisation costs ~4.127 bits/param (Dettmers et al. 2023, QLoRA §3).
QLORA_BITS = 4.127
CUDA_OVERHEAD_GB = 1.0     # CUDA context + cuBLAS/cuDNN workspaces; 0 on CPU


class TrainSetup(BaseModel):
    """Everything that changes a training estimate besides the model and GPU."""

    model_config = ConfigDict(extra="forbid")
    method: Method = "lora"
    tokens: float = Field(gt=0, description="Training tokens (all epochs).")
    seq_len: int = Field(2048, gt=0)
    micro_batch: int = Field(1, gt=0)
    gpus: int = Field(1, gt=0)
    precision: Precision = "mixed"
    optimizer: Optimizer = "adamw"
    zero: Literal[0, 1, 2, 3] = 0
    grad_checkpointing: bool = False
    attention: Literal["sdpa", "eager"] = "sdpa"
    lora_rank: int = Field(16, gt=0)
    virtual_tokens: int = Field(20, gt=0, description="prompt_tuning / prefix_tuning: trained virtual tokens.")
    target_modules: list[str] | Literal["all-linear"] | None = ["q_proj", "v_proj"]
    mfu: float | None = Field(None, gt=0, le=1, description="Override the default MFU.")
    device: Literal["cuda", "cpu"] = "cuda"


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
    cost_usd: float
    notes: list[str] = field(default_factory=list)

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


def ia3_trainable(arch: Architecture, targets: list[str] | None = None, feedforward: list[str] | None = None) -> int:
    """(IA)^3 learns one scaling vector per targeted module: `out` features, or `in` for feed-forward
    modules, which scale their input (Liu et al. 2022; peft IA3Layer)."""
    if targets is None:
        if arch.model_type not in IA3_DEFAULT_TARGETS:
            raise UserError(f"IA3 has no default target modules for {arch.model_type}; give target_modules")
        targets, feedforward = IA3_DEFAULT_TARGETS[arch.model_type]
    resolve_targets(arch, [t.rpartition(".")[2] for t in targets])
    feedforward = feedforward or []
    total = 0
    for lin in arch.layer_linears:
        if lin.targetable and any(_matches(lin, t) for t in targets):
            is_ff = any(_matches(lin, f) for f in feedforward)
            total += lin.count * (lin.in_features if is_ff else lin.out_features)
    return total * arch.num_layers


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
    token) + 12 * L * s * d_attn * T for the attention score and value matmuls (eager attention
    computes the full s x s product; FlopCounterMode matches this exactly, machine-notes.md).
    Adapters (LoRA, DoRA, IA3, prefix tuning): frozen weights need no weight gradient -> 4 * P_mm * T,
    minus the input gradient of the first layer's projections (their input, the frozen embedding,
    needs none), plus 6 * T per adapter parameter. Prompt tuning trains the input itself, so that
    first gradient is needed. Virtual tokens (~20 per row) are not added to T.
    """
    T = setup.tokens
    P = matmul_params(arch)
    attn = 12 * arch.num_layers * setup.seq_len * arch.num_heads * arch.head_dim * T
    if setup.method in ("full", "pretrain"):
        return 6 * P * T + attn
    first = sum(lin.in_features * lin.out_features for lin in arch.layer_linears
                if lin.name in _LAYER_INPUT_PROJECTIONS)
    if setup.method == "prompt_tuning":
        first = 0
    return 4 * P * T - 2 * first * T + 6 * trainable_params(arch, setup) * T + attn


def inference_flops_per_token(arch: Architecture, context: int = 0) -> float:
    """2 * N_active per generated token (+ 4 * L * context * d_attn for attention over the context)."""
    return 2 * matmul_params(arch) + 4 * arch.num_layers * context * arch.num_heads * arch.head_dim


# --- memory -----------------------------------------------------------------------------------

def _state_bytes(precision: Precision, optimizer: Optimizer) -> tuple[float, float, float]:
    """Bytes per trainable parameter: (weights, gradients, optimizer states).

    mixed: 16-bit weights and gradients + fp32 master copy in the optimizer - 2 + 2 + 12 for AdamW
    (Rajbhandari et al. 2020, ZeRO §3.1: 16 bytes/param). 8-bit Adam keeps 2 bytes of moments
    (Dettmers et al. 2022). SGD with momentum keeps one fp32 buffer.
    """
    moments = {"adamw": 8, "adamw-8bit": 2, "sgd": 4}[optimizer]
    if precision == "mixed":
        return 2, 2, 4 + moments
    if precision == "bf16":     # pure bf16: no master copy, moments kept in the parameter dtype
        return 2, 2, moments / 2 if optimizer != "adamw-8bit" else 2
    return 4, 4, moments        # fp32


_ATTN_INPUT = {"q_proj", "k_proj", "v_proj", "qkv_proj", "c_attn", "query_key_value"}
_ATTN_OUTPUT = {"o_proj", "dense", "c_proj"}
_MLP_INPUT = {"gate_proj", "up_proj", "gate_up_proj", "c_fc", "fc1", "dense_h_to_4h", "w1", "w3"}


def activation_bytes_per_layer(arch: Architecture, seq_len: int, micro_batch: int, bytes_per: int = 2,
                               attention: str = "sdpa", grad_checkpointing: bool = False,
                               lora_targets: set[str] | None = None, lora_rank: int = 0) -> float:
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
    """
    s, b, h, B = seq_len, micro_batch, arch.hidden_size, bytes_per
    full = lora_targets is None
    trains = (lambda names: True) if full else (lambda names: bool(lora_targets & names))
    d_attn = arch.num_heads * arch.head_dim
    inter = arch.intermediate_size * (arch.experts_per_token or 1)
    gated = any(lin.name in ("gate_proj", "gate_up_proj", "w1") for lin in arch.layer_linears)

    def norm(read_by_trained: bool) -> float:
        return 4 * h + 4 + (B * h if full else 0) + (B * h if read_by_trained else 0)

    per_token = norm(trains(_ATTN_INPUT)) + norm(trains(_MLP_INPUT))
    per_token += B * 3 * d_attn                                       # q, repeated k and v
    if attention == "eager":
        per_token += arch.num_heads * s * (4 + (B if B != 4 else 0))  # fp32 softmax (+ its cast)
    else:
        per_token += B * d_attn + 4 * arch.num_heads                 # sdpa output + log-sum-exp
    per_token += B * d_attn if trains(_ATTN_OUTPUT) else 0             # o_proj input
    per_token += B * (3 if gated else 1) * inter                      # gate/act/up (or fc1) outputs
    per_token += B * inter if trains({"down_proj", "fc2", "dense_4h_to_h", "w2", "c_proj"}) else 0
    if not full:
        per_token += B * lora_rank * sum(1 for lin in arch.layer_linears if lin.name in lora_targets)
    if grad_checkpointing:
        return s * b * B * h          # the layer input; recompute adds one layer once (training_memory)
    return s * b * per_token


def logits_bytes(arch: Architecture, seq_len: int, micro_batch: int, bytes_per: int = 2, full: bool = True) -> float:
    """The loss keeps the fp32 log-softmax of the logits (4 bytes * b * s * V) - Korthikanti's
    per-layer formula leaves it out, yet with 128k-256k vocabularies it rivals a whole layer - and
    the final norm its fp32 input (+ its outputs when the head trains)."""
    return seq_len * micro_batch * (4 * arch.vocab_size + 4 * arch.hidden_size + 4
                                    + (2 * bytes_per * arch.hidden_size if full else 0))


def training_memory(arch: Architecture, setup: TrainSetup) -> MemoryBreakdown:
    N = arch.total_params
    G = setup.gpus
    w_b, g_b, o_b = _state_bytes(setup.precision, setup.optimizer)
    act_bytes = 4 if setup.precision == "fp32" else 2
    full = setup.method in ("full", "pretrain")
    targets = None if full else set(resolve_targets(arch, setup.target_modules))
    layer = lambda ckpt: activation_bytes_per_layer(arch, setup.seq_len, setup.micro_batch, act_bytes,  # noqa: E731
                                                    setup.attention, ckpt, targets, setup.lora_rank)
    acts = arch.num_layers * layer(setup.grad_checkpointing) + logits_bytes(arch, setup.seq_len, setup.micro_batch,
                                                                            act_bytes, full)
    if setup.grad_checkpointing:
        acts += layer(False)          # the one layer being recomputed during backward
    overhead = CUDA_OVERHEAD_GB * GB if setup.device == "cuda" else 0.0
    if setup.method in ("full", "pretrain"):
        # ZeRO (Rajbhandari et al. 2020) partitions optimizer states (1), + gradients (2), + weights (3).
        # Stage 2/3 follow DeepSpeed's own estimators: 4N + 16N/G and 4*largest_layer + 18N/G.
        if setup.zero == 0 or G == 1:
            weights, grads, optim = w_b * N, g_b * N, o_b * N
        elif setup.zero == 1:
            weights, grads, optim = w_b * N, g_b * N, o_b * N / G
        elif setup.zero == 2:
            weights, grads, optim = w_b * N, g_b * N, (w_b + g_b + o_b) * N / G
        else:
            largest = max(arch.params_per_layer, arch.vocab_size * arch.hidden_size)
            weights, grads, optim = 2 * largest, 2 * largest, 18 * N / G
        return MemoryBreakdown(weights=weights, gradients=grads, optimizer=optim, activations=acts,
                               overhead=overhead)
    trainable = trainable_params(arch, setup)
    if setup.method == "qlora":
        linear = arch.num_layers * sum(lin.count * lin.in_features * lin.out_features for lin in arch.layer_linears)
        frozen = linear * QLORA_BITS / 8 + (N - linear) * 2
    else:
        frozen = N * (4 if setup.precision == "fp32" else 2)
    if setup.zero == 3 and G > 1:
        frozen /= G
    return MemoryBreakdown(weights=frozen + w_b * trainable, gradients=g_b * trainable,
                           optimizer=o_b * trainable, activations=acts, overhead=overhead)


# --- time and money ---------------------------------------------------------------------------

def estimate_training(arch: Architecture, gpu: GPU, setup: TrainSetup) -> TrainEstimate:
    if setup.method == "qlora" and setup.device != "cuda":
        raise UserError("qlora needs a CUDA GPU (bitsandbytes 4-bit); on CPU use lora")
    flops = training_flops(arch, setup)
    mem = training_memory(arch, setup)
    mfu = setup.mfu or DEFAULT_MFU[setup.method]
    seconds = flops / (setup.gpus * gpu.bf16_tflops * 1e12 * mfu)
    hours = seconds / 3600
    notes = []
    if not gpu.bf16 and setup.precision != "fp32":
        notes.append(f"{gpu.id} has no bf16: fp16 mixed precision with loss scaling")
    per_gpu = mem.total
    return TrainEstimate(
        method=setup.method, total_params=arch.total_params, active_params=arch.active_params,
        trainable_params=trainable_params(arch, setup), tokens=setup.tokens, flops=flops, memory=mem,
        memory_per_gpu_gb=per_gpu / GB, gpu_memory_gb=gpu.memory_gb, fits=per_gpu <= gpu.memory_gb * GB,
        mfu=mfu, mfu_source="given" if setup.mfu else MFU_SOURCE, hours=hours, gpu_hours=hours * setup.gpus,
        cost_usd=hours * setup.gpus * gpu.usd_per_hour, notes=notes)


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
    concurrency: int
    gpu_seconds_per_request: float
    replicas: int
    monthly_gpu_hours: float
    monthly_usd: float

    def to_dict(self) -> dict:
        return asdict(self)


def kv_bytes_per_token(arch: Architecture, bytes_per: int = 2) -> int:
    """K and V for every layer: 2 * L * n_kv_heads * head_dim * bytes (Llama-2-7B: 512 KiB)."""
    return 2 * arch.num_layers * arch.num_kv_heads * arch.head_dim * bytes_per


def estimate_inference(arch: Architecture, gpu: GPU, prompt_tokens: int, output_tokens: int,
                       requests_per_month: float, concurrency: int = 16, weight_bits: int = 16,
                       max_utilisation: float = 0.5) -> InferenceEstimate:
    """Self-hosted serving with continuous batching.

    Prefill is compute-bound (2 * N_active FLOPs per prompt token); decode is bandwidth-bound:
    each step streams all weights, so batch-1 tokens/s <= bandwidth / weight bytes (design.md §8),
    and a batch of `concurrency` requests shares that stream until compute binds. Replicas are
    sized so the busiest month keeps GPUs at most `max_utilisation` busy (traffic is bursty),
    with at least one always-on replica.
    """
    weight_bytes = arch.total_params * weight_bits / 8
    ctx = prompt_tokens + output_tokens
    kv_tok = kv_bytes_per_token(arch)
    kv = kv_tok * ctx * concurrency
    need = weight_bytes + kv + CUDA_OVERHEAD_GB * GB
    per_replica = max(1, math.ceil(need / (0.9 * gpu.memory_gb * GB)))
    peak = per_replica * gpu.bf16_tflops * 1e12
    bw = per_replica * gpu.bandwidth_gbs * 1e9 * DECODE_BANDWIDTH_EFF
    flops_tok = inference_flops_per_token(arch, ctx // 2)
    prefill_tps = peak * PREFILL_MFU / flops_tok
    step_bandwidth = (arch.active_params * weight_bits / 8 + kv_tok * ctx * concurrency / 2) / bw
    step_compute = concurrency * flops_tok / (peak * PREFILL_MFU)
    step = max(step_bandwidth, step_compute)
    decode_tps = concurrency / step
    decode_b1 = 1 / max((arch.active_params * weight_bits / 8) / bw, flops_tok / (peak * PREFILL_MFU))
    sec_per_req = prompt_tokens / prefill_tps + output_tokens / decode_tps   # replica-seconds
    busy_hours = requests_per_month * sec_per_req / 3600
    replicas = max(1, math.ceil(busy_hours / (730 * max_utilisation)))
    gpu_hours = replicas * per_replica * 730
    return InferenceEstimate(
        weights_gb=weight_bytes / GB, kv_cache_gb=kv / GB, kv_bytes_per_token=kv_tok, memory_gb=need / GB,
        gpus_per_replica=per_replica, prefill_tokens_per_s=prefill_tps, decode_tokens_per_s_batch1=decode_b1,
        decode_tokens_per_s=decode_tps, concurrency=concurrency, gpu_seconds_per_request=sec_per_req * per_replica,
        replicas=replicas, monthly_gpu_hours=gpu_hours, monthly_usd=gpu_hours * gpu.usd_per_hour)


def hosted_monthly_usd(total_params: int, requests_per_month: float, input_tokens: float, output_tokens: float,
                       cached_input_tokens: float = 0.0) -> float:
    """Serverless price: tokens x list price of the model's size tier (advisor/data/api_prices.yaml)."""
    from advisor.catalog import api_prices
    prices = api_prices()
    tier = prices.tier_for(total_params)
    per_req = (input_tokens * tier.input_per_m + cached_input_tokens * tier.input_per_m * prices.cached_input_factor
               + output_tokens * tier.output_per_m) / 1e6
    return requests_per_month * per_req
