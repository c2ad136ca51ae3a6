"""The cost interface: what each path costs for a project spec, built on advisor.estimate.

One function, `path_costs(spec)`, returns a PathCost per path; the rules and reports read only
these. The assumptions that turn a spec into a training or serving setup are named constants
here, each with its source.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from advisor import catalog, paths, retrieval
from advisor.architecture import Architecture
from advisor.estimate import (
    TrainEstimate,
    TrainSetup,
    chinchilla_tokens,
    estimate_inference,
    estimate_training,
    hosted_monthly_usd,
)
from advisor.spec import FREQUENCY_PER_YEAR, ProjectSpec

PATHS = paths.NAMES

FEW_SHOT_EXAMPLES = 5          # k-shot prompting (Brown et al. 2020 used 10-100; 5 keeps prompts short)
RAG_TOP_K = retrieval.TOP_K    # passages per request (advisor/retrieval.py, shared with rag/)
RAG_CHUNK_TOKENS = retrieval.CHUNK_TOKENS
IN_CONTEXT_LIMIT = 200_000     # a knowledge base below ~200K tokens fits in the prompt with caching
                               # (Anthropic, "Contextual Retrieval", 2024)
SFT_EPOCHS = 3                 # Alpaca (Taori et al. 2023) and most SFT recipes train 3 epochs
SFT_SEQ_LEN = 2048             # packed sequences
MAX_REPEAT_EPOCHS = 4          # up to ~4 epochs of repeated data is nearly as good as unique data
                               # (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models")
EMBED_PARAMS = retrieval.EMBED_PARAMS   # the default embedder: 2 * N FLOPs per token
EMBED_MFU = 0.3               # assumed: small-encoder batches use GPUs poorly
# Human set-up work before a first result, in days (assumed; advisor/paths.py):
SETUP_DAYS = {p.name: p.setup_days for p in paths.PATHS}


@dataclass
class PathCost:
    path: str
    one_off_usd: float
    monthly_usd: float
    time_to_first_result_days: float
    gpu_hours: float
    memory_gb_per_gpu: float | None
    gpu_memory_gb: float | None
    fits: bool
    serving: str
    method: str | None = None
    training_tokens: float | None = None
    prompt_tokens_per_request: float = 0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def total_usd(self, months: int = 12) -> float:
        return self.one_off_usd + months * self.monthly_usd


@dataclass
class Serving:
    monthly_usd: float
    how: str
    per_request_usd: float


def few_shot_tokens(spec: ProjectSpec) -> int:
    return min(FEW_SHOT_EXAMPLES, spec.data.labeled_examples) * spec.data.avg_example_tokens


def serving(spec: ProjectSpec, arch: Architecture, input_tokens: float, cached_tokens: float = 0,
            hosted_allowed: bool = True) -> Serving:
    """Cheaper of a hosted API (when data may leave) and self-hosting on the spec's GPU type."""
    t = spec.traffic
    n = t.requests_per_month
    if n == 0:
        return Serving(monthly_usd=0.0, how="no traffic", per_request_usd=0.0)
    gpu = catalog.gpu(spec.constraints.gpu)
    inf = estimate_inference(arch, gpu, int(input_tokens + cached_tokens), t.output_tokens, n)
    options = [(inf.monthly_usd, f"self-hosted: {inf.replicas} replica(s) x {inf.gpus_per_replica} {gpu.id}")]
    if spec.constraints.data_may_leave and hosted_allowed:
        options.append((hosted_monthly_usd(arch.total_params, n, input_tokens, t.output_tokens, cached_tokens),
                        "hosted API (serverless price by model size)"))
    usd, how = min(options)
    return Serving(monthly_usd=usd, how=how, per_request_usd=usd / n)


def _train(spec: ProjectSpec, arch: Architecture, method: str, tokens: float) -> TrainEstimate:
    """Cheapest setup that fits: try without, then with gradient checkpointing (and ZeRO-3 on >1 GPU)."""
    gpu = catalog.gpu(spec.constraints.gpu)
    G = spec.constraints.gpu_count
    seq = min(SFT_SEQ_LEN, arch.max_position_embeddings or SFT_SEQ_LEN)
    for ckpt in (False, True):
        setup = TrainSetup(method=method, tokens=max(tokens, 1.0), seq_len=seq, gpus=G,
                           zero=3 if G > 1 and method in ("full", "pretrain") else 0,
                           grad_checkpointing=ckpt, target_modules="all-linear")
        est = estimate_training(arch, gpu, setup)
        if est.fits:
            break
    return est


def _training_path(path: str, spec: ProjectSpec, arch: Architecture, tokens: float, methods: tuple[str, ...],
                   serving_tokens: float) -> PathCost:
    est = None
    for m in methods:             # e.g. LoRA first, QLoRA when 16-bit weights don't fit (Dettmers et al. 2023)
        est = _train(spec, arch, m, tokens)
        if est.fits:
            break
    srv = serving(spec, arch, serving_tokens, hosted_allowed=path == "peft")
    wall_days = est.hours / 24
    return PathCost(
        path=path, one_off_usd=est.cost_usd, monthly_usd=srv.monthly_usd,
        time_to_first_result_days=SETUP_DAYS[path] + wall_days, gpu_hours=est.gpu_hours,
        memory_gb_per_gpu=est.memory_per_gpu_gb, gpu_memory_gb=est.gpu_memory_gb, fits=est.fits, serving=srv.how,
        method=est.method, training_tokens=tokens, prompt_tokens_per_request=serving_tokens,
        details={"flops": est.flops, "trainable_params": est.trainable_params, "mfu": est.mfu,
                 "memory_gb": est.memory.as_gb(), "per_request_usd": srv.per_request_usd,
                 "training_hours": est.hours})


def sft_tokens(spec: ProjectSpec) -> float:
    return spec.data.labeled_examples * spec.data.avg_example_tokens * SFT_EPOCHS


def pretraining_tokens(arch: Architecture) -> float:
    return chinchilla_tokens(arch.total_params)


@lru_cache(maxsize=256)
def _path_costs_cached(spec_json: str) -> dict[str, PathCost]:
    spec = ProjectSpec.model_validate_json(spec_json)
    arch = catalog.architecture(spec.model.base)
    t = spec.traffic
    k = spec.knowledge
    out: dict[str, PathCost] = {}

    # Prompting: instructions + few-shot examples; a small knowledge base rides along, cached.
    shots = few_shot_tokens(spec)
    in_context = k.corpus_tokens if (k.source_documents > 0 and k.corpus_tokens <= IN_CONTEXT_LIMIT) else 0
    srv = serving(spec, arch, t.prompt_tokens + shots, cached_tokens=in_context)
    out["prompting"] = PathCost(
        path="prompting", one_off_usd=0.0, monthly_usd=srv.monthly_usd,
        time_to_first_result_days=SETUP_DAYS["prompting"], gpu_hours=0.0, memory_gb_per_gpu=None,
        gpu_memory_gb=None, fits=True, serving=srv.how, prompt_tokens_per_request=t.prompt_tokens + shots + in_context,
        details={"few_shot_tokens": shots, "in_context_knowledge_tokens": in_context,
                 "per_request_usd": srv.per_request_usd})

    # RAG: embed the corpus once (and again on every update), retrieve top-k chunks per request.
    context = RAG_TOP_K * RAG_CHUNK_TOKENS if k.source_documents > 0 or k.corpus_tokens > 0 else 0
    gpu = catalog.gpu(spec.constraints.gpu)
    G = spec.constraints.gpu_count
    embed_hours = 2 * EMBED_PARAMS * k.corpus_tokens / (G * gpu.bf16_tflops * 1e12 * EMBED_MFU) / 3600
    reindex_per_month = FREQUENCY_PER_YEAR[k.update_frequency] / 12
    chunks = math.ceil(k.corpus_tokens / RAG_CHUNK_TOKENS)
    index_gb = chunks * (384 * 4 + 256) / 1e9      # fp32 vectors + HNSW links (M=32) per vector
    srv = serving(spec, arch, t.prompt_tokens + context)
    out["rag"] = PathCost(
        path="rag", one_off_usd=embed_hours * G * gpu.usd_per_hour,
        monthly_usd=srv.monthly_usd + reindex_per_month * embed_hours * G * gpu.usd_per_hour,
        time_to_first_result_days=SETUP_DAYS["rag"] + embed_hours / 24, gpu_hours=embed_hours * G,
        memory_gb_per_gpu=None, gpu_memory_gb=None, fits=True, serving=srv.how,
        prompt_tokens_per_request=t.prompt_tokens + context,
        details={"retrieved_context_tokens": context, "embedding_hours": embed_hours, "chunks": chunks,
                 "index_memory_gb": index_gb, "reindexes_per_month": reindex_per_month,
                 "per_request_usd": srv.per_request_usd})

    # PEFT and full fine-tuning: SFT on the labeled examples; the tuned model needs no few-shot
    # examples. Full fine-tuning with a domain shift also continues pretraining on the corpus.
    sft = sft_tokens(spec)
    out["peft"] = _training_path("peft", spec, arch, sft, ("lora", "qlora"), t.prompt_tokens)
    cpt = k.corpus_tokens if k.domain_shift.value != "none" else 0
    out["full_finetuning"] = _training_path("full_finetuning", spec, arch, sft + cpt, ("full",), t.prompt_tokens)
    if cpt:
        out["full_finetuning"].details["continued_pretraining_tokens"] = cpt

    # Pretraining the base architecture from scratch, Chinchilla-optimal (then SFT, which is tiny).
    out["pretraining"] = _training_path("pretraining", spec, arch, pretraining_tokens(arch) + sft, ("pretrain",),
                                        t.prompt_tokens)
    return out


def path_costs(spec: ProjectSpec) -> dict[str, PathCost]:
    """Cost of every path for this spec (cached: reports and sensitivity sweeps call it often)."""
    return copy.deepcopy(_path_costs_cached(spec.model_dump_json()))
