"""Property tests: random valid specs never crash, and the rules move fit in the promised direction."""
from __future__ import annotations

import json

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor import catalog
from advisor.recommend import recommend
from advisor.spec import Frequency, ProjectSpec

LEVELS = ["low", "medium", "high"]
FREQ = [f.value for f in Frequency]

specs = st.fixed_dictionaries({
    "name": st.just("prop"),
    "task": st.fixed_dictionaries({
        "kind": st.sampled_from(["qa", "chat", "classification", "extraction", "summarization", "generation", "code"]),
        "complexity": st.sampled_from(LEVELS), "needs_citations": st.booleans(),
        "style_consistency": st.sampled_from(LEVELS)}),
    "knowledge": st.fixed_dictionaries({
        "source_documents": st.integers(0, 10**6), "corpus_tokens": st.integers(0, 10**12),
        "update_frequency": st.sampled_from(FREQ), "in_base_model": st.sampled_from(["none", "partial", "most"]),
        "domain_shift": st.sampled_from(["none", "moderate", "large"])}),
    "data": st.fixed_dictionaries({"labeled_examples": st.integers(0, 10**6),
                                   "avg_example_tokens": st.integers(1, 8000)}),
    "model": st.fixed_dictionaries({"base": st.sampled_from(sorted(catalog.models())), "fixed": st.booleans()}),
    "traffic": st.fixed_dictionaries({"requests_per_month": st.integers(0, 10**9),
                                      "prompt_tokens": st.integers(0, 20000), "output_tokens": st.integers(0, 4000)}),
    "constraints": st.fixed_dictionaries({
        "budget_usd": st.floats(0, 1e7), "monthly_budget_usd": st.none() | st.floats(0, 1e6),
        "gpu": st.sampled_from(sorted(catalog.priced_gpus())),   # an unpriced one is a UserError (test_gpu_catalog)
        "gpu_count": st.integers(1, 128),
        "deadline_days": st.none() | st.floats(1, 1000), "data_may_leave": st.booleans(),
        "gpu_fixed": st.booleans()}),
    "economics": st.fixed_dictionaries({
        "engineer_day_usd": st.none() | st.floats(0, 3000), "horizon_months": st.integers(1, 60),
        "experiments": st.dictionaries(st.sampled_from(["rag", "peft", "full_finetuning", "pretraining"]),
                                       st.floats(0, 10), max_size=2),
        "retrain_per_year": st.none() | st.floats(0, 12),
        "labeled_examples_needed": st.none() | st.integers(0, 10**5)}),
})

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _fit(spec: dict, path: str) -> float:
    return recommend(ProjectSpec.model_validate(spec)).path(path).fit


@SETTINGS
@given(specs)
def test_random_valid_specs_never_crash(spec):
    advice = recommend(ProjectSpec.model_validate(spec))
    assert len(advice.paths) == 5
    chosen = advice.recommendation.path
    assert chosen is None or all(advice.path(p).feasible for p in chosen.split("+"))
    for p in advice.paths:
        assert p.cost.one_off_usd >= 0 and p.cost.monthly_usd >= 0


@SETTINGS
@given(specs, st.integers(1, 10**6))
def test_more_labeled_examples_never_lower_peft_fit(spec, extra):
    more = {**spec, "data": {**spec["data"], "labeled_examples": spec["data"]["labeled_examples"] + extra}}
    assert _fit(more, "peft") >= _fit(spec, "peft")


@SETTINGS
@given(specs, st.floats(1, 1e7))
def test_bigger_budget_never_makes_a_feasible_path_infeasible(spec, extra):
    c = spec["constraints"]
    bigger = {**spec, "constraints": {**c, "budget_usd": c["budget_usd"] + extra,
                                      "monthly_budget_usd": None if c["monthly_budget_usd"] is None
                                      else c["monthly_budget_usd"] + extra}}
    before = recommend(ProjectSpec.model_validate(spec))
    after = recommend(ProjectSpec.model_validate(bigger))
    for p in before.paths:
        if p.feasible:
            assert after.path(p.path).feasible


@SETTINGS
@given(specs, st.data())
def test_more_frequent_updates_never_lower_rag_fit(spec, data):
    i = FREQ.index(spec["knowledge"]["update_frequency"])
    j = data.draw(st.integers(i, len(FREQ) - 1))
    faster = {**spec, "knowledge": {**spec["knowledge"], "update_frequency": FREQ[j]}}
    assert _fit(faster, "rag") >= _fit(spec, "rag")


# --- issue 11: fit and cost move the promised way ---------------------------------------------------

@SETTINGS
@given(specs, st.integers(1, 10**14))
def test_more_corpus_tokens_with_a_large_shift_never_lower_full_finetuning_fit(spec, extra):
    k = {**spec["knowledge"], "domain_shift": "large"}
    more = {**spec, "knowledge": {**k, "corpus_tokens": min(k["corpus_tokens"] + extra, 10**15)}}
    assert _fit(more, "full_finetuning") >= _fit({**spec, "knowledge": k}, "full_finetuning")


def _config_with_window(tmp_path_factory, window: int):
    """Qwen2.5-0.5B's config with another context window: same weights, so the same costs."""
    src = catalog.models()["Qwen/Qwen2.5-0.5B"].path
    cfg = {**json.loads(src.read_text()), "max_position_embeddings": window}
    cfg.pop("rope_scaling", None)
    d = tmp_path_factory.mktemp(f"w{window}")
    (d / "config.json").write_text(json.dumps(cfg))
    return str(d / "config.json")


WINDOWS = [1024, 4096, 32768, 131072, 1_000_000]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(specs, st.integers(0, len(WINDOWS) - 2), st.data())
def test_a_longer_context_window_never_makes_prompting_infeasible(tmp_path_factory, spec, i, data):
    j = data.draw(st.integers(i + 1, len(WINDOWS) - 1))
    short, long = (_config_with_window(tmp_path_factory, WINDOWS[x]) for x in (i, j))
    before = recommend(ProjectSpec.model_validate({**spec, "model": {"base": short}})).path("prompting")
    after = recommend(ProjectSpec.model_validate({**spec, "model": {"base": long}})).path("prompting")
    if before.feasible:
        assert after.feasible, after.reasons


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(specs, st.sampled_from(sorted(catalog.priced_gpus())), st.floats(0.05, 0.99))   # unpriced: never searched
def test_a_cheaper_gpu_price_never_raises_a_feasible_paths_cost(tmp_path_factory, monkeypatch, spec, gid, factor):
    before = recommend(ProjectSpec.model_validate(spec))
    cat = tmp_path_factory.mktemp("cat") / "prices.yaml"
    cat.write_text(yaml.safe_dump({"gpus": {gid: {"usd_per_hour": catalog.gpus()[gid].usd_per_hour * factor}}}))
    monkeypatch.setenv("TUNEPATH_CATALOG", str(cat))
    _clear()
    try:
        after = recommend(ProjectSpec.model_validate(spec))
    finally:
        monkeypatch.delenv("TUNEPATH_CATALOG")
        _clear()
    # The search keeps the spec's own model unless another saves more than rounding (costs.SAME_COST_*): a cheaper GPU
    # can bring the own model within rounding of the smaller one chosen before, and then the own model is kept.
    from advisor.costs import SAME_COST_REL, SAME_COST_USD
    for p in before.paths:
        if p.feasible:
            was = p.cost.total_usd()
            assert after.path(p.path).cost.total_usd() <= was + max(SAME_COST_USD, SAME_COST_REL * was) + 1e-6, p.path


def _clear():
    from advisor import costs
    catalog.gpus.cache_clear()
    costs.clear_caches()
