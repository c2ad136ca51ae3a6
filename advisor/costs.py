"""The cost interface: what each path costs for a project spec, built on advisor.estimate.

`path_costs(spec)` returns a PathCost per path: the cheapest *setup* (base model from the
catalog's ladder, GPU type and count, serving precision, hosted or self-hosted) that is feasible
and adequate, with whole costs - compute x (1 + experiments), people, labels, evaluation, then
serving and upkeep per month - broken down, and the best alternative setups. The rules and
reports read only these. The assumptions are named constants here, each with its source; the
economic ones are overridable in the spec's `economics:` section.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from advisor import catalog, paths, retrieval
from advisor.architecture import Architecture
from advisor.catalog import CONFIG_DEFAULT_WINDOW, context_window  # noqa: F401 (the window is read from the config)
from advisor.errors import UserError
from advisor.estimate import (
    MEMORY_MARGIN,
    TrainEstimate,
    TrainSetup,
    chinchilla_tokens,
    estimate_inference,
    estimate_training,
    hosted_monthly_usd,
)
from advisor.spec import FREQUENCY_PER_YEAR, ProjectSpec
from advisor.textio import days_over

PATHS = paths.NAMES
TUNED = tuple(p.name for p in paths.PATHS if p.training_stage)   # the paths that train a model

FEW_SHOT_EXAMPLES = 5          # k-shot prompting (Brown et al. 2020 used 10-100; 5 keeps prompts short)
RAG_TOP_K = retrieval.TOP_K    # passages per request (advisor/retrieval.py, shared with rag/)
RAG_CHUNK_TOKENS = retrieval.CHUNK_TOKENS
IN_CONTEXT_LIMIT = 200_000     # a knowledge base below ~200K tokens fits in the prompt with caching
                               # (Anthropic, "Contextual Retrieval", 2024) - if the model's window holds it
INSTRUCTION_RESERVE = 1_000    # tokens of the window kept for the system instructions
SFT_EPOCHS = 3                 # Alpaca (Taori et al. 2023) and most SFT recipes train 3 epochs on small sets
SFT_LARGE_EPOCHS = 2           # Tulu 3 (Lambert et al. 2024) trained 2 epochs on its 939k-example SFT mix
SFT_MAX_EXAMPLES = 1_000_000   # data cap: published SFT mixes stop near 1M examples (Tulu 3: 939k); more
                               # labels are subsampled, not all trained on
SFT_SEQ_LEN = 2048             # packed sequences
SFT_SEQ_LENS = (SFT_SEQ_LEN, 1024, 512)  # tried in turn when a row of SFT_SEQ_LEN does not fit
# Rows per optimizer step, which set how often the (bandwidth-bound) update runs: Llama 2's SFT used batches of
# 64 and its pretraining 4M-token batches (Touvron et al. 2023, §3.1 and Table 1).
SFT_GLOBAL_BATCH_ROWS = 64
PRETRAIN_GLOBAL_BATCH_TOKENS = 4_000_000
CPT_MIN_TOKENS = 1_000_000_000  # "billions of tokens": where LoRA falls short of full continued pretraining
                               # (Biderman et al. 2024, 'LoRA Learns Less and Forgets Less', 20B-token CPT runs)
MAX_REPEAT_EPOCHS = 4          # up to ~4 epochs of repeated data is nearly as good as unique data
                               # (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models")
EMBED_PARAMS = retrieval.EMBED_PARAMS   # the default embedder: 2 * N FLOPs per token
EMBED_MFU = 0.3               # assumed: small-encoder batches use GPUs poorly
# Tuning the embedder on retrieval pairs (`tunepath rag tune`): TUNE_EPOCHS passes over (query, positive,
# BM25 hard negative) triples, each text at most one chunk long, at 6·N FLOPs per token (Kaplan et
# al. 2020); then the corpus is embedded with the tuned model instead of the base one (no extra pass).
EMBED_TUNE_EPOCHS = retrieval.TUNE_EPOCHS
EMBED_TUNE_TEXTS_PER_PAIR = 3
# Real utilisation of short runs: a run also spends wall time on start-up, loading the weights,
# evaluation and checkpoint saves, billed on every GPU of the job. Documented SFT runs of the same
# 52k Alpaca examples on 8 A100s took 30 min (Databricks Dolly, 6B) and 3 h (Stanford Alpaca, 7B);
# pure-compute estimates give ~20 min. Assumed: 1 wall-hour per run.
RUN_OVERHEAD_HOURS = 1.0
TUNED_DOWNSIZE = 4            # a tuned model may be up to 4x smaller than the prompted base model when the
                              # task is not complex and >= 1,000 labels exist (Zhao et al. 2024, 'LoRA Land':
                              # LoRA-tuned 7B models beat GPT-4 on most of 31 narrow tasks)
TUNED_DOWNSIZE_MIN_LABELS = 1000
# Classification needs no generative breadth: fine-tuned RoBERTa-size models (125M-355M) beat zero-shot GPT-4 and
# Claude Opus on every classification task tested, from a few hundred labels (Bucher & Martini 2024,
# arXiv:2406.08660). With as many labels, a classifier may step down to the family's smallest model.
TUNED_ANY_SIZE_KINDS = ("classification",)
# Consumer cards have no NVLink and their driver licence excludes datacenter deployment (NVIDIA GeForce
# software licence, 2017): one server of them at most.
MAX_TRAIN_GPUS = {"RTX-3090": 8, "RTX-4090": 8, "RTX-5090": 8}
# A smaller sibling must share the spec's tokenizer (vocabularies within 1 %): owner and architecture alone put
# Llama 2 7B (32K vocabulary, 4K window, 2T training tokens; Touvron et al. 2023) under Llama 3.1 8B (128K
# vocabulary, 128K window, 15T tokens; Dubey et al. 2024), and the search picked the 2023 model to save the
# compute of 16 % fewer parameters. A new tokenizer marks a new generation; Qwen2.5's sizes differ in padding only
# (151,936 / 152,064).
SAME_VOCAB = 0.01
TRAIN_COUNTS = {"peft": (1, 2, 4, 8), "full_finetuning": (1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
                "pretraining": (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)}
# Serving precision: weight bits, and the quality caveat that goes with it.
PRECISIONS = {16: "bf16 weights",
              8: "int8 weights (near-lossless: Dettmers et al. 2022, LLM.int8())",
              4: "int4 weights (small quality loss, measure it: Frantar et al. 2023 GPTQ, Lin et al. 2024 AWQ)"}

# --- economics defaults (spec.economics overrides each) -------------------------------------
ENGINEER_DAY_USD = 720.0
SETUP_DAYS = {p.name: p.setup_days for p in paths.PATHS}   # assumed engineer-days (advisor/paths.py)
EXPERIMENTS = {"prompting": 0, "rag": 1, "peft": 4, "full_finetuning": 2, "pretraining": 0.5}
LABEL_USD_PER_EXAMPLE = 2.0
EVAL_USD = 0.0
RETRAIN_PER_YEAR = 2.0
RETRAIN_DAYS = 2              # engineer-days to rerun, evaluate and ship a retrained model (assumed)
ECONOMICS_SOURCES = {
    "engineer_day_usd": "US BLS OEWS May 2023, software developers (15-1252): median $132,270/year = $509 per "
                        "working day; BLS ECEC: wages are ~70 % of employer cost -> ~$720/day loaded",
    "setup_days": "assumed engineer-days to a first result; edit economics.setup_days to your team's pace",
    "experiments": "assumed runs before the one that ships: a learning-rate/rank sweep for PEFT (Biderman et al. "
                   "2024 swept 4+ learning rates per setting), fewer for costly full runs, small-scale ablations "
                   "for pretraining; economics.experiments overrides",
    "label_usd_per_example": "assumed ~$2 per expert-checked example; crowd labels cost less, expert answers more",
    "eval_usd": "evaluation spend besides engineer time (raters, judge API calls); 0 unless given",
    "retrain_per_year": "base-model upgrades: Llama 2 (Jul 2023), Llama 3 (Apr 2024), Llama 3.1 (Jul 2024) -> "
                        "about 2 retrains a year of a tuned model",
    "horizon_months": "paths are compared on one-off + horizon x monthly cost",
}


@dataclass
class PathCost:
    path: str
    one_off_usd: float            # compute x (1 + experiments) + people + labels + evaluation
    monthly_usd: float            # serving + upkeep (re-indexing or retraining amortised)
    time_to_first_result_days: float
    gpu_hours: float
    memory_gb_per_gpu: float | None
    gpu_memory_gb: float | None
    fits: bool
    serving: str
    method: str | None = None
    training_tokens: float | None = None
    prompt_tokens_per_request: float = 0
    cash_one_off_usd: float = 0.0  # what the one-off budget pays: compute, labels, evaluation (not salaries)
    cash_monthly_usd: float = 0.0  # what the monthly budget pays: serving, re-indexing and retraining compute,
                                   # evaluation (not salaries, like the one-off budget)
    horizon_months: int = 12
    breakdown: dict[str, float] = field(default_factory=dict)
    setup: dict[str, Any] = field(default_factory=dict)
    alternatives: list[dict] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)   # constraints the chosen setup still misses (nearest miss)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def total_usd(self, months: int | None = None) -> float:
        return self.one_off_usd + (self.horizon_months if months is None else months) * self.monthly_usd


# --- spec helpers --------------------------------------------------------------------------

def econ(spec: ProjectSpec) -> dict:
    """The economics in force: the spec's values over the sourced defaults."""
    e = spec.economics
    return {
        "engineer_day_usd": ENGINEER_DAY_USD if e.engineer_day_usd is None else e.engineer_day_usd,
        "setup_days": {**SETUP_DAYS, **e.setup_days},
        "experiments": {**EXPERIMENTS, **e.experiments},
        "label_usd_per_example": LABEL_USD_PER_EXAMPLE if e.label_usd_per_example is None else e.label_usd_per_example,
        "labeled_examples_needed": e.labeled_examples_needed or 0,
        "eval_usd": EVAL_USD if e.eval_usd is None else e.eval_usd,
        "retrain_per_year": RETRAIN_PER_YEAR if e.retrain_per_year is None else e.retrain_per_year,
        "horizon_months": e.horizon_months,
    }


def tuned_labels(spec: ProjectSpec) -> int:
    """Labels the tuned paths train on: those that exist, or more when economics says they will be bought."""
    need = spec.economics.labeled_examples_needed or 0
    return max(spec.data.labeled_examples, need)


def few_shot_tokens(spec: ProjectSpec) -> int:
    return min(FEW_SHOT_EXAMPLES, spec.data.labeled_examples) * spec.data.avg_example_tokens


def needs_knowledge(spec: ProjectSpec) -> bool:
    return spec.knowledge.source_documents > 0 and spec.knowledge.in_base_model.value != "most"


def sft_examples_trained(n: int) -> float:
    """Example-passes of SFT on n labels: 3 epochs on small sets, 2 on large ones (never fewer passes for
    more data), and at most SFT_MAX_EXAMPLES examples (data cap)."""
    n = min(n, SFT_MAX_EXAMPLES)
    return min(SFT_EPOCHS * n, max(SFT_EPOCHS * 100_000, SFT_LARGE_EPOCHS * n))


def sft_tokens(spec: ProjectSpec) -> float:
    return sft_examples_trained(tuned_labels(spec)) * spec.data.avg_example_tokens


def cpt_tokens(spec: ProjectSpec) -> float:
    """Continued pretraining on the unlabeled corpus (one epoch), when the domain shifts."""
    k = spec.knowledge
    return float(k.corpus_tokens) if k.domain_shift.value != "none" else 0.0


def pretraining_tokens(arch: Architecture) -> float:
    return chinchilla_tokens(arch.total_params)


def ladder(spec: ProjectSpec, path: str) -> list[str]:
    """Base models the search may use for `path`: the spec's model, plus (unless model.fixed) catalog models
    of the same family (owner and architecture) that are adequate: as large or larger for prompted paths;
    for tuned paths down to 1/TUNED_DOWNSIZE of its size when the task is not complex and >= 1,000 labels
    exist (any smaller size for classification), never larger (a larger model costs more to tune and to serve).
    A smaller one must share the spec's tokenizer (SAME_VOCAB). Pretraining prices the spec's architecture only."""
    base = spec.model.base
    if spec.model.fixed or path == "pretraining":
        return [base]
    models = catalog.models()
    # An Instruct/chat id the catalog resolves to its base's config (Qwen/Qwen2.5-14B-Instruct -> Qwen2.5-14B)
    # steps along that base's family too; a config.json path has no family.
    row = base if base in models else catalog.model_config(base)[0]
    if row not in models:
        return [base]
    arch = catalog.architecture(base)
    owner = base.split("/")[0]
    tuned = path in ("peft", "full_finetuning")
    floor, ceiling = arch.total_params, math.inf
    if tuned:   # a bigger model is never a cheaper one to tune and serve: tuned paths only step down
        ceiling = arch.total_params
        if spec.task.complexity.value != "high" and tuned_labels(spec) >= TUNED_DOWNSIZE_MIN_LABELS:
            floor = 0 if spec.task.kind.value in TUNED_ANY_SIZE_KINDS else arch.total_params / TUNED_DOWNSIZE
    out, seen = [base], {models[row].path}
    for mid, m in models.items():
        if m.path in seen or not mid.startswith(owner + "/") or ":" in mid:
            continue
        try:
            a = catalog.architecture(mid)
        except Exception:   # a catalog row that does not parse is not a candidate  # noqa: BLE001
            continue
        if a.total_params < arch.total_params and abs(a.vocab_size - arch.vocab_size) > SAME_VOCAB * arch.vocab_size:
            continue    # smaller, but another generation: not the spec's model made smaller (see SAME_VOCAB)
        if a.model_type == arch.model_type and floor <= a.total_params and (
                a.total_params < ceiling or (not tuned and a.total_params >= ceiling)):
            out.append(mid)
            seen.add(m.path)
    return out


def _gpu_ids(spec: ProjectSpec) -> list[str]:
    """The GPU types the search tries: the spec's alone when fixed, else every catalog GPU with a price (one
    without cannot be compared on cost: skipped_gpus says which and why)."""
    return [spec.constraints.gpu] if spec.constraints.gpu_fixed else list(catalog.priced_gpus())


def skipped_gpus(spec: ProjectSpec) -> dict[str, str]:
    """Catalog GPUs the search leaves out, each with the reason (reports list them beside the assumptions)."""
    if spec.constraints.gpu_fixed:
        return {}
    return {g.id: g.no_price_reason() for g in catalog.gpus().values() if not g.priced}


def _check_priced(spec: ProjectSpec) -> None:
    """The spec's own GPU prices RAG's embedding (and every run when gpu_fixed): it needs a price."""
    g = catalog.gpu(spec.constraints.gpu)
    if not g.priced:
        raise UserError(f"constraints.gpu: {g.no_price_reason()}, or name a GPU with a price (`tunepath gpus`): "
                        "the advisor costs every path on it")


# --- serving -------------------------------------------------------------------------------

@dataclass
class Serving:
    monthly_usd: float
    how: str
    per_request_usd: float
    precision: str = "bf16 weights"
    hosted: bool = False
    gpu: str | None = None     # the catalog id of a self-hosted deployment's GPU


@lru_cache(maxsize=4096)
def _self_hosted(model: str, gpu_id: str, in_tokens: int, out_tokens: int, n: int, bits: int):
    arch = catalog.architecture(model)
    return estimate_inference(arch, catalog.gpu(gpu_id), in_tokens, out_tokens, n, weight_bits=bits)


def serving_options(spec: ProjectSpec, model: str, input_tokens: float, cached_tokens: float = 0,
                    hosted_allowed: bool = True) -> list[Serving]:
    """Every way to serve `model`: self-hosted on each GPU type at each allowed precision, and a hosted API
    when data may leave; cheapest first."""
    t = spec.traffic
    n = t.requests_per_month
    if n == 0:
        return [Serving(monthly_usd=0.0, how="no traffic", per_request_usd=0.0)]
    bits_allowed = (16, 8) if spec.task.complexity.value == "high" else (16, 8, 4)
    out = []
    for gid in _gpu_ids(spec):
        for bits in bits_allowed:
            inf = _self_hosted(model, gid, int(input_tokens + cached_tokens), t.output_tokens, n, bits)
            full = PRECISIONS[bits]
            if bits == 16 and not catalog.gpu(gid).bf16:
                full = "fp16 weights (this GPU has no bf16)"
            prec = full.split(" (")[0]
            out.append(Serving(monthly_usd=inf.monthly_usd, per_request_usd=inf.monthly_usd / n,
                               how=f"self-hosted: {inf.replicas} replica{'s' * (inf.replicas != 1)} x "
                                   f"{inf.gpus_per_replica} {gid}, {prec}",
                               precision=full, gpu=gid))
    if spec.constraints.data_may_leave and hosted_allowed:
        arch = catalog.architecture(model)
        usd = hosted_monthly_usd(arch.total_params, n, input_tokens, t.output_tokens, cached_tokens,
                                 moe=arch.num_experts > 0)
        out.append(Serving(monthly_usd=usd, how="hosted API (serverless price by model size)",
                           per_request_usd=usd / n, precision="provider's weights", hosted=True))
    # cheapest first; on equal price prefer full precision, then self-hosting (fewer caveats)
    return sorted(out, key=lambda s: (round(s.monthly_usd, 6), "bf16" not in s.precision, s.hosted))


# --- training ------------------------------------------------------------------------------

# Micro-batches tried on several GPUs: a larger one moves the same parameters and gradients for more tokens
# (ZeRO-3 gathers every parameter per micro-batch), where memory allows.
MULTI_GPU_MICRO_BATCHES = (1, 2, 4, 8)


@lru_cache(maxsize=8192)
def _train_est(model: str, gpu_id: str, count: int, method: str, tokens: float,
               ckpt: bool | None, seq_len: int = SFT_SEQ_LEN, micro_batch: int = 1,
               zero: int | None = None) -> TrainEstimate:
    """One priced run. ZeRO-3 (FSDP full sharding) by default for full fine-tuning and pretraining on several GPUs;
    adapters choose (`zero`): data-parallel copies of the frozen weights, or ZeRO-3 shards of them."""
    arch = catalog.architecture(model)
    window = context_window(model) or seq_len
    seq = min(seq_len, window)
    rows = PRETRAIN_GLOBAL_BATCH_TOKENS // seq if method == "pretrain" else SFT_GLOBAL_BATCH_ROWS
    setup = TrainSetup(method=method, tokens=max(tokens, 1.0), seq_len=seq, gpus=count, micro_batch=micro_batch,
                       grad_accum=max(1, math.ceil(rows / (count * micro_batch))),
                       zero=(zero if zero is not None else 3 if method in ("full", "pretrain") else 0) if count > 1 else 0,
                       grad_checkpointing=ckpt, target_modules="all-linear")
    return estimate_training(arch, catalog.gpu(gpu_id), setup)


def run_hours(est: TrainEstimate) -> float:
    """Wall hours of one run: compute plus the fixed start-up/evaluation/checkpoint overhead."""
    return est.hours + RUN_OVERHEAD_HOURS


def run_usd(est: TrainEstimate, gpu_id: str, count: int) -> float:
    return run_hours(est) * count * catalog.gpu(gpu_id).usd_per_hour


@dataclass
class _TrainChoice:
    est: TrainEstimate
    gpu: str
    count: int
    ckpt: bool
    zero: int = 0


def _fit_at(model: str, gid: str, count: int, methods: tuple[str, ...], tokens: float,
            min_seq: int = 0) -> _TrainChoice | None:
    """The first method (e.g. LoRA, then QLoRA when 16-bit weights don't fit: Dettmers et al. 2023) and
    checkpointing setting that fits `count` GPUs of type `gid`, or None. Rows never get shorter than
    `min_seq`, the average labeled example: a packed row shorter than its examples would cut them."""
    # examples longer than the default row get rows of the next power of two that holds them (the window caps it)
    seqs = tuple(s for s in SFT_SEQ_LENS if s >= min_seq) or (1 << max(0, min_seq - 1).bit_length(),)
    capacity = catalog.gpu(gid).memory_bytes
    # first a setup with a margin (published runs at a card's limit peaked above the estimate: MEMORY_MARGIN),
    # then any that fits
    for limit in (MEMORY_MARGIN * capacity, capacity):
        for m in methods:
            for ckpt in (None, True):     # None: the method's own default (qlora checkpoints, as peft runs it)
                # shorter packed rows when the default's activations don't fit: the same tokens in more steps
                # (the QLoRA paper trained Guanaco 65B on one 48 GB GPU with 512-token examples, Dettmers et
                # al. 2023, App. B)
                for seq in seqs:
                    # 16-bit LoRA over several GPUs may shard its frozen weights (FSDP / ZeRO-3, as peft's
                    # FSDP guide: SFT of Llama-70B with LoRA and FSDP on 8 x H100 80GB) instead of falling back to QLoRA
                    zeros = (0, 3) if count > 1 and m in ("lora", "dora") else (None,)
                    ests = [(_train_est(model, gid, count, m, tokens, ckpt, seq, mb, z), z)
                            for mb in (MULTI_GPU_MICRO_BATCHES if count > 1 else (1,)) for z in zeros]
                    ok = [(e, z) for e, z in ests if e.fits and e.memory.total <= limit]
                    if ok:
                        est, z = min(ok, key=lambda ez: ez[0].hours)
                        zero = (z if z is not None else 3 if m in ("full", "pretrain") else 0) if count > 1 else 0
                        return _TrainChoice(est, gid, count, est.grad_checkpointing, zero)
    return None


def _first(counts: tuple[int, ...], ok) -> int | None:
    """Index of the first count where the monotone predicate `ok` holds (binary search), or None."""
    lo, hi = 0, len(counts)
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(counts[mid]):
            hi = mid
        else:
            lo = mid + 1
    return lo if lo < len(counts) else None


def _train_options(spec: ProjectSpec, path: str, model: str, methods: tuple[str, ...], tokens: float,
                   days_budget: float | None) -> list[_TrainChoice]:
    """Per GPU type, the smallest count that fits memory and the deadline: GPU-hours barely change with the
    count, so fewer GPUs is cheaper (less idle overhead). Fitting and finishing in time only get easier with
    more GPUs (ZeRO-3 divides the states), so a binary search finds it. When no count meets the deadline,
    the smallest and the fastest fitting setups are kept for the nearest miss."""
    out = []
    for gid in _gpu_ids(spec):
        counts = (spec.constraints.gpu_count,) if spec.constraints.gpu_fixed else \
            tuple(n for n in TRAIN_COUNTS[path] if n <= MAX_TRAIN_GPUS.get(gid, n)) or TRAIN_COUNTS[path][:1]
        memo: dict[int, _TrainChoice | None] = {}

        def fit(n: int) -> _TrainChoice | None:
            if n not in memo:
                memo[n] = _fit_at(model, gid, n, methods, tokens,
                                  min_seq=0 if path == "pretraining" else spec.data.avg_example_tokens)
            return memo[n]

        def in_time(n: int) -> bool:
            hit = fit(n)
            return hit is not None and (days_budget is None or run_hours(hit.est) / 24 <= days_budget)

        def roomy(n: int) -> bool:    # in time and within the memory margin (see _choose): the smallest count
            hit = fit(n)              # that fits at the card's limit is not the one to pick when more cards leave room
            return in_time(n) and hit.est.memory.total <= MEMORY_MARGIN * catalog.gpu(gid).memory_bytes

        i = _first(counts, roomy)
        if i is None:
            i = _first(counts, in_time)
        if i is not None:
            out.append(fit(counts[i]))
            continue
        j = _first(counts, lambda n: fit(n) is not None)
        if j is None:     # nothing fits: keep the largest setup tried, for the memory reason
            out.append(_TrainChoice(_train_est(model, gid, counts[-1], methods[-1], tokens, True), gid, counts[-1],
                                    True))
            continue
        out.append(fit(counts[j]))
        if j < len(counts) - 1 and fit(counts[-1]) is not None:
            out.append(fit(counts[-1]))
    return out


# --- whole costs ---------------------------------------------------------------------------

STRUCTURAL_MISS = 1000.0   # a setup that cannot run at all is farther than any budget or deadline overshoot


def _misses(spec: ProjectSpec, cash: float, cash_monthly: float, days: float, fits: bool,
            window_miss: str | None) -> list[tuple[float, str]]:
    """Constraints a setup misses, each with how far (relative overshoot) - the nearest miss is the smallest."""
    c = spec.constraints
    out = []
    if window_miss:
        out.append((STRUCTURAL_MISS, f"context window ({window_miss})"))
    if not fits:
        out.append((STRUCTURAL_MISS, "GPU memory"))
    if cash > c.budget_usd + 0.01:          # below a cent is rounding
        out.append(((cash - c.budget_usd) / max(c.budget_usd, 1.0), f"one-off budget by {_usd(cash - c.budget_usd)}"))
    if c.monthly_budget_usd is not None and cash_monthly > c.monthly_budget_usd + 0.01:
        out.append(((cash_monthly - c.monthly_budget_usd) / max(c.monthly_budget_usd, 1.0),
                    f"monthly budget by {_usd(cash_monthly - c.monthly_budget_usd)}"))
    if c.deadline_days is not None and days > c.deadline_days:
        out.append(((days - c.deadline_days) / c.deadline_days, f"deadline by {days_over(days - c.deadline_days)}"))
    return out


def _usd(x: float) -> str:
    from advisor.textio import usd
    return usd(x)


def _candidate(spec: ProjectSpec, path: str, model: str, srv: Serving, train: _TrainChoice | None,
               tokens: float, compute_usd: float, first_days_compute: float, extra: dict,
               window_miss: str | None, e: dict | None = None) -> tuple[PathCost, list[tuple[float, str]]]:
    e = e or econ(spec)
    days = e["setup_days"][path]
    people = days * e["engineer_day_usd"]
    labels = 0.0
    if path in ("peft", "full_finetuning"):
        labels = max(0, tuned_labels(spec) - spec.data.labeled_examples) * e["label_usd_per_example"]
    compute_all = compute_usd * (1 + e["experiments"][path])
    one_off = compute_all + people + labels + e["eval_usd"]
    cash = compute_all + labels + e["eval_usd"]
    upkeep = upkeep_cash = 0.0
    if path == "rag":
        upkeep = upkeep_cash = extra.pop("reindex_usd_per_month", 0.0)
    elif path in ("peft", "full_finetuning") and e["retrain_per_year"]:
        upkeep_cash = e["retrain_per_year"] / 12 * (compute_usd + e["eval_usd"])
        upkeep = upkeep_cash + e["retrain_per_year"] / 12 * RETRAIN_DAYS * e["engineer_day_usd"]
    monthly = srv.monthly_usd + upkeep
    ttfr = days + first_days_compute
    est = train.est if train else None
    arch = catalog.architecture(model)
    setup = {"model": model, "params": arch.total_params, "context_window": context_window(model),
             "serving": srv.how, "serving_precision": srv.precision, "hosted": srv.hosted, "serving_gpu": srv.gpu,
             "train_gpu": train.gpu if train else None, "train_gpus": train.count if train else None,
             "grad_checkpointing": train.ckpt if train else None, "train_seq_len": est.seq_len if est else None,
             "train_zero": train.zero if train else None,
             "train_micro_batch": est.micro_batch if est else None}
    cost = PathCost(
        path=path, one_off_usd=one_off, monthly_usd=monthly, time_to_first_result_days=ttfr,
        gpu_hours=(run_hours(est) * train.count if est else extra.get("gpu_hours", 0.0)),
        memory_gb_per_gpu=est.memory_per_gpu_gb if est else None, gpu_memory_gb=est.gpu_memory_gb if est else None,
        fits=est.fits if est else True, serving=srv.how, method=est.method if est else None,
        training_tokens=tokens if est else None, prompt_tokens_per_request=extra.pop("prompt_tokens", 0),
        cash_one_off_usd=cash, cash_monthly_usd=srv.monthly_usd + upkeep_cash, horizon_months=e["horizon_months"],
        breakdown={"compute": compute_all, "people": people, "labels": labels, "evaluation": e["eval_usd"],
                   "serving_per_month": srv.monthly_usd, "upkeep_per_month": upkeep},
        setup=setup,
        details={**extra, "per_request_usd": srv.per_request_usd, "window_miss": window_miss,
                 "runs": 1 + e["experiments"][path],    # the run that ships plus the experiments before it
                 "retrains_per_year": e["retrain_per_year"] if path in ("peft", "full_finetuning") else 0,
                 **({"flops": est.flops, "trainable_params": est.trainable_params, "mfu": est.mfu,
                     "_est": est, "training_hours": run_hours(est)} if est else {})})
    return cost, _misses(spec, cash, cost.cash_monthly_usd, ttfr, cost.fits, window_miss)


def setup_gpus(setup: dict) -> list[str]:
    """The catalog ids of the GPUs a priced setup trains and serves on, once each."""
    return list(dict.fromkeys(g for g in (setup.get("train_gpu"), setup.get("serving_gpu")) if g))


# Costs within a dollar or 0.5 % of each other are one cost: the estimate cannot tell them apart (the report's
# break-even rounding; the estimator's own error is tens of %, docs/validation.md)
SAME_COST_USD, SAME_COST_REL = 1.0, 0.005


def _choose(cands: list[tuple[PathCost, list[tuple[float, str]]]], held=lambda cost: 0,
            base: str | None = None) -> PathCost:
    """Cheapest feasible setup over the horizon; if none is feasible, the nearest miss (smallest overshoot).
    `held` ranks before cost what a setup gives the task (prompting: the few-shot examples its window holds), so
    that a setup is never chosen for being cheaper only because it holds less. A setup on another model than the
    spec's `base` must be cheaper by more than rounding (SAME_COST_*): the search does not swap the model the user
    named (say Llama-3.1-8B for the older Llama-2-7b of its ladder) to save $5 a year."""
    def key(c):
        cost, misses = c
        # among setups whose context window is too short, the nearest miss is the longest window (the reason then
        # names the model that came closest, not the cheapest one)
        short = any(m[1].startswith("context window") for m in misses)
        # a setup at 80-100 % of its cards' memory is chosen only when none leaves the margin (MEMORY_MARGIN:
        # published runs at a card's limit peaked above the estimate), on any GPU type, not just on its own
        tight = bool(cost.memory_gb_per_gpu and cost.gpu_memory_gb
                     and cost.memory_gb_per_gpu > MEMORY_MARGIN * cost.gpu_memory_gb)
        return (bool(misses), sum(m[0] for m in misses), -(cost.setup.get("context_window") or 0) if short else 0,
                tight, -held(cost), round(cost.total_usd(), 2), cost.setup["params"], cost.setup.get("train_gpus") or 0)
    ranked = sorted(cands, key=key)
    if base is not None and not ranked[0][1] and ranked[0][0].setup["model"] != base:
        top = ranked[0][0]
        limit = top.total_usd() + max(SAME_COST_USD, SAME_COST_REL * top.total_usd())
        same = [c for c in ranked if c[0].setup["model"] == base and key(c)[:5] == key(ranked[0])[:5]
                and c[0].total_usd() <= limit]
        if same:
            ranked.remove(same[0])
            ranked.insert(0, same[0])
    best, misses = ranked[0]
    best.misses = [m[1] for m in misses]
    best.details["miss_score"] = sum(m[0] for m in misses)
    est = best.details.pop("_est", None)
    if est is not None:
        best.details["memory_gb"] = est.memory.as_gb()
    alts, seen = [], {best.setup["model"] + best.serving + str(best.setup.get("train_gpu"))}
    for cost, m in ranked[1:]:
        sig = cost.setup["model"] + cost.serving + str(cost.setup.get("train_gpu"))
        if sig in seen:
            continue
        seen.add(sig)
        alts.append({"model": cost.setup["model"], "train": (f"{cost.setup['train_gpus']} x {cost.setup['train_gpu']}"
                                                              if cost.setup.get("train_gpu") else None),
                     "serving": cost.serving, "one_off_usd": round(cost.one_off_usd, 2),
                     "monthly_usd": round(cost.monthly_usd, 2), "total_usd": round(cost.total_usd(), 2),
                     "misses": [x[1] for x in m]})
        if len(alts) == 3:
            break
    best.alternatives = alts
    return best


def _prompting(spec: ProjectSpec) -> PathCost:
    t, k = spec.traffic, spec.knowledge
    kb = k.corpus_tokens if needs_knowledge(spec) else 0
    cands = []
    for model in ladder(spec, "prompting"):
        window = context_window(model) or 10 ** 9
        bare = INSTRUCTION_RESERVE + t.prompt_tokens + t.output_tokens
        avg = max(1, spec.data.avg_example_tokens)
        # as many few-shot examples as the window leaves room for, up to FEW_SHOT_EXAMPLES ...
        n_shots = min(FEW_SHOT_EXAMPLES, spec.data.labeled_examples, max(0, window - bare) // avg)
        fixed = bare + kb
        miss = None
        if fixed > window:
            what = "the knowledge base in the prompt" if kb else "the prompt and answer"
            # to the token near the window; ~1.2B, not 1,200,002,100, when it is many windows over
            from advisor.textio import human
            need = f"{fixed:,}" if fixed < 10 * window else f"~{human(fixed)}"
            miss = f"{what} needs {need} tokens, {model}'s context window is {window:,}"
        in_context = 0 if miss else kb     # what does not fit is not sent (nor priced): the path is infeasible
        # ... and the knowledge base comes first: examples fill what it leaves
        n_kb_shots = min(n_shots, max(0, window - fixed) // avg) if in_context else n_shots
        # what the few-shot examples alone cost per month: what every tuned model saves by dropping them
        with_shots = serving_options(spec, model, t.prompt_tokens + n_shots * spec.data.avg_example_tokens)[0]
        without = serving_options(spec, model, t.prompt_tokens)[0]
        # Fewer examples only when the full set misses the monthly budget (so any count a shorter window
        # allows is also tried with a longer one: a longer window never makes prompting infeasible).
        for n in range(n_kb_shots, -1, -1):
            shots = n * spec.data.avg_example_tokens
            srv = serving_options(spec, model, t.prompt_tokens + shots, cached_tokens=in_context)[0]
            cand = _candidate(spec, "prompting", model, srv, None, 0.0, 0.0, 0.0,
                              {"few_shot_tokens": shots, "few_shot_examples": n, "in_context_knowledge_tokens": in_context,
                               "few_shot_tokens_without_knowledge": n_shots * spec.data.avg_example_tokens,
                               "few_shot_usd_per_month": max(0.0, with_shots.monthly_usd - without.monthly_usd),
                               "prompt_tokens": t.prompt_tokens + shots + in_context}, miss)
            cands.append(cand)
            if not any(m[1].startswith("monthly budget") for m in cand[1]):
                break
    # A model whose shorter window holds fewer examples is cheaper per request only because it is shown less of
    # the task (Brown et al. 2020: few-shot accuracy grows with the examples shown): more examples rank first.
    best = _choose(cands, held=lambda cost: cost.details["few_shot_examples"], base=spec.model.base)
    if kb:
        # What the few-shot examples cost is what every tuned model saves by dropping them; it is priced on the
        # deployment prompting would choose without the knowledge base, so a corpus too large for any window
        # (which moves prompting's least-bad choice to another model) does not change it.
        free = _prompting(spec.model_copy(update={"knowledge": spec.knowledge.model_copy(
            update={"source_documents": 0, "corpus_tokens": 0})}))
        for key in ("few_shot_tokens_without_knowledge", "few_shot_usd_per_month"):
            best.details[key] = free.details[key]
    return best


def _rag(spec: ProjectSpec) -> PathCost:
    t, k = spec.traffic, spec.knowledge
    cands = []
    for model in ladder(spec, "rag"):
        window = context_window(model) or 10 ** 9
        room = window - t.prompt_tokens - t.output_tokens
        top_k = min(RAG_TOP_K, max(0, room // RAG_CHUNK_TOKENS)) if (k.source_documents or k.corpus_tokens) else 0
        miss = None
        if (k.source_documents or k.corpus_tokens) and top_k < 1:
            miss = (f"one {RAG_CHUNK_TOKENS}-token passage with the prompt needs "
                    f"{t.prompt_tokens + t.output_tokens + RAG_CHUNK_TOKENS:,} tokens, {model}'s context window is "
                    f"{window:,}")
        context = top_k * RAG_CHUNK_TOKENS
        srv = serving_options(spec, model, t.prompt_tokens + context)[0]
        gpu = catalog.gpu(spec.constraints.gpu)      # embedding is minutes of GPU time: the spec's GPU
        G = spec.constraints.gpu_count
        embed_hours = 2 * EMBED_PARAMS * k.corpus_tokens / (G * gpu.bf16_tflops * 1e12 * EMBED_MFU) / 3600
        embed_usd = embed_hours * G * gpu.usd_per_hour
        pairs = spec.data.retrieval_pairs
        tune_hours = (6 * EMBED_PARAMS * pairs * EMBED_TUNE_TEXTS_PER_PAIR * RAG_CHUNK_TOKENS * EMBED_TUNE_EPOCHS
                      / (G * gpu.bf16_tflops * 1e12 * EMBED_MFU) / 3600)
        tune_usd = tune_hours * G * gpu.usd_per_hour
        reindex = FREQUENCY_PER_YEAR[k.update_frequency] / 12
        chunks = math.ceil(k.corpus_tokens / RAG_CHUNK_TOKENS)
        cands.append(_candidate(
            spec, "rag", model, srv, None, 0.0, embed_usd + tune_usd, (embed_hours + tune_hours) / 24,
            {"retrieved_context_tokens": context, "top_k": top_k, "embedding_hours": embed_hours,
             "chunks": chunks, "index_memory_gb": chunks * (384 * 4 + 256) / 1e9,   # fp32 vectors + HNSW links
             "reindexes_per_month": reindex, "reindex_usd_per_month": reindex * embed_usd,
             "embedder_tuning_pairs": pairs, "embedder_tuning_hours": tune_hours,
             "gpu_hours": (embed_hours + tune_hours) * G, "prompt_tokens": t.prompt_tokens + context}, miss))
    return _choose(cands, base=spec.model.base)


def _tuned(spec: ProjectSpec, path: str, methods: tuple[str, ...], tokens_for) -> PathCost:
    t = spec.traffic
    e = econ(spec)
    c = spec.constraints
    cands = []
    for model in ladder(spec, path):
        arch = catalog.architecture(model)
        tokens = tokens_for(arch)
        days_left = None if c.deadline_days is None else c.deadline_days - e["setup_days"][path]
        srv = serving_options(spec, model, t.prompt_tokens, hosted_allowed=path == "peft")[0]
        for ch in _train_options(spec, path, model, methods, tokens, days_left):
            extra = {"prompt_tokens": t.prompt_tokens}
            if path == "full_finetuning" and cpt_tokens(spec):
                extra["continued_pretraining_tokens"] = cpt_tokens(spec)
            cands.append(_candidate(spec, path, model, srv, ch, tokens, run_usd(ch.est, ch.gpu, ch.count),
                                    run_hours(ch.est) / 24, extra, None, e))
    return _choose(cands, base=spec.model.base)


@lru_cache(maxsize=256)
def _path_costs_cached(spec_json: str) -> dict[str, PathCost]:
    spec = ProjectSpec.model_validate_json(spec_json)
    sft = sft_tokens(spec)
    return {
        # Prompting: instructions + few-shot examples; a knowledge base rides along, cached, if the window holds it.
        "prompting": _prompting(spec),
        # RAG: embed the corpus once (and again on every update), retrieve top-k chunks per request.
        "rag": _rag(spec),
        # PEFT: SFT on the labels; the tuned model needs no few-shot examples. PEFT never reads the corpus.
        "peft": _tuned(spec, "peft", ("lora", "qlora"), lambda a: sft),
        # Full fine-tuning: continued pretraining on the corpus when the domain shifts, then SFT on the labels.
        "full_finetuning": _tuned(spec, "full_finetuning", ("full",), lambda a: sft + cpt_tokens(spec)),
        # Pretraining the base architecture from scratch, Chinchilla-optimal (then SFT, which is tiny).
        "pretraining": _tuned(spec, "pretraining", ("pretrain",), lambda a: pretraining_tokens(a) + sft),
    }


def clear_caches() -> None:
    """Forget cached estimates (after the catalog changed, e.g. a new TUNEPATH_CATALOG)."""
    for f in (_path_costs_cached, _self_hosted, _train_est, context_window):
        f.cache_clear()


def path_costs(spec: ProjectSpec) -> dict[str, PathCost]:
    """Cost of every path for this spec (cached: reports and sensitivity sweeps call it often)."""
    _check_priced(spec)
    return copy.deepcopy(_path_costs_cached(spec.model_dump_json()))
