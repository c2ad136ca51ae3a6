"""What tunepath relies on from the Trainer: loss normalised by the step's token count under gradient
accumulation, precision selection, and the derived quantities printed before a run."""
from __future__ import annotations

import json

import pytest

from training import load_config
from training import runner

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # see conftest.torch_one_thread


def _full_cfg(tmp_path, base, data, **training):
    t = {"max_steps": 1, "optimizer": "sgd", "learning_rate": 1.0, "lr_scheduler": "constant", "warmup": 0,
         "max_grad_norm": 0, "logging_steps": 1, "save_steps": 1000}
    t.update(training)
    return load_config(data={
        "stage": "full", "model": {"name_or_path": str(base)}, "precision": "fp32", "seed": 0,
        "output_dir": str(tmp_path / f"out-{t['micro_batch_size']}x{t['gradient_accumulation_steps']}"),
        "data": {"paths": [str(data)], "max_seq_len": 128, "eval_fraction": 0, "packing": False},
        "training": t})


def test_gradient_accumulation_normalises_by_tokens_not_micro_batches(tmp_path, tiny_base_model):
    import torch
    from transformers import AutoModelForCausalLM

    from training import data as D

    rows = [{"instruction": "Short?", "output": "Yes."},
            {"instruction": "Long?", "output": "The pea is sown in March and harvested about twelve weeks "
                                               "later; it likes full sun and regular watering."},
            {"instruction": "Medium?", "output": "Sow beans in May."},
            {"instruction": "Tiny?", "output": "No."}]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def update(micro, accum):
        p = runner.plan(_full_cfg(tmp_path, tiny_base_model, data, micro_batch_size=micro,
                                  gradient_accumulation_steps=accum), progress=False)
        model = p.trainer.model
        before = {n: t.detach().clone() for n, t in model.named_parameters()}
        p.trainer.train()
        return {n: before[n] - t.detach() for n, t in model.named_parameters()}, p.prepared

    whole, prepared = update(4, 1)  # one micro-batch of all 4 examples
    accum, _ = update(1, 4)         # 4 micro-batches of 1, accumulated

    # reference gradients: token-mean over the whole step vs mean of per-example means
    model = AutoModelForCausalLM.from_pretrained(tiny_base_model, dtype=torch.float32)
    model.config.use_cache = False
    losses, counts = [], []
    for r in prepared.train:
        labels = torch.tensor([r["labels"]])
        logits = model(input_ids=torch.tensor([r["input_ids"]])).logits
        lp = torch.nn.functional.cross_entropy(logits[0, :-1], labels[0, 1:], ignore_index=D.IGNORE, reduction="sum")
        losses.append(lp)
        counts.append(int((labels[0, 1:] != D.IGNORE).sum()))
    assert len(set(counts)) > 2  # lengths differ, so the two normalisations differ

    def grads(loss):
        model.zero_grad()
        loss.backward(retain_graph=True)
        return {n: p.grad.detach().clone() for n, p in model.named_parameters()}

    token_mean = grads(sum(losses) / sum(counts))
    example_mean = grads(sum(l / c for l, c in zip(losses, counts)) / len(losses))
    name = "model.layers.0.self_attn.q_proj.weight"
    for upd in (whole, accum):
        assert torch.allclose(upd[name], token_mean[name], atol=1e-6, rtol=1e-4)
    assert not torch.allclose(accum[name], example_mean[name], atol=1e-6, rtol=1e-2)


def test_precision_auto_picks_native_bf16(monkeypatch):
    monkeypatch.setattr(runner, "_cpu_has_native_bf16", lambda: True)
    assert runner.resolve_precision("auto") == "bf16"
    monkeypatch.setattr(runner, "_cpu_has_native_bf16", lambda: False)
    assert runner.resolve_precision("auto") == "fp32"
    assert runner.resolve_precision("fp32") == "fp32"
    from advisor.errors import UserError

    with pytest.raises(UserError, match="fp16 mixed precision needs a CUDA GPU"):
        runner.resolve_precision("fp16")


def test_plan_derives_batch_tokens_and_steps(tmp_path, tiny_base_model):
    from conftest import GARDEN_QA

    cfg = load_config(data={
        "stage": "peft", "model": {"name_or_path": str(tiny_base_model)}, "adapter": {"method": "lora", "r": 2},
        "output_dir": str(tmp_path / "o"),
        "data": {"paths": [str(GARDEN_QA)], "max_seq_len": 128, "eval_fraction": 0.1},
        "training": {"micro_batch_size": 2, "gradient_accumulation_steps": 3, "epochs": 2}})
    p = runner.plan(cfg, progress=False)
    d, s = p.derived, p.prepared.stats
    assert d["effective_batch_rows"] == 6
    assert d["steps"] == 2 * -(-(-(-s.train_rows // 2)) // 3)
    assert d["tokens_per_step"] == round(6 * s.train_tokens / s.train_rows)
    peft_count = p.trainer.model.get_nb_trainable_parameters()
    assert (d["trainable"], d["parameters"]) == peft_count
    # what the Trainer will do agrees with what was printed
    assert p.trainer.args.gradient_accumulation_steps == 3 and p.trainer.args.learning_rate == 2e-4
