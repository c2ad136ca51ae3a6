"""`tunepath run` launches every path end to end on tiny local data; `calibrate` feeds its estimates."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from helpers import EXAMPLES, cli, cli_subprocess, one_line_error

GARDEN_TXT = EXAMPLES / "data" / "garden.txt"
GARDEN_QA = EXAMPLES / "data" / "garden_qa.jsonl"
TINY_ARCH = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256,
             "tie_word_embeddings": True}


@pytest.fixture(autouse=True)
def _calibration(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEPATH_CALIBRATION", str(tmp_path / "calibration.json"))


def _spec(tmp_path: Path, run: dict, **over) -> Path:
    spec = yaml.safe_load((EXAMPLES / "brand-voice-writer.yaml").read_text())
    spec["run"] = {"output_dir": str(tmp_path / "run"), "max_seq_len": 128, **run}
    spec.update(over)
    p = tmp_path / "spec.yaml"
    p.write_text(yaml.safe_dump(spec))
    return p


def _run(spec: Path, *args: str) -> dict:
    r = cli("run", spec, "--yes", "--json", *args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_rag_path_on_the_bundled_demo(tmp_path):
    s = _run(EXAMPLES / "acme-support.yaml", "--set", f"run.output_dir={tmp_path / 'acme'}")
    assert s["path"] == s["recommended"] == "rag"
    kinds = [st["kind"] for st in s["steps"]]
    assert kinds == ["index", "answer", "evaluate"]
    index, answer, evaluate = s["steps"]
    assert index["detail"]["chunks_embedded"] > 0 and index["measured"]["chunks_per_s"] > 0
    # chunks/s is the embedding phase's rate, as the estimate's (and `tunepath rag index`'s) is; over the whole
    # build (file reading, chunking, FAISS, BM25, SQLite) the demo's 20 chunks read as a 6x miss
    m = index["measured"]
    assert 0 < m["embed_s"] < m["wall_s"] - m["startup_s"]
    assert m["chunks_per_s"] == pytest.approx(index["detail"]["chunks_embedded"] / m["embed_s"], rel=0.05)
    assert index["estimate"]["wall_s"] > 0 and index["measured"]["wall_s"] > 0
    first = answer["detail"]["answers"][0]
    assert "Family plan" in first["question"] and any("pricing.md" in src for src in first["sources"])
    assert evaluate["detail"]["metrics"]["recall_at_10"] >= 0.8
    assert (tmp_path / "acme" / "run_summary.json").is_file()
    again = _run(EXAMPLES / "acme-support.yaml", "--set", f"run.output_dir={tmp_path / 'acme'}")
    assert again["steps"][0]["detail"]["chunks_embedded"] == 0          # incremental: nothing changed
    table = cli("run", EXAMPLES / "acme-support.yaml", "--yes", "--set", f"run.output_dir={tmp_path / 'acme'}")
    assert table.exit_code == 0 and "estimated -> measured" in table.stdout and "(pricing.md" in table.stdout


def test_peft_path_trains_an_adapter_and_writes_its_config(tmp_path, tiny_base_model, recwarn):
    spec = _spec(tmp_path, {"labeled_data": str(GARDEN_QA), "base_model": str(tiny_base_model),
                            "train": {"max_steps": 3, "micro_batch_size": 4}})
    s = _run(spec)
    # library deprecation chatter (peft asks transformers' deprecated is_gradient_checkpointing) is muted, as in
    # `tunepath train`: a new user saw a transformers FutureWarning in the middle of `tunepath run`'s output
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)], [str(w.message) for w in recwarn]
    assert s["path"] == "peft"
    (step,) = s["steps"]
    assert step["kind"] == "train" and step["detail"]["steps"] == 3
    assert step["estimate"]["tokens_per_s"] > 0 and step["measured"]["tokens_per_s"] > 0
    assert step["estimate"]["peak_memory_gb"] > 0 and step["measured"]["peak_memory_gb"] > 0
    cfg = yaml.safe_load((tmp_path / "run" / "train.yaml").read_text())
    assert cfg["stage"] == "peft" and cfg["adapter"]["method"] == "lora"
    for forwarded in (tmp_path / "run" / "train.yaml", Path(step["detail"]["output_dir"]) / "run_summary.json",
                   Path(step["detail"]["output_dir"]) / "loss.svg"):
        assert forwarded.stat().st_mode & 0o777 == 0o644, forwarded  # others may read what users forward
    assert (Path(step["detail"]["output_dir"]) / "adapter_config.json").is_file()


def test_full_finetuning_path(tmp_path, tiny_base_model):
    spec = _spec(tmp_path, {"labeled_data": str(GARDEN_QA), "base_model": str(tiny_base_model),
                            "train": {"max_steps": 2}})
    s = _run(spec, "--path", "full_finetuning")
    assert s["path"] == "full_finetuning" and s["recommended"] == "peft"
    out = Path(s["steps"][0]["detail"]["output_dir"])
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()


def test_pretraining_path(tmp_path):
    spec = _spec(tmp_path, {"corpus": [str(GARDEN_TXT)], "architecture": TINY_ARCH, "train": {"max_steps": 3}})
    s = _run(spec, "--path", "pretraining")
    step = s["steps"][0]
    assert step["detail"]["steps"] == 3 and step["detail"]["train_loss"] > 0
    assert (Path(step["detail"]["output_dir"]) / "tokenizer_config.json").is_file()


def test_prompting_path_builds_and_evaluates_a_few_shot_prompt(tmp_path, tiny_base_model):
    spec = _spec(tmp_path, {"labeled_data": str(GARDEN_QA), "generator": str(tiny_base_model), "eval_examples": 2})
    s = _run(spec, "--path", "prompting")
    d = s["steps"][0]["detail"]
    template = Path(d["prompt_template"]).read_text()
    from advisor.costs import FEW_SHOT_EXAMPLES

    # the prompt that runs is the prompt the advice priced: k shots + the slot
    assert template.count("Input:") == FEW_SHOT_EXAMPLES + 1 and "{input}" in template
    assert d["eval_examples"] == 2 and 0 <= d["token_f1"] <= 1 and len(d["predictions"]) == 2


def test_dry_run_plans_without_running(tmp_path, tiny_base_model):
    spec = _spec(tmp_path, {"labeled_data": str(GARDEN_QA), "base_model": str(tiny_base_model)})
    r = cli("run", spec, "--dry-run", "--json")
    plan = json.loads(r.stdout)
    assert plan["path"] == "peft" and plan["steps"][0]["estimate"]["wall_s"] > 0
    assert "uncalibrated" in plan["calibration"]
    assert not (tmp_path / "run").exists()


def test_uncalibrated_rag_plan_states_the_embedding_rate_it_assumed(tmp_path):
    """The demo's RAG plan said only 'uncalibrated guess: 40 GFLOP/s training' - a rate it does not use - and
    not the chunks/s its index estimate rests on."""
    plan = json.loads(cli("run", EXAMPLES / "acme-support.yaml", "--dry-run", "--json",
                          "--set", f"run.output_dir={tmp_path / 'acme'}").stdout)
    rate = plan["steps"][0]["estimate"]["chunks_per_s"]
    # the step names what it indexes, as the spec wrote it (it said "index 1 path(s)" for the one folder)
    assert plan["steps"][0]["description"].startswith("index corpus/docs, ~")
    assert plan["calibration"].startswith("uncalibrated") and f"{rate:.0f} chunks/s embedding" in plan["calibration"]


def test_calibrate_then_estimates_say_they_use_it(tmp_path, tiny_base_model):
    r = cli("calibrate", "--steps", "1", "--json")
    assert r.exit_code == 0, r.output
    cal = json.loads(r.stdout)
    assert cal["train_flops_per_s"] > 0 and Path(cal["path"]).is_file()
    # two tiny runs of 1 and 6 layers time what a step costs beyond its FLOPs: some per layer, some per step
    assert 0 < cal["train_seconds_per_layer"] < 1 and 0 <= cal["train_seconds_per_micro_batch"] < 1
    spec = _spec(tmp_path, {"labeled_data": str(GARDEN_QA), "base_model": str(tiny_base_model)})
    plan = json.loads(cli("run", spec, "--dry-run", "--json").stdout)
    assert plan["calibration"].startswith("calibrated") and "ms per layer" in plan["calibration"]
    [train] = [s for s in plan["steps"] if s["kind"] == "train"]
    # the tiny model's step is mostly that overhead, so its plan runs far below FLOPs / FLOP/s
    e = train["estimate"]
    assert e["flops"] / cal["train_flops_per_s"] < 0.5 * e["tokens"] / e["tokens_per_s"]


@pytest.mark.parametrize("run,args,needle", [
    ({}, ["--yes"], "run.labeled_data"),
    ({"labeled_data": "nope.jsonl", "base_model": "x"}, ["--yes"], "run.labeled_data: nope.jsonl does not exist"),
    ({"labeled_data": str(GARDEN_QA), "base_model": "Qwen/Qwen2.5-0.5B"}, [], "add --yes"),
    # a local folder that does not exist (the README's ../runs/tiny-llama before it is built) planned as a hub id
    # "not in the catalog" and failed only after the plan, naming train.yaml's model.name_or_path
    ({"labeled_data": str(GARDEN_QA), "base_model": "../runs/no-such-model"}, ["--dry-run"],
     "run.base_model: ../runs/no-such-model does not exist (relative paths are relative to the spec file"),
    ({"labeled_data": str(GARDEN_QA), "base_model": "Qwen/Qwen2.5-0.5B"}, ["--yes", "--path", "magic"],
     "--path 'magic'"),
    # run.output_dir naming a file was an internal FileExistsError once the plan had been shown
    ({"labeled_data": str(GARDEN_QA), "base_model": "Qwen/Qwen2.5-0.5B", "output_dir": str(GARDEN_QA)},
     ["--yes"], "run.output_dir " + str(GARDEN_QA) + ": exists and is not a folder"),
])
def test_run_bad_input(tmp_path, run, args, needle):
    r = cli_subprocess("run", _spec(tmp_path, run), *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_run_questions_file_with_a_bom_or_another_encoding(tmp_path):
    """run.questions in Latin-1 was an internal UnicodeDecodeError; a BOM made line 1 invalid JSON."""
    spec = yaml.safe_load((EXAMPLES / "acme-support.yaml").read_text())
    q = tmp_path / "q.jsonl"
    spec["run"] = {"output_dir": str(tmp_path / "run"), "documents": [str(EXAMPLES / "corpus" / "docs")],
                   "questions": str(q)}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    q.write_bytes(b'\xef\xbb\xbf{"question": "How much is the Family plan?"}\n')
    plan = json.loads(cli("run", tmp_path / "spec.yaml", "--path", "rag", "--dry-run", "--json").stdout)
    assert "1 sample question" in " ".join(s["description"] for s in plan["steps"])
    q.write_bytes('{"question": "Qu\u00e9 cuesta?"}\n'.encode("latin-1"))
    r = cli_subprocess("run", tmp_path / "spec.yaml", "--path", "rag", "--dry-run")
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "q.jsonl: not UTF-8 text (byte 16)" in r.stderr


def test_pretraining_architecture_mistakes_show_at_plan_time(tmp_path):
    """A missing run.architecture file planned fine (the run failed later); a config.json holding a list was
    an internal TypeError (in `estimate --model` too); a dict the estimator cannot count planned as
    "{...the whole dict...}, not in the catalog"."""
    from helpers import one_line_error

    run = {"corpus": [str(GARDEN_TXT)]}
    spec = _spec(tmp_path, {**run, "architecture": "nope.json"})
    one_line_error(cli("run", spec, "--path", "pretraining", "--dry-run"), "run.architecture: nope.json does not exist")
    (tmp_path / "list.json").write_text("[1, 2]")
    spec = _spec(tmp_path, {**run, "architecture": "list.json"})
    one_line_error(cli("run", spec, "--path", "pretraining", "--dry-run"), "run.architecture: ", "list.json: holds a "
                   "JSON list, expected a model config object")
    one_line_error(cli("estimate", "--model", tmp_path / "list.json", "--method", "lora", "--tokens", "1M",
                       "--gpu", "A100-80GB"), "holds a JSON list")
    spec = _spec(tmp_path, {**run, "architecture": {**TINY_ARCH, "hidden_size": "abc"}})
    plan = json.loads(cli("run", spec, "--path", "pretraining", "--dry-run", "--json").stdout)
    assert ("pretrain training (model_type 'llama', 'hidden_size' must be a positive integer, got 'abc': "
            "no estimate)") in plan["steps"][0]["description"]


def test_training_summary_carries_the_estimators_prediction(tmp_path, tiny_base_model):
    spec = _spec(tmp_path, {"labeled_data": str(GARDEN_QA), "base_model": str(tiny_base_model),
                            "train": {"max_steps": 2}})
    s = _run(spec)
    est = s["steps"][0]["detail"]["estimate_for_exact_tokens"]
    summary = json.loads((Path(s["steps"][0]["detail"]["output_dir"]) / "run_summary.json").read_text())
    assert summary["estimate"] == est
    assert est["flops"] > 0 and est["memory_gb"]["total"] > 0 and est["tokens_per_s"] > 0
    assert summary["model_flops_per_s"] > 0 and summary["mfu"] is None        # CPU: no peak to divide by


def test_rag_plus_peft_runs_both_halves_with_a_local_generator(tmp_path, tiny_base_model):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leeks.md").write_text("# Leeks\nSow leeks in early spring under cover; transplant in June.\n")
    (docs / "garlic.md").write_text("# Garlic\nPlant garlic cloves in autumn, pointed end up, 15 cm apart.\n")
    spec = _spec(tmp_path, {"documents": [str(docs)], "questions": ["When do I plant garlic?"],
                            "generator": str(tiny_base_model), "labeled_data": str(GARDEN_QA),
                            "base_model": str(tiny_base_model), "train": {"max_steps": 1}})
    s = _run(spec, "--path", "rag+peft")
    assert [st["kind"] for st in s["steps"]] == ["index", "answer", "train"]
    ans = s["steps"][1]["detail"]["answers"][0]
    assert "garlic.md" in ans["sources"][0] and isinstance(ans["answer"], str)
    assert s["steps"][2]["detail"]["steps"] == 1


def test_a_plan_on_a_gpu_machine_is_priced_on_that_gpu(tmp_path, tiny_base_model, monkeypatch):
    """Where torch sees a CUDA device the backend trains there, so the plan is priced there: the estimator's time
    for the catalog GPU (no calibration measured on it), CUDA memory without the CPU process, and the step says
    so - it was priced at the uncalibrated 40 GFLOP/s CPU guess with device cpu whatever the machine."""
    import torch

    spec = _spec(tmp_path, {"labeled_data": str(GARDEN_QA), "base_model": str(tiny_base_model)})
    cpu = json.loads(cli("run", spec, "--dry-run", "--json").stdout)["steps"][0]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H100 80GB HBM3")
    gpu = json.loads(cli("run", spec, "--dry-run", "--json").stdout)["steps"][0]
    # a 2-layer model on an H100 waits on the host's dispatch (advisor/estimate.py host_seconds), so its tokens/s
    # is not the GPU's FLOP/s over the CPU's - but it is the GPU's figure, not the CPU guess
    assert gpu["estimate"]["tokens_per_s"] != cpu["estimate"]["tokens_per_s"]
    assert "H100-SXM at the estimator's default MFU" in gpu["estimate"]["calibration"]
    assert "H100-SXM" in gpu["description"] and "H100" not in cpu["description"]
    assert gpu["estimate"]["peak_memory_gb"] != cpu["estimate"]["peak_memory_gb"]   # CUDA context, no CPU process


def test_a_second_run_over_an_earlier_runs_checkpoints_says_how_to_go_on(tmp_path, tiny_base_model):
    """Running a training spec again failed, after its confirmation, with 'pass --resume to continue it or --force
    to start over' - options `tunepath run` does not have. It now says so at plan time, naming the commands that
    do continue it (the train.yaml the first run wrote) or start over."""
    spec = _spec(tmp_path, {"labeled_data": str(GARDEN_QA), "base_model": str(tiny_base_model),
                            "train": {"max_steps": 1, "save_steps": 1}})
    first = _run(spec)
    out = Path(first["steps"][0]["detail"]["output_dir"])
    assert (out / "checkpoint-1").is_dir()
    for args in (("--yes",), ("--dry-run",)):
        r = cli("run", spec, *args)
        one_line_error(r, f"{out} already holds checkpoint-1", f"tunepath train {tmp_path / 'run' / 'train.yaml'} "
                       "--resume", "run.output_dir")
    r = cli("train", tmp_path / "run" / "train.yaml", "--resume", "--json")   # the advice works
    assert r.exit_code == 0 and json.loads(r.stdout)["resumed_from_step"] == 1, r.output


@pytest.mark.parametrize("method, train", [
    ("prompt_tuning", {"epochs": 1, "micro_batch_size": 8}),                       # never packs: padded rows
    ("lora", {"max_steps": 7, "micro_batch_size": 2, "gradient_accumulation_steps": 3}),   # packed, past an epoch
])
def test_the_plan_counts_the_steps_micro_batches_and_tokens_the_run_measures(tmp_path, tiny_base_model, method,
                                                                           train):
    """The plan counted micro-batches of full max_seq_len rows, so prompt and prefix tuning (which never pack) were
    planned with a third of the micro-batches they ran (30 against 96 on garden_qa). It now batches the data as the
    Trainer will: the run summary's steps, micro-batches and real tokens equal the plan's, and the padded tokens
    (the order of the rows is the sampler's draw) come within a few per cent."""
    spec = _spec(tmp_path, {"labeled_data": str(GARDEN_QA), "base_model": str(tiny_base_model),
                            "adapter": {"method": method}, "train": train})
    plan = json.loads(cli("run", spec, "--path", "peft", "--dry-run", "--json").stdout)["steps"][0]["estimate"]
    assert plan["counted"] == "tokenized with the base model's tokenizer"
    s = _run(spec, "--path", "peft")
    summary = json.loads((Path(s["steps"][0]["detail"]["output_dir"]) / "run_summary.json").read_text())
    assert summary["batching"] == plan["batching"] == ("length_grouped" if method == "prompt_tuning" else "packing")
    assert (plan["steps"], plan["micro_batches"]) == (summary["steps"], summary["micro_batches"])
    measured = s["steps"][0]["measured"]      # what `tunepath run` prints and --html charts beside the plan
    assert (measured["steps"], measured["micro_batches"]) == (summary["steps"], summary["micro_batches"])
    assert plan["micro_batches"] > plan["tokens"] / (128 * train["micro_batch_size"])   # more than full rows hold
    if "epochs" in train:
        assert plan["tokens"] == summary["tokens"]          # whole epochs: every train row once
    else:
        assert plan["tokens"] == pytest.approx(summary["tokens"], rel=0.15)   # 7 steps of 2.x epochs: which rows
    assert plan["padded_tokens"] == pytest.approx(summary["padded_tokens"], rel=0.1)
    # the run summary's estimate is priced over what ran, so it agrees with the plan's
    est = summary["estimate"]
    assert est["micro_batches"] == summary["micro_batches"]
    assert est["wall_s"] == pytest.approx(plan["wall_s"], rel=0.1)


def test_training_inputs_that_fail_at_plan_time_name_the_spec_fields(tmp_path, tiny_base_model):
    """A base model folder without weights, or a peft adapter given as the base model, failed only after the
    confirmation; a max_seq_len too short for any response, or a bad row, named train.yaml's data.max_seq_len /
    data.paths, fields a `tunepath run` user never wrote. The plan now batches the data, so all show before it."""
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((tiny_base_model / "config.json").read_text())
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c"\n')
    for run, needle in [
        ({"base_model": str(bare)}, f"run.base_model: {bare} holds no weights (expected config.json and "
                                    "model.safetensors or pytorch_model.bin)"),
        ({"base_model": str(adapter)}, f"run.base_model: {adapter} is a peft adapter, not a model; merge it first"),
        ({"max_seq_len": 4}, "run.labeled_data: no usable examples in"),
        ({"labeled_data": str(bad)}, f"{bad}:2: invalid JSON"),
    ]:
        spec = _spec(tmp_path, {"labeled_data": str(GARDEN_QA), "base_model": str(tiny_base_model), **run})
        r = cli("run", spec, "--dry-run")
        one_line_error(r, needle)
        assert "data." not in r.stderr, r.stderr
