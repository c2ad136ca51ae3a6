"""Malformed and extreme inputs to the advisor's commands (estimate, report, catalogs): one line naming the option,
field or file and what was expected, exit 2 - never an internal error, never non-JSON after --json."""
from __future__ import annotations

import json

import pytest

from helpers import REPO, cli, cli_subprocess, one_line_error

_LLAMA = REPO / "advisor" / "data" / "models" / "meta-llama__Llama-3.1-8B.json"
_INFERENCE_ONLY = {"--prompt-tokens", "--output-tokens", "--requests-per-month", "--concurrency"}


def _huge_model(tmp_path, **sizes):
    """A Llama config.json with ~1e15 parameters (under the 1e15 bound): 25,000 A100s hold one copy."""
    folder = tmp_path / "huge"
    folder.mkdir()
    cfg = {**json.loads(_LLAMA.read_text()), "hidden_size": 131072, "num_hidden_layers": 4000,
           "intermediate_size": 524288, "num_attention_heads": 1024, "num_key_value_heads": 8, **sizes}
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


@pytest.mark.parametrize("option", ["--tokens", "--gpus", "--rank", "--virtual-tokens", "--seq-len", "--micro-batch",
                                    "--grad-accum", "--prompt-tokens", "--output-tokens", "--requests-per-month",
                                    "--concurrency"])
def test_a_finite_but_absurd_option_is_refused_by_its_bound(option):
    """1e300 is finite, so the finite check let it through: --tokens 1e300 printed an internal 'Out of range float
    values are not JSON compliant', --micro-batch 1e300 an OverflowError, --prompt-tokens 1e12 a StopIteration."""
    method = "inference" if option in _INFERENCE_ONLY else "prefix_tuning" if option == "--virtual-tokens" else "full"
    args = ["estimate", "--model", "meta-llama/Llama-2-7b-hf", "--method", method, "--json"]
    args += [option, "1e300"] if option == "--tokens" else ["--tokens", "1M", option, "1e300"]
    r = cli(*args)
    one_line_error(r, option, "<= 1e+")
    assert r.stdout == ""


def test_everything_at_its_bound_still_prints_json(tmp_path):
    """The largest values each option accepts, on a model at the parameter bound: finite JSON, not an error."""
    model = _huge_model(tmp_path)
    r = cli("estimate", "--model", model, "--method", "full", "--tokens", "1e15", "--gpus", "1e6", "--seq-len", "1e7",
            "--micro-batch", "1e6", "--grad-accum", "1e6", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["fits"] is False       # 1e15 parameters fit no GPU, and the answer says so
    r = cli("estimate", "--model", model, "--method", "inference", "--prompt-tokens", "1e7", "--output-tokens", "1e7",
            "--requests-per-month", "1e12", "--concurrency", "1e6", "--json")
    assert r.exit_code == 0, r.output
    json.loads(r.stdout)


def test_a_model_needing_more_than_4096_gpus_per_replica_is_priced(tmp_path):
    """Serving sized a replica by trying 1..4,096 GPUs: a model that needs more was an internal StopIteration, in
    `estimate --method inference` and in `recommend` with traffic (every GPU type is tried there)."""
    model = _huge_model(tmp_path)
    r = cli("estimate", "--model", model, "--method", "inference", "--gpu", "A100-80GB", "--json")
    assert r.exit_code == 0, r.output
    per_replica = json.loads(r.stdout)["gpus_per_replica"]
    weights = 2 * json.loads(r.stdout)["model"]["total_params"]
    assert per_replica > 4096 and per_replica * 0.9 * 80 * 2 ** 30 > weights
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: x\ntask: {{kind: qa}}\nmodel: {{base: {model}}}\ntraffic: {{requests_per_month: 1000}}\n"
                    "constraints: {data_may_leave: false}\n")
    r = cli("recommend", spec, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["paths"]


def test_options_another_training_method_reads_are_named_as_ignored():
    """--rank for full fine-tuning, --virtual-tokens for qlora: dropped without a word (only the training vs serving
    options were named)."""
    r = cli("estimate", "--model", "meta-llama/Llama-2-7b-hf", "--method", "full", "--tokens", "1M", "--rank", "8",
            "--target-modules", "q_proj", "--json")
    assert r.exit_code == 0, r.output
    json.loads(r.stdout)
    assert "--rank, --target-modules ignored for --method full" in r.stderr
    r = cli("estimate", "--model", "meta-llama/Llama-2-7b-hf", "--method", "lora", "--tokens", "1M", "--rank", "8",
            "--json")
    assert r.exit_code == 0 and "ignored" not in r.stderr


def test_method_names_as_papers_write_them():
    """LoRA, QLoRA, IA3: the names in the papers and peft's class names; refused as unknown methods before."""
    for written, meant in (("LoRA", "lora"), ("QLoRA", "qlora"), ("IA3", "ia3")):
        r = cli("estimate", "--model", "meta-llama/Llama-2-7b-hf", "--method", written, "--tokens", "1M", "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["method"] == meant


def test_flash_attention_2_on_a_turing_gpu_is_refused():
    """FlashAttention-2 supports Ampere, Ada and Hopper (flash-attention README); transformers refuses it on a T4,
    where the estimate priced it."""
    r = cli("estimate", "--model", "meta-llama/Llama-2-7b-hf", "--tokens", "1M", "--gpu", "T4",
            "--attention", "flash_attention_2")
    one_line_error(r, "--attention flash_attention_2", "T4", "sdpa")
    assert cli("estimate", "--model", "meta-llama/Llama-2-7b-hf", "--tokens", "1M", "--gpu", "A10",
               "--attention", "flash_attention_2").exit_code == 0


def test_zero_on_one_gpu_says_it_partitions_nothing():
    base = ["estimate", "--model", "meta-llama/Llama-2-7b-hf", "--method", "full", "--tokens", "1M", "--json"]
    z3, z0 = cli(*base, "--zero", "3"), cli(*base, "--zero", "0")
    assert z3.exit_code == 0 and "partitions nothing" in z3.stderr
    assert json.loads(z3.stdout) == json.loads(z0.stdout)
    assert "partitions nothing" not in cli(*base, "--zero", "3", "--gpus", "2").stderr


def test_report_never_overwrites_its_spec(tmp_path):
    """`report s.json -o s.json` replaced the spec with the report (exit 0); a .md report's .svg beside it too."""
    spec = tmp_path / "s.json"
    text = '{"name": "x", "task": {"kind": "qa"}}'
    spec.write_text(text)
    one_line_error(cli("report", spec, "-o", spec), "would overwrite the spec")
    one_line_error(cli("report", spec, "-o", tmp_path / "." / "s.json"), "would overwrite the spec")
    svg_spec = tmp_path / "r.svg"
    svg_spec.write_text("name: x\ntask: {kind: qa}\n")
    one_line_error(cli("report", svg_spec, "-o", tmp_path / "r.md"), "would overwrite the spec")
    assert spec.read_text() == text and svg_spec.read_text().startswith("name: x")
    r = cli("report", spec, "-o", tmp_path / "new" / "r.json", "--no-sensitivity")
    assert r.exit_code == 0 and json.loads((tmp_path / "new" / "r.json").read_text())["spec"]["name"] == "x"


def test_report_under_a_file_is_one_line_before_the_work(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: x\ntask: {kind: qa}\n")
    one_line_error(cli("report", spec, "-o", spec / "r.html"), "is not a folder")


@pytest.mark.parametrize("text,needles", [
    ("- a\n", ["catalog.yaml", "expected a mapping with keys gpus"]),
    ("gpu:\n  X1: {}\n", ["unknown key 'gpu'", "did you mean 'gpus'"]),
    ("gpus: [A100]\n", ["gpus: expected a mapping of GPU id"]),
    ("gpus:\n  X1: fast\n", ["gpus.X1: expected a mapping of fields"]),
    ("gpus:\n  A100-80GB: {prices: [1]}\n", ["gpus.A100-80GB.prices: expected a mapping of price class"]),
    ("gpus:\n  A100-80GB: {prices: {cheap: {usd_per_hour: 1, source: x, date: 2026-01-01}}}\n",
     ["gpus.A100-80GB.prices.cheap: unknown price class"]),
    ("gpus:\n  A100-80GB: {usd_per_hour: 2}\n  A100-80GB: {usd_per_hour: 3}\n", ["catalog.yaml:3", "duplicate key"]),
    ("gpus:\n  A100-80GB: {memory_gb: .nan}\n", ["catalog.yaml:2", "not a finite number"]),
    ("gpus:\n  A100-80GB: {usd_per_hr: 2}\n", ["catalog.yaml:2", "usd_per_hr: unknown field", "usd_per_hour"]),
    ("gpus:\n  A100-80GB:\n    prices:\n      gpu_cloud: {usd_per_hour: -3, source: x, date: 2026-01-01}\n",
     ["catalog.yaml:4", "gpus.A100-80GB.prices.gpu_cloud.usd_per_hour", "greater than or equal to 0"]),
    ("gpus:\n  MY: {memory_gb: 1e300, bf16_tflops: 1e300, bandwidth_gbs: 1e300, usd_per_hour: 1}\n",
     ["gpus.MY.memory_gb", "upper bound"]),
    ("gpus:\n  MY: {memory_gb: 0.5, bf16_tflops: 10, bandwidth_gbs: 100, usd_per_hour: 1}\n",
     ["gpus.MY.memory_gb", "greater than or equal to 2"]),
    ("price_class: [gpu_cloud]\n", ["price_class: expected one of"]),
    ("models: [a]\n", ["models: expected a mapping of model id"]),
    ("models:\n  my/model:\n", ["models.my/model: expected the path of a config.json"]),
    ("api_prices: [1]\n", ["api_prices: expected a mapping"]),
    ("api_prices:\n  cached_input_factor: 5\n", ["api_prices.cached_input_factor", "upper bound"]),
    ("api_prices:\n  tiers: []\n", ["api_prices.tiers", "at least 1"]),
])
def test_a_malformed_catalog_file_is_one_line_naming_it(tmp_path, text, needles):
    """TUNEPATH_CATALOG files were read with .get/.items on whatever YAML gave: a list, a string row or a price
    list was an internal AttributeError / TypeError / ValueError, a misspelt top-level key was ignored, a
    duplicate key kept the last, a bad api_prices an internal ValidationError at the first hosted price, and in
    `recommend` a bad GPU row came out as an internal ValidationError of the spec's constraints.gpu."""
    cat = tmp_path / "catalog.yaml"
    cat.write_text(text)
    spec = tmp_path / "s.yaml"
    spec.write_text("name: x\ntask: {kind: qa}\ntraffic: {requests_per_month: 1000}\n")
    env = {"TUNEPATH_CATALOG": str(cat)}
    model = "my/model" if "models" in text else "meta-llama/Llama-2-7b-hf"
    for args in (["recommend", spec, "--json"], ["estimate", "--model", model, "--tokens", "1M"], ["gpus"]):
        from advisor import catalog, costs

        for f in (catalog.gpus, catalog.models, catalog.api_prices, catalog.architecture, catalog.context_window):
            f.cache_clear()
        costs.clear_caches()
        r = cli(*args, env=env)
        if r.exit_code == 0 and ("api_prices" in text and args[0] != "recommend"
                                 or "models" in text and args[0] != "estimate"):
            continue                  # hosted prices are read by recommend only, a catalog model when named
        one_line_error(r, "catalog.yaml", *needles)


def test_init_json_writes_json_and_a_folder_is_one_line(tmp_path):
    """`init spec.json` wrote the YAML starter into a .json file, which every command then refused as 'invalid
    JSON'; `init FOLDER --force` was 'cannot write (Is a directory)'; a missing parent folder is created."""
    p = tmp_path / "spec.json"
    assert cli("init", p).exit_code == 0
    json.loads(p.read_text())
    assert cli("recommend", p, "--json").exit_code == 0
    one_line_error(cli("init", tmp_path, "--force"), "is a folder", "tunepath.yaml")
    deep = tmp_path / "new" / "spec.yaml"
    assert cli("init", deep).exit_code == 0 and cli("recommend", deep).exit_code == 0


@pytest.mark.parametrize("method,needles", [
    ("[lora]", ["spec.yaml:3", "run.adapter.method", "unknown method ['lora']"]),
    ("LoRA", ["spec.yaml:3", "run.adapter.method", "did you mean 'lora'?"]),
])
def test_run_adapter_method_not_a_known_name_is_one_line(tmp_path, method, needles):
    """run.adapter.method as a list was an internal 'unhashable type: list' in `run --dry-run` and `recommend`;
    LoRA (the paper's spelling) got no did-you-mean and the line had no line number."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: x\ntask: {{kind: qa}}\nrun: {{adapter: {{method: {method}}}}}\n")
    one_line_error(cli("run", spec, "--dry-run", "--path", "rag"), *needles)
    one_line_error(cli("recommend", spec), *needles)


def test_a_hub_id_without_its_owner_gets_the_catalog_id_and_an_empty_model_is_named():
    """'gpt2' (the id the hub still redirects) got no hint though openai-community/gpt2 is in the catalog; an
    empty --model was read as the current folder (': folder has no config.json')."""
    one_line_error(cli("estimate", "--model", "gpt2", "--tokens", "1M"), "did you mean 'openai-community/gpt2'?")
    one_line_error(cli("estimate", "--model", "Llama-2-7b-hf", "--tokens", "1M"),
                   "did you mean 'meta-llama/Llama-2-7b-hf'?")
    one_line_error(cli("estimate", "--model", "", "--tokens", "1M"), "model: empty")


def test_run_path_as_labels_write_it_and_an_empty_one_is_refused():
    """--path PEFT or 'Full fine-tuning' (as recommend's table writes them) were unknown paths; --path '' (an unset
    shell variable) silently ran the recommended path."""
    spec = REPO / "examples" / "acme-support.yaml"
    for written, meant in (("RAG", "rag"), ("Full fine-tuning", "full_finetuning"), ("RAG + PEFT", "rag+peft")):
        r = cli("run", spec, "--dry-run", "--json", "--path", written)
        if r.exit_code == 0:
            assert json.loads(r.stdout)["path"] == meant
        else:           # acme-support's run: section lacks what tuning needs: the error names a path it makes up
            one_line_error(r, "needs run.")
            assert any(f"path {p} needs" in r.stderr for p in meant.split("+")), r.stderr
    one_line_error(cli("run", spec, "--dry-run", "--path", ""), "--path ''", "expected one of")


def test_a_name_longer_than_a_path_may_be_is_an_unknown_model_in_a_short_line(tmp_path):
    """A 5,000-character model.base / --model: Path.is_dir() raised 'File name too long', an internal OSError; the
    id (and a 300,000-character GPU id) was echoed whole in the error line."""
    long = "a" * 5000
    spec = tmp_path / "s.yaml"
    spec.write_text(f"name: x\ntask: {{kind: qa}}\nmodel: {{base: {long}}}\n")
    r = cli("recommend", spec)
    one_line_error(r, "model.base", "unknown model 'aaaa")
    assert len(r.stderr) < 400
    r = cli("estimate", "--model", long, "--tokens", "1M")
    one_line_error(r, "unknown model")
    assert len(r.stderr) < 400
    spec.write_text(f"name: x\ntask: {{kind: qa}}\nconstraints: {{gpu: {'g' * 300_000}}}\n")
    r = cli("recommend", spec)
    one_line_error(r, "constraints.gpu", "unknown GPU")
    assert len(r.stderr) < 600


def test_a_file_name_too_long_for_the_system_is_one_line(tmp_path):
    """ENAMETOOLONG from any path the user gave (report -o, init, a run: path) was an internal OSError."""
    spec = tmp_path / "s.yaml"
    spec.write_text("name: x\ntask: {kind: qa}\n")
    long = "a" * 5000
    one_line_error(cli("report", spec, "-o", tmp_path / f"{long}.html"), "File name too long", "255 bytes")
    one_line_error(cli("init", tmp_path / f"{long}.yaml"), "File name too long")
    spec.write_text(f"name: x\ntask: {{kind: qa}}\nrun: {{documents: [{long}]}}\n")
    r = cli("run", spec, "--dry-run", "--path", "rag")
    one_line_error(r, "File name too long")
    assert len(r.stderr) < 300


def test_estimate_options_say_the_plain_number_as_specs_do():
    """'--tokens 1,000' and '--gpus 2k' said only 'expected ...'; a spec's field says what to write. A sequence
    length gets no such hint: '4k' context may mean 4096."""
    base = ["estimate", "--model", "meta-llama/Llama-2-7b-hf"]
    one_line_error(cli(*base, "--tokens", "1,000"), "--tokens", "(write a plain number: 1000)")
    one_line_error(cli(*base, "--tokens", "1M", "--gpus", "2k"), "--gpus", "(write a plain number: 2000)")
    r = cli(*base, "--tokens", "1M", "--seq-len", "4k")
    one_line_error(r, "--seq-len")
    assert "write" not in r.stderr


def test_user_text_with_square_brackets_is_printed_as_written(tmp_path):
    """Rich reads '[...]' as markup: a spec named '[/]' or a model folder 'm[/]x' was an internal MarkupError in
    recommend and run --dry-run, a catalog GPU id 'X[/]1' in gpus and estimate, and '[bold]x' lost its brackets."""
    from advisor import catalog, costs

    model = tmp_path / "m[/]x"          # folder 'm[' holding ']x'
    model.mkdir(parents=True)
    (model / "config.json").write_text(_LLAMA.read_text())
    spec = tmp_path / "s.yaml"
    spec.write_text(f'name: "[/]"\ntask: {{kind: qa}}\nmodel: {{base: "{model}"}}\n'
                    f'run: {{documents: ["s.yaml"], output_dir: "o[bold]x"}}\n')
    r = cli("recommend", spec)
    assert r.exit_code == 0, r.output
    assert "[/]:" in r.stdout and "m[/]x" in r.stdout
    r = cli("run", spec, "--dry-run", "--path", "rag")
    assert r.exit_code == 0, r.output
    assert "o[bold]x" in r.stdout.replace("\n", "")
    cat = tmp_path / "catalog.yaml"
    cat.write_text('gpus:\n  "X[/]1": {memory_gb: 24, bf16_tflops: 100, bandwidth_gbs: 1000, usd_per_hour: 1}\n')
    for f in (catalog.gpus, catalog.models):
        f.cache_clear()
    costs.clear_caches()
    try:
        for args in (["gpus"], ["estimate", "--model", model, "--gpu", "X[/]1", "--tokens", "1M"]):
            r = cli(*args, env={"TUNEPATH_CATALOG": str(cat)})
            assert r.exit_code == 0, r.output
            assert "X[/]1" in r.stdout
    finally:
        for f in (catalog.gpus, catalog.models):
            f.cache_clear()
        costs.clear_caches()


def test_a_spec_given_as_the_model_says_so(tmp_path):
    """`estimate --model spec.yaml` said 'invalid JSON at line 1: Expecting value'; a JSON spec said 'model_type None
    is not supported for exact counts'; a config without model_type the same."""
    spec = tmp_path / "s.yaml"
    spec.write_text("name: x\ntask: {kind: qa}\n")
    one_line_error(cli("estimate", "--model", spec, "--tokens", "1M"), "a YAML file", "config.json")
    js = tmp_path / "s.json"
    js.write_text('{"name": "x", "task": {"kind": "qa"}}')
    one_line_error(cli("estimate", "--model", js, "--tokens", "1M"), "this is a project spec")
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({k: v for k, v in json.loads(_LLAMA.read_text()).items() if k != "model_type"}))
    one_line_error(cli("estimate", "--model", cfg, "--tokens", "1M"), "has no 'model_type'")


def test_schema_takes_json_as_the_other_listings_do():
    """`tunepath schema --json` (rules, models, gpus, recommend and estimate all take --json) was 'No such option'."""
    r = cli("schema", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == json.loads(cli("schema").stdout)


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs FIFOs")
def test_a_catalog_that_is_a_device_or_a_pipe_is_refused_without_reading_it(tmp_path):
    """TUNEPATH_CATALOG=/dev/zero read until memory ran out (internal MemoryError); a FIFO waited for a writer for
    ever. Catalog files are read as specs are: regular files of at most 1 MB."""
    import os

    fifo = tmp_path / "catalog.yaml"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        r = cli_subprocess("gpus", env={"TUNEPATH_CATALOG": str(path)}, cwd=tmp_path, timeout=60)
        assert r.returncode == 2, r.stderr
        assert "TUNEPATH_CATALOG" in r.stderr and "not a regular file" in r.stderr


def test_spaces_around_a_catalog_id_are_dropped(tmp_path):
    """'H100-SXM ' (a quoted YAML value, a script's variable) and ' meta-llama/Llama-2-7b-hf ' were unknown ids,
    although the did-you-mean named the very same id."""
    r = cli("estimate", "--model", " meta-llama/Llama-2-7b-hf ", "--gpu", "H100-SXM ", "--tokens", "1M", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["model"]["id"] == "meta-llama/Llama-2-7b-hf"
    spec = tmp_path / "s.yaml"
    spec.write_text('name: x\ntask: {kind: qa}\nconstraints: {gpu: "H100-SXM "}\n')
    assert cli("recommend", spec).exit_code == 0
