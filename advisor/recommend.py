"""From a spec to a recommendation: evaluate every rule, score every path, pick and explain.

The recommendation is the feasible path with the best fit, ties broken by 12-month cost
(design.md §4). RAG and PEFT combine (`rag+peft`) when both are feasible and both earned it:
retrieval for the knowledge, tuning for the behaviour.
"""
from __future__ import annotations

from dataclasses import dataclass

from advisor import catalog
from advisor.paths import label
from advisor.costs import PATHS, PathCost, path_costs
from advisor.rules import HARD, RULES, Context
from advisor.spec import ProjectSpec
from advisor.textio import usd

COMBINE_MIN_FIT = 2.5     # both halves of a combined plan must clearly earn their place on their own rules
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
    return PathCost(
        path="rag+peft", one_off_usd=rag.one_off_usd + peft.one_off_usd,
        monthly_usd=max(rag.monthly_usd, peft.monthly_usd),
        time_to_first_result_days=max(rag.time_to_first_result_days, peft.time_to_first_result_days),
        gpu_hours=peft.gpu_hours, memory_gb_per_gpu=peft.memory_gb_per_gpu, gpu_memory_gb=peft.gpu_memory_gb,
        fits=peft.fits, serving=rag.serving, method=peft.method, training_tokens=peft.training_tokens,
        prompt_tokens_per_request=rag.prompt_tokens_per_request,
        details={"rag": rag.details, "peft": peft.details})


def _within_constraints(spec: ProjectSpec, cost: PathCost) -> bool:
    c = spec.constraints
    return (cost.one_off_usd <= c.budget_usd
            and (c.monthly_budget_usd is None or cost.monthly_usd <= c.monthly_budget_usd)
            and (c.deadline_days is None or cost.time_to_first_result_days <= c.deadline_days))


def _top_reasons(result: PathResult, n: int = 3) -> list[str]:
    pos = sorted((f for f in result.rules if f.weight and f.weight > 0), key=lambda f: -f.weight)
    return [f"{f.detail} ({f.id}, {f.effect})" for f in pos[:n]]


def recommend(spec: ProjectSpec) -> Advice:
    results = evaluate(spec)
    by = {r.path: r for r in results}
    feasible = [r for r in results if r.feasible]
    arch = catalog.architecture(spec.model.base)
    if not feasible:
        rationale = ["No path is feasible under the given constraints:"]
        rationale += [f"{label(r.path)}: {'; '.join(r.reasons)}" for r in results]
        rationale.append("Relax the budget, deadline or GPU, or choose a smaller base model.")
        return Advice(spec_name=spec.name, model=spec.model.base, total_params=arch.total_params,
                      recommendation=Recommendation(path=None, rationale=rationale), paths=results)

    best = max(feasible, key=lambda r: (r.fit, -r.cost.total_usd()))
    ties = [r for r in feasible if abs(r.fit - best.fit) <= TIE]
    if len(ties) > 1:
        best = min(ties, key=lambda r: r.cost.total_usd())
    choice, cost = best.path, best.cost
    rationale = [f"{label(choice)} has the best fit ({best.fit:+g}) of the feasible paths"
                 + (", tied on fit and cheaper over 12 months" if len(ties) > 1 else "") + "."]
    rationale += [f"Because {r}." for r in _top_reasons(best)]

    if choice in ("rag", "peft"):
        other = by["peft" if choice == "rag" else "rag"]
        if other.feasible and min(best.fit, other.fit) >= COMBINE_MIN_FIT:
            combined = _combined_cost(spec, by["rag"].cost, by["peft"].cost)
            if _within_constraints(spec, combined):
                choice, cost = "rag+peft", combined
                rationale.append(f"Combine with {label(other.path)} (fit {other.fit:+g}): retrieval supplies "
                                 f"the knowledge, the adapter the behaviour; because {_top_reasons(other, 1)[0]}.")

    rationale.append(f"Estimated one-off cost {usd(cost.one_off_usd)}, then {usd(cost.monthly_usd)}/month "
                     f"({cost.serving}); first result in ~{cost.time_to_first_result_days:.0f} days.")
    runner = sorted((r for r in feasible if r.path != best.path), key=lambda r: -r.fit)
    if runner:
        r = runner[0]
        rationale.append(f"Runner-up: {label(r.path)} (fit {r.fit:+g}, {usd(r.cost.one_off_usd)} once + "
                         f"{usd(r.cost.monthly_usd)}/month).")
    for r in results:
        if not r.feasible:
            rationale.append(f"{label(r.path)} is infeasible: {'; '.join(r.reasons)}.")
    return Advice(spec_name=spec.name, model=spec.model.base, total_params=arch.total_params,
                  recommendation=Recommendation(path=choice, rationale=rationale, cost=cost), paths=results)


def advice_json(advice: Advice) -> dict:
    """The documented --json shape: {"recommendation": {"path", "rationale"}, "paths": [...]}."""
    return {
        "spec": advice.spec_name,
        "model": {"base": advice.model, "total_params": advice.total_params},
        "recommendation": {"path": advice.recommendation.path, "rationale": advice.recommendation.rationale,
                           "cost": advice.recommendation.cost.to_dict() if advice.recommendation.cost else None},
        "paths": [{"path": r.path, "feasible": r.feasible, "fit": r.fit, "reasons": r.reasons,
                   "rules": [{"id": f.id, "effect": f.effect, "detail": f.detail, "evidence": f.evidence}
                             for f in r.rules],
                   "cost": r.cost.to_dict()} for r in advice.paths],
    }
