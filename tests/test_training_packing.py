"""Packed training equals unpacked training: one optimizer step on the same examples, packed into
rows (position ids restarting per example) vs one example per padded row, gives the same loss and
the same gradients; the one-row (flat) collation used with flash-attention's varlen kernel too."""
from __future__ import annotations

import itertools

import pytest
from conftest import GARDEN_QA

from training import data as D
from training import load_config, runner

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # see conftest.torch_one_thread

N_EXAMPLES = 12


def _plan(tmp_path, base, packing, attn="sdpa"):
    cfg = load_config(data={
        "stage": "full", "model": {"name_or_path": str(base), "attn_implementation": attn}, "precision": "fp32",
        "seed": 0, "output_dir": str(tmp_path / f"out-{packing}-{attn}"),
        "data": {"paths": [str(GARDEN_QA)], "max_seq_len": 128, "eval_fraction": 0, "packing": packing,
                 "max_examples": N_EXAMPLES},
        # one step over every row (micro batch >= rows), plain SGD with lr 1: the update is minus the gradient
        "training": {"max_steps": 1, "micro_batch_size": N_EXAMPLES, "optimizer": "sgd", "learning_rate": 1.0,
                     "lr_scheduler": "constant", "warmup": 0, "max_grad_norm": 0, "logging_steps": 1,
                     "save_steps": 1000}})
    return runner.plan(cfg, progress=False)


def _step(p):
    """(logged loss, {param: update}) of the plan's single optimizer step."""
    model = p.trainer.model
    before = {n: t.detach().clone() for n, t in model.named_parameters()}
    p.trainer.train()
    loss = next(h["loss"] for h in p.trainer.state.log_history if "loss" in h)
    return loss, {n: before[n] - t.detach() for n, t in model.named_parameters()}


@pytest.mark.parametrize("attn", ["sdpa", "eager", "varlen"])
def test_one_step_packed_equals_padded(tmp_path, tiny_base_model, attn):
    padded, packed = _plan(tmp_path, tiny_base_model, False, attn), _plan(tmp_path, tiny_base_model, True, attn)
    assert padded.batching == "length_grouped" and packed.batching == "packing"
    # the same examples, fewer rows: several examples share a packed row
    assert padded.prepared.stats.train_tokens == packed.prepared.stats.train_tokens
    assert len(packed.prepared.train) < len(padded.prepared.train) == N_EXAMPLES
    loss_a, upd_a = _step(padded)
    loss_b, upd_b = _step(packed)
    assert loss_b == pytest.approx(loss_a, rel=1e-5)
    norm = max(float(u.abs().max()) for u in upd_a.values())
    assert norm > 0
    for name, u in upd_a.items():
        diff = float((u - upd_b[name]).abs().max())
        assert diff <= 1e-4 * norm, f"{name}: packed and padded gradients differ by {diff:.2e} (max {norm:.2e})"


@pytest.mark.parametrize("attn", ["sdpa", "varlen"])
def test_flat_collation_equals_padded(tiny_base_model, attn):
    """The varlen layout (the whole batch as one row + cu_seq_lens) on sdpa and on tunepath's varlen
    attention: same loss and gradients as one padded row per example."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training import varlen

    varlen.register()
    tok = AutoTokenizer.from_pretrained(tiny_base_model)
    prep_plain = D.prepare(tok, [str(GARDEN_QA)], max_seq_len=128, packing=False, max_examples=N_EXAMPLES)
    prep_packed = D.prepare(tok, [str(GARDEN_QA)], max_seq_len=128, packing=True, max_examples=N_EXAMPLES)
    model = AutoModelForCausalLM.from_pretrained(tiny_base_model, dtype=torch.float32, attn_implementation=attn)
    model.config.use_cache = False

    def loss_and_grads(batch):
        model.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        return float(loss.detach()), {n: p.grad.detach().clone() for n, p in model.named_parameters()}

    flat = D.Collator(tok.pad_token_id, packed=True, flat=True)(prep_packed.train)
    assert flat["input_ids"].shape == (1, prep_packed.stats.train_tokens)  # no padding at all
    assert flat["cu_seq_lens_q"].tolist()[-1] == prep_packed.stats.train_tokens
    assert len(flat["cu_seq_lens_q"]) == N_EXAMPLES + 1  # one boundary per example
    loss_a, g_a = loss_and_grads(D.Collator(tok.pad_token_id, packed=False)(prep_plain.train))
    loss_b, g_b = loss_and_grads(flat)
    assert loss_b == pytest.approx(loss_a, rel=1e-5)
    norm = max(float(g.abs().max()) for g in g_a.values())
    for name, g in g_a.items():
        assert float((g - g_b[name]).abs().max()) <= 1e-4 * norm, name


def test_varlen_keeps_examples_apart_however_collated(tiny_base_model):
    """varlen attention takes boundaries from cu_seq_lens or from restarting position ids, so packed rows
    never fall back to whole-row attention, even with the KV cache on (where transformers' sdpa path stops
    deriving the block-diagonal mask); padded batches and generation match sdpa."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training import varlen

    varlen.register()
    tok = AutoTokenizer.from_pretrained(tiny_base_model)
    prep = D.prepare(tok, [str(GARDEN_QA)], max_seq_len=128, packing=True, max_examples=N_EXAMPLES)
    sdpa = AutoModelForCausalLM.from_pretrained(tiny_base_model, dtype=torch.float32).eval()
    vl = AutoModelForCausalLM.from_pretrained(tiny_base_model, dtype=torch.float32, attn_implementation="varlen").eval()

    def alone(row):  # each example of a packed row through sdpa on its own
        starts = [i for i, p in enumerate(row["position_ids"]) if p == 0] + [len(row["input_ids"])]
        return torch.cat([sdpa(input_ids=torch.tensor([row["input_ids"][a:b]])).logits[0]
                          for a, b in itertools.pairwise(starts)])

    assert any(r["position_ids"].count(0) > 1 for r in prep.train)  # several examples share a row
    with torch.no_grad():
        want = [alone(r) for r in prep.train]
        flat = vl(**D.Collator(tok.pad_token_id, packed=True, flat=True)(prep.train)).logits[0]
        assert torch.allclose(flat, torch.cat(want), atol=1e-4)
        padded = vl(**D.Collator(tok.pad_token_id, packed=True)(prep.train)).logits  # position ids only
        for i, w in enumerate(want):
            assert torch.allclose(padded[i, : len(w)], w, atol=1e-4), f"row {i}"
        ids = tok(["a garden", "water the tomatoes every"], return_tensors="pt", padding=True)
        assert torch.allclose(sdpa(**ids).logits[ids.attention_mask.bool()], vl(**ids).logits[ids.attention_mask.bool()],
                              atol=1e-4)
        kw = {"max_new_tokens": 5, "do_sample": False, "pad_token_id": tok.pad_token_id}
        assert sdpa.generate(**ids, **kw).tolist() == vl.generate(**ids, **kw).tolist()


def test_auto_batching_resolves_per_hardware(tmp_path, tiny_base_model, monkeypatch):
    """auto: packing on CPU and on CUDA with flash_attention_2; length-grouped padding on CUDA with sdpa;
    prompt tuning never packs; an explicit choice wins."""
    import torch

    def cfg(**kw):
        data = {"stage": "peft", "model": {"name_or_path": str(tiny_base_model)}, "adapter": {"method": "lora"},
                "data": {"paths": [str(GARDEN_QA)]}, "output_dir": str(tmp_path / "o")}
        for k, v in kw.items():
            data[k] = {**data.get(k, {}), **v}
        return load_config(data=data)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runner.resolve_batching(cfg())[0] is True
    assert runner.resolve_batching(cfg(data={"packing": False}))[0] is False
    assert runner.resolve_batching(cfg(adapter={"method": "prompt_tuning"}))[0] is False
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runner.resolve_batching(cfg(model={"attn_implementation": "flash_attention_2"}))[0] is True
    assert runner.resolve_batching(cfg(model={"attn_implementation": "sdpa"}))[0] is False
    assert runner.resolve_batching(cfg(model={"attn_implementation": "sdpa"}, data={"packing": True}))[0] is True
