"""The advisor end to end through the CLI: examples, JSON shape, starter spec, bad input, no torch."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from helpers import EXAMPLES, REPO, cli, cli_subprocess

SPECS = sorted(EXAMPLES.glob("*.yaml"))
PATHS = {"prompting", "rag", "peft", "full_finetuning", "pretraining"}


def _expected(spec):
    m = re.search(r"^# expect: (\S+)", spec.read_text(), re.M)
    assert m, f"{spec.name} lacks an '# expect: PATH' comment"
    return m.group(1)


def test_examples_cover_every_path():
    expected = {_expected(s) for s in SPECS}
    assert len(SPECS) >= 8
    assert PATHS <= {p for e in expected for p in e.split("+")}


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_example_gets_its_path(spec):
    r = cli("recommend", spec, "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["recommendation"]["path"] == _expected(spec)
    assert {p["path"] for p in data["paths"]} == PATHS
    for p in data["paths"]:
        assert set(p) >= {"path", "feasible", "fit", "reasons", "rules", "cost"}
        assert p["feasible"] == (not p["reasons"])
        assert p["fit"] == pytest.approx(sum(float(r["effect"]) for r in p["rules"] if r["effect"] != "infeasible"))
        for rule in p["rules"]:
            assert rule["id"] and rule["evidence"] and rule["effect"]
    assert data["recommendation"]["rationale"]


def test_recommend_table_output_names_choice_and_rules():
    r = cli("recommend", EXAMPLES / "support-assistant.yaml")
    assert r.exit_code == 0
    assert "Recommendation: RAG" in r.stdout
    assert "knowledge.exceeds_prompt" in r.stdout and "task.citations" in r.stdout
    # "12/16 GiB" under memory/GPU: the legend says which number is which
    assert "memory/GPU: need/have" in r.stdout


def test_memory_per_gpu_is_shown_in_the_unit_cards_are_sold_in():
    """An H200 holds 141 GiB (151e9 bytes): the table said '/151 GB' where `tunepath gpus` and the data sheet say
    141; both numbers are now GiB, and an infeasibility reason names the need in both units."""
    r = cli("recommend", EXAMPLES / "support-assistant.yaml", "--set", "constraints.gpu=H200",
            "--set", "constraints.gpu_fixed=true", "--set", "constraints.gpu_count=1")
    assert r.exit_code == 0, r.output
    rows = [line for line in r.stdout.splitlines() if re.search(r"\d+/\d+ Gi?B", line)]
    assert rows and all(line.rstrip().endswith("/141 GiB") for line in rows), rows
    data = json.loads(cli("recommend", EXAMPLES / "support-assistant.yaml", "--json", "--set", "constraints.gpu=T4",
                          "--set", "constraints.gpu_fixed=true", "--set", "constraints.gpu_count=1",
                          "--set", "model.base=meta-llama/Llama-2-70b-hf", "--set", "model.fixed=true").stdout)
    reasons = [x for p in data["paths"] for x in p["reasons"] if "per GPU" in x]
    assert reasons and all(re.search(r"needs [\d,]+ GB \([\d,]+ GiB\) per GPU", x) for x in reasons), reasons


def test_set_override_changes_the_answer():
    base = json.loads(cli("recommend", EXAMPLES / "faq-bot.yaml", "--json").stdout)
    r = cli("recommend", EXAMPLES / "faq-bot.yaml", "--json", "--set", "knowledge.corpus_tokens=50000000",
            "--set", "task.needs_citations=true")
    assert base["recommendation"]["path"] == "prompting"
    assert json.loads(r.stdout)["recommendation"]["path"] == "rag"


def test_infeasible_everything_is_a_valid_answer(tmp_path):
    spec = yaml.safe_load((EXAMPLES / "support-assistant.yaml").read_text())
    spec["constraints"].update(budget_usd=0, monthly_budget_usd=0)
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(spec))
    r = cli("recommend", p, "--json")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert data["recommendation"]["path"] is None
    assert all(not p["feasible"] for p in data["paths"])


def test_init_writes_a_spec_that_recommends(tmp_path):
    p = tmp_path / "spec.yaml"
    assert cli("init", p).exit_code == 0
    assert "#" in p.read_text()                       # commented
    assert cli("init", p).exit_code == 2              # no silent overwrite
    r = cli("recommend", p, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["recommendation"]["path"] in PATHS | {"rag+peft"}


def test_schema_lists_fixed_field_names():
    schema = json.loads(cli("schema").stdout)
    defs = schema["$defs"]
    assert set(schema["properties"]) >= {"name", "task", "knowledge", "data", "model", "traffic", "constraints"}
    assert set(defs["Knowledge"]["properties"]) == {"source_documents", "corpus_tokens", "update_frequency",
                                                    "in_base_model", "domain_shift"}
    assert defs["Constraints"]["properties"]["gpu_count"]["description"]


def test_rules_table_has_evidence_for_every_rule():
    rows = json.loads(cli("rules", "--json").stdout)
    ids = {r["id"] for r in rows}
    assert len(ids) == len(rows) >= 20
    for needed in ("knowledge.exceeds_prompt", "updates.weekly_or_faster", "task.citations", "data.below_minimum",
                   "data.lima", "task.style_strict", "domain.large_shift", "pretrain.data", "constraint.memory",
                   "constraint.deadline", "constraint.data_stays", "task.simple", "traffic.below_break_even"):
        assert needed in ids
    assert all(r["evidence"] and r["statement"] for r in rows)
    assert "Decision rules" in cli("rules").stdout


def _write(tmp_path, text):
    p = tmp_path / "spec.yaml"
    p.write_text(text)
    return p


GOOD = (EXAMPLES / "faq-bot.yaml").read_text()


@pytest.mark.parametrize("mutate,needle", [
    (lambda s: s.replace("complexity: low", "complexty: low"), "task.complexty: unknown field; did you mean 'task.complexity'"),
    (lambda s: s.replace("labeled_examples: 20", "labeled_examples: many"), "data.labeled_examples"),
    (lambda s: s.replace("labeled_examples: 20", "labeled_examples: -5"), "data.labeled_examples"),
    (lambda s: s.replace("update_frequency: yearly", "update_frequency: hourly"), "knowledge.update_frequency: expected"),
    (lambda s: s.replace("gpu: L4", "gpu: L20"), "constraints.gpu: unknown GPU 'L20'"),
    (lambda s: s.replace("base: Qwen/Qwen2.5-7B", "base: acme/NoSuchModel-7B"), "model.base: unknown model"),
    (lambda s: s.replace("name: faq-bot\n", ""), "name: required field is missing"),
    (lambda s: s + "\n  bad: [unclosed\n", "invalid YAML"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, mutate, needle):
    p = _write(tmp_path, mutate(GOOD))
    r = cli_subprocess("recommend", p)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2  # rich may wrap one long line


def test_missing_and_unreadable_files(tmp_path):
    r = cli_subprocess("recommend", tmp_path / "nope.yaml")
    assert r.returncode == 2 and "no such file" in r.stderr
    r = cli_subprocess("recommend", tmp_path)
    assert r.returncode == 2 and "is a folder" in r.stderr
    j = tmp_path / "s.json"
    j.write_text('{"name": "x",')
    r = cli_subprocess("recommend", j)
    assert r.returncode == 2 and "invalid JSON" in r.stderr


def test_json_spec_and_config_path_model(tmp_path):
    cfg = tmp_path / "mymodel"
    cfg.mkdir()
    (cfg / "config.json").write_text((REPO / "advisor/data/models/Qwen__Qwen2.5-0.5B.json").read_text())
    spec = yaml.safe_load(GOOD)
    spec["model"]["base"] = str(cfg)
    p = tmp_path / "s.json"
    p.write_text(json.dumps(spec))
    r = cli("recommend", p, "--json")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["model"]["total_params"] == 494_032_768


def test_recommend_never_imports_backends():
    code = ("import sys; from tunepath.cli import main; sys.argv=['tunepath','recommend','--json',"
            f"r'{EXAMPLES / 'support-assistant.yaml'}']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy={'torch','transformers','sentence_transformers','faiss','peft'} & set(sys.modules)\n"
            "print('HEAVY', sorted(heavy), file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert "HEAVY []" in r.stderr, r.stderr
    assert json.loads(r.stdout)["recommendation"]["path"] == "rag"


@pytest.mark.parametrize("blocked,args,extra", [
    ("torch", ["train", str(EXAMPLES / "train" / "lora-garden-qa.yaml")], "train"),
    ("sentence_transformers", ["run", str(EXAMPLES / "acme-support.yaml"), "--yes", "--set", "run.output_dir=OUT"],
     "rag"),
])
def test_missing_backend_names_the_extra_to_install(tmp_path, blocked, args, extra):
    """With only the core dependencies installed, backend commands say which extra to install (exit 2)."""
    args = [a.replace("OUT", str(tmp_path / "out")) for a in args]
    code = (f"import sys; sys.modules[{blocked!r}] = None; sys.argv = ['tunepath', *{args!r}]\n"
            "from tunepath.cli import main\nmain()")
    env = {k: v for k, v in os.environ.items() if k != "TUNEPATH_DEBUG"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env)
    assert r.returncode == 2, r.stderr
    assert f"pip install 'tunepath[{extra}]'" in r.stderr and "Traceback" not in r.stderr


def test_rule_evidence_and_details_read_as_sentences():
    """Evidence is forwarded as written: none may stop mid-clause on a bare number ('(LIMA): 1,000'), and the
    knowledge detail must not say 'base model knows partial of them'."""
    r = cli("rules", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    rows = data if isinstance(data, list) else data["rules"]
    for row in rows:
        assert not re.search(r"[:,]\s*[\d,.~]+$", row["evidence"]), (row["id"], row["evidence"])
    r = cli("recommend", EXAMPLES / "faq-bot.yaml", "--json", "--set", "knowledge.in_base_model=partial",
            "--set", "knowledge.source_documents=120")
    assert r.exit_code == 0, r.output
    details = [f["detail"] for p in json.loads(r.stdout)["paths"] for f in p["rules"] if f["id"] == "knowledge.injection"]
    assert details and all("knows part of them" in d for d in details), details


@pytest.mark.parametrize("args", [["rules", "--json"], ["recommend", str(EXAMPLES / "support-assistant.yaml")]])
def test_output_into_a_closed_pipe_stops_quietly(args):
    """`tunepath rules --json | head -1`: the reader closing the pipe is not a bug - no 'internal error', exit 141
    (128 + SIGPIPE, what a shell reports for a Unix tool stopped by a closed pipe), nothing on stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)   # every write to stdout now fails with EPIPE, as after `head` exits
    env = {k: v for k, v in os.environ.items() if k != "TUNEPATH_DEBUG"}
    env["PYTHONPATH"] = str(REPO)
    try:
        r = subprocess.run([sys.executable, "-m", "tunepath.cli", *args], stdout=write_end, stderr=subprocess.PIPE,
                           text=True, cwd=REPO, env=env, timeout=120)
    finally:
        os.close(write_end)
    assert r.returncode == 141, r.stderr
    assert r.stderr == ""
