"""From a spec to a recommendation: evaluate every rule, score every path, pick and explain.

Decision rule: among the feasible paths whose fit is within FIT_MARGIN of the best, the cheapest
over the horizon (one-off + horizon x monthly, whole costs) wins - fit says which paths are
adequate, cost picks among the adequate ones (AWS Well-Architected Framework, Cost Optimization
pillar, COST05: evaluate cost when selecting services; select the least-cost option that meets the
requirements). RAG and PEFT combine (`rag+peft`) when both are feasible and both earned it:
retrieval for the knowledge, tuning for the behaviour.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from advisor import catalog
from advisor.paths import label
from advisor.costs import PATHS, RETRAIN_DAYS, PathCost, path_costs, pretraining_tokens, setup_gpus
from advisor.rules import HARD, RULES, Context
from advisor.spec import ProjectSpec, defaulted
from advisor.textio import human, usd

COMBINE_MIN_FIT = 2.5     # both halves of a combined plan must clearly earn their place on their own rules
FIT_MARGIN = 1.0          # one ordinary rule's weight: paths closer than one piece of evidence are equally fit
DECISION_RULE = (f"among feasible paths within {FIT_MARGIN:g} fit of the best, the cheapest over the horizon wins "
                 "(AWS Well-Architected, Cost Optimization pillar COST05: evaluate cost when selecting services)")
TIE = 1e-9


@dataclass
class FiredRule:
    id: str
    effect: str          # "+1.5", "-0.5" or "infeasible"
    weight: float | None
    evidence: str
    detail: str


@dataclass
class PathResult:
    path: str
    feasible: bool
    fit: float
    reasons: list[str]   # why infeasible (hard rules); empty when feasible
    rules: list[FiredRule]
    cost: PathCost


@dataclass
class Recommendation:
    path: str | None
    rationale: list[str]
    cost: PathCost | None = None


@dataclass
class Advice:
    spec_name: str
    model: str
    total_params: int
    recommendation: Recommendation
    paths: list[PathResult]
    defaults: list[str] = field(default_factory=list)   # spec.SHOWN_DEFAULTS left unset: say so where shown

    def path(self, name: str) -> PathResult:
        return next(p for p in self.paths if p.path == name)


def _fmt(weight: float) -> str:
    return f"{weight:+g}"


def evaluate(spec: ProjectSpec) -> list[PathResult]:
    arch = catalog.architecture(spec.model.base)
    costs = path_costs(spec)
    ctx = Context(spec=spec, arch=arch, costs=costs)
    fired: dict[str, list[FiredRule]] = {p: [] for p in PATHS}
    for rule in RULES:
        result = rule.when(ctx)
        if not result:
            continue
        per_path = result if isinstance(result, dict) else {p: result for p in rule.effects}
        for p, detail in per_path.items():
            effect = rule.effects[p]
            fired[p].append(FiredRule(id=rule.id, effect=effect if effect == HARD else _fmt(effect),
                                      weight=None if effect == HARD else float(effect),
                                      evidence=rule.evidence, detail=detail))
    results = []
    for p in PATHS:
        hard = [f"{f.detail} ({f.id})" for f in fired[p] if f.weight is None]
        fit = round(sum(f.weight for f in fired[p] if f.weight is not None), 3)
        results.append(PathResult(path=p, feasible=not hard, fit=fit, reasons=hard, rules=fired[p], cost=costs[p]))
    return results


def _combined_cost(spec: ProjectSpec, rag: PathCost, peft: PathCost) -> PathCost:
    """RAG + PEFT: train the adapter, build the index; serve the tuned model with retrieved context."""
    b = {k: rag.breakdown.get(k, 0.0) + peft.breakdown.get(k, 0.0) for k in ("compute", "people", "labels")}
    b["evaluation"] = max(rag.breakdown.get("evaluation", 0.0), peft.breakdown.get("evaluation", 0.0))
    b["serving_per_month"] = max(rag.breakdown.get("serving_per_month", 0.0),
                                 peft.breakdown.get("serving_per_month", 0.0))
    b["upkeep_per_month"] = rag.breakdown.get("upkeep_per_month", 0.0) + peft.breakdown.get("upkeep_per_month", 0.0)
    return PathCost(
        path="rag+peft", one_off_usd=b["compute"] + b["people"] + b["labels"] + b["evaluation"],
        monthly_usd=b["serving_per_month"] + b["upkeep_per_month"],
        time_to_first_result_days=max(rag.time_to_first_result_days, peft.time_to_first_result_days),
        gpu_hours=rag.gpu_hours + peft.gpu_hours, memory_gb_per_gpu=peft.memory_gb_per_gpu,
        gpu_memory_gb=peft.gpu_memory_gb, fits=peft.fits,
        serving=rag.serving if rag.breakdown.get("serving_per_month", 0.0) >= peft.breakdown.get(
            "serving_per_month", 0.0) else peft.serving, method=peft.method,
        training_tokens=peft.training_tokens, prompt_tokens_per_request=rag.prompt_tokens_per_request,
        cash_one_off_usd=rag.cash_one_off_usd + peft.cash_one_off_usd,
        cash_monthly_usd=b["serving_per_month"] + (rag.cash_monthly_usd - rag.breakdown.get("serving_per_month", 0.0))
        + (peft.cash_monthly_usd - peft.breakdown.get("serving_per_month", 0.0)),
        horizon_months=peft.horizon_months,
        breakdown=b, setup={**peft.setup, "rag_serving": rag.serving},
        details={"rag": rag.details, "peft": peft.details})


def _within_constraints(spec: ProjectSpec, cost: PathCost) -> bool:
    c = spec.constraints
    return (cost.cash_one_off_usd <= c.budget_usd
            and (c.monthly_budget_usd is None or cost.cash_monthly_usd <= c.monthly_budget_usd)
            and (c.deadline_days is None or cost.time_to_first_result_days <= c.deadline_days))


def _top_reasons(result: PathResult, n: int = 3) -> list[str]:
    pos = sorted((f for f in result.rules if f.weight and f.weight > 0), key=lambda f: -f.weight)
    return [f"{f.detail} ({f.id}, {f.effect})" for f in pos[:n]]


def choose(feasible: list[PathResult]) -> PathResult:
    """The decision rule (module docstring): cheapest over the horizon among paths within FIT_MARGIN of the best."""
    top = max(r.fit for r in feasible)
    near = [r for r in feasible if r.fit >= top - FIT_MARGIN - TIE]
    return min(near, key=lambda r: (round(r.cost.total_usd(), 2), -r.fit, PATHS.index(r.path)))


def setup_sentence(cost: PathCost) -> str:
    s = cost.setup
    parts = [f"base model {s.get('model')}"]
    if "few_shot_examples" in cost.details:
        n = cost.details["few_shot_examples"]
        parts.append(f"{n} few-shot example{'s' * (n != 1)}"
                     + (f" and {cost.details['in_context_knowledge_tokens']:,} knowledge tokens in a cached prompt"
                        if cost.details.get("in_context_knowledge_tokens") else ""))
    if s.get("train_gpu"):
        how = [cost.method] if cost.method else []
        if cost.details.get("continued_pretraining_tokens"):   # priced into the run; say so, or $1.2M reads as SFT
            how.append(f"continued pretraining on the {human(cost.details['continued_pretraining_tokens'])}-token "
                       "corpus, then SFT on the labels")
        if s.get("train_seq_len"):
            how.append(f"{s['train_seq_len']:,}-token rows" + (f" x {s['train_micro_batch']} per GPU"
                                                                 if (s.get("train_micro_batch") or 1) > 1 else ""))
        if s.get("grad_checkpointing"):
            how.append("gradient checkpointing")
        if s.get("train_zero") == 3:
            how.append("weights sharded with FSDP / ZeRO-3")
        parts.append(f"trained on {s['train_gpus']} x {s['train_gpu']}" + (f" ({', '.join(how)})" if how else ""))
    parts.append("no traffic to serve" if cost.serving == "no traffic" else
                 f"served {cost.serving.replace('self-hosted: ', 'self-hosted on ')}")
    out = "Setup: " + ", ".join(parts) + "."
    prec = s.get("serving_precision", "")
    if "(" in prec:
        out += f" Caveat: {prec}."
    for gid in setup_gpus(s):
        if catalog.gpu(gid).caveat:
            out += f" {gid}: {catalog.gpu(gid).caveat}."
    return out


def breakdown_sentence(cost: PathCost) -> str:
    """One-off and monthly cost by part; a training run's compute says what it is made of (runs x GPU-hours), so
    that a reader can check it against a quote: '$1.22M' alone cannot be."""
    b = cost.breakdown
    once = "; ".join(f"{k} {usd(b[k])}" + (_compute_parts(cost) if k == "compute" else "")
                     for k in ("compute", "people", "labels", "evaluation") if b.get(k))
    monthly = ", ".join(f"{k.removesuffix('_per_month')} {usd(b[k])}" + (_upkeep_parts(cost) if k == "upkeep_per_month"
                                                                          else "")
                        for k in ("serving_per_month", "upkeep_per_month") if b.get(k))
    return (f"One-off {usd(cost.one_off_usd)}" + (f" ({once})" if once else "") + f", then {usd(cost.monthly_usd)}/month"
            + (f" ({monthly})" if monthly else "") + f"; first result in ~{cost.time_to_first_result_days:.0f} days.")


def _upkeep_parts(cost: PathCost) -> str:
    """What the monthly upkeep pays for: a retrain is a whole run again (with continued pretraining, over the
    whole corpus), which economics.retrain_per_year sets; re-indexing follows knowledge.update_frequency."""
    d = cost.details
    if d.get("retrains_per_year"):
        return f" for {d['retrains_per_year']:g} retrains a year, each a run as above with {RETRAIN_DAYS:g} engineer-days"
    if d.get("reindexes_per_month"):
        per_year = round(d["reindexes_per_month"] * 12)
        every = {365: "every day", 52: "every week", 12: "every month", 1: "every year"}.get(per_year,
                                                                                          f"{per_year} times a year")
        return f" for re-embedding the corpus {every}"
    return ""


def _compute_parts(cost: PathCost) -> str:
    s, runs = cost.setup, cost.details.get("runs")
    if not (s.get("train_gpu") and runs and cost.gpu_hours):
        return ""
    hours = f"{cost.gpu_hours:,.{1 if cost.gpu_hours < 10 else 0}f} {s['train_gpu']} GPU-hours"
    return f": {runs:g} runs x {hours}, {runs - 1:g} of them experiments" if runs != 1 else f": {hours}"


def pretraining_data_sentence(spec: ProjectSpec, cost: PathCost) -> str | None:
    """Pretraining is priced at the compute-optimal token count (Hoffmann et al. 2022, ~20 per parameter); when the
    corpus holds far more, say what a pass over all of it would cost - small models are now trained far past
    compute-optimal for cheaper serving (Llama 3 8B: 15T tokens, ~1,900 per parameter; Dubey et al. 2024)."""
    optimal = pretraining_tokens(catalog.architecture(cost.setup["model"]))
    have = spec.knowledge.corpus_tokens
    compute = cost.breakdown.get("compute", 0.0)
    if have <= 2 * optimal or not compute:
        return None
    return (f"Priced at the compute-optimal {human(optimal)} tokens (~20 per parameter, Hoffmann et al. 2022) of the "
            f"corpus's {human(have)}; small models are now trained far longer for cheaper serving (Llama 3 8B: 15T "
            f"tokens): one pass over all {human(have)} would cost about {usd(compute * have / optimal)} in compute "
            f"and its training would take ~{have / optimal:.0f}x as long.")


def _nearest_miss(results: list[PathResult]) -> str | None:
    """The path that misses only the project's constraints, and by the least."""
    constraint_only = [r for r in results
                       if r.cost.misses and all(f.id in ("constraint.budget", "constraint.monthly_budget",
                                                         "constraint.deadline") for f in r.rules if f.weight is None)]
    if not constraint_only:
        return None
    r = min(constraint_only, key=lambda r: r.cost.details.get("miss_score", 0.0))
    c = r.cost
    where = f" trained on {c.setup['train_gpus']} x {c.setup['train_gpu']}" if c.setup.get("train_gpu") else ""
    return (f"Nearest miss: {label(r.path)} with {c.setup.get('model')}{where}, "
            f"{c.serving.replace('self-hosted: ', 'self-hosted on ')}: {usd(c.one_off_usd)} once + "
            f"{usd(c.monthly_usd)}/month; it misses the {' and the '.join(c.misses)}.")


def _usd_up(x: float) -> str:
    """A budget that suffices, as `usd` prints it: rounded up, never down ($255.40 needs $256, not '$255')."""
    step = 1e4 if x >= 1e6 else 1.0 if x >= 10 else 0.01
    return usd(math.ceil(x / step - 1e-9) * step)


def _levers(spec: ProjectSpec) -> str:
    """What would make a path feasible: each constraint the spec sets, lifted alone and evaluated, with the value
    the path then recommended needs. ("Relax the budget, deadline or GPU" named levers that could not help: a
    300-request tool that must self-host pays for an always-on GPU whatever the model.)"""
    c = spec.constraints
    tries = [({"data_may_leave": True}, lambda cost: "hosted APIs allowed (constraints.data_may_leave: true)")
             ] if not c.data_may_leave else []
    tries += [({"budget_usd": 1e12}, lambda cost: f"a one-off budget of {_usd_up(cost.cash_one_off_usd)} "
                                                    f"(now {usd(c.budget_usd)}"
                                                    f"{'' if 'budget_usd' in c.model_fields_set else ', the default'})")]
    if c.monthly_budget_usd is not None:
        tries.append(({"monthly_budget_usd": None}, lambda cost: f"a monthly budget of "
                      f"{_usd_up(cost.cash_monthly_usd)} (now {usd(c.monthly_budget_usd)})"))
    if c.deadline_days is not None:
        tries.append(({"deadline_days": None}, lambda cost: f"a deadline of {math.ceil(cost.time_to_first_result_days)}"
                      f" days (now {c.deadline_days:g})"))
    found = []
    for update, words in tries:
        lifted = spec.model_copy(update={"constraints": c.model_copy(update=update)})
        feasible = [r for r in evaluate(lifted) if r.feasible]
        if feasible:
            b = choose(feasible)
            found.append(f"with {words(b.cost)}, {label(b.path)} ({usd(b.cost.one_off_usd)} once + "
                         f"{usd(b.cost.monthly_usd)}/month)")
    if not found:
        return "No single constraint lifted alone makes a path feasible: relax several, or change the project."
    return "One change at a time that makes a path feasible: " + "; ".join(found) + "."


def recommend(spec: ProjectSpec, explain: bool = True) -> Advice:
    """The advice; `explain=False` skips what only the rationale of an infeasible spec needs (sensitivity scans)."""
    results = evaluate(spec)
    by = {r.path: r for r in results}
    feasible = [r for r in results if r.feasible]
    arch = catalog.architecture(spec.model.base)
    horizon = spec.economics.horizon_months
    if not feasible:
        rationale = ["No path is feasible under the given constraints, after searching base models, GPU types "
                     "and counts, serving precision and hosting:"]
        rationale += [f"{label(r.path)}: {'; '.join(r.reasons)}" for r in results]
        miss = _nearest_miss(results)
        if miss:
            rationale.append(miss)
        if explain:
            rationale.append(_levers(spec))
        return Advice(spec_name=spec.name, model=spec.model.base, total_params=arch.total_params,
                      recommendation=Recommendation(path=None, rationale=rationale), paths=results,
                      defaults=defaulted(spec))

    best = choose(feasible)
    fittest = max(feasible, key=lambda r: (r.fit, -r.cost.total_usd()))
    cheapest = min(feasible, key=lambda r: r.cost.total_usd())
    choice, cost = best.path, best.cost
    total = best.cost.total_usd()
    rationale = [f"{label(choice)}: fit {best.fit:+g}, {usd(total)} over {horizon} months "
                 f"(decision rule: {DECISION_RULE})."]
    if fittest.path != best.path:
        rationale.append(f"{label(fittest.path)} fits better ({fittest.fit:+g}) but by no more than "
                         f"{FIT_MARGIN:g}, and {label(choice)} costs {usd(fittest.cost.total_usd() - total)} "
                         f"less over {horizon} months ({usd(fittest.cost.total_usd())}).")
    if cheapest.path != best.path and cheapest.cost.total_usd() < total:
        rationale.append(f"{label(cheapest.path)} would cost {usd(total - cheapest.cost.total_usd())} less "
                         f"over {horizon} months, but its fit ({cheapest.fit:+g}) is more than {FIT_MARGIN:g} "
                         f"below the best ({fittest.fit:+g}).")
    elif cheapest.path == best.path and len(feasible) > 1:
        rationale.append(f"It is also the cheapest feasible path over {horizon} months.")
    rationale += [f"Because {r}." for r in _top_reasons(best)]

    if choice in ("rag", "peft"):
        other = by["peft" if choice == "rag" else "rag"]
        if other.feasible and min(best.fit, other.fit) >= COMBINE_MIN_FIT:
            combined = _combined_cost(spec, by["rag"].cost, by["peft"].cost)
            if _within_constraints(spec, combined):
                choice, cost = "rag+peft", combined
                rationale.append(f"Combine with {label(other.path)} (fit {other.fit:+g}): retrieval supplies "
                                 f"the knowledge, the adapter the behaviour; because {_top_reasons(other, 1)[0]}. "
                                 f"Together: {usd(combined.one_off_usd)} once + {usd(combined.monthly_usd)}/month, "
                                 f"{usd(combined.total_usd())} over {horizon} months (the figures above are "
                                 f"{label(best.path)}'s alone).")

    if "rag" in choice and spec.data.retrieval_pairs > 0:
        rationale.append(_embedder_tuning(spec, by["rag"].cost))
    rationale.append(setup_sentence(cost))
    rationale.append(breakdown_sentence(cost))
    if choice == "pretraining" and (line := pretraining_data_sentence(spec, cost)):
        rationale.append(line)
    # the next-best setup that works: one that misses a constraint is no fallback (the report lists those too)
    if working := [a for a in best.cost.alternatives if not a["misses"]]:
        a = working[0]
        rationale.append(f"Next-best setup for {label(best.path)}: {a['model']}"
                         + (f" trained on {a['train']}" if a["train"] else "")
                         + f", {a['serving']}: {usd(a['total_usd'])} over {horizon} months"
                         + (f" ({a['total_usd'] / best.cost.total_usd():.1f}x this setup's)"
                            if best.cost.total_usd() > 0 and a["total_usd"] > 1.5 * best.cost.total_usd() else "")
                         + (f" ({usd(best.cost.total_usd() - a['total_usd'])} less, within rounding: the spec's "
                            f"model {spec.model.base} is kept)"
                            if a["total_usd"] < best.cost.total_usd() - 0.005 else "") + ".")
    runner = sorted((r for r in feasible if r.path != best.path), key=lambda r: (-r.fit, r.cost.total_usd()))
    if runner:
        r = runner[0]
        rationale.append(f"Runner-up: {label(r.path)} (fit {r.fit:+g}, {usd(r.cost.one_off_usd)} once + "
                         f"{usd(r.cost.monthly_usd)}/month).")
    for r in results:
        if not r.feasible:
            rationale.append(f"{label(r.path)} is infeasible: {'; '.join(r.reasons)}.")
    return Advice(spec_name=spec.name, model=spec.model.base, total_params=arch.total_params,
                  recommendation=Recommendation(path=choice, rationale=rationale, cost=cost), paths=results,
                  defaults=defaulted(spec))


# What tuning the retriever on in-domain pairs buys, from public results: GPL (Wang et al., NAACL
# 2022) adapted dense retrievers to BEIR's domain-specialised sets for up to 9.3 nDCG@10 points
# over the off-the-shelf model; BEIR (Thakur et al. 2021) shows off-domain dense retrievers losing
# to BM25 on exactly such sets.
EMBEDDER_TUNING_GAIN = "up to +9.3 nDCG@10 points on BEIR's domain sets (GPL, Wang et al. 2022)"


def _embedder_tuning(spec: ProjectSpec, rag: PathCost) -> str:
    pairs = spec.data.retrieval_pairs
    seconds = rag.details.get("embedder_tuning_hours", 0.0) * 3600
    took = (f"{seconds:.0f} GPU-seconds" if seconds < 120 else f"{seconds / 60:.0f} GPU-minutes" if seconds < 7200
            else f"{seconds / 3600:.1f} GPU-hours")
    return (f"Tune the embedder on the {pairs:,} retrieval pairs before indexing (`tunepath rag tune`, ~{took}, "
            f"in the cost below): in-domain pairs teach the retriever the domain's wording, and retrieval "
            f"quality rises with it ({EMBEDDER_TUNING_GAIN}).")


def advice_json(advice: Advice) -> dict:
    """The documented --json shape: {"recommendation": {"path", "rationale"}, "paths": [...]}."""
    return {
        "spec": advice.spec_name,
        "model": {"base": advice.model, "total_params": advice.total_params},
        "defaults": advice.defaults,
        "recommendation": {"path": advice.recommendation.path, "rationale": advice.recommendation.rationale,
                           "cost": advice.recommendation.cost.to_dict() if advice.recommendation.cost else None},
        "paths": [{"path": r.path, "feasible": r.feasible, "fit": r.fit, "reasons": r.reasons,
                   "rules": [{"id": f.id, "effect": f.effect, "detail": f.detail, "evidence": f.evidence}
                             for f in r.rules],
                   "cost": r.cost.to_dict()} for r in advice.paths],
    }
