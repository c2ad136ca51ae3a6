"""`tunepath train / merge / generate` end to end on tiny models: one real run per stage, outputs reloaded
with plain transformers/peft, bad input as one line + exit 2."""
from __future__ import annotations

import json

import pytest
import yaml
from conftest import GARDEN_QA, GARDEN_TXT, TINY_LLAMA
from helpers import assert_shared, cli, cli_subprocess, one_line_error

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # see conftest.torch_one_thread


def _config(tmp_path, name="train.yaml", **sections):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


def _sft(tmp_path, base, stage, **extra):
    cfg = {"stage": stage, "model": {"name_or_path": str(base)}, "seed": 1,
           "data": {"paths": [str(GARDEN_QA)], "max_seq_len": 96, "eval_fraction": 0.1},
           "training": {"max_steps": 6, "micro_batch_size": 4, "logging_steps": 2, "save_steps": 3,
                        "learning_rate": 1e-3},
           "output_dir": str(tmp_path / "out")}
    cfg.update(extra)
    return _config(tmp_path, **cfg)


def _logits(model, tok, text="When should I sow peas?"):
    import torch

    with torch.no_grad():
        return model(**tok(text, return_tensors="pt")).logits


def test_pretrain_end_to_end(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "out"
    cfg = _config(tmp_path, stage="pretrain", model={"architecture": TINY_LLAMA}, tokenizer={"vocab_size": 500},
                  data={"paths": [str(GARDEN_TXT)], "max_seq_len": 64, "eval_fraction": 0.05, "max_examples": 1},
                  training={"max_steps": 8, "micro_batch_size": 4, "logging_steps": 2, "save_steps": 4},
                  output_dir=str(out))
    r = cli("train", cfg, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["stage"] == "pretrain" and summary["steps"] == 8
    assert summary["tokens"] == 8 * 4 * 64  # full blocks: no padding
    assert summary["eval_loss"] > 0 and summary["perplexity"] == pytest.approx(2.718281828 ** summary["eval_loss"])
    assert summary["trainable_percent"] == 100
    assert summary["estimate"]["flops"] > 0 and summary["estimate"]["tokens_per_s"] > 0  # the advisor's prediction
    assert summary["peak_memory_bytes"] > 50 * 2**20 and summary["tokens_per_s"] > 0
    assert json.loads((out / "run_summary.json").read_text()) == summary
    # plain transformers loads the model and the tokenizer, chat template included
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert tok.eos_token == "<|endoftext|>" and tok.pad_token == "<|pad|>" and "### Response" in tok.chat_template
    assert model.config.vocab_size == len(tok) == 500
    assert torch.isfinite(_logits(model, tok)).all()
    assert (out / "checkpoint-8" / "tunepath_complete.json").is_file()
    # model.safetensors (safetensors writes 0600), the tokenizer/ folder (mkdtemp: 0700) and the checkpoints were
    # readable by their owner only
    assert_shared(out)


def test_full_finetune_end_to_end(tmp_path, tiny_base_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    r = cli("train", _sft(tmp_path, tiny_base_model, "full"), "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["stage"] == "full" and s["steps"] == 6 and s["trainable_percent"] == 100
    # data.packing auto on CPU: packing (measured faster than length-grouped padding, bench/train_throughput.py)
    assert s["batching"] == "packing" and s["data"]["packed"]
    assert s["data"]["format"] == "alpaca" and s["eval_loss"] is not None
    out = tmp_path / "out"
    tuned = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_base_model)
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template == AutoTokenizer.from_pretrained(tiny_base_model).chat_template
    assert not torch.allclose(_logits(tuned, tok), _logits(base, tok))


def test_lora_end_to_end_merge_and_generate(tmp_path, tiny_base_model):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = _sft(tmp_path, tiny_base_model, "peft", adapter={"method": "lora", "r": 4, "target_modules": "all-linear"})
    r = cli("train", cfg)
    assert r.exit_code == 0, r.output
    assert "trainable" in r.stderr and "tokens per step" in r.stderr and "effective batch" in r.stderr
    assert "packing (auto: CPU" in r.stderr  # the plan says how rows are batched, and why
    out = tmp_path / "out"
    # the last line names what was written into the output folder (it said "run_summary.json beside it")
    assert (out / "loss.svg").is_file() and f"saved to {out} (with run_summary.json and loss.svg)" in r.stdout
    s = json.loads((out / "run_summary.json").read_text())
    assert s["method"] == "lora" and 0 < s["trainable_percent"] < 100
    # plain peft loads the adapter; merging gives the same function
    tok = AutoTokenizer.from_pretrained(out)
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base_model), str(out)).eval()
    base_logits = _logits(AutoModelForCausalLM.from_pretrained(tiny_base_model), tok)
    lora_logits = _logits(peft_model, tok)
    assert not torch.allclose(lora_logits, base_logits)
    r = cli("merge", out, "--out", tmp_path / "merged")
    assert r.exit_code == 0, r.output
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    assert torch.allclose(_logits(merged, tok), lora_logits, atol=1e-4)
    assert_shared(out)                  # adapter_model.safetensors was 0600
    assert_shared(tmp_path / "merged")  # the merged folder was 0700, its model.safetensors 0600
    r = cli("generate", tiny_base_model, "When should I sow peas?", "--adapter", out, "--max-new-tokens", "5")
    assert r.exit_code == 0, r.output
    # the same greedy continuation computed by hand: chat template + generation prompt, argmax 5 times
    prompt = tok.apply_chat_template([{"role": "user", "content": "When should I sow peas?"}], tokenize=False,
                                     add_generation_prompt=True)
    ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    new = []
    with torch.no_grad():
        for _ in range(5):
            nxt = int(peft_model(input_ids=ids).logits[0, -1].argmax())
            new.append(nxt)
            if nxt == tok.eos_token_id:
                break
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    assert r.stdout[:-1] == tok.decode(new, skip_special_tokens=True)


def test_inspect_data_shows_the_loss_mask(tmp_path, tiny_base_model):
    r = cli("train", _sft(tmp_path, tiny_base_model, "full"), "--inspect-data", "--samples", "2")
    assert r.exit_code == 0, r.output
    assert r.stdout.count("ends with EOS: yes") == 2 and "with loss" in r.stdout and "<eos>" in r.stdout
    assert not (tmp_path / "out").exists()  # inspecting writes nothing


def test_inspect_data_json_is_json(tmp_path, tiny_base_model):
    """--inspect-data --json printed the coloured text view, so a script's json.loads failed."""
    from training.data import IGNORE

    r = cli("train", _sft(tmp_path, tiny_base_model, "full"), "--inspect-data", "--samples", "2", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["stats"]["format"] == "alpaca" and d["stats"]["examples"] > 2 and len(d["samples"]) == 2
    for s in d["samples"]:
        assert s["ends_with_eos"] and s["tokens"] == len(s["input_ids"]) == len(s["labels"]) == len(s["pieces"])
        assert s["loss_tokens"] == sum(1 for lab in s["labels"][1:] if lab != IGNORE) > 0
        assert s["where"].startswith(str(GARDEN_QA))
    assert not (tmp_path / "out").exists()


def test_dry_run_shows_resolved_config_with_overrides(tmp_path, tiny_base_model):
    r = cli("train", _sft(tmp_path, tiny_base_model, "full"), "--dry-run", "--json",
            "--set", "training.learning_rate=3e-4", "--set", "data.packing=false")
    assert r.exit_code == 0, r.output
    cfg = json.loads(r.stdout)
    assert cfg["training"]["learning_rate"] == 3e-4 and cfg["data"]["packing"] is False
    assert cfg["precision"] == "auto" and cfg["training"]["save_total_limit"] == 2


@pytest.mark.parametrize("name", ["pretrain-tiny-llama.yaml", "lora-garden-qa.yaml"])
def test_example_configs_validate(name):
    from helpers import EXAMPLES

    r = cli("train", EXAMPLES / "train" / name, "--dry-run", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["output_dir"].startswith("runs/")


@pytest.mark.parametrize("edit, needle", [
    ({"stage": "finetune"}, "stage: input should be 'pretrain', 'full' or 'peft', got 'finetune'"),
    ({"adapter": {"method": "lorax"}}, "unknown method 'lorax'"),
    ({"training": {"learning_rat": 1e-4}}, "training.learning_rat: unknown field"),
    ({"data": None}, "data"),
    # non-finite numbers never pass (they would print as Infinity in --json), nor a negative LoRA alpha
    ({"training": {"learning_rate": float("inf")}}, "training.learning_rate: input should be a finite number"),
    ({"training": {"warmup": float("inf")}}, "training.warmup: input should be a finite number"),
    ({"adapter": {"method": "lora", "alpha": float("inf")}}, "adapter.alpha: input should be a finite number"),
    ({"adapter": {"method": "lora", "alpha": -5}}, "adapter.alpha: input should be greater than 0"),
    # numpy's seed range; these were internal ValueErrors from transformers' set_seed
    ({"seed": -1}, "seed: input should be greater than or equal to 0, got -1"),
    ({"seed": 2**32}, "seed: 4,294,967,296 is above the upper bound 4,294,967,295"),
    # an empty output_dir wrote into the current folder before failing
    ({"output_dir": ""}, "output_dir: string should have at least 1 character"),
])
def test_bad_config_is_one_line_exit_2(tmp_path, tiny_base_model, edit, needle):
    base = yaml.safe_load(_sft(tmp_path, tiny_base_model, "peft").read_text())
    base["adapter"] = {"method": "lora"}
    for key, value in edit.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    if edit.get("data", 1) is None:
        del base["data"]
    r = cli("train", _config(tmp_path, "bad.yaml", **base))
    assert r.exit_code == 2
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_bad_yaml_and_missing_data_file_in_a_fresh_process(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage: peft\nmodel: [unclosed\n")
    r = cli_subprocess("train", bad)
    assert r.returncode == 2 and "bad.yaml:3: not valid YAML" in r.stderr and "Traceback" not in r.stderr
    cfg = _config(tmp_path, stage="pretrain", model={"architecture": TINY_LLAMA},
                  data={"paths": [str(tmp_path / "missing.txt")]}, output_dir=str(tmp_path / "o"))
    r = cli_subprocess("train", cfg)
    assert r.returncode == 2 and "missing.txt does not exist" in r.stderr and "Traceback" not in r.stderr


def test_missing_model_dir_names_the_field(tmp_path, monkeypatch):
    r = cli("train", _sft(tmp_path, tmp_path / "no-such-model", "full"))
    assert r.exit_code == 2 and "model.name_or_path: " in r.stderr and "no-such-model: no such folder" in r.stderr
    # org/name-shaped but meant as a local folder: one line at once, not transformers' download retries
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.chdir(tmp_path)
    r = cli("train", _sft(tmp_path, "runs/not-built-yet", "full"))
    assert r.exit_code == 2 and "runs/not-built-yet: no such folder here" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_unknown_target_module_lists_the_models_linear_modules(tmp_path, tiny_base_model):
    cfg = _sft(tmp_path, tiny_base_model, "peft", adapter={"method": "lora", "target_modules": ["q_proj", "qkv"]})
    r = cli("train", cfg)
    assert r.exit_code == 2
    assert "qkv not in the model" in r.stderr and "down_proj, gate_proj, k_proj, o_proj, q_proj" in r.stderr


def test_qlora_on_cpu_names_the_alternative(tmp_path, tiny_base_model):
    r = cli("train", _sft(tmp_path, tiny_base_model, "peft", adapter={"method": "qlora"}))
    assert r.exit_code == 2 and "needs a CUDA GPU" in r.stderr and "method: lora" in r.stderr


def test_prompt_tuning_refuses_explicit_packing(tmp_path, tiny_base_model):
    cfg = _sft(tmp_path, tiny_base_model, "peft", adapter={"method": "prompt_tuning"})
    r = cli("train", cfg, "--set", "data.packing=true", "--dry-run")
    assert r.exit_code == 2 and "set data.packing: false" in r.stderr


def test_config_that_is_not_utf8_is_one_line(tmp_path):
    """A Latin-1 comment in a config was an internal UnicodeDecodeError."""
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes("stage: pretrain  # caf\u00e9\n".encode("latin-1"))
    one_line_error(cli("train", cfg, "--dry-run"), "c.yaml: not UTF-8 text (byte 22)")


def test_output_dir_that_is_a_file_is_one_line(tmp_path, tiny_base_model):
    """A file at output_dir, or in its place among the parents, was an internal FileExistsError /
    NotADirectoryError from TrainingArguments."""
    (tmp_path / "taken").write_text("a file")
    cfg = yaml.safe_load(_sft(tmp_path, tiny_base_model, "full").read_text())
    for out, needle in ((tmp_path / "taken", "taken: exists and is not a folder"),
                        (tmp_path / "taken" / "run", f"{tmp_path / 'taken'} is a file, not a folder")):
        r = cli("train", _config(tmp_path, "bad.yaml", **{**cfg, "output_dir": str(out)}))
        one_line_error(r, "output_dir", needle)
    assert (tmp_path / "taken").read_text() == "a file"


@pytest.mark.parametrize("arch, needle", [
    ({"hidden_size": "abc"}, "model.architecture: Validation error for field 'hidden_size'"),   # StrictDataclass error
    ({"num_attention_heads": 5}, "not a multiple of the number of attention heads (5)"),
    ({"hidden_size": -64}, "model.architecture: hidden_size -64: expected an integer >= 1"),  # torch RuntimeError
    ({"num_hidden_layers": 0}, "model.architecture: num_hidden_layers 0: expected an integer >= 1"),
    ([1, 2], "holds a JSON list, expected an object of config fields"),                        # TypeError
])
def test_bad_architecture_fields_are_one_line(tmp_path, arch, needle, torch_one_thread):
    """Bad values inside model.architecture were internal errors from transformers' config or torch."""
    if isinstance(arch, dict):
        arch = {**TINY_LLAMA, **arch}
    else:
        (tmp_path / "arch.json").write_text(json.dumps(arch))
        arch = str(tmp_path / "arch.json")
    cfg = _config(tmp_path, stage="pretrain", model={"architecture": arch}, tokenizer={"vocab_size": 300},
                  data={"paths": [str(GARDEN_TXT)], "max_seq_len": 64, "max_examples": 1},
                  training={"max_steps": 1}, output_dir=str(tmp_path / "o"))
    one_line_error(cli("train", cfg), needle)


def test_rows_longer_than_the_models_positions(tmp_path, torch_one_thread):
    """GPT-2 learns one embedding per position: rows past n_positions were torch's internal 'index out of
    range' in the first step. A RoPE model computes them: a warning says it trains past its context."""
    def cfg(name, arch, seq):
        return _config(tmp_path, f"{name}.yaml", stage="pretrain", model={"architecture": arch},
                       tokenizer={"vocab_size": 300}, data={"paths": [str(GARDEN_TXT)], "max_seq_len": seq,
                                                             "eval_fraction": 0.0, "max_examples": 1},
                       training={"max_steps": 1, "micro_batch_size": 2}, output_dir=str(tmp_path / name))

    gpt2 = {"model_type": "gpt2", "n_embd": 32, "n_layer": 1, "n_head": 2, "n_positions": 32}
    one_line_error(cli("train", cfg("gpt2", gpt2, 64)), "data.max_seq_len 64: rows of up to 64 tokens, but the "
                   "model has 32 positions", "lower data.max_seq_len to 32")
    r = cli("train", cfg("llama", {**TINY_LLAMA, "max_position_embeddings": 32}, 64))
    assert r.exit_code == 0, r.output
    assert "warning: data.max_seq_len 64: rows of up to 64 tokens, but the model has 32 positions" in r.stderr


def test_a_duplicated_key_in_a_config_is_one_line(tmp_path):
    """yaml.safe_load keeps the last of two keys: a second `training:` block silently dropped the first's
    learning_rate and max_steps."""
    cfg = tmp_path / "dup.yaml"
    cfg.write_text("stage: pretrain\noutput_dir: o\nmodel: {architecture: {model_type: llama}}\n"
                   "data: {paths: [x.txt]}\ntraining:\n  learning_rate: 1.0e-3\n  max_steps: 5\n"
                   "training:\n  epochs: 2\n")
    one_line_error(cli("train", cfg, "--dry-run"), "dup.yaml:8: duplicate key 'training' (first at line 5)")


def test_merge_out_mistakes_fail_before_the_model_loads(tmp_path):
    """merge --out naming a file (or a path under one) was an internal NotADirectoryError, after the base
    model and adapter had loaded; an empty --out was the current folder."""
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA",
                                                              "base_model_name_or_path": str(tmp_path / "gone")}))
    (tmp_path / "file").write_text("x")
    one_line_error(cli("merge", adapter, "--out", tmp_path / "file"), "exists and is not a folder")
    one_line_error(cli("merge", adapter, "--out", tmp_path / "file" / "m"), f"{tmp_path / 'file'} is a file, not a folder")
    one_line_error(cli("merge", adapter, "--out", ""), "--out: empty; expected a folder path")
    # the base the adapter records was moved: it was an internal "Repo id must be in the form ..." OSError
    one_line_error(cli("merge", adapter, "--out", tmp_path / "m"), "the adapter's base_model_name_or_path "
                   f"{tmp_path / 'gone'}: no such folder (moved? pass --base")
    one_line_error(cli("merge", adapter, "--out", tmp_path / "m", "--base", tmp_path / "file"), "--base "
                   f"{tmp_path / 'file'}: cannot load")


def _bos_tokenizer_folder(path):
    """A model folder's tokenizer shaped like Mistral-7B-v0.1's or Llama 2's: it puts <s> before every text
    (add_bos_token) and has no chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(GARDEN_TXT.read_text().splitlines(), trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<s>", "</s>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>").save_pretrained(path)
    return path


def test_a_tokenizer_that_adds_bos_gets_it_in_training_and_generation(tmp_path):
    """Base models whose tokenizer starts every text with BOS (Llama 2, Mistral-7B-v0.1: the brand-voice example's
    model) were pretrained on sequences starting with it. Their tokenizers have no chat template, so tunepath's
    default one rendered the examples - and the prompts at generation - without BOS: a start no pretraining
    sequence had."""
    from training import generate, tokenizer as tokmod

    folder = _bos_tokenizer_folder(tmp_path / "base")
    tok = tokmod.load(str(folder))
    bos = tok.bos_token_id
    for data in (GARDEN_QA, GARDEN_TXT):
        cfg = _config(tmp_path, stage="full", model={"name_or_path": str(folder)}, output_dir=str(tmp_path / "out"),
                      data={"paths": [str(data)], "max_seq_len": 64, "eval_fraction": 0})
        r = cli("train", cfg, "--inspect-data", "--samples", "3", "--json")
        assert r.exit_code == 0, r.output
        samples = json.loads(r.stdout)["samples"]
        assert len(samples) == 3
        if data == GARDEN_QA:   # each example starts with one BOS; it carries no loss
            for s in samples:
                assert s["input_ids"][0] == bos and bos not in s["input_ids"][1:] and s["labels"][0] == -100
        else:                   # the text starts with BOS (run_clm.py tokenizes with the tokenizer's special tokens)
            assert samples[0]["input_ids"][:1] == [bos] and samples[0]["input_ids"][1] != bos
    ids = generate.prompt_ids(tok, "When should I sow peas?")[0].tolist()  # the chat template, as at inference
    assert ids[0] == bos and bos not in ids[1:]


def test_pretrain_tokenizer_learns_from_chat_rows(tmp_path):
    """The BPE trained for stage pretrain read a chat row's text from instruction/input/output, which chat rows
    do not have: it learned no merges and the data took 2.4x the tokens (26,089 against 10,844 here)."""
    rows = [json.loads(line) for line in GARDEN_QA.read_text().splitlines()]
    chat = tmp_path / "chat.jsonl"
    chat.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": r["instruction"] + (f"\n\n{r['input']}" if r["input"].strip() else "")},
        {"role": "assistant", "content": r["output"]}]}) + "\n" for r in rows))
    tokens = {}
    for name, data in (("alpaca", GARDEN_QA), ("chat", chat)):
        cfg = _config(tmp_path, stage="pretrain", model={"architecture": TINY_LLAMA}, tokenizer={"vocab_size": 600},
                      data={"paths": [str(data)], "max_seq_len": 128, "eval_fraction": 0},
                      output_dir=str(tmp_path / "out"))
        r = cli("train", cfg, "--inspect-data", "--samples", "1", "--json")
        assert r.exit_code == 0, r.output
        tokens[name] = json.loads(r.stdout)["stats"]["train_tokens"]
    assert tokens["chat"] == tokens["alpaca"]  # the same conversations, the same vocabulary


@pytest.mark.parametrize("rows, needle", [
    # a cut-off line: file:line and the fields a row may have (it said only 'invalid JSON (Expecting value...)')
    (b'{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": \n',
     ['d.jsonl:2: invalid JSON', '{"instruction", "input"?, "output"} (alpaca)', '{"messages"']),
    # an unknown role is named (it said only 'must be {role: system|user|assistant, ...}')
    (b'{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}]}\n',
     ["d.jsonl:1: messages[1]: unknown role 'bot'; expected system, user or assistant"]),
    # Latin-1 on line 2: the line is named (it said only the byte offset)
    (b'{"instruction": "a", "output": "b"}\n{"instruction": "caf\xe9", "output": "b"}\n',
     ["d.jsonl:2: not UTF-8 text", "iconv"]),
    (b'{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": "  "}\n', ["d.jsonl:2: empty output"]),
    (b'{"prompt": "a", "completion": "b"}\n', ["d.jsonl:1: cannot tell the format from fields ['completion', "
                                               "'prompt']; expected {\"instruction\""]),
    (b"", ["no rows in", "(empty dataset)"]),
])
def test_malformed_labeled_data_is_one_line_naming_file_and_line(tmp_path, tiny_base_model, rows, needle):
    data = tmp_path / "d.jsonl"
    data.write_bytes(rows)
    cfg = _sft(tmp_path, tiny_base_model, "full", data={"paths": [str(data)], "max_seq_len": 96})
    one_line_error(cli("train", cfg), *needle)


def test_generate_refuses_an_empty_prompt_and_a_nan_temperature(tiny_base_model):
    """An empty prompt generated 64 newlines and exited 0; --temperature nan passed click's min=0 and did the same."""
    one_line_error(cli("generate", tiny_base_model, "  "), "PROMPT is empty")
    one_line_error(cli("generate", tiny_base_model, "hi", "--temperature", "nan"),
                   "--temperature: expected a finite number >= 0, got nan")


def test_resume_of_a_finished_run_without_checkpoints_is_refused(tmp_path, tiny_base_model):
    """--resume over a finished run that kept no checkpoint (save_steps past its last step) retrained it from
    step 0 over the saved adapter, with only a warning; now there is nothing to resume, and it says so."""
    cfg = _sft(tmp_path, tiny_base_model, "peft", adapter={"method": "lora"},
               training={"max_steps": 1, "micro_batch_size": 2, "save_steps": 100})
    assert cli("train", cfg).exit_code == 0
    summary = (tmp_path / "out" / "run_summary.json").read_text()
    one_line_error(cli("train", cfg, "--resume"), "--resume: nothing to resume in", "finished run (1 steps")
    assert (tmp_path / "out" / "run_summary.json").read_text() == summary


def test_ctrl_c_during_training_exits_130_in_one_line(tmp_path, tiny_base_model):
    """Ctrl-C printed click's 'Aborted!' and exited 1, the code the README gives a bug: a script could not tell an
    interrupted run from a crash. It is 130 (128 + SIGINT, as shells report it), with the way to resume."""
    import signal
    import subprocess
    import sys
    import time

    from helpers import REPO

    cfg = _sft(tmp_path, tiny_base_model, "peft", adapter={"method": "lora"},
               training={"max_steps": 100000, "micro_batch_size": 2, "logging_steps": 1, "save_steps": 100000})
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("TUNEPATH_DEBUG", None)
    p = subprocess.Popen([sys.executable, "-m", "tunepath.cli", "train", str(cfg)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    deadline = time.time() + 120
    while not (tmp_path / "out" / "tunepath_run.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(3)                       # into the training loop
    p.send_signal(signal.SIGINT)
    _, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted (exit 130)") and "--resume" in last and "Traceback" not in stderr, stderr
