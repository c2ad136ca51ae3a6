"""adapters/: every method x tiny Llama and Qwen2 (peft's test_custom_models style): trainable counts equal
peft's own and the analytic formula, a train step moves only adapter weights, save -> plain
PeftModel.from_pretrained reproduces the logits, merge equals the unmerged adapter."""
from __future__ import annotations

import pytest
from pydantic import TypeAdapter

import adapters
from advisor.errors import UserError

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # see conftest.torch_one_thread

H, LAYERS, HEADS, KV_HEADS, FF, VOCAB = 32, 2, 4, 2, 64, 128
KV = H // HEADS * KV_HEADS  # k_proj / v_proj output width under GQA

SPECS = {
    "lora": {"method": "lora", "r": 4},
    "lora_all_linear": {"method": "lora", "r": 2, "target_modules": "all-linear"},
    "dora": {"method": "dora", "r": 4, "target_modules": ["q_proj", "v_proj", "down_proj"]},
    "ia3": {"method": "ia3"},
    "prompt_tuning": {"method": "prompt_tuning", "num_virtual_tokens": 5},
    "prefix_tuning": {"method": "prefix_tuning", "num_virtual_tokens": 5},
}


def expected_trainable(name: str, model_type: str) -> int:
    """Closed-form trainable counts (LoRA paper: r*(d_in + d_out) per adapted matrix)."""
    shapes = {"q_proj": (H, H), "k_proj": (H, KV), "v_proj": (H, KV), "o_proj": (H, H),
              "gate_proj": (H, FF), "up_proj": (H, FF), "down_proj": (FF, H)}
    if name == "lora":
        return LAYERS * sum(4 * (shapes[m][0] + shapes[m][1]) for m in ("q_proj", "v_proj"))
    if name == "lora_all_linear":
        return LAYERS * sum(2 * (i + o) for i, o in shapes.values())
    if name == "dora":  # LoRA + one magnitude per output feature (Liu et al. 2024, eq. 5)
        return LAYERS * sum(4 * (shapes[m][0] + shapes[m][1]) + shapes[m][1] for m in ("q_proj", "v_proj", "down_proj"))
    if name == "ia3":
        # peft's defaults: llama k,v,down / qwen2 q,v,down; attention vectors scale outputs, feed-forward scales inputs
        attn = ("k_proj", "v_proj") if model_type == "llama" else ("q_proj", "v_proj")
        return LAYERS * (sum(shapes[m][1] for m in attn) + shapes["down_proj"][0])
    if name == "prompt_tuning":
        return 5 * H
    if name == "prefix_tuning":  # a key and a value prefix per layer, at the key/value width
        return 5 * LAYERS * 2 * KV
    raise AssertionError(name)


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def base_dir(request, tmp_path_factory):
    """A saved random tiny model of each architecture (what PeftModel.from_pretrained reloads)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    cfg = AutoConfig.for_model(request.param, vocab_size=VOCAB, hidden_size=H, intermediate_size=FF,
                               num_hidden_layers=LAYERS, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
                               max_position_embeddings=64, tie_word_embeddings=False)
    d = tmp_path_factory.mktemp(request.param)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(d)
    return d, request.param


def _load(d):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32)


def _spec(raw):
    return TypeAdapter(adapters.AdapterSpec).validate_python(raw)


@pytest.mark.parametrize("name", list(SPECS))
def test_method_matrix(name, base_dir, tmp_path):
    import torch
    from peft import PeftModel

    d, model_type = base_dir
    model = adapters.build_peft_model(_load(d), _spec(SPECS[name]))
    trainable, total = adapters.count_parameters(model)
    assert (trainable, total) == tuple(model.get_nb_trainable_parameters())
    assert trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == expected_trainable(name, model_type)

    # one SGD step: adapter weights move, every base weight stays bit-identical
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, VOCAB, (2, 12), generator=g)
    model.train()
    model(input_ids=x, labels=x).loss.backward()
    opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed, "the step changed nothing"
    assert all(model.get_parameter(n).requires_grad for n in changed)

    # save, reload with plain transformers + peft, same logits
    model.eval()
    with torch.no_grad():
        want = model(input_ids=x).logits
    model.save_pretrained(tmp_path / "adapter")
    reloaded = PeftModel.from_pretrained(_load(d), str(tmp_path / "adapter")).eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(input_ids=x).logits, want, atol=1e-6)


@pytest.mark.parametrize("name", ["lora", "dora", "ia3"])
def test_merge_equals_unmerged(name, base_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    d, _ = base_dir
    model = adapters.build_peft_model(_load(d), _spec(SPECS[name]))
    with torch.no_grad():  # make the adapter non-trivial (LoRA's B and IA3's vectors start as identity)
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(tmp_path / "adapter")
    x = torch.randint(0, VOCAB, (1, 10))
    model.eval()
    with torch.no_grad():
        want = model(input_ids=x).logits
    _save_tokenizer(d)
    out = adapters.merge(str(tmp_path / "adapter"), str(tmp_path / "merged"), base=str(d))
    merged = AutoModelForCausalLM.from_pretrained(out)
    assert not any("lora" in n or "ia3" in n for n, _ in merged.named_parameters())
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=x).logits, want, atol=1e-5)


def _save_tokenizer(d):
    """A minimal tokenizer beside the random base so merge can copy one (as it does for real bases)."""
    from pathlib import Path

    if (Path(d) / "tokenizer_config.json").exists():
        return
    from training import tokenizer as T

    T.train_bpe(["the pea is sown in march " * 20], 300).save_pretrained(d)


def test_prompt_tuning_cannot_be_merged(base_dir, tmp_path):
    d, _ = base_dir
    model = adapters.build_peft_model(_load(d), _spec(SPECS["prompt_tuning"]))
    model.save_pretrained(tmp_path / "adapter")
    with pytest.raises(UserError, match="cannot be merged"):
        adapters.merge(str(tmp_path / "adapter"), str(tmp_path / "merged"), base=str(d))


def test_unknown_module_lists_linear_modules(base_dir):
    d, _ = base_dir
    with pytest.raises(UserError, match=r"c_attn not in the model; its linear modules are: down_proj, gate_proj, "
                                        r"k_proj, o_proj, q_proj, up_proj, v_proj"):
        adapters.build_peft_model(_load(d), _spec({"method": "lora", "target_modules": ["q_proj", "c_attn"]}))


def test_qlora_on_cpu_is_a_user_error_naming_lora(base_dir):
    d, _ = base_dir
    with pytest.raises(UserError, match="qlora needs a CUDA GPU.*use method: lora"):
        adapters.build_peft_model(_load(d), _spec({"method": "qlora"}))


def test_registry_lists_every_method_and_rejects_unknown_fields():
    assert adapters.methods() == ["dora", "ia3", "lora", "prefix_tuning", "prompt_tuning", "qlora"]
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="rank"):
        _spec({"method": "lora", "rank": 8})
    with pytest.raises(ValidationError, match="init_text"):
        _spec({"method": "prompt_tuning", "init": "text"})
