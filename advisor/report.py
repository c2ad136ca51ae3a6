"""A cost-comparison report: every number an architect needs to forward the recommendation.

Pure data (a dict that is the JSON report); advisor/report_render.py turns it into HTML and
Markdown from the same numbers, so the formats cannot disagree.
"""
from __future__ import annotations

import math
from typing import Any

from advisor import catalog
from advisor.costs import (
    EMBED_MFU,
    FEW_SHOT_EXAMPLES,
    IN_CONTEXT_LIMIT,
    RAG_CHUNK_TOKENS,
    RAG_TOP_K,
    SETUP_DAYS,
    SFT_EPOCHS,
)
from advisor.errors import UserError
from advisor.estimate import DECODE_BANDWIDTH_EFF, MFU_SOURCE, PREFILL_MFU
from advisor.paths import label
from advisor.recommend import Advice, recommend
from advisor.spec import ProjectSpec, set_dotted, spec_from_dict

MONTHS = 24
MEMORY_WARN = 0.85     # memory above 85 % of a GPU leaves no room for fragmentation or longer batches

# Fields whose change can flip a recommendation, scanned by `sensitivity`.
SENSITIVE_FIELDS = ("traffic.requests_per_month", "traffic.prompt_tokens", "data.labeled_examples",
                    "knowledge.corpus_tokens", "constraints.budget_usd", "constraints.monthly_budget_usd",
                    "constraints.deadline_days", "constraints.gpu_count")
INTEGER_FIELDS = {"traffic.requests_per_month", "traffic.prompt_tokens", "traffic.output_tokens",
                  "data.labeled_examples", "data.avg_example_tokens", "knowledge.corpus_tokens",
                  "knowledge.source_documents", "constraints.gpu_count"}

# Standing risks of each path (what goes wrong in practice), with their source.
PATH_RISKS = {
    "prompting": ["quality is capped by the base model; long prompts cost on every request (seed article)"],
    "rag": ["answers are only as good as retrieval: measure recall@k on your own questions (Lewis et al. 2020)",
            "index freshness depends on the re-indexing pipeline"],
    "peft": ["needs a held-out evaluation set; adapters learn format more than knowledge (Biderman et al. 2024)"],
    "full_finetuning": ["forgets more of the base model than LoRA (Biderman et al. 2024)",
                        "a full copy of the weights to serve and version per release"],
    "pretraining": ["orders of magnitude costlier; months of data and infrastructure work (seed article)",
                    "quality depends on data curation more than on compute (Chinchilla)"],
}


def _get(data: dict, dotted: str):
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _with(spec: ProjectSpec, dotted: str, value) -> ProjectSpec:
    data = set_dotted(spec.model_dump(mode="json"), dotted, value)
    return spec_from_dict(data, f"--vary {dotted}")


def _cast(dotted: str, value: float):
    return int(round(value)) if dotted in INTEGER_FIELDS else float(f"{value:.4g}")


def risks(advice: Advice, spec: ProjectSpec) -> dict[str, list[str]]:
    out = {}
    for r in advice.paths:
        items = list(PATH_RISKS[r.path])
        c = r.cost
        if c.memory_gb_per_gpu and c.gpu_memory_gb and c.fits and c.memory_gb_per_gpu > MEMORY_WARN * c.gpu_memory_gb:
            items.append(f"memory {c.memory_gb_per_gpu:,.0f} of {c.gpu_memory_gb:,.0f} GB per GPU: little headroom")
        d = spec.constraints.deadline_days
        if d and r.feasible and c.time_to_first_result_days > 0.75 * d:
            items.append(f"first result at ~{c.time_to_first_result_days:,.0f} of {d:g} deadline days")
        b = spec.constraints.budget_usd
        if r.feasible and b and c.one_off_usd > 0.75 * b:
            items.append(f"one-off cost uses {100 * c.one_off_usd / b:.0f} % of the budget")
        out[r.path] = items
    return out


def cumulative(advice: Advice, months: int = MONTHS) -> dict[str, list[float]]:
    """Cost of each path after m months, m = 0..months: one-off + m x monthly."""
    return {r.path: [r.cost.one_off_usd + m * r.cost.monthly_usd for m in range(months + 1)] for r in advice.paths}


def break_evens(advice: Advice, months: int = MONTHS) -> list[dict]:
    """Months where a path with a higher one-off cost becomes cheaper overall than another feasible one."""
    feasible = [r for r in advice.paths if r.feasible]
    out = []
    for a in feasible:
        for b in feasible:
            da = b.cost.one_off_usd - a.cost.one_off_usd       # b costs more up front ...
            dm = a.cost.monthly_usd - b.cost.monthly_usd       # ... and less per month
            if da > 0 and dm > 0:
                month = da / dm
                if 0.1 <= month <= months:   # crossings within the first days are not worth a marker
                    out.append({"path": b.path, "overtakes": a.path, "month": round(month, 2),
                                "cost_usd": round(b.cost.one_off_usd + month * b.cost.monthly_usd, 2)})
    return sorted(out, key=lambda e: e["month"])


def _rec(spec: ProjectSpec) -> str | None:
    return recommend(spec).recommendation.path


def sensitivity(spec: ProjectSpec, fields=SENSITIVE_FIELDS, max_factor: float = 1000.0) -> list[dict]:
    """For each numeric input: the nearest value (up and down) at which the recommendation changes.

    Scans multiplicatively (x1.25 per step up to `max_factor`), then bisects in log space to the
    threshold; reports the first flip in each direction."""
    base_data = spec.model_dump(mode="json")
    base = _rec(spec)
    out = []
    for f in fields:
        v0 = _get(base_data, f)
        if v0 is None or isinstance(v0, bool):
            continue
        for direction in (1, -1):
            start = max(float(v0), 1.0) if direction == 1 else float(v0)
            if direction == -1 and start <= 0:
                continue
            prev, hit, new_path = start, None, None
            step = 1.25 ** direction
            x = start
            while (x <= start * max_factor) if direction == 1 else (x >= start / max_factor):
                x = x * step
                cand = _cast(f, x)
                if f == "constraints.gpu_count" and cand < 1:
                    break
                try:
                    p = _rec(_with(spec, f, cand))
                except UserError:
                    break
                if p != base:
                    hit, new_path = x, p
                    break
                prev = x
            if hit is None:
                continue
            lo, hi = prev, hit
            for _ in range(12):     # log-space bisection to the threshold
                mid = math.sqrt(lo * hi)
                if _cast(f, mid) in (_cast(f, lo), _cast(f, hi)):
                    break
                if _rec(_with(spec, f, _cast(f, mid))) == base:
                    lo = mid
                else:
                    hi = mid
            threshold = _cast(f, hi)
            new_path = _rec(_with(spec, f, threshold))
            word = "above" if direction == 1 else "below"
            out.append({"field": f, "current": v0, "threshold": threshold, "direction": word,
                        "from": base, "to": new_path,
                        "sentence": f"{label(new_path)}"
                                    f" replaces {label(base) if base else 'nothing'} {word} "
                                    f"{f} = {threshold:,}"})
    return out


def what_if(spec: ProjectSpec, dotted: str, values: list[float]) -> list[dict]:
    rows = []
    for v in values:
        advice = recommend(_with(spec, dotted, _cast(dotted, v)))
        rows.append({"field": dotted, "value": _cast(dotted, v), "recommendation": advice.recommendation.path,
                     "paths": {r.path: {"feasible": r.feasible, "fit": r.fit,
                                        "one_off_usd": round(r.cost.one_off_usd, 2),
                                        "monthly_usd": round(r.cost.monthly_usd, 2),
                                        "total_12m_usd": round(r.cost.total_usd(12), 2)} for r in advice.paths}})
    return rows


def parse_vary(items: list[str]) -> list[tuple[str, list[float]]]:
    out = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip() or not raw.strip():
            raise UserError(f"--vary {item!r}: expected field=v1,v2,... (e.g. traffic.requests_per_month=1e4,1e5)")
        try:
            vals = [float(x) for x in raw.split(",") if x.strip()]
        except ValueError:
            raise UserError(f"--vary {item!r}: values must be numbers") from None
        out.append((key.strip(), vals))
    return out


def assumptions(spec: ProjectSpec) -> list[dict]:
    gpu = catalog.gpu(spec.constraints.gpu)
    prices = catalog.api_prices()
    return [
        {"what": f"GPU {gpu.id}", "value": f"{gpu.bf16_tflops:g} TFLOP/s, {gpu.memory_gb:g} GB, "
                                           f"{gpu.bandwidth_gbs:,.0f} GB/s, ${gpu.usd_per_hour:.2f}/h",
         "source": f"{gpu.spec_source}; price: {gpu.price_source} ({gpu.price_date})"},
        {"what": "Training MFU", "value": "full/pretrain 0.45, lora 0.35, dora 0.30, qlora 0.25", "source": MFU_SOURCE},
        {"what": "Serving efficiency", "value": f"prefill MFU {PREFILL_MFU}, decode at {DECODE_BANDWIDTH_EFF:.0%} of "
                                                "memory bandwidth, 16 concurrent requests, replicas at <= 50 % load",
         "source": "assumed (advisor/estimate.py)"},
        {"what": "Hosted API prices", "value": "by model size tier", "source": f"{prices.source} ({prices.price_date})"},
        {"what": "Prompting", "value": f"{FEW_SHOT_EXAMPLES} few-shot examples; knowledge <= {IN_CONTEXT_LIMIT:,} "
                                       "tokens rides in a cached prompt",
         "source": "Brown et al. 2020; Anthropic 'Contextual Retrieval' 2024"},
        {"what": "RAG", "value": f"top-{RAG_TOP_K} chunks of {RAG_CHUNK_TOKENS} tokens per request; corpus embedded "
                                 f"with all-MiniLM-L6-v2 at MFU {EMBED_MFU}", "source": "design.md §5"},
        {"what": "SFT", "value": f"{SFT_EPOCHS} epochs over the labeled examples, packed 2,048-token sequences",
         "source": "Taori et al. 2023 (Alpaca)"},
        {"what": "Set-up work", "value": ", ".join(f"{p} {d} d" for p, d in SETUP_DAYS.items()),
         "source": "assumed (advisor/paths.py)"},
    ]


def build_report(spec: ProjectSpec, vary: list[str] | None = None, with_sensitivity: bool = True) -> dict:
    """Everything in the report, as plain JSON-able data."""
    advice = recommend(spec)
    rk = risks(advice, spec)
    paths = []
    for r in advice.paths:
        c = r.cost
        paths.append({
            "path": r.path, "label": label(r.path), "feasible": r.feasible, "fit": r.fit,
            "reasons": r.reasons, "one_off_usd": round(c.one_off_usd, 2), "monthly_usd": round(c.monthly_usd, 2),
            "total_12m_usd": round(c.total_usd(12), 2), "time_to_first_result_days": round(c.time_to_first_result_days, 1),
            "memory_gb_per_gpu": None if c.memory_gb_per_gpu is None else round(c.memory_gb_per_gpu, 1),
            "gpu_memory_gb": c.gpu_memory_gb, "gpu_hours": round(c.gpu_hours, 1), "serving": c.serving,
            "method": c.method, "risks": rk[r.path],
            "rules": [{"id": f.id, "effect": f.effect, "detail": f.detail, "evidence": f.evidence} for f in r.rules],
        })
    rec = advice.recommendation
    report = {
        "spec": spec.model_dump(mode="json"),
        "model": {"base": advice.model, "total_params": advice.total_params},
        "recommendation": {"path": rec.path, "label": label(rec.path) if rec.path else None,
                           "rationale": rec.rationale,
                           "one_off_usd": round(rec.cost.one_off_usd, 2) if rec.cost else None,
                           "monthly_usd": round(rec.cost.monthly_usd, 2) if rec.cost else None},
        "paths": paths,
        "cumulative_usd": {p: [round(x, 2) for x in v] for p, v in cumulative(advice).items()},
        "break_even": break_evens(advice),
        "sensitivity": sensitivity(spec) if with_sensitivity else [],
        "what_if": [row for dotted, vals in parse_vary(vary or []) for row in what_if(spec, dotted, vals)],
        "assumptions": assumptions(spec),
    }
    if rec.path and "+" in rec.path:   # the combined plan gets its own line in the chart
        report["cumulative_usd"][rec.path] = [round(rec.cost.one_off_usd + m * rec.cost.monthly_usd, 2)
                                              for m in range(MONTHS + 1)]
    return report
