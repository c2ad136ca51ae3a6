"""What a run leaves for people: loss.svg beside run_summary.json (train/eval loss against tokens, learning
rate on a second axis), both readable by others (0644, not a temp file's 0600), and the batching that ran."""
from __future__ import annotations

import json
import math
import os
import stat
import xml.etree.ElementTree as ET

import pytest
from conftest import GARDEN_QA

from training import load_config, runner
from training.plot import loss_svg

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # see conftest.torch_one_thread
SVG = "{http://www.w3.org/2000/svg}"


def _points(root, name):
    line = root.find(f".//{SVG}polyline[@id='{name}']")
    assert line is not None, f"no {name} polyline"
    return [tuple(map(float, p.split(","))) for p in line.get("points").split()]


def _follows(points, values):
    """Screen y is one decreasing linear function of the logged values; x (tokens) never goes back."""
    assert len(points) == len(values) >= 2
    xs, ys = zip(*points)
    assert all(b >= a for a, b in zip(xs, xs[1:]))
    (y0, v0), (y1, v1) = max(zip(ys, values), key=lambda t: t[1]), min(zip(ys, values), key=lambda t: t[1])
    assert v0 > v1 and y0 < y1  # higher value drawn higher (smaller y)
    slope = (y1 - y0) / (v1 - v0)
    for y, v in zip(ys, values):
        assert y == pytest.approx(y0 + slope * (v - v0), abs=0.02)
    return lambda v: y0 + slope * (v - v0)


def test_run_writes_loss_svg_and_shareable_files(tmp_path, tiny_base_model):
    out = tmp_path / "out"
    cfg = load_config(data={
        "stage": "peft", "model": {"name_or_path": str(tiny_base_model)}, "adapter": {"method": "lora", "r": 4},
        "seed": 0, "output_dir": str(out),
        "data": {"paths": [str(GARDEN_QA)], "max_seq_len": 96, "eval_fraction": 0.1},
        "training": {"max_steps": 6, "micro_batch_size": 4, "logging_steps": 1, "eval_steps": 3, "save_steps": 1000,
                     "learning_rate": 1e-2, "lr_scheduler": "linear", "warmup": 0}})
    p = runner.plan(cfg, progress=False)
    summary = runner.execute(p)
    logs = p.trainer.state.log_history

    assert json.loads((out / "run_summary.json").read_text())["batching"] == summary.batching == "packing"
    # the last step (6) is off the save_steps grid (1000): no checkpoint duplicates the final adapter
    assert not list(out.glob("checkpoint-*"))
    root = ET.parse(out / "loss.svg").getroot()
    assert root.tag == f"{SVG}svg"
    train = [h for h in logs if "loss" in h]
    evals = [h for h in logs if "eval_loss" in h]
    assert len(train) == 6 and len(evals) >= 2  # at steps 3 and 6 (and the final evaluate)
    loss_axis = _follows(_points(root, "train"), [h["loss"] for h in train])
    _follows(_points(root, "eval"), [h["eval_loss"] for h in evals])
    # train and eval share the loss axis: an eval loss lands where the same train loss would
    for (_, y), h in zip(_points(root, "eval"), evals):
        assert y == pytest.approx(loss_axis(h["eval_loss"]), abs=0.05)
    _follows(_points(root, "lr"), [h["learning_rate"] for h in train])  # linear decay
    # the learning rate has its own axis (its peak at the top of the plot), not the loss axis
    from training import plot

    assert min(y for _, y in _points(root, "lr")) == pytest.approx(plot.TOP, abs=0.01)

    for name in ("run_summary.json", "loss.svg"):
        mode = stat.S_IMODE(os.stat(out / name).st_mode)
        assert mode == 0o644, f"{name} is {oct(mode)}"


def test_loss_svg_handles_edges():
    assert loss_svg([]) is None
    assert loss_svg([{"learning_rate": 1e-3, "num_input_tokens_seen": 10}]) is None
    one = loss_svg([{"loss": 2.0, "learning_rate": 1e-3, "num_input_tokens_seen": 10}], title="a <b>")
    root = ET.fromstring(one)  # a single point and markup in the title still make valid XML
    assert root.find(f"{SVG}title").text == "a <b>"
    flat = loss_svg([{"loss": 2.0, "num_input_tokens_seen": t} for t in (10, 20, 30)])
    assert "nan" not in flat and "inf" not in flat  # equal losses: no zero-height axis


@pytest.mark.parametrize("stage", ["pretrain", "peft"])
def test_run_summary_flop_estimate_matches_flop_counter_of_the_run(tmp_path, tiny_base_model, stage):
    """The FLOPs the run summary puts beside its measurements are within 3 % of what torch's FlopCounterMode
    counts while that very run trains (full rows of text, eager attention: FlopCounterMode sees every matmul).
    Measured, not derived: the counter knows nothing of 6ND."""
    from torch.utils.flop_counter import FlopCounterMode

    from conftest import GARDEN_TXT, TINY_LLAMA

    model = {"architecture": TINY_LLAMA} if stage == "pretrain" else {"name_or_path": str(tiny_base_model)}
    cfg = load_config(data={
        "stage": stage, "model": {**model, "attn_implementation": "eager"}, "precision": "fp32", "seed": 0,
        "tokenizer": {"vocab_size": 400} if stage == "pretrain" else {},
        **({"adapter": {"method": "lora", "r": 4}} if stage == "peft" else {}),
        "output_dir": str(tmp_path / stage),
        "data": {"paths": [str(GARDEN_TXT)], "max_seq_len": 64, "eval_fraction": 0},
        "training": {"max_steps": 2, "micro_batch_size": 4, "logging_steps": 1, "save_steps": 1000}})
    p = runner.plan(cfg, progress=False)
    assert p.batching == "blocks"
    with FlopCounterMode(display=False) as fc:
        summary = runner.execute(p)
    assert summary.tokens == 2 * 4 * 64  # full blocks: no padding for the counter to see
    assert summary.estimate["flops"] == pytest.approx(fc.get_total_flops(), rel=0.03)


@pytest.mark.parametrize("attn", ["sdpa", "varlen"])
def test_tokens_seen_count_every_eos_when_pad_is_eos(tmp_path, tiny_base_model, attn):
    """A tokenizer without a pad token pads with EOS (most hub tokenizers: Llama, Mistral). transformers counts a
    batch without attention_mask - a packed one - as ids != pad, so the EOS of examples in packed batches went
    uncounted, and tokens/s with it: here 2,303 of 2,308 tokens (varlen's one-row batches: 2,268, all 40 EOS)."""
    import shutil

    from helpers import cli

    base = tmp_path / "base"
    shutil.copytree(tiny_base_model, base, ignore=shutil.ignore_patterns("checkpoint-*"))
    cfg_file = base / "tokenizer_config.json"
    tok_cfg = json.loads(cfg_file.read_text())
    del tok_cfg["pad_token"]
    cfg_file.write_text(json.dumps(tok_cfg))
    config = tmp_path / "train.yaml"
    config.write_text(json.dumps({
        "stage": "peft", "model": {"name_or_path": str(base), "attn_implementation": attn},
        "adapter": {"method": "lora", "r": 2}, "output_dir": str(tmp_path / "out"),
        "data": {"paths": [str(GARDEN_QA)], "max_seq_len": 96, "eval_fraction": 0, "packing": True,
                 "max_examples": 40},
        "training": {"epochs": 1, "micro_batch_size": 4, "save_steps": 1000}}))
    r = cli("train", config, "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["batching"] == "packing" and s["epochs"] == 1
    assert s["tokens"] == s["data"]["train_tokens"]  # one epoch: every real token once, no padding


@pytest.mark.parametrize("packing", [True, False])
def test_eval_loss_is_the_token_mean_whatever_the_batch(tmp_path, tiny_base_model, packing):
    """transformers' evaluate() averages each batch's token-mean loss weighted by rows, so eval_loss and the
    perplexity moved with micro_batch_size (a trained tiny model here: 2.287 at 1 row a batch, 2.321 at 16;
    2.320 per token). They are now the mean over every held-out loss token, as the training loss is."""
    import torch
    from transformers import AutoModelForCausalLM

    from training import data as datamod, tokenizer as tokmod
    from training.data import IGNORE

    out = tmp_path / "out"
    cfg = load_config(data={
        "stage": "full", "model": {"name_or_path": str(tiny_base_model)}, "precision": "fp32", "seed": 0,
        "output_dir": str(out),
        "data": {"paths": [str(GARDEN_QA)], "max_seq_len": 96, "eval_fraction": 0.2, "packing": packing,
                 "max_examples": 60},
        "training": {"max_steps": 1, "micro_batch_size": 5, "save_steps": 1000, "learning_rate": 1e-2}})
    summary = runner.execute(runner.plan(cfg, progress=False))
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    prepared = datamod.prepare(tokmod.load(str(out)), [str(GARDEN_QA)], max_seq_len=96, packing=False,
                               eval_fraction=0.2, seed=0, max_examples=60)
    total, n = 0.0, 0
    with torch.no_grad():
        for row in prepared.eval:
            labels = torch.tensor([row["labels"]])
            k = int(labels[0, 1:].ne(IGNORE).sum())
            total += float(model(input_ids=torch.tensor([row["input_ids"]]), labels=labels).loss) * k
            n += k
    assert summary.eval_loss == pytest.approx(total / n, rel=1e-5)
    assert summary.perplexity == pytest.approx(math.exp(total / n), rel=1e-5)
