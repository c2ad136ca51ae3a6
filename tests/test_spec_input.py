"""Bad specs end in one line naming the field or file:line, exit 2, no traceback (issue 11 §5)."""
from __future__ import annotations

import json
import os

import pytest

from helpers import EXAMPLES, REPO, cli, cli_subprocess, one_line_error

BASE = "name: x\ntask: {kind: qa}\n"


class _Done:
    def __init__(self, r):
        self.returncode, self.stderr = r.exit_code, r.stderr


def _run(tmp_path, text: str, suffix: str = ".yaml", *extra):
    """In-process (the subprocess tests below cover a fresh interpreter's exit status)."""
    spec = tmp_path / f"spec{suffix}"
    spec.write_text(text)
    return _Done(cli("recommend", spec, *extra, env={"TUNEPATH_DEBUG": ""}))


def _one_line_exit_2(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.mark.parametrize("text,needles", [
    (BASE + "constraints:\n  budget_usd: 1e400\n", ["spec.yaml:4", "1e400", "finite"]),
    (BASE + "constraints:\n  budget_usd: .inf\n", ["spec.yaml:4", "finite"]),
    (BASE + "constraints:\n  budget_usd: -.inf\n", ["spec.yaml:4", "finite"]),
    (BASE + "constraints:\n  budget_usd: .nan\n", ["spec.yaml:4", "finite"]),
    (BASE + "traffic:\n  requests_per_month: " + "9" * 5000 + "\n", ["spec.yaml:4", "5000 digits"]),
    (BASE + "data:\n  labeled_examples: true\n", ["data.labeled_examples", "whole number"]),
    (BASE + "data:\n  labeled_examples: '300'\n", ["data.labeled_examples", "whole number"]),
    (BASE + "data:\n  labeled_examples: 2.5\n", ["data.labeled_examples", "whole number"]),
    (BASE + "constraints:\n  data_may_leave: 1\n", ["constraints.data_may_leave", "boolean"]),
    (BASE + "knowledge:\n  corpus_tokens: 1e24\n", ["knowledge.corpus_tokens", "upper bound", "Villalobos"]),
    (BASE + f"traffic:\n  requests_per_month: {2 ** 63}\n", ["traffic.requests_per_month", "upper bound"]),
    (BASE + "economics:\n  setup_days: {peft: 2, lora: 1}\n", ["economics.setup_days", "unknown path 'lora'"]),
    # the value as written, not 1,000,000,000,000,000,019,884,624,838,656 (1e30 as a Python int)
    (BASE + "knowledge:\n  corpus_tokens: 1e30\n", ["spec.yaml:4: knowledge.corpus_tokens: 1e+30 is above"]),
    # no pydantic wording ("a valid dictionary or instance of Task"): what the section holds
    ("name: x\ntask: qa\n", ["spec.yaml:2: task: expected a mapping of fields (kind, complexity", "got 'qa'"]),
    (BASE + "traffic:\n  - 3\n", ["spec.yaml:4: traffic: expected a mapping of fields (requests_per_month",
                                   "got list"]),
])
def test_bad_values_are_one_line_exit_2(tmp_path, text, needles):
    _one_line_exit_2(_run(tmp_path, text), *needles)


def test_duplicate_keys_name_both_lines(tmp_path):
    r = _run(tmp_path, BASE + "traffic:\n  prompt_tokens: 10\n  output_tokens: 5\n  prompt_tokens: 20\n")
    _one_line_exit_2(r, "spec.yaml:6", "duplicate key 'prompt_tokens'", "line 4")


@pytest.mark.parametrize("text,needle", [
    ('{"name": "x", "task": {"kind": "qa"}, "constraints": {"budget_usd": NaN}}', "finite"),
    ('{"name": "x", "task": {"kind": "qa"}, "constraints": {"budget_usd": 1e400}}', "finite"),
    ('{"name": "x", "name": "y", "task": {"kind": "qa"}}', "duplicate key 'name'"),
])
def test_bad_json_is_one_line_exit_2(tmp_path, text, needle):
    _one_line_exit_2(_run(tmp_path, text, ".json"), needle)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    r = cli_subprocess("recommend", fifo, cwd=tmp_path, timeout=60)
    _one_line_exit_2(r, "not a regular file")


def test_dev_zero_and_huge_files_are_refused(tmp_path):
    _one_line_exit_2(cli_subprocess("recommend", "/dev/zero", cwd=tmp_path, timeout=60), "not a regular file")
    big = tmp_path / "big.yaml"
    big.write_text(BASE + "#" * 1_100_000 + "\n")
    _one_line_exit_2(cli_subprocess("recommend", big, cwd=tmp_path), "at most 1,000,000 bytes")


def test_scientific_notation_is_a_number_in_files_and_set(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(BASE + "traffic:\n  requests_per_month: 2e5\nknowledge:\n  corpus_tokens: 8E6\n"
                    "constraints:\n  budget_usd: 1.5e4\n")
    r = cli("recommend", spec, "--json", "--set", "traffic.requests_per_month=1e6",
            "--set", "constraints.monthly_budget_usd=2.5e3")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["recommendation"]["path"]
    r2 = cli("recommend", EXAMPLES / "faq-bot.yaml", "--json", "--set", "traffic.requests_per_month=1e6")
    r3 = cli("recommend", EXAMPLES / "faq-bot.yaml", "--json", "--set", "traffic.requests_per_month=1000000")
    assert r2.exit_code == 0 and json.loads(r2.stdout) == json.loads(r3.stdout)


def test_set_with_a_non_finite_value_is_one_line(tmp_path):
    r = cli_subprocess("recommend", EXAMPLES / "faq-bot.yaml", "--set", "constraints.budget_usd=1e400", cwd=tmp_path)
    _one_line_exit_2(r, "--set constraints.budget_usd", "finite")


def test_empty_files_and_the_wrong_kind_of_file_say_so(tmp_path):
    """An empty file, a training config given to the advisor and a project spec given to `train` each get one
    line that names what the file is and the command that takes it."""
    from helpers import EXAMPLES, cli, one_line_error

    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    one_line_error(cli("recommend", empty), "the file is empty", "tunepath init")
    one_line_error(cli("train", empty), "the file is empty")
    one_line_error(cli("recommend", EXAMPLES / "train" / "lora-garden-qa.yaml"), "training config", "tunepath train")
    one_line_error(cli("train", EXAMPLES / "faq-bot.yaml"), "project spec", "tunepath run")


def test_a_misspelt_section_is_named_before_the_missing_one(tmp_path):
    """'tsk:' makes 'task' missing too; the line names the typo and the field it meant."""
    from helpers import EXAMPLES, cli, one_line_error

    p = tmp_path / "tsk.yaml"
    p.write_text((EXAMPLES / "faq-bot.yaml").read_text().replace("\ntask:", "\ntsk:"))
    one_line_error(cli("recommend", p), "tsk: unknown field; did you mean 'task'?")


_LLAMA = REPO / "advisor" / "data" / "models" / "meta-llama__Llama-3.1-8B.json"
_MIXTRAL = REPO / "advisor" / "data" / "models" / "mistralai__Mixtral-8x7B-v0.1.json"


@pytest.mark.parametrize("source,change,needles", [
    (_LLAMA, {"max_position_embeddings": -1}, ["'max_position_embeddings'", "positive integer"]),
    (_LLAMA, {"max_position_embeddings": "4k"}, ["'max_position_embeddings'", "'4k'"]),
    (_LLAMA, {"head_dim": 0}, ["'head_dim'", "positive integer"]),
    (_LLAMA, {"num_key_value_heads": "8"}, ["'num_key_value_heads'", "positive integer"]),
    (_LLAMA, {"num_key_value_heads": 3}, ["'num_key_value_heads' (3) must divide"]),
    (_LLAMA, {"hidden_size": 10 ** 12, "num_hidden_layers": 10 ** 9}, ["parameters", "upper bound", "Switch-C"]),
    (_LLAMA, {"rope_scaling": {"factor": 8, "original_max_position_embeddings": "x", "rope_type": "llama3"}},
     ["rope_scaling", "'original_max_position_embeddings'"]),
    (_LLAMA, {"text_config": [1]}, ["'text_config'", "object"]),
    (_MIXTRAL, {"num_experts_per_tok": 100}, ["'num_experts_per_tok' (100) exceeds 'num_local_experts' (8)"]),
])
def test_a_bad_size_in_a_model_config_is_one_line(tmp_path, source, change, needles):
    """A config.json given as model.base / --model is the user's input too: a size that is a string, zero, negative,
    absurd or inconsistent was an internal TypeError / ZeroDivisionError / StopIteration deep in the estimator."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({**json.loads(source.read_text()), **change}))
    window_only = "rope_scaling" in change or "text_config" in change     # training estimates never read them
    for args in (["estimate", "--model", folder, "--method", "inference"],
                 *([] if window_only else [["estimate", "--model", folder, "--tokens", "1M"]])):
        _one_line_exit_2(_Done(cli(*args, env={"TUNEPATH_DEBUG": ""})), "model", *needles)
    _one_line_exit_2(_run(tmp_path, BASE + f"model: {{base: {folder}}}\n"), "model.base", *needles)


def test_a_non_finite_rope_factor_is_one_line(tmp_path):
    """JSON's Infinity (Python's json reads it, as transformers does) as rope_scaling.factor: int(inf) was internal."""
    folder = tmp_path / "model"
    folder.mkdir()
    cfg = {**json.loads(_LLAMA.read_text()), "rope_scaling": {"factor": "INF", "rope_type": "yarn"}}
    (folder / "config.json").write_text(json.dumps(cfg).replace('"INF"', "Infinity"))
    _one_line_exit_2(_Done(cli("estimate", "--model", folder, "--method", "inference", env={"TUNEPATH_DEBUG": ""})),
                     "rope_scaling.factor", "finite")


def test_yaml_merge_keys_work_and_override(tmp_path):
    """`<<: *anchor` (YAML 1.1 merge keys, which PyYAML's safe loader reads) was 'could not determine a constructor
    for the tag ...merge': the duplicate-key check built the '<<' key as an ordinary one. Keys beside the merge
    override the merged ones; a key given twice beside it is still a duplicate."""
    from advisor.spec import load_spec

    spec = tmp_path / "s.yaml"
    spec.write_text("name: x\ntask: {kind: qa}\nrun:\n  train: &t {max_steps: 5, learning_rate: 1.0e-4}\n"
                    "traffic:\n  <<: {prompt_tokens: 10, output_tokens: 7}\n  prompt_tokens: 20\n")
    r = cli("recommend", spec, "--json")
    assert r.exit_code == 0, r.output
    s = load_spec(spec)
    assert (s.traffic.prompt_tokens, s.traffic.output_tokens) == (20, 7)
    _one_line_exit_2(_run(tmp_path, BASE + "traffic:\n  <<: {prompt_tokens: 10}\n  prompt_tokens: 20\n"
                                           "  prompt_tokens: 30\n"),
                     "spec.yaml:6", "duplicate key 'prompt_tokens'", "line 5")


def test_a_byte_order_mark_and_other_encodings(tmp_path):
    """A JSON spec saved by a Windows editor starts with a BOM: it was 'invalid JSON: Unexpected UTF-8 BOM' where
    the same YAML spec loaded. A Latin-1 byte is named by line; an empty JSON file is 'empty', as an empty YAML is."""
    spec = tmp_path / "s.json"
    spec.write_bytes(b'\xef\xbb\xbf{"name": "x", "task": {"kind": "qa"}}')
    r = cli("recommend", spec, "--json")
    assert r.exit_code == 0, r.output
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: x\ntask: {kind: qa}\n# caf\xe9\n")
    _one_line_exit_2(_Done(cli("recommend", latin)), "latin.yaml:3", "not UTF-8")
    empty = tmp_path / "e.json"
    empty.write_text(" \n")
    _one_line_exit_2(_Done(cli("recommend", empty)), "e.json", "the file is empty")


@pytest.mark.parametrize("written,plain", [("'20M'", "20000000"), ("5k", "5000"), ("'1,000'", "1000"),
                                           ("$5000", "5000"), ("'$5,000'", "5000"), ("1.5B", "1500000000")])
def test_a_number_written_with_a_unit_or_separator_says_what_to_write(tmp_path, written, plain):
    """Specs, --set and --vary take plain numbers (1e6, 1_000_000): '20M' may be meant as text in a text field, so
    nothing is converted - but the refusal says which plain number to write (it said only 'expected a number')."""
    _one_line_exit_2(_run(tmp_path, BASE + f"constraints: {{budget_usd: {written}}}\n"),
                     "spec.yaml:3", "constraints.budget_usd", f"write a plain number: {plain}")
    bare = written.strip("'")
    _one_line_exit_2(_run(tmp_path, BASE, ".yaml", "--set", f"traffic.requests_per_month={bare}"),
                     "--set traffic.requests_per_month", f"write a plain number: {plain}")
    if "," in bare:        # --vary's separator: 1e4,1,000 is three numbers
        return
    r = cli("report", tmp_path / "spec.yaml", "-o", tmp_path / "r.json", "--vary", f"traffic.requests_per_month=1e4,{bare}")
    one_line_error(r, "--vary traffic.requests_per_month", repr(bare), f"write a plain number: {plain}")


def test_a_quoted_number_and_a_huge_one_are_short_lines(tmp_path):
    _one_line_exit_2(_run(tmp_path, BASE + "data: {labeled_examples: '300'}\n"), "'300' (without quotes)")
    r = _run(tmp_path, BASE, ".yaml", "--set", "traffic.prompt_tokens=" + "9" * 5000)
    _one_line_exit_2(r, "--set traffic.prompt_tokens", "whole number")
    assert len(r.stderr) < 300, r.stderr


def test_vary_refuses_an_empty_value(tmp_path):
    """`--vary f=1e4,,1e5` dropped the empty item (a typo for a third value) without a word."""
    spec = tmp_path / "s.yaml"
    spec.write_text(BASE)
    one_line_error(cli("report", spec, "-o", tmp_path / "r.json", "--vary", "traffic.requests_per_month=1e4,,1e5"),
                   "'' is not a number")


@pytest.mark.parametrize("item", ["constraints.={}", ".traffic.prompt_tokens=5", "traffic..prompt_tokens=5"])
def test_set_refuses_an_empty_part_of_the_path(tmp_path, item):
    """'constraints.={}' reset the whole constraints section to its defaults (exit 0): the empty last part was
    dropped, so the value replaced the section; a leading or doubled dot was silently ignored."""
    _one_line_exit_2(_run(tmp_path, BASE + "constraints: {budget_usd: 5}\n", ".yaml", "--set", item),
                     "expected dotted.field=value")


@pytest.mark.parametrize("written,read_as,write", [("0300", "an octal number (192)", "write 300"),
                                                   ("-017", "an octal number (-15)", "write -17"),
                                                   ("1:30", "a base-60 number (90)", "in decimal")])
def test_yaml_1_1_octal_and_base_60_are_not_read_silently(tmp_path, written, read_as, write):
    """YAML 1.1 (PyYAML) reads `labeled_examples: 0300` as 192 and `1:30` as 90: the spec went on with a number the
    user never wrote. The file says so; --set keeps such a value as text, which the number field refuses."""
    _one_line_exit_2(_run(tmp_path, BASE + f"data: {{labeled_examples: {written}}}\n"), "spec.yaml:3", read_as, write)
    _one_line_exit_2(_run(tmp_path, BASE, ".yaml", "--set", f"data.labeled_examples={written}"),
                     "--set data.labeled_examples", repr(written))


def test_a_json_spec_error_names_its_line(tmp_path):
    """Errors in a YAML spec name the line; in a JSON spec they named only the file. JSON is YAML enough for the
    line finder, which gives up quietly where it is not (tab indentation)."""
    text = '{\n  "name": "x",\n  "task": {"kind": "qa"},\n  "constraints": {\n    "budget_usd": "5k"\n  }\n}\n'
    _one_line_exit_2(_run(tmp_path, text, ".json"), "spec.json:5: constraints.budget_usd")
    text = '{\n  "name": "x",\n  "task": {"kind": "qa"},\n  "run": {"adapter": {"method": "LoRA"}}\n}\n'
    _one_line_exit_2(_run(tmp_path, text, ".json"), "spec.json:4: run.adapter.method")
    _one_line_exit_2(_run(tmp_path, '{\n\t"name": "x",\n\t"task": {"kind": "qa"},\n\t"traffic": {"prompt_tokens": -1}\n}',
                          ".json"), "spec.json: traffic.prompt_tokens")


def test_vary_errors_name_the_flag_once(tmp_path):
    """`--vary name.x=1,2` said '--set name.x: ...' (the wrong flag); a value out of range named the field twice
    ('--vary f: f: input should be ...')."""
    spec = tmp_path / "s.yaml"
    spec.write_text(BASE)
    out = tmp_path / "r.json"
    one_line_error(cli("report", spec, "-o", out, "--no-sensitivity", "--vary", "name.x=1,2"),
                   "--vary name.x: 'name' is not a section")
    r = cli("report", spec, "-o", out, "--no-sensitivity", "--vary", "constraints.deadline_days=0,1")
    one_line_error(r, "--vary constraints.deadline_days: input should be greater than 0")
    assert r.stderr.count("deadline_days") == 1


def test_a_model_config_or_a_catalog_file_given_as_the_spec_says_where_it_belongs(tmp_path):
    """`recommend config.json` said 'architectures: unknown field ... (+25 more)', `recommend catalog.yaml`
    'gpus: unknown field': name the kind of file and where it goes, as a training config already was."""
    cfg = tmp_path / "config.json"
    cfg.write_text(_LLAMA.read_text())
    one_line_error(cli("recommend", cfg), "this is a model config (model_type: llama)", "model.base")
    cat = tmp_path / "catalog.yaml"
    cat.write_text("gpus:\n  X: {memory_gb: 24}\n")
    one_line_error(cli("recommend", cat), "this is a catalog file", "TUNEPATH_CATALOG")


def _laughs(levels: int) -> str:
    """`levels` levels of ten aliases each: 10**levels strings from a few hundred bytes of YAML."""
    lines = ['    x0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"    x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_aliases_that_expand_without_end_are_refused(tmp_path):
    """A 'billion laughs' under run.architecture (a free-form mapping) passed validation and hung the first JSON dump
    of the spec (recommend and run --dry-run never answered); an alias inside the node it names was an internal
    PydanticSerializationError 'Circular reference detected'. Both are one line now, from a file or --set."""
    bomb = BASE + "run:\n  architecture:\n    model_type: llama\n" + _laughs(9)
    spec = tmp_path / "bomb.yaml"
    spec.write_text(bomb)
    r = cli_subprocess("recommend", spec, cwd=tmp_path, timeout=60)      # it never ended
    _one_line_exit_2(r, "bomb.yaml", "expand to 1,234,567,9", "more than 1,000,000")
    _one_line_exit_2(_run(tmp_path, BASE + "run:\n  architecture: &a\n    model_type: llama\n    x: *a\n"),
                     "spec.yaml", "refers to the node that holds it")
    _one_line_exit_2(_run(tmp_path, BASE, ".yaml", "--set", "run.architecture={x: &a [*a]}"),
                     "--set run.architecture", "refers to the node that holds it")
    ok = BASE + "run:\n  architecture:\n    model_type: llama\n" + _laughs(5)      # 111,111 values: fine
    assert _run(tmp_path, ok).returncode == 0


@pytest.mark.parametrize("run,needles", [
    ('{documents: [""]}', ["spec.yaml:3", "run.documents: an empty path"]),
    ('{documents: [docs], generator: " "}', ["run.generator: an empty path"]),
    ("{documents: [docs], queries: q.jsonl}", ["run.queries is given without run.qrels"]),
    ("{documents: [docs], qrels: q.tsv}", ["run.qrels is given without run.queries"]),
])
def test_run_section_paths_that_cannot_be_meant(tmp_path, run, needles):
    """`documents: [""]` resolved to the spec's own folder and indexed it; queries without qrels (or the reverse)
    dropped the retrieval evaluation without a word - run --dry-run planned both, exit 0."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("text\n")
    _one_line_exit_2(_run(tmp_path, BASE + f"run: {run}\n"), *needles)
    spec = tmp_path / "spec.yaml"
    one_line_error(cli("run", spec, "--dry-run", "--path", "rag"), *needles)


def test_queries_alone_name_the_texts_of_qrels_pairs(tmp_path):
    """run.queries without run.qrels is meant when retrieval_pairs is a qrels .tsv: they hold its query texts."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE + "run: {documents: [docs], queries: q.jsonl, retrieval_pairs: train.tsv}\n")
    from advisor.spec import load_spec

    assert load_spec(spec).run.queries == "q.jsonl"
