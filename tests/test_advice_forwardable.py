"""Advice a reader forwards without editing: no sentence that contradicts itself or its own numbers.

Each test drives the CLI on a spec shaped like a real project (second advice review)."""
from __future__ import annotations

import json
import re

import pytest

from helpers import cli

TINY_INTERNAL_TOOL = """
name: release-notes-rewriter
task: {kind: summarization, complexity: low, style_consistency: medium}
knowledge: {source_documents: 50, corpus_tokens: 40000, update_frequency: weekly, in_base_model: none}
data: {labeled_examples: 30, avg_example_tokens: 600}
model: {base: meta-llama/Llama-3.1-8B}
traffic: {requests_per_month: 300, prompt_tokens: 1500, output_tokens: 400}
constraints: {budget_usd: 2000, monthly_budget_usd: 100, deadline_days: 7, data_may_leave: true}
"""


def _recommend(tmp_path, text, *sets):
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    r = cli("recommend", spec, "--json", *[a for s in sets for a in ("--set", s)])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    return out, {p["path"]: p for p in out["paths"]}


def test_a_deadline_missed_by_hours_is_not_printed_as_on_time(tmp_path):
    """PEFT's first result comes a few hours after a 7-day deadline; it read 'first result in ~7.0 days,
    deadline is 7 days' and 'misses ... the deadline by 0.0 days'."""
    out, paths = _recommend(tmp_path, TINY_INTERNAL_TOOL, "traffic.requests_per_month=5000000")
    reason = next(r for r in paths["peft"]["reasons"] if "constraint.deadline" in r)
    days = paths["peft"]["cost"]["time_to_first_result_days"]
    assert 7 < days < 7.05
    m = re.search(r"first result in 7 days and (\d+) hours?, deadline is 7 days", reason)
    assert m and int(m.group(1)) == -(-(days - 7) * 24 // 1), reason
    text = " ".join(out["recommendation"]["rationale"])
    assert not re.search(r"(?<![\d.])0\.0 days", text) and "~7.0 days" not in text, text
    assert re.search(r"the deadline by \d+ hours?", text), text


LOW_RESOURCE_TRANSLATION = """
name: lowres-translation
task: {kind: generation, complexity: high, style_consistency: medium}
knowledge: {source_documents: 0, corpus_tokens: 2_000_000_000, update_frequency: never, in_base_model: none,
            domain_shift: large}
data: {labeled_examples: 60000, avg_example_tokens: 120}
model: {base: Qwen/Qwen2.5-7B}
traffic: {requests_per_month: 300000, prompt_tokens: 100, output_tokens: 100}
constraints: {budget_usd: 60000, gpu: H100-SXM, gpu_count: 8, deadline_days: 90, data_may_leave: true}
"""


def test_full_fine_tuning_says_it_reads_the_corpus_it_is_priced_on(tmp_path):
    """Under a domain shift full fine-tuning is priced as continued pretraining on the whole corpus, then SFT
    (2B tokens: $1,394 of compute where the 7M tokens of labels alone cost a few dollars); the setup sentence
    said only 'full, 512-token rows', so a reader could not tell what the money buys."""
    out, paths = _recommend(tmp_path, LOW_RESOURCE_TRANSLATION)
    assert out["recommendation"]["path"] == "full_finetuning"
    assert paths["full_finetuning"]["cost"]["training_tokens"] > 2e9
    setup = next(x for x in out["recommendation"]["rationale"] if x.startswith("Setup:"))
    assert "continued pretraining on the 2B-token corpus, then SFT on the labels" in setup, setup
    from advisor.recommend import recommend, setup_sentence
    from advisor.spec import load_spec
    spec = tmp_path / "spec.yaml"
    spec.write_text(LOW_RESOURCE_TRANSLATION.replace("domain_shift: large", "domain_shift: none"))
    full = next(p for p in recommend(load_spec(spec)).paths if p.path == "full_finetuning")
    assert full.cost.training_tokens < 1e8 and "continued pretraining" not in setup_sentence(full.cost)


MINIMAL = """
name: minimal
task: {kind: qa}
knowledge: {corpus_tokens: 5e9, domain_shift: large, in_base_model: none}
data: {labeled_examples: 20000}
"""


def test_defaults_are_not_presented_as_the_projects_own_figures(tmp_path):
    """A spec with no budget and no model read 'exceeds the budget of $10,000', 'counted against the $10,000
    one-off budget' and 'Base model meta-llama/Llama-3.1-8B', as if the project had said so."""
    out, paths = _recommend(tmp_path, MINIMAL)
    assert out["defaults"] == ["model.base", "constraints.budget_usd"]
    reason = next(r for r in paths["pretraining"]["reasons"] if "constraint.budget" in r)
    assert "exceeds the default budget of $10,000 (constraints.budget_usd is not set)" in reason, reason
    r = cli("recommend", tmp_path / "spec.yaml")
    assert "the default, model.base is not set" in " ".join(r.stdout.split()), r.stdout
    for ext in ("md", "html"):
        assert cli("report", tmp_path / "spec.yaml", "-o", tmp_path / f"r.{ext}").exit_code == 0
        text = (tmp_path / f"r.{ext}").read_text()
        assert "parameters; the default, model.base is not set)" in text
        assert "counted against the default $10,000 one-off budget (constraints.budget_usd is not set)" in text
    out, paths = _recommend(tmp_path, MINIMAL + "model: {base: meta-llama/Llama-3.1-8B}\n"
                            "constraints: {budget_usd: 10000}\n")
    assert out["defaults"] == []
    reason = next(r for r in paths["pretraining"]["reasons"] if "constraint.budget" in r)
    assert "exceeds the budget of $10,000" in reason and "default" not in reason, reason


def test_the_next_best_setup_named_in_the_rationale_is_one_that_works(tmp_path):
    """The tiny internal tool's prompt carries a 40K-token knowledge base; the rationale named as 'Next-best
    setup' a cheaper Meta-Llama-3-8B '(misses the context window ...)': no fallback at all. The report still
    lists every setup searched, misses included."""
    out, paths = _recommend(tmp_path, TINY_INTERNAL_TOOL)
    alts = paths["prompting"]["cost"]["alternatives"]
    assert out["recommendation"]["path"] == "prompting" and any(a["misses"] for a in alts)
    lines = [x for x in out["recommendation"]["rationale"] if x.startswith("Next-best setup")]
    assert not any("misses" in x for x in lines), lines
    working = [a for a in alts if not a["misses"]]
    assert bool(lines) == bool(working)
    assert cli("report", tmp_path / "spec.yaml", "-o", tmp_path / "r.md").exit_code == 0
    assert "misses the context window" in (tmp_path / "r.md").read_text()


def test_an_infeasible_spec_names_the_one_change_that_helps_and_its_figure(tmp_path):
    """The tiny tool that must self-host: every path pays an always-on GPU ($255/month) over a $100 monthly
    budget. The advice ended 'Relax the budget, deadline or GPU, or choose a smaller base model' - a smaller
    model saves nothing there. Each constraint lifted alone is evaluated, with the value the path needs."""
    out, _ = _recommend(tmp_path, TINY_INTERNAL_TOOL, "constraints.data_may_leave=false")
    assert out["recommendation"]["path"] is None
    line = out["recommendation"]["rationale"][-1]
    assert "smaller base model" not in line
    assert "with hosted APIs allowed (constraints.data_may_leave: true), Prompting" in line, line
    m = re.search(r"with a monthly budget of \$([\d,]+) \(now \$100\), (\w+)", line)
    assert m, line
    out, _ = _recommend(tmp_path, TINY_INTERNAL_TOOL, "constraints.data_may_leave=false",
                        f"constraints.monthly_budget_usd={m.group(1).replace(',', '')}")
    assert out["recommendation"]["path"] == m.group(2).lower()
    out, _ = _recommend(tmp_path, TINY_INTERNAL_TOOL, "constraints.data_may_leave=true")
    assert out["recommendation"]["path"] == "prompting"


def test_the_compute_figure_says_what_it_is_made_of(tmp_path):
    """'One-off $1.23M (compute $1.22M, people $7,200)': a reader cannot check $1.22M against a quote. The
    sentence now gives runs x GPU-hours on the card, which with the catalog's price make the figure."""
    from advisor import catalog

    out, _ = _recommend(tmp_path, LOW_RESOURCE_TRANSLATION)
    line = next(x for x in out["recommendation"]["rationale"] if x.startswith("One-off"))
    m = re.search(r"compute \$([\d,]+): (\d+) runs x ([\d,]+) (\S+) GPU-hours, (\d+) of them experiments; people", line)
    assert m, line
    compute, runs, hours, gpu = float(m[1].replace(",", "")), int(m[2]), float(m[3].replace(",", "")), m[4]
    c = out["recommendation"]["cost"]
    assert gpu == c["setup"]["train_gpu"] and int(m[5]) == runs - 1
    assert abs(hours - c["gpu_hours"]) <= 0.5
    assert compute == pytest.approx(runs * c["gpu_hours"] * catalog.gpu(gpu).usd_per_hour, abs=1.0)
    assert compute == pytest.approx(c["breakdown"]["compute"], abs=1.0)


def test_no_sentence_names_a_path_by_its_internal_id(tmp_path):
    """'the cheapest tuned path (peft) breaks even after ...': ids are for --json; sentences use the names."""
    out, paths = _recommend(tmp_path, TINY_INTERNAL_TOOL)
    details = [r["detail"] for p in paths.values() for r in p["rules"]]
    assert any("breaks even after" in d for d in details)
    for text in out["recommendation"]["rationale"] + details + [x for p in paths.values() for x in p["reasons"]]:
        assert not re.search(r"\((?:prompting|rag|peft|full_finetuning|pretraining)\)|full_finetuning|rag\+peft",
                             text), text


def test_the_monthly_upkeep_says_what_it_pays_for(tmp_path):
    """'upkeep $68,248' a month on a continued-pretraining project gave no hint that it is two whole reruns a
    year (economics.retrain_per_year); the sentence says so, and the figure is that."""
    out, _ = _recommend(tmp_path, LOW_RESOURCE_TRANSLATION)
    c = out["recommendation"]["cost"]
    line = next(x for x in out["recommendation"]["rationale"] if x.startswith("One-off"))
    m = re.search(r"upkeep \$([\d,]+) for (\d+) retrains a year, each a run as above with (\d+) engineer-days", line)
    assert m, line
    per_run = c["breakdown"]["compute"] / c["details"]["runs"]
    retrains, days = int(m[2]), int(m[3])
    assert float(m[1].replace(",", "")) == pytest.approx(retrains / 12 * (per_run + days * 720), abs=1.0)
    out, _ = _recommend(tmp_path, TINY_INTERNAL_TOOL, "knowledge.corpus_tokens=5000000",
                        "knowledge.update_frequency=daily")
    assert out["recommendation"]["path"] == "rag"
    line = next(x for x in out["recommendation"]["rationale"] if x.startswith("One-off"))
    assert "for re-embedding the corpus every day" in line, line


DOMAIN_300B = """
name: domain-llm-300b
task: {kind: generation, complexity: high, style_consistency: medium}
knowledge: {source_documents: 0, corpus_tokens: 300e9, update_frequency: yearly, in_base_model: partial,
            domain_shift: large}
data: {labeled_examples: 50000, avg_example_tokens: 800}
model: {base: meta-llama/Llama-2-70b-hf}
traffic: {requests_per_month: 2e6, prompt_tokens: 1000, output_tokens: 400}
constraints: {budget_usd: 5e6, gpu: H100-SXM, gpu_count: 256, deadline_days: 150, data_may_leave: false}
"""


def test_too_little_text_for_the_architecture_names_the_size_it_supports(tmp_path):
    """'Pretraining is infeasible: corpus has 300B tokens; ... 69B params needs ~1.38T' read as 'no pretraining',
    where the corpus supports a model of up to ~60B params (BloombergGPT pretrained 50B on ~700B tokens)."""
    _, paths = _recommend(tmp_path, DOMAIN_300B)
    reason = next(r for r in paths["pretraining"]["reasons"] if "pretrain.data" in r)
    m = re.search(r"it supports pretraining a model of up to ~([\d.]+)B params", reason)
    assert m and float(m[1]) == pytest.approx(60, rel=0.01), reason
    _, paths = _recommend(tmp_path, DOMAIN_300B, "model.base=meta-llama/Llama-2-13b-hf")
    assert not any("pretrain.data" in r for r in paths["pretraining"]["reasons"])
    _, paths = _recommend(tmp_path, DOMAIN_300B, "knowledge.corpus_tokens=1000000")
    reason = next(r for r in paths["pretraining"]["reasons"] if "pretrain.data" in r)
    assert "it supports" not in reason, reason


def test_a_replica_spans_a_gpu_count_tensor_parallelism_can_use():
    """Llama-2-70B in bf16 needs 7 x 24 GB; the 300B-token domain project was served on '1 replica x 7
    RTX-4090', which vLLM refuses ('Total number of attention heads (64) must be divisible by tensor parallel
    size (7)'). It is priced on 8; a count that fits already (2 x 80 GB) is kept."""
    from advisor import catalog

    heads = catalog.architecture("meta-llama/Llama-2-70b-hf").num_heads
    for gpu, expected in (("RTX-4090", 8), ("H100-SXM", 2)):
        r = cli("estimate", "--model", "meta-llama/Llama-2-70b-hf", "--method", "inference", "--gpu", gpu, "--json")
        assert r.exit_code == 0, r.output
        got = json.loads(r.stdout)["gpus_per_replica"]
        assert got == expected and heads % got == 0, (gpu, got)
