"""The decision rules, as a table: id, statement, effect on each path, evidence.

A soft rule adds its weight to a path's fit; a hard rule ("infeasible") rules the path out with
the reason it returns. `when(ctx)` returns None when the rule does not fire, a sentence with the
numbers behind it when it fires for all its paths, or {path: sentence} when it fires per path.

Monotone by construction (tests/test_advisor_properties.py checks): label-count rules only add
to PEFT as the count grows; update-frequency rules only add to RAG as updates get more frequent;
budget rules compare cost to budget, so a bigger budget can only lift them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Union

from advisor.architecture import Architecture
from advisor.costs import (
    CPT_MIN_TOKENS,
    IN_CONTEXT_LIMIT,
    MAX_REPEAT_EPOCHS,
    PATHS,
    TUNED,
    PathCost,
    cpt_tokens,
    needs_knowledge,
    pretraining_tokens,
    tuned_labels,
)
from advisor.paths import label
from advisor.spec import ProjectSpec
from advisor.textio import days_past, human, usd

HARD = "infeasible"
Effect = Union[float, Literal["infeasible"]]

EVIDENCE = {
    "prompt_first": "OpenAI fine-tuning guide: first try prompt engineering, prompt chaining and function calling, "
                    "which are faster to iterate on than fine-tuning",
    "hard_task": "OpenAI fine-tuning guide, when to fine-tune: correcting failures to follow complex prompts, and "
                 "performing a new skill or task that is hard to articulate in a prompt",
    "sft_quality": "Touvron et al. 2023 (Llama 2, §3.1 'Quality Is All You Need'): 27,540 high-quality SFT "
                   "annotations did better than millions of third-party examples; Zhou et al. 2023 (LIMA): 1,000 "
                   "curated examples aligned a 65B model",
    "pretrain_cost": "Touvron et al. 2023 (Llama 2, Table 2): pretraining the family took 3.3M A100-hours, while "
                     "its SFT needed 27,540 examples; Hu et al. 2021 (LoRA): adapters train ~0.01-1 % of the weights",
    "new_language": "Petrov et al. 2023: a tokenizer not trained on a script costs up to 15x more tokens for it; "
                    "Csaki et al. 2023, 'Efficiently Adapting Pretrained Language Models to New Languages': a new "
                    "language needs new tokens and pretraining on its text",
    "ovadia": "Ovadia et al. 2023, 'Fine-Tuning or Retrieval? Comparing Knowledge Injection in LLMs': "
              "RAG beats unsupervised fine-tuning for new and changing knowledge",
    "anthropic": "Anthropic 2024, 'Introducing Contextual Retrieval': a knowledge base under ~200K tokens "
                 "can go whole into the prompt with prompt caching",
    "lewis": "Lewis et al. 2020, 'Retrieval-Augmented Generation': retrieved passages give provenance; "
             "knowledge in weights cannot be attributed to a source",
    "openai": "OpenAI fine-tuning guide: at least 10 examples; clear improvements usually from 50-100",
    "google": "Google Vertex AI tuning guide: 100-500 examples recommended for supervised tuning",
    "lima": "Zhou et al. 2023, 'LIMA: Less Is More for Alignment': ~1,000 curated examples align style and format",
    "biderman": "Biderman et al. 2024, 'LoRA Learns Less and Forgets Less': at the usual low ranks LoRA learns less "
                "than full fine-tuning on code and math, from ~100K instruction pairs and more so from 20B tokens of "
                "continued pretraining (high ranks close most of the instruction-tuning gap only), and forgets less "
                "of the base model",
    "chinchilla": "Hoffmann et al. 2022 (Chinchilla): compute-optimal pretraining uses ~20 tokens per parameter; "
                  "Muennighoff et al. 2023: up to ~4 epochs of repeated data are nearly as good as unique data",
    "memory": "Memory estimate (advisor/estimate.py): ZeRO (Rajbhandari et al. 2020) 16 bytes/param for "
              "mixed-precision AdamW; activations per Korthikanti et al. 2022; LoRA/QLoRA per Hu et al. 2021 "
              "and Dettmers et al. 2023",
    "breakeven": "Fine-tuning to shorten prompts pays off only past break-even volume = training cost / "
                 "per-request saving (OpenAI fine-tuning guide: fine-tuning saves tokens through shorter prompts)",
    "window": "The model's context window (max_position_embeddings and rope scaling in its config.json): "
              "prompt, context and answer must fit in it (Vaswani et al. 2017; Press et al. 2022 on "
              "extrapolation beyond the trained length)",
    "constraints": "The project's own constraints (spec.constraints)",
    "tokenizer": "Petrov et al. 2023, 'Language Model Tokenizers Introduce Unfairness Between Languages': "
                 "text in scripts a tokenizer was not trained on costs up to 15x more tokens",
}


@dataclass
class Context:
    spec: ProjectSpec
    arch: Architecture
    costs: dict[str, PathCost]


@dataclass(frozen=True)
class Rule:
    id: str
    statement: str
    effects: dict[str, Effect]
    evidence: str
    when: Callable[[Context], Union[None, str, dict]]

    @property
    def hard(self) -> bool:
        return any(e == HARD for e in self.effects.values())


# --- conditions ---------------------------------------------------------------------------------

KNOWS = {"none": "none", "partial": "part", "most": "most"}   # knowledge.in_base_model in a sentence


def _needs_knowledge(c: Context) -> bool:
    return needs_knowledge(c.spec)


def _labels_at_least(n: int) -> Callable[[Context], str | None]:
    def when(c: Context):
        have = tuned_labels(c.spec)
        return f"{have:,} labeled examples (>= {n:,})" if have >= n else None
    return when


def _per_path(check: Callable[[Context, str, PathCost], str | None], paths=PATHS):
    def when(c: Context):
        out = {p: r for p in paths if (r := check(c, p, c.costs[p]))}
        return out or None
    return when


def _memory(c: Context, p: str, cost: PathCost) -> str | None:
    if cost.fits:
        return None
    s = cost.setup
    where = "" if c.spec.constraints.gpu_fixed else " (the largest setup searched)"
    # GB = 1e9 bytes, as estimates count; cards are sold in GiB ("24 GB" RTX-4090 = 24 GiB = 25.8 GB): both are named
    return (f"{cost.method} of {s.get('model')} needs {cost.memory_gb_per_gpu:,.0f} GB "
            f"({cost.memory_gb_per_gpu * 1e9 / 2**30:,.0f} GiB) per GPU, "
            f"{s.get('train_gpus')} x {s.get('train_gpu')}{where} has {cost.gpu_memory_gb:,.1f} GB "
            f"({cost.gpu_memory_gb * 1e9 / 2**30:,.3g} GiB) each")


CENT = 0.01   # overshoots below a cent are rounding, not a miss ("$0 exceeds the budget of $0")


def _budget(c: Context, p: str, cost: PathCost) -> str | None:
    b = c.spec.constraints.budget_usd
    which = (f"budget of {usd(b)}" if "budget_usd" in c.spec.constraints.model_fields_set
             else f"default budget of {usd(b)} (constraints.budget_usd is not set)")
    return (f"one-off spend {usd(cost.cash_one_off_usd)} (compute of every run, labels, evaluation) exceeds the "
            f"{which}" if cost.cash_one_off_usd > b + CENT else None)


def _monthly(c: Context, p: str, cost: PathCost) -> str | None:
    b = c.spec.constraints.monthly_budget_usd
    if b is None or cost.cash_monthly_usd <= b + CENT:
        return None
    return (f"monthly spend {usd(cost.cash_monthly_usd)} (serving, re-indexing or retraining compute, evaluation) "
            f"exceeds the monthly budget of {usd(b)}")


def _deadline(c: Context, p: str, cost: PathCost) -> str | None:
    d = c.spec.constraints.deadline_days
    if d is None or cost.time_to_first_result_days <= d:
        return None
    return f"first result in {days_past(cost.time_to_first_result_days, d)}, deadline is {d:g} days"


PRETRAIN_MIN_PARAMS = 1e8   # below GPT-2 small's 124M a "model the corpus supports" is no advice worth printing


def _pretrain_data(c: Context) -> str | None:
    need = pretraining_tokens(c.arch)
    have = c.spec.knowledge.corpus_tokens
    if have * MAX_REPEAT_EPOCHS >= need:
        return None
    # the size it does support, so that "infeasible" for a 70B architecture does not read as "no pretraining"
    supports = have * MAX_REPEAT_EPOCHS / (need / c.arch.total_params)
    return (f"corpus has {human(have)} tokens; compute-optimal pretraining of {human(c.arch.total_params)} params needs "
            f"~{human(need)} (>= {human(need / MAX_REPEAT_EPOCHS)} unique with {MAX_REPEAT_EPOCHS} epochs)"
            + (f"; it supports pretraining a model of up to ~{human(supports)} params (model.base sets the "
               f"architecture)" if supports >= PRETRAIN_MIN_PARAMS else ""))


def _window(c: Context, p: str, cost: PathCost) -> str | None:
    return cost.details.get("window_miss")


def _tuned_savings(c: Context) -> dict[str, tuple[float, float]]:
    """Per tuned path: (saving per request vs prompting, one-off cost)."""
    base = c.costs["prompting"].details["per_request_usd"]
    return {p: (base - c.costs[p].details["per_request_usd"], c.costs[p].one_off_usd) for p in TUNED}


def _break_even(c: Context) -> str | None:
    """Tuning removes the few-shot examples from every prompt; does any tuned path's saving repay its one-off
    cost within the horizon?"""
    n = c.spec.traffic.requests_per_month
    horizon = c.spec.economics.horizon_months
    if n == 0:
        return "no production traffic: nothing for a tuned model's shorter prompts to save"
    savings = {p: v for p, v in _tuned_savings(c).items() if v[0] > 0}
    if not savings:
        return "no tuned path is cheaper per request than prompting, so tuning cannot pay for itself"
    volume = {p: one_off / saving for p, (saving, one_off) in savings.items()}
    p = min(volume, key=volume.get)
    if n * horizon < volume[p]:
        saving, one_off = savings[p]
        return (f"at today's per-request costs {label(p)}, the tuned path that pays back soonest, breaks even after "
                f"{human(volume[p])} "
                f"requests ({usd(one_off)} one-off / {usd(saving * 1000)} saved per 1,000 requests); "
                f"{human(n * horizon)} "
                f"requests in {horizon} months is below it")
    return None


def _shorter_prompts_pay(c: Context, p: str, cost: PathCost) -> str | None:
    """Every tuned path drops the few-shot examples from each request: credit what they cost to serve.
    (What else differs between the paths' serving costs is weighed by the decision rule, not here.)"""
    d = c.costs["prompting"].details
    saving, tokens = d.get("few_shot_usd_per_month", 0.0), d.get("few_shot_tokens_without_knowledge", 0)
    if tokens > 0 and saving >= 100:
        return (f"dropping {tokens:,} few-shot tokens per request saves {usd(saving)}/month of prompting's serving "
                f"at {human(c.spec.traffic.requests_per_month)} requests/month")
    return None


def _below_minimum(c: Context) -> dict | None:
    have = tuned_labels(c.spec)
    if have >= 10:
        return None
    msg = f"only {have} labeled examples (< 10)"
    out = {"peft": msg}
    if cpt_tokens(c.spec) < CPT_MIN_TOKENS:   # continued pretraining on a large corpus needs no labels
        k = c.spec.knowledge
        why = ("knowledge.domain_shift is none, so there is nothing to continue pretraining on"
               if k.domain_shift.value == "none" and k.corpus_tokens >= CPT_MIN_TOKENS else
               f"no corpus of >= {human(CPT_MIN_TOKENS)} tokens to continue pretraining on")
        out["full_finetuning"] = f"{msg} and {why}"
    return out


def _continued_pretraining(c: Context) -> str | None:
    k = c.spec.knowledge
    # A base model that knows none of the domain (new script) tokenizes it poorly: pretraining's case instead.
    if k.domain_shift.value == "large" and k.corpus_tokens >= CPT_MIN_TOKENS and k.in_base_model.value != "none":
        return (f"{human(k.corpus_tokens)} tokens of in-domain text with a large domain shift: continued "
                f"pretraining of all weights reads it; an adapter does not")
    return None


RULES: list[Rule] = [
    Rule("baseline.prompt_first", "Prompting is the cheapest path to try and the baseline any tuned model must beat.",
         {"prompting": 1.0}, EVIDENCE["prompt_first"],
         lambda c: "prompting is the baseline any tuned model must beat (this rule always applies)"),
    Rule("task.simple", "Simple tasks are served by prompts, RAG or workflow constraints, not by tuning.",
         {"prompting": 2.0, "rag": 0.5, "peft": -0.5, "full_finetuning": -1.0, "pretraining": -1.0},
         EVIDENCE["prompt_first"], lambda c: "task.complexity is low" if c.spec.task.complexity.value == "low" else None),
    Rule("task.complex", "Hard tasks where a prompted base model falls short are what fine-tuning is for.",
         {"prompting": -1.0, "peft": 1.0, "full_finetuning": 0.5},
         EVIDENCE["hard_task"], lambda c: "task.complexity is high" if c.spec.task.complexity.value == "high" else None),
    Rule("knowledge.fits_in_prompt", "A knowledge base under ~200K tokens can ride in the prompt, cached.",
         {"prompting": 1.5},
         EVIDENCE["anthropic"],
         lambda c: (f"{human(c.spec.knowledge.corpus_tokens)} tokens of knowledge <= {human(IN_CONTEXT_LIMIT)}"
                    if _needs_knowledge(c) and c.spec.knowledge.corpus_tokens <= IN_CONTEXT_LIMIT
                    and not c.costs["prompting"].details.get("window_miss") else None)),
    Rule("knowledge.exceeds_prompt", "Knowledge too large for the prompt must be retrieved per request.",
         {"rag": 2.0, "prompting": -2.0},
         EVIDENCE["anthropic"],
         lambda c: (f"{human(c.spec.knowledge.corpus_tokens)} tokens of knowledge > {human(IN_CONTEXT_LIMIT)}"
                    if _needs_knowledge(c) and c.spec.knowledge.corpus_tokens > IN_CONTEXT_LIMIT else
                    f"{human(c.spec.knowledge.corpus_tokens)} tokens of knowledge do not fit in one prompt "
                    f"({c.costs['prompting'].details['window_miss']})"
                    if _needs_knowledge(c) and c.costs["prompting"].details.get("window_miss") else None)),
    Rule("knowledge.injection", "New knowledge is injected better by retrieval than by fine-tuning.",
         {"rag": 1.0, "peft": -1.0, "full_finetuning": -1.0},
         EVIDENCE["ovadia"],
         lambda c: (f"{c.spec.knowledge.source_documents:,} source documents, base model knows "
                    f"{KNOWS[c.spec.knowledge.in_base_model.value]} of them" if _needs_knowledge(c) else None)),
    Rule("updates.monthly_or_faster", "Knowledge that changes monthly or faster favours an index over retraining.",
         {"rag": 1.0, "peft": -0.5, "full_finetuning": -1.0, "pretraining": -1.0},
         EVIDENCE["ovadia"],
         lambda c: (f"knowledge changes {c.spec.knowledge.update_frequency.value}"
                    if c.spec.knowledge.update_frequency.value in ("monthly", "weekly", "daily") else None)),
    Rule("updates.weekly_or_faster", "Weekly or daily changes make retraining impractical; re-indexing takes minutes.",
         {"rag": 1.0, "peft": -0.5, "full_finetuning": -0.5, "pretraining": -1.0},
         EVIDENCE["ovadia"],
         lambda c: (f"knowledge changes {c.spec.knowledge.update_frequency.value}"
                    if c.spec.knowledge.update_frequency.value in ("weekly", "daily") else None)),
    Rule("task.citations", "Answers that must cite sources need retrieved passages.",
         {"rag": 2.0, "peft": -0.5, "full_finetuning": -0.5, "pretraining": -0.5},
         EVIDENCE["lewis"], lambda c: "task.needs_citations is true" if c.spec.task.needs_citations else None),
    Rule("data.below_minimum", "Supervised fine-tuning needs at least 10 labeled examples; continued "
                               "pretraining on a corpus of billions of tokens needs none.",
         {"peft": HARD, "full_finetuning": HARD},
         EVIDENCE["openai"], _below_minimum),
    Rule("domain.continued_pretraining", "Billions of in-domain tokens with a large shift, in a domain the base "
                                         "model partly knows, call for continued pretraining of all weights.",
         {"full_finetuning": 2.0},
         EVIDENCE["biderman"], _continued_pretraining),
    Rule("domain.corpus_unread_by_peft", "An adapter trained on labels never reads a corpus of billions of "
                                         "in-domain tokens, and LoRA learns less from continued pretraining.",
         {"peft": -1.5},
         EVIDENCE["biderman"],
         lambda c: (f"{human(c.spec.knowledge.corpus_tokens)} tokens of in-domain text with a large domain shift"
                    if c.spec.knowledge.domain_shift.value == "large"
                    and c.spec.knowledge.corpus_tokens >= CPT_MIN_TOKENS else None)),
    Rule("data.openai_gains", "From 50 labeled examples fine-tuning usually shows clear gains.",
         {"peft": 0.5}, EVIDENCE["openai"], _labels_at_least(50)),
    Rule("data.google_range", "100-500 labeled examples is the recommended range for supervised tuning.",
         {"peft": 0.5, "full_finetuning": 0.25}, EVIDENCE["google"], _labels_at_least(100)),
    Rule("data.lima", "~1,000 curated examples are enough to align style and format.",
         {"peft": 1.0, "full_finetuning": 0.5}, EVIDENCE["lima"], _labels_at_least(1000)),
    Rule("data.few_thousand", "A few thousand high-quality examples usually suffice for SFT.",
         {"peft": 0.5, "full_finetuning": 0.75}, EVIDENCE["sft_quality"], _labels_at_least(3000)),
    Rule("data.large_sft", "Large labeled sets let full fine-tuning learn more than LoRA.",
         {"full_finetuning": 1.0}, EVIDENCE["biderman"], _labels_at_least(50_000)),
    Rule("task.style_strict", "A strict format or voice is learned from examples more reliably than prompted.",
         {"peft": 1.5, "full_finetuning": 0.5, "prompting": -0.5},
         EVIDENCE["lima"],
         lambda c: (f"task.style_consistency is high with {c.spec.data.labeled_examples:,} examples"
                    if c.spec.task.style_consistency.value == "high" and c.spec.data.labeled_examples >= 100
                    else None)),
    Rule("domain.moderate_shift", "Moderate domain jargon is adapted well by PEFT.",
         {"peft": 0.5, "full_finetuning": 0.5, "prompting": -0.5},
         EVIDENCE["biderman"],
         lambda c: "knowledge.domain_shift is moderate" if c.spec.knowledge.domain_shift.value == "moderate" else None),
    Rule("domain.large_shift", "A large domain shift needs continued pretraining of all weights; LoRA falls short.",
         {"full_finetuning": 1.5, "pretraining": 1.0, "peft": -0.5, "prompting": -1.5, "rag": -0.5},
         EVIDENCE["biderman"],
         lambda c: "knowledge.domain_shift is large" if c.spec.knowledge.domain_shift.value == "large" else None),
    Rule("pretrain.base_exists", "Pretraining is orders of magnitude costlier; pick an existing base model.",
         {"pretraining": -4.0},
         EVIDENCE["pretrain_cost"],
         lambda c: (None if (c.spec.knowledge.domain_shift.value == "large"
                             and c.spec.knowledge.in_base_model.value == "none")
                    else "an existing base model covers this domain (domain_shift is not large or the base "
                         "model knows some of it)")),
    Rule("pretrain.new_domain", "A domain no base model has seen (new language, script or modality) is what "
                                "pretraining is for.",
         {"pretraining": 3.0},
         EVIDENCE["new_language"],
         lambda c: ("domain_shift is large and the base model knows none of it"
                    if c.spec.knowledge.domain_shift.value == "large"
                    and c.spec.knowledge.in_base_model.value == "none" else None)),
    Rule("domain.unseen_by_base", "A base model that has never seen the language or script tokenizes it poorly "
                                  "and has little to adapt.",
         {"full_finetuning": -1.0, "peft": -1.0, "prompting": -1.0},
         EVIDENCE["tokenizer"],
         lambda c: ("domain_shift is large and the base model knows none of it"
                    if c.spec.knowledge.domain_shift.value == "large"
                    and c.spec.knowledge.in_base_model.value == "none" else None)),
    Rule("pretrain.data", "Pretraining needs ~20 tokens per parameter of unlabeled text.",
         {"pretraining": HARD}, EVIDENCE["chinchilla"], _pretrain_data),
    Rule("knowledge.nothing_to_retrieve", "RAG retrieves passages from a document index: with no documents and no "
                                          "corpus there is nothing to index.",
         {"rag": HARD}, EVIDENCE["lewis"],
         lambda c: ("knowledge.source_documents and knowledge.corpus_tokens are 0: no index to retrieve from"
                    if not (c.spec.knowledge.source_documents or c.spec.knowledge.corpus_tokens) else None)),
    Rule("context.window", "Prompt, in-context knowledge or retrieved passages and the answer must fit the "
                           "model's context window.",
         {"prompting": HARD, "rag": HARD}, EVIDENCE["window"], _per_path(_window, ("prompting", "rag"))),
    Rule("constraint.memory", "The path's training must fit the GPUs' memory.",
         {"peft": HARD, "full_finetuning": HARD, "pretraining": HARD}, EVIDENCE["memory"],
         _per_path(_memory, ("peft", "full_finetuning", "pretraining"))),
    Rule("constraint.budget", "The one-off spend (compute of every run, labels, evaluation) must fit the budget.",
         {p: HARD for p in PATHS}, EVIDENCE["constraints"], _per_path(_budget)),
    Rule("constraint.monthly_budget", "The monthly spend (serving, re-indexing or retraining compute, evaluation; "
                                      "not salaries) must fit the monthly budget.",
         {p: HARD for p in PATHS}, EVIDENCE["constraints"], _per_path(_monthly)),
    Rule("constraint.deadline", "The first result must arrive before the deadline.",
         {p: HARD for p in PATHS}, EVIDENCE["constraints"], _per_path(_deadline)),
    Rule("constraint.data_stays", "Data may not leave: hosted APIs are ruled out, every path is self-hosted.",
         {"prompting": 0.0, "rag": 0.0}, EVIDENCE["constraints"],
         lambda c: ("constraints.data_may_leave is false: serving priced self-hosted"
                    if not c.spec.constraints.data_may_leave else None)),
    Rule("traffic.below_break_even", "Tuning to shorten prompts pays off only past break-even volume.",
         {"prompting": 1.0}, EVIDENCE["breakeven"], _break_even),
    Rule("traffic.prompt_savings", "At high volume, a tuned model's shorter prompts (no few-shot examples, no "
                                   "knowledge base in the prompt) save real money.",
         {p: 1.0 for p in TUNED}, EVIDENCE["breakeven"], _per_path(_shorter_prompts_pay, TUNED)),
]

