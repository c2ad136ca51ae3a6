"""bench/results.py writes a result file; bench/make_docs.py turns result files into docs/benchmarks.md."""
import importlib.util
import json
import os
import sys

from helpers import REPO


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod           # dataclasses resolve annotations through sys.modules
    sys.path.insert(0, str(REPO / "bench"))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(REPO / "bench"))
    return mod


def test_recorded_result_becomes_a_docs_table(tmp_path, monkeypatch):
    results, make_docs = _load("results"), _load("make_docs")
    monkeypatch.setattr(results, "RESULTS", tmp_path / "results")
    old = os.umask(0o077)
    try:
        path = results.record("demo_bench", figures={"chunks": 1234, "runs": [{"order": "raw, index", "ratio": 0.97}],
                                                     "nested": {"recall": 0.9876}},
                              baseline="raw encode", ratios={"index_vs_raw": 0.971}, target=">= 0.9x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    data = json.loads(path.read_text())
    assert data["cores"] == os.cpu_count() and data["cpu"] and "torch" in data["versions"]
    md = make_docs.render(tmp_path / "results")
    assert "## demo_bench" in md and "**Target:** >= 0.9x" in md and "**Baseline:** raw encode" in md
    assert "**index_vs_raw:** 0.971" in md and "| chunks | 1,234 |" in md
    assert "| runs[0].order | raw, index |" in md and "| nested.recall | 0.9876 |" in md
    assert f"commit {data['commit']}" in md and data["cpu"] in md


def test_quoted_estimate_accuracy_agrees_with_the_recorded_bench():
    """advisor/data/estimate_accuracy.json (what `tunepath estimate` and reports quote) is what the recorded
    estimator_published results say: rerunning the bench without `--docs` would leave it stale."""
    mod = _load("estimator_published")
    recorded = json.loads((REPO / "bench" / "results" / "estimator_published.json").read_text())
    assert json.loads(mod.ACCURACY.read_text()) == mod.accuracy_by_group(recorded)
    groups = json.loads(mod.ACCURACY.read_text())["groups"]
    assert {"pretraining time", "fine-tuning time", "memory", "serving"} <= set(groups)


def test_generated_docs_are_in_step_with_the_recorded_results(tmp_path):
    """docs/benchmarks.md and docs/validation.md are generated (bench/make_docs.py, `estimator_published.py
    --docs`); a result recorded without regenerating them left benchmarks.md quoting the previous run."""
    make_docs = _load("make_docs")
    assert (REPO / "docs" / "benchmarks.md").read_text() == make_docs.render(REPO / "bench" / "results"), \
        "docs/benchmarks.md is stale: run python bench/make_docs.py"
    _load("estimator_published").write_docs(tmp_path / "validation.md")
    assert (REPO / "docs" / "validation.md").read_text() == (tmp_path / "validation.md").read_text(), \
        "docs/validation.md is stale: run python bench/estimator_published.py --docs"
