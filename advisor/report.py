"""A cost-comparison report: every number an architect needs to forward the recommendation.

Pure data (a dict that is the JSON report); advisor/report_render.py turns it into HTML and
Markdown from the same numbers, so the formats cannot disagree.
"""
from __future__ import annotations

import math
from typing import Any

from advisor import catalog, fields
from advisor.costs import (
    ECONOMICS_SOURCES,
    EMBED_MFU,
    FEW_SHOT_EXAMPLES,
    IN_CONTEXT_LIMIT,
    RAG_CHUNK_TOKENS,
    RAG_TOP_K,
    RUN_OVERHEAD_HOURS,
    SFT_EPOCHS,
    SFT_GLOBAL_BATCH_ROWS,
    SFT_MAX_EXAMPLES,
    SFT_SEQ_LEN,
    econ,
    setup_gpus,
    skipped_gpus,
)
from advisor.errors import UserError
from advisor.estimate import MEMORY_MARGIN, MFU_SOURCE, PREFILL_MFU, accuracy_sentence, accuracy_source
from advisor.paths import label
from advisor.recommend import DECISION_RULE, Advice, recommend
from advisor.spec import ProjectSpec, set_dotted, spec_from_dict

MONTHS = 24
ROUNDING_USD = 1.0    # cost differences below a dollar (or 0.5 %) are rounding, not a break-even
MEMORY_WARN = MEMORY_MARGIN   # above it a plan may not fit (advisor/estimate.py MEMORY_MARGIN)

# Fields whose change can flip a recommendation, scanned by `sensitivity`.
SENSITIVE_FIELDS = ("traffic.requests_per_month", "traffic.prompt_tokens", "data.labeled_examples",
                    "knowledge.corpus_tokens", "constraints.budget_usd", "constraints.monthly_budget_usd",
                    "constraints.deadline_days", "constraints.gpu_count")
INTEGER_FIELDS = {"traffic.requests_per_month", "traffic.prompt_tokens", "traffic.output_tokens",
                  "data.labeled_examples", "data.avg_example_tokens", "knowledge.corpus_tokens",
                  "knowledge.source_documents", "constraints.gpu_count"}

# Standing risks of each path (what goes wrong in practice), with their source.
PATH_RISKS = {
    "prompting": ["quality is capped by the base model; long prompts cost on every request (OpenAI fine-tuning guide)"],
    "rag": ["answers are only as good as retrieval: measure recall@k on your own questions (Lewis et al. 2020)",
            "index freshness depends on the re-indexing pipeline"],
    "peft": ["needs a held-out evaluation set; adapters learn format more than knowledge (Biderman et al. 2024)"],
    "full_finetuning": ["forgets more of the base model than LoRA (Biderman et al. 2024)",
                        "a full copy of the weights to serve and version per release"],
    "pretraining": ["orders of magnitude costlier; months of data and infrastructure work (Touvron et al. 2023: 3.3M A100-hours for Llama 2)",
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
    return spec_from_dict(data, "--vary", touched={tuple(dotted.split("."))}, flag="--vary")


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
        if r.feasible and b and c.cash_one_off_usd > 0.75 * b:
            items.append(f"one-off spend uses {100 * c.cash_one_off_usd / b:.0f} % of the budget")
        out[r.path] = items
    return out


def cumulative(advice: Advice, months: int = MONTHS) -> dict[str, list[float]]:
    """Cost of each path after m months, m = 0..months: one-off + m x monthly."""
    return {r.path: [r.cost.one_off_usd + m * r.cost.monthly_usd for m in range(months + 1)] for r in advice.paths}


def _same(x: float, y: float) -> bool:
    return abs(x - y) <= max(ROUNDING_USD, 0.005 * max(abs(x), abs(y)))


def break_evens(advice: Advice, months: int = MONTHS) -> list[dict]:
    """Months where a path with a higher one-off cost becomes cheaper overall than another feasible one.
    Crossings within rounding (one-off or monthly costs equal within $1 / 0.5 %) are not break-evens."""
    feasible = [r for r in advice.paths if r.feasible]
    out = []
    for a in feasible:
        for b in feasible:
            da = b.cost.one_off_usd - a.cost.one_off_usd       # b costs more up front ...
            dm = a.cost.monthly_usd - b.cost.monthly_usd       # ... and less per month
            if da > 0 and dm > 0 and not _same(b.cost.one_off_usd, a.cost.one_off_usd) \
                    and not _same(a.cost.monthly_usd, b.cost.monthly_usd):
                month = da / dm
                if 0.1 <= month <= months:   # crossings within the first days are not worth a marker
                    out.append({"path": b.path, "overtakes": a.path, "month": round(month, 2),
                                "cost_usd": round(b.cost.one_off_usd + month * b.cost.monthly_usd, 2)})
    return sorted(out, key=lambda e: e["month"])


def cost_statements(advice: Advice, months: int = MONTHS) -> list[str]:
    """True sentences about the recommended path's cost against every other feasible path."""
    rec = advice.recommendation
    if not rec.path:
        return []
    mine = rec.cost
    out = []
    for r in advice.paths:
        if not r.feasible or r.path == rec.path:
            continue
        o = r.cost
        a0, b0 = mine.one_off_usd, o.one_off_usd
        am, bm = mine.monthly_usd, o.monthly_usd
        name, other = label(rec.path), label(r.path)
        if _same(a0, b0) and _same(am, bm):
            out.append(f"{name} and {other} cost the same within rounding.")
        elif (a0 <= b0 or _same(a0, b0)) and (am <= bm or _same(am, bm)):
            out.append(f"{name} is cheaper than {other} from month 0.")
        elif (a0 >= b0 or _same(a0, b0)) and (am >= bm or _same(am, bm)):
            out.append(f"{name} costs more than {other} from month 0 (it wins on fit).")
        else:
            m = (b0 - a0) / (am - bm)
            if a0 > b0:   # we pay more up front, less per month
                out.append(f"{name} becomes cheaper than {other} after month {m:.1f}" if m <= months else
                           f"{name} stays costlier than {other} through month {months} (break-even at month {m:.0f})")
            else:
                out.append(f"{name} is cheaper than {other} until month {m:.1f}" if m <= months else
                           f"{name} is cheaper than {other} through month {months}")
    return out


def _rec(spec: ProjectSpec) -> str | None:
    return recommend(spec, explain=False).recommendation.path


def _step(dotted: str, x: float, direction: int) -> float:
    """The next value to try: x1.5 (or /1.5), whole units for integer fields (never stuck on one value)."""
    nxt = x * 1.5 ** direction
    if dotted in INTEGER_FIELDS:
        nxt = math.ceil(nxt) if direction == 1 else math.floor(nxt)
        if nxt == x:
            nxt = x + direction
    return nxt


def _try(spec: ProjectSpec, dotted: str, value) -> tuple[bool, str | None]:
    """(valid, recommendation) at `value`; a value outside the field's bounds is not valid."""
    try:
        return True, _rec(_with(spec, dotted, value))
    except UserError:
        return False, None


def sensitivity(spec: ProjectSpec, fields=SENSITIVE_FIELDS, max_factor: float = 1000.0) -> list[dict]:
    """For each numeric input: the nearest value (up and down) at which the recommendation changes.

    Scans x1.5 per step up to `max_factor`, then bisects to the threshold: whole units for integer
    fields, 4 significant digits for the rest. Each line carries `threshold` (the named path wins there)
    and `before` (the adjacent value on the current side, where the current path still wins); both are
    evaluated, so the sentence is true by construction and tests re-check it. A field at its bound gets
    no line for the direction it cannot move in."""
    base_data = spec.model_dump(mode="json")
    base = _rec(spec)
    out = []
    for f in fields:
        if f == "constraints.gpu_count" and not spec.constraints.gpu_fixed:
            continue                         # the search picks the count; the spec's value is only a start
        v0 = _get(base_data, f)
        if v0 is None or isinstance(v0, bool):
            continue
        for direction in (1, -1):
            lo = v0                          # last value known to keep `base`
            x = max(float(v0), 1.0) if direction == 1 else float(v0)
            if direction == -1 and x <= 0:
                continue
            hi, new_path = None, None
            while (x <= max(float(v0), 1.0) * max_factor) if direction == 1 else (x >= float(v0) / max_factor):
                x = _step(f, x, direction)
                cand = _cast(f, x)
                if cand == lo:
                    continue
                ok, p = _try(spec, f, cand)
                if not ok:
                    break
                if p != base:
                    hi, new_path = cand, p
                    break
                lo = cand
            if hi is None:
                continue
            for _ in range(80):              # bisection to adjacent values
                if f in INTEGER_FIELDS:
                    if abs(hi - lo) <= 1:
                        break
                    mid = (lo + hi) // 2
                else:
                    mid = _cast(f, math.sqrt(lo * hi) if lo > 0 and hi > 0 else (lo + hi) / 2)
                    if mid in (lo, hi):
                        break
                ok, p = _try(spec, f, mid)
                if ok and p == base:
                    lo = mid
                else:
                    hi = mid
            new_path = _rec(_with(spec, f, hi))
            word = "above" if direction == 1 else "below"
            op = "≥" if direction == 1 else "≤"
            shown_hi, shown_lo = _readable(spec, f, hi, lo, direction, new_path, base)
            t, b = fmt_value(f, shown_hi), fmt_value(f, shown_lo)
            if new_path is None:
                sentence = f"No path is feasible at {f} {op} {t} ({label(base)} still wins at {b})"
            elif base is None:
                sentence = f"{label(new_path)} becomes feasible at {f} {op} {t} (no path is at {b})"
            else:
                sentence = f"{label(new_path)} replaces {label(base)} at {f} {op} {t} ({label(base)} still wins at {b})"
            out.append({"field": f, "current": v0, "threshold": hi, "before": lo, "direction": word,
                        "from": base, "to": new_path, "shown_threshold": shown_hi, "shown_before": shown_lo,
                        "now": fmt_value(f, v0), "sentence": sentence})
    return out


def _round_sig(x: float, digits: int, up: bool) -> float:
    """x rounded up (or down) to `digits` significant digits."""
    if x == 0 or not math.isfinite(x):
        return x
    scale = 10 ** (math.floor(math.log10(abs(x))) - digits + 1)
    return (math.ceil if up else math.floor)(x / scale) * scale


def _readable(spec: ProjectSpec, f: str, hi, lo, direction: int, new_path, base):
    """Round values to show in place of the bisection's adjacent pair (46,161,313,258 / 46,161,313,257 reads
    as false precision): the threshold rounded away from the current value and the value before it rounded
    towards it, at the fewest significant digits (2 to 4) where both are evaluated and still hold. The exact
    pair stays in `threshold` / `before`."""
    for digits in (2, 3, 4):
        t = _cast(f, _round_sig(hi, digits, up=direction == 1))
        b = _cast(f, _round_sig(lo, digits, up=direction != 1))
        if t == b:
            continue
        if (t, b) == (hi, lo):
            return hi, lo
        if _try(spec, f, t) == (True, new_path) and _try(spec, f, b) == (True, base):
            return t, b
    return hi, lo


def fmt_value(dotted: str, x) -> str:
    """A field's value as a reader wants it: 47B, 1.2M, 7.1, $1.2M, $82.46 (at most 4 significant digits,
    as `sensitivity` shows them)."""
    money = dotted.endswith("_usd")
    a = abs(x)
    text = next((f"{x / div:.4g}{unit}" for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6))
                 if a >= div), None)
    if text is None:
        if money and a < 1000 and not float(x).is_integer():
            text = f"{x:,.2f}"
        else:
            text = f"{x:,.0f}" if a >= 1000 or float(x).is_integer() else f"{x:.4g}"
    return ("$" + text) if money else text


def what_if(spec: ProjectSpec, dotted: str, values: list[float]) -> list[dict]:
    current = _get(spec.model_dump(mode="json"), dotted)
    if isinstance(current, (str, bool)):   # said pydantic's "input should be a valid string, got 1.0"
        raise UserError(f"--vary {dotted}: takes numeric fields only ({dotted} is {current!r}; use --set for it)")
    rows = []
    for v in values:
        advice = recommend(_with(spec, dotted, _cast(dotted, v)), explain=False)
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
        vals = []
        for x in raw.split(","):
            try:
                vals.append(float(x))
            except ValueError:
                raise UserError(f"--vary {key.strip()}: {x.strip()!r} is not a number"
                                f"{fields.number_hint(x) or ''}; expected v1,v2,... "
                                "(e.g. 1e4,1e5)") from None
        if not all(math.isfinite(v) for v in vals):
            raise UserError(f"--vary {item!r}: values must be finite numbers")
        if key.strip() in INTEGER_FIELDS and not all(v == int(v) for v in vals):
            raise UserError(f"--vary {item!r}: {key.strip()} takes whole numbers (as --set does)")
        out.append((key.strip(), vals))
    return out


def assumptions(spec: ProjectSpec, advice: Advice | None = None) -> list[dict]:
    """The figures behind the report, each with its source: every GPU a priced setup uses (the search may
    replace the spec's GPU), then the model-wide assumptions."""
    ids = [spec.constraints.gpu]
    for r in advice.paths if advice else []:
        ids += setup_gpus(r.cost.setup)
    gpus = [catalog.gpu(g) for g in dict.fromkeys(ids)]
    gpu = gpus[0]
    prices = catalog.api_prices()
    return [
        {"what": f"GPU {g.id}", "value": f"{g.bf16_tflops:g} TFLOP/s, {g.memory_gb:g} GiB, "
                                         f"{g.bandwidth_gbs:,.0f} GB/s, "
                                         + (f"${g.usd_per_hour:.2f}/h" if g.priced else "no price"),
         "source": f"{g.spec_source}; price: {g.price_source}" + (f" ({g.price_date})" if g.price_date else "")}
        for g in gpus
    ] + ([{"what": "GPUs the search skipped", "value": ", ".join(skipped),
           "source": "no dated price quote in advisor/data/gpus.yaml: a GPU without a price cannot be compared on "
                     "cost; give one a price (gpus.<id>.usd_per_hour) in a TUNEPATH_CATALOG file and it is searched"}]
         if (skipped := skipped_gpus(spec)) else []) + ([] if spec.constraints.data_may_leave else [
        {"what": "Where self-hosted GPUs run", "value": f"data may not leave (constraints.data_may_leave): no hosted "
                                                        f"APIs; the GPUs are priced at {gpu.price_class} rates, so "
                                                        "run them where your data may go (your own cloud account "
                                                        "or on-premises) and set your own quotes",
         "source": "TUNEPATH_CATALOG file: price_class hyperscaler|gpu_cloud|marketplace, or usd_per_hour per GPU "
                   "(README: TUNEPATH_CATALOG)"}]) + [
        {"what": "Training MFU", "value": "per GPU generation and model size, from published runs",
         "source": MFU_SOURCE},
        {"what": "How far to trust the estimates",
         "value": "; ".join(filter(None, (accuracy_sentence(k).replace(" (docs/validation.md)", "") for k in
                                          ("pretraining time", "fine-tuning time", "memory", "serving")))),
         "source": accuracy_source()},
        {"what": "Serving efficiency", "value": f"prefill MFU {PREFILL_MFU}, decode at "
                                                f"{gpu.decode_bandwidth_efficiency:.0%} of memory bandwidth, continuous "
                                                "batching up to what memory holds, replicas at <= 50 % load",
         "source": f"decode: {gpu.efficiency_source}; "
                   "prefill MFU assumed (advisor/estimate.py)"},
        {"what": "Hosted API prices", "value": "by model size tier (MoE: total params, own ladder)", "source": f"{prices.source} ({prices.price_date})"},
        {"what": "Prompting", "value": f"{FEW_SHOT_EXAMPLES} few-shot examples; knowledge <= {IN_CONTEXT_LIMIT:,} "
                                       "tokens rides in a cached prompt",
         "source": "Brown et al. 2020; Anthropic 'Contextual Retrieval' 2024"},
        {"what": "RAG", "value": f"top-{RAG_TOP_K} chunks of {RAG_CHUNK_TOKENS} tokens per request; corpus embedded "
                                 f"with all-MiniLM-L6-v2 at MFU {EMBED_MFU}",
         "source": "Lewis et al. 2020 (k = 5 passages); all-MiniLM-L6-v2 model card (256-token inputs)"},
        {"what": "SFT", "value": f"{SFT_EPOCHS} epochs over the labeled examples (2 on large sets, at most "
                                 f"{SFT_MAX_EXAMPLES:,} examples), packed {SFT_SEQ_LEN:,}-token rows (shorter when "
                                 "those do not fit; never shorter than the average example, which gets the next power "
                                 f"of two), {SFT_GLOBAL_BATCH_ROWS} rows per optimizer step; {RUN_OVERHEAD_HOURS:g} "
                                 "wall-hour per run for start-up, evaluation and saves",
         "source": "Taori et al. 2023 (Alpaca); Lambert et al. 2024 (Tulu 3: 2 epochs on 939k examples); "
                   "Touvron et al. 2023 (Llama 2 SFT: batches of 64)"},
        {"what": "Decision rule", "value": DECISION_RULE, "source": "advisor/recommend.py"},
    ] + economics_rows(spec)


def economics_rows(spec: ProjectSpec) -> list[dict]:
    """The economics in force, marking which came from the spec."""
    e = econ(spec)
    given = spec.economics.model_dump(exclude_unset=True)
    rows = []
    for key, value in e.items():
        if key == "labeled_examples_needed" and key not in given:
            continue
        shown = ", ".join(f"{p} {v:g}" for p, v in value.items()) if isinstance(value, dict) else \
            (f"${value:,.0f}" if key.endswith("_usd") or key.endswith("_example") else f"{value:g}")
        src = "given in the spec" if key in given else ECONOMICS_SOURCES.get(key, "")
        rows.append({"what": f"economics.{key}", "value": shown, "source": src})
    return rows


def build_report(spec: ProjectSpec, vary: list[str] | None = None, with_sensitivity: bool = True) -> dict:
    """Everything in the report, as plain JSON-able data."""
    advice = recommend(spec)
    months = max(MONTHS, spec.economics.horizon_months)    # the chart covers at least the horizon
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
            "total_horizon_usd": round(c.total_usd(), 2), "breakdown": {k: round(v, 2) for k, v in c.breakdown.items()},
            "setup": c.setup, "alternatives": c.alternatives, "misses": c.misses,
            "rules": [{"id": f.id, "effect": f.effect, "detail": f.detail, "evidence": f.evidence} for f in r.rules],
        })
    rec = advice.recommendation
    report = {
        "spec": spec.model_dump(mode="json"),
        "model": {"base": advice.model, "total_params": advice.total_params},
        "defaults": advice.defaults,
        "recommendation": {"path": rec.path, "label": label(rec.path) if rec.path else None,
                           "rationale": rec.rationale,
                           "one_off_usd": round(rec.cost.one_off_usd, 2) if rec.cost else None,
                           "monthly_usd": round(rec.cost.monthly_usd, 2) if rec.cost else None,
                           "cash_one_off_usd": round(rec.cost.cash_one_off_usd, 2) if rec.cost else None},
        "paths": paths,
        "cumulative_usd": {p: [round(x, 2) for x in v] for p, v in cumulative(advice, months).items()},
        "horizon_months": spec.economics.horizon_months,
        "chart_months": months,
        "break_even": break_evens(advice, months),
        "cost_statements": cost_statements(advice, months),
        "sensitivity": sensitivity(spec) if with_sensitivity else [],
        "what_if": [row for dotted, vals in parse_vary(vary or []) for row in what_if(spec, dotted, vals)],
        "assumptions": assumptions(spec, advice),
    }
    if rec.path and "+" in rec.path:   # the combined plan gets its own line in the chart
        report["cumulative_usd"][rec.path] = [round(rec.cost.one_off_usd + m * rec.cost.monthly_usd, 2)
                                              for m in range(months + 1)]
    return report
