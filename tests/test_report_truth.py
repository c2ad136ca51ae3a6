"""Every threshold, break-even and comparison a report states is true when the advisor is evaluated
at that point (issue 11 §4)."""
from __future__ import annotations

import math
import re

import pytest

from advisor.costs import PathCost
from advisor.recommend import Advice, PathResult, Recommendation, recommend
from advisor.report import INTEGER_FIELDS, _with, break_evens, build_report, cost_statements, fmt_value
from advisor.report_render import chart_svg, to_markdown
from advisor.spec import load_spec
from helpers import EXAMPLES, cli

SPECS = sorted(EXAMPLES.glob("*.yaml"))


@pytest.fixture(scope="module", params=SPECS, ids=lambda p: p.stem)
def example_report(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "r.json"
    r = cli("report", request.param, "-o", out)
    assert r.exit_code == 0, r.output
    import json
    return load_spec(request.param), json.loads(out.read_text())


def test_every_sensitivity_line_is_true(example_report):
    spec, rep = example_report
    base = rep["recommendation"]["path"]
    for s in rep["sensitivity"]:
        f = s["field"]
        assert s["from"] == base and s["to"] != base
        assert s["threshold"] != s["current"]
        # just past the threshold the named path wins; just before it the current one does
        assert recommend(_with(spec, f, s["threshold"])).recommendation.path == s["to"], s["sentence"]
        assert recommend(_with(spec, f, s["before"])).recommendation.path == base, s["sentence"]
        if f in INTEGER_FIELDS:      # whole units, adjacent
            assert isinstance(s["threshold"], int) and isinstance(s["before"], int)
            assert abs(s["threshold"] - s["before"]) == 1
        else:                        # adjacent at the 4 significant digits printed
            assert abs(s["threshold"] - s["before"]) <= 1e-3 * max(abs(s["threshold"]), abs(s["before"])) + 1e-9
        _check_shown(spec, s, base)


def _check_shown(spec, s, base):
    """The rounded values a sentence shows hold too: the named path wins at the shown threshold, the current
    one at the shown value before it, and they lie on the same sides as the exact pair."""
    f, t, b = s["field"], s["shown_threshold"], s["shown_before"]
    assert recommend(_with(spec, f, t)).recommendation.path == s["to"], s["sentence"]
    assert recommend(_with(spec, f, b)).recommendation.path == base, s["sentence"]
    if s["direction"] == "above":
        assert b <= s["before"] < s["threshold"] <= t
    else:
        assert t <= s["threshold"] < s["before"] <= b
    assert f" {fmt_value(f, t)} (" in s["sentence"] and f" {fmt_value(f, b)})" in s["sentence"]


def test_every_break_even_is_a_real_crossing(example_report):
    _, rep = example_report
    cum = rep["cumulative_usd"]
    for e in rep["break_even"]:
        b, a, m = cum[e["path"]], cum[e["overtakes"]], e["month"]
        lo, hi = math.floor(m), math.ceil(m)
        assert b[lo] > a[lo] - 0.01 and b[min(hi, len(b) - 1)] <= a[min(hi, len(a) - 1)] + 0.01
        assert abs(b[0] - a[0]) > 1.0      # not a crossing within rounding


def test_cost_statements_are_true(example_report):
    _, rep = example_report
    cum = rep["cumulative_usd"]
    rec = rep["recommendation"]["path"]
    labels = {p["label"]: p["path"] for p in rep["paths"]}
    mine = cum[rec] if rec in cum else None
    for s in rep["cost_statements"]:
        if not mine:
            break
        m = re.match(r"(.+?) is cheaper than (.+?) from month 0\.", s)
        if m:
            other = cum[labels[m.group(2)]]
            assert all(x <= y + max(1.0, 0.005 * y) for x, y in zip(mine, other)), s
        m = re.match(r"(.+?) (is cheaper than|becomes cheaper than) (.+?) (until|after) month ([\d.]+)", s)
        if m:
            other, month = cum[labels[m.group(3)]], float(m.group(5))
            before, after = math.floor(month), min(math.ceil(month), len(mine) - 1)
            if m.group(4) == "until":          # cheaper before the month, dearer after it
                assert mine[before] <= other[before] and mine[after] >= other[after], s
            else:
                assert mine[before] >= other[before] and mine[after] <= other[after], s


def test_no_sensitivity_line_past_a_fields_bound():
    spec = load_spec(EXAMPLES / "ticket-classifier.yaml")
    spec = _with(_with(spec, "constraints.gpu_fixed", True), "constraints.gpu_count", 1)
    rep = build_report(spec)
    assert not [s for s in rep["sensitivity"] if s["field"] == "constraints.gpu_count" and s["direction"] == "below"]
    for s in rep["sensitivity"]:
        _with(spec, s["field"], s["threshold"])          # every threshold is a valid value of its field


def _result(path: str, one_off: float, monthly: float) -> PathResult:
    cost = PathCost(path=path, one_off_usd=one_off, monthly_usd=monthly, time_to_first_result_days=1, gpu_hours=0,
                    memory_gb_per_gpu=None, gpu_memory_gb=None, fits=True, serving="hosted")
    return PathResult(path=path, feasible=True, fit=1.0, reasons=[], rules=[], cost=cost)


def _advice(*results: PathResult) -> Advice:
    rec = results[0]
    return Advice(spec_name="t", model="m", total_params=1, paths=list(results),
                  recommendation=Recommendation(path=rec.path, rationale=[], cost=rec.cost))


def test_a_path_cheaper_from_day_one_is_said_so():
    advice = _advice(_result("peft", 100.0, 10.0), _result("prompting", 150.0, 40.0))
    assert break_evens(advice) == []
    assert cost_statements(advice) == ["PEFT is cheaper than Prompting from month 0."]


def test_crossings_within_rounding_are_not_break_evens():
    advice = _advice(_result("rag", 1000.40, 99.0), _result("peft", 1000.0, 100.0))
    assert break_evens(advice) == []      # one-off costs equal within $1
    advice = _advice(_result("rag", 1500.0, 50.0), _result("peft", 1000.0, 100.0))
    assert [e["month"] for e in break_evens(advice)] == [10.0]


def test_coinciding_cost_lines_are_merged_with_a_note():
    spec = load_spec(EXAMPLES / "faq-bot.yaml")
    rep = build_report(spec, with_sensitivity=False)
    rep["cumulative_usd"]["rag"] = list(rep["cumulative_usd"]["prompting"])
    svg = chart_svg(rep)
    assert svg.count("<polyline") == len([p for p in rep["paths"] if p["feasible"]]) - 1
    assert "prompting = rag" in svg
    assert "drawn once: prompting = rag" in to_markdown(rep, "c.svg")


STARTUP = """
name: startup-intents
task: {kind: classification, complexity: low, style_consistency: high}
knowledge: {source_documents: 0, corpus_tokens: 0, update_frequency: never, in_base_model: most}
data: {labeled_examples: 2000, avg_example_tokens: 150}
model: {base: Qwen/Qwen2.5-1.5B}
traffic: {requests_per_month: 20000, prompt_tokens: 200, output_tokens: 5}
constraints: {budget_usd: 300, monthly_budget_usd: 50, deadline_days: 14}
"""


def test_sensitivity_lines_read_as_a_person_would_write_them(tmp_path):
    """Where nothing is feasible past a threshold the line says so (it read 'no feasible path replaces
    Prompting at ...', as if Prompting stayed), and values show at most 4 significant digits, each evaluated
    (they read '1,219,757 (Prompting still at 1,219,756)', '0.8099', '1,224,000.0')."""
    path = tmp_path / "startup.yaml"
    path.write_text(STARTUP)
    spec = load_spec(path)
    rep = build_report(spec)
    base = rep["recommendation"]["path"]
    assert rep["sensitivity"]
    dead_ends = [s for s in rep["sensitivity"] if s["to"] is None]
    assert dead_ends
    for s in rep["sensitivity"]:
        assert "no feasible path replaces" not in s["sentence"] and "still at" not in s["sentence"]
        _check_shown(spec, s, base)
        for num in re.findall(r"\d[\d,.]*", s["sentence"].split(" at ", 1)[1]):
            assert len(num.replace(",", "").replace(".", "").strip("0")) <= 4, s["sentence"]
    for s in dead_ends:
        assert s["sentence"].startswith("No path is feasible at "), s["sentence"]
    md = to_markdown(rep, "c.svg")
    assert "(now 20,000)" in md and "(now $50)" in md
