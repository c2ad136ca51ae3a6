"""The estimator against transformers/peft/FlopCounterMode on models built here, and the published reference numbers (docs/validation.md)."""
from __future__ import annotations

import json
import math
import sys

import pytest

from advisor import catalog
from advisor.architecture import from_config, normalize_config
from advisor.errors import UserError
from advisor.estimate import (
    HOST_OPS,
    METHOD_MFU_FACTOR,
    TrainSetup,
    estimate_training,
    ia3_trainable,
    kv_bytes_per_token,
    model_state_bytes,
    lora_trainable,
    prompt_tuning_trainable,
    training_flops,
    training_memory,
)
from helpers import cli, cli_subprocess, one_line_error

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

_DROP = {"architectures", "auto_map", "_name_or_path", "transformers_version", "model_type"}


def _hf_config(raw: dict):
    cfg = normalize_config(raw)
    kwargs = {k: v for k, v in cfg.items() if v is not None and k not in _DROP}
    if cfg["model_type"] == "falcon":
        kwargs.setdefault("new_decoder_architecture", False)
        kwargs.setdefault("multi_query", True)
    return transformers.AutoConfig.for_model(cfg["model_type"], **kwargs)


@pytest.mark.parametrize("mid", sorted(catalog.models()))
def test_catalog_counts_equal_transformers_on_meta_device(mid):
    _, raw = catalog.model_config(mid)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(_hf_config(raw))
    arch = catalog.architecture(mid)
    assert arch.total_params == model.num_parameters()
    linear = {n.split(".")[-1] for n, m in model.named_modules()
              if isinstance(m, torch.nn.Linear) or type(m).__name__ == "Conv1D"} - {"lm_head"}
    assert set(arch.linear_names()) == linear


@pytest.mark.parametrize("mid,published", [
    ("openai-community/gpt2", 124_439_808), ("Qwen/Qwen2.5-0.5B", 494_032_768),
    ("meta-llama/Llama-2-7b-hf", 6_738_415_616), ("mistralai/Mistral-7B-v0.1", 7_241_732_096),
    ("mistralai/Mixtral-8x7B-v0.1", 46_702_792_704), ("tiiuae/falcon-7b", 6_921_720_704),
    ("microsoft/phi-2:phi-msft", 2_779_683_840), ("google/gemma-2b", 2_506_172_416),
    # KerasHub presets' metadata.params (advisor/data/models/SOURCES.md names each preset)
    ("google/gemma-2-2b", 2_614_341_888), ("google/gemma-2-9b", 9_241_705_984), ("google/gemma-2-27b", 27_227_128_320),
    ("mistralai/Mistral-7B-v0.3", 7_248_023_552), ("microsoft/Phi-3-mini-4k-instruct", 3_821_079_552),
    ("Qwen/Qwen2.5-3B", 3_085_938_688), ("Qwen/Qwen2.5-32B", 32_763_876_352), ("Qwen/Qwen3-4B", 4_022_468_096),
    ("Qwen/Qwen3-14B", 14_768_307_200), ("Qwen/Qwen3-32B", 32_762_123_264), ("Qwen/Qwen3-30B-A3B", 30_532_122_624),
])
def test_published_counts(mid, published):
    assert catalog.architecture(mid).total_params == published


def test_design_reference_numbers():
    llama = catalog.architecture("meta-llama/Llama-2-7b-hf")
    # peft: "trainable params: 4,194,304 || all params: 6,742,609,920"
    lora = lora_trainable(llama, 8, ["q_proj", "v_proj"])
    assert lora == 4_194_304 and llama.total_params + lora == 6_742_609_920
    # LoRA paper: GPT-3 175B (d=12288, L=96), r=4 on Wq, Wv -> 18,874,368 trainable
    gpt3 = from_config({"model_type": "llama", "hidden_size": 12288, "num_hidden_layers": 96,
                        "num_attention_heads": 96, "vocab_size": 50257, "intermediate_size": 4 * 12288})
    assert lora_trainable(gpt3, 4, ["q_proj", "v_proj"]) == 18_874_368
    # GPT-3 175B on 300B tokens: 6ND = 3.15e23 (paper: 3.14e23)
    gpt3_gpt2 = from_config({"model_type": "gpt2", "n_embd": 12288, "n_layer": 96, "n_head": 96,
                             "vocab_size": 50257, "n_positions": 2048})
    assert 6 * gpt3_gpt2.total_params * 300e9 == pytest.approx(3.14e23, rel=0.01)
    # Llama-2-7B full fine-tuning: 16 bytes/param of states (~108 GB) does not fit one 80 GB GPU
    a100 = catalog.gpu("A100-80GB")
    est = estimate_training(llama, a100, TrainSetup(method="full", tokens=1e6))
    states = est.memory.weights + est.memory.gradients + est.memory.optimizer
    assert states == 16 * llama.total_params and round(states / 1e9) == 108 and not est.fits
    # KV cache: Llama-2-7B 512 KiB per token
    assert kv_bytes_per_token(llama) == 512 * 1024


@pytest.mark.parametrize("zero,published_gb", [(0, 120), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_zero_paper_table_1_model_states(zero, published_gb):
    """Rajbhandari et al. 2020, Table 1: 7.5B parameters, mixed-precision Adam (K=12), 64 GPUs."""
    w, g, o = model_state_bytes(7.5e9, "mixed", "adamw", zero, 64)
    assert (w + g + o) / 1e9 == pytest.approx(published_gb, abs=0.05)


def test_zero_3_respects_optimizer_and_precision():
    llama = catalog.architecture("meta-llama/Llama-2-7b-hf")
    per_gpu = {(opt, prec): training_memory(llama, TrainSetup(method="full", tokens=1, gpus=8, zero=3, optimizer=opt,
                                                              precision=prec))
               for opt in ("adamw", "adamw-8bit", "sgd") for prec in ("mixed", "bf16")}
    states = {k: m.weights + m.gradients + m.optimizer for k, m in per_gpu.items()}
    for prec in ("mixed", "bf16"):                                    # the optimizer changes the bytes
        assert states[("adamw", prec)] > states[("adamw-8bit", prec)]
    assert states[("adamw", "mixed")] > states[("adamw", "bf16")] > states[("sgd", "bf16")]
    N = llama.total_params
    assert states[("adamw", "mixed")] == pytest.approx(16 * N / 8)
    assert states[("sgd", "mixed")] == pytest.approx(12 * N / 8)        # 2 + 2 + 4 master + 4 momentum
    assert states[("adamw-8bit", "bf16")] == pytest.approx(6 * N / 8)


def test_qlora_defaults_as_peft_runs_them():
    """QLoRA paper headline: a 65B model fine-tunes on one 48 GB GPU; 70B fits one 80 GB GPU. With peft's
    defaults (prepare_model_for_kbit_training turns gradient checkpointing on) and no flags."""
    llama65 = from_config({"model_type": "llama", "hidden_size": 8192, "num_hidden_layers": 80,
                           "num_attention_heads": 64, "intermediate_size": 22016, "vocab_size": 32000})
    q65 = estimate_training(llama65, catalog.gpu("L40S"), TrainSetup(method="qlora", tokens=1e6, seq_len=512))
    assert q65.grad_checkpointing and q65.optimizer == "paged-adamw"
    assert q65.fits and q65.memory_per_gpu_gb < 48
    big = catalog.architecture("meta-llama/Llama-2-70b-hf")
    q70 = estimate_training(big, catalog.gpu("A100-80GB"), TrainSetup(method="qlora", tokens=1e6))
    assert q70.fits
    off = estimate_training(big, catalog.gpu("A100-80GB"), TrainSetup(method="qlora", tokens=1e6,
                                                                       grad_checkpointing=False))
    assert off.memory_per_gpu_gb > q70.memory_per_gpu_gb + 20         # the default is what makes it fit


def _tiny(model_type: str, **extra):
    base = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    base.update(extra)
    if model_type == "gpt2":
        base = dict(vocab_size=512, n_embd=64, n_layer=2, n_head=4, n_positions=128)
    cfg = transformers.AutoConfig.for_model(model_type, **base)
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(cfg), from_config(cfg.to_dict())


@pytest.mark.parametrize("model_type", ["llama", "qwen2", "gpt2", "mistral"])
@pytest.mark.parametrize("method", ["lora", "dora", "all-linear", "prompt", "ia3"])
def test_adapter_counts_equal_peft(model_type, method):
    peft = pytest.importorskip("peft")
    model, arch = _tiny(model_type)
    assert arch.total_params == model.num_parameters()
    qv = ["c_attn"] if model_type == "gpt2" else ["q_proj", "v_proj"]
    if method in ("lora", "dora", "all-linear"):
        targets = "all-linear" if method == "all-linear" else qv
        cfg = peft.LoraConfig(r=4, target_modules=targets, use_dora=method == "dora", task_type="CAUSAL_LM")
        expected = lora_trainable(arch, 4, targets, dora=method == "dora")
    elif method == "prompt":
        cfg = peft.PromptTuningConfig(num_virtual_tokens=7, task_type="CAUSAL_LM")
        expected = prompt_tuning_trainable(arch, 7)
    else:
        cfg = peft.IA3Config(task_type="CAUSAL_LM")
        expected = ia3_trainable(arch)
    pm = peft.get_peft_model(model, cfg)
    trainable, _ = pm.get_nb_trainable_parameters()
    assert trainable == expected


@pytest.mark.parametrize("method", ["full", "lora"])
def test_training_flops_within_3_percent_of_flop_counter(method):
    from torch.utils.flop_counter import FlopCounterMode

    model, arch = _tiny("llama", attn_implementation="eager")
    model.config._attn_implementation = "eager"
    s, b = 64, 2
    if method == "lora":
        import peft
        model = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    ids = torch.randint(0, 512, (b, s))
    with FlopCounterMode(display=False) as fc:
        model(input_ids=ids, labels=ids).loss.backward()
    setup = TrainSetup(method=method, tokens=b * s, seq_len=s, micro_batch=b, lora_rank=4,
                       target_modules=["q_proj", "v_proj"], attention="eager")
    assert training_flops(arch, setup) == pytest.approx(fc.get_total_flops(), rel=0.03)


def test_estimate_cli_json_fields():
    r = cli("estimate", "--model", "meta-llama/Llama-2-7b-hf", "--method", "lora", "--tokens", "20M",
            "--gpu", "A100-80GB", "--rank", "8", "--target-modules", "q_proj,v_proj", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["model"]["total_params"] == 6_738_415_616 and d["model"]["active_params"] == 6_738_415_616
    assert d["trainable_params"] == 4_194_304
    assert set(d["memory_gb"]) == {"weights", "gradients", "optimizer", "activations", "overhead", "total"}
    assert d["fits"] is True and d["gpu_hours"] > 0 and d["cost_usd"] > 0 and d["flops"] > 0
    full = json.loads(cli("estimate", "--model", "meta-llama/Llama-2-7b-hf", "--method", "full", "--tokens",
                          "20M", "--json").stdout)
    assert full["fits"] is False
    sharded = json.loads(cli("estimate", "--model", "meta-llama/Llama-2-7b-hf", "--method", "full", "--tokens",
                             "20M", "--gpus", "8", "--zero", "3", "--grad-checkpointing", "--json").stdout)
    assert sharded["fits"] is True
    inf = json.loads(cli("estimate", "--model", "meta-llama/Llama-2-7b-hf", "--method", "inference",
                         "--json").stdout)
    assert inf["kv_bytes_per_token"] == 512 * 1024
    table = cli("estimate", "--model", "Qwen/Qwen2.5-0.5B", "--method", "qlora", "--tokens", "1M")
    assert table.exit_code == 0 and "memory per GPU" in table.stdout


@pytest.mark.parametrize("args,needle", [
    (["--tokens", "0"], "--tokens"),
    (["--tokens", "-5M"], "--tokens"),
    (["--tokens", "1M", "--gpu", "B200X"], "unknown GPU"),
    (["--tokens", "1M", "--rank", "0"], "--rank"),
    (["--tokens", "1M", "--method", "magic"], "--method"),
    (["--tokens", "1M", "--target-modules", "q_proj,wq"], "wq"),
    (["--tokens", "1M", "--target-modules", ""], "--target-modules"),
    (["--tokens", "1M", "--rank", "100000"], "at most 4,096"),
])
def test_estimate_bad_input_exit_2(args, needle):
    r = cli_subprocess("estimate", "--model", "meta-llama/Llama-2-7b-hf", *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr


NUMERIC_OPTIONS = ["--tokens", "--gpus", "--rank", "--virtual-tokens", "--seq-len", "--micro-batch", "--grad-accum", "--zero", "--mfu",
                   "--prompt-tokens", "--output-tokens", "--requests-per-month", "--weight-bits", "--concurrency"]
TEXT_OPTIONS = {"--model", "--method", "--gpu", "--target-modules", "--precision", "--optimizer", "--grad-checkpointing",
                "--attention",
                "--json"}


def test_numeric_options_list_is_the_whole_estimate_command():
    """Guard for the test below: every option of `tunepath estimate` that is not text is a numeric option
    checked by advisor.options (a new numeric option must join the list)."""
    import typer

    from advisor.options import ESTIMATE_LIMITS
    from tunepath.cli import app

    command = typer.main.get_command(app).commands["estimate"]
    names = {p.opts[0] for p in command.params}
    assert names - TEXT_OPTIONS == set(NUMERIC_OPTIONS) == set(ESTIMATE_LIMITS)


@pytest.mark.parametrize("option", NUMERIC_OPTIONS)
@pytest.mark.parametrize("value", ["inf", "-inf", "1e400", "nan", "NaN"])
def test_non_finite_numbers_rejected_in_one_line(option, value):
    method = "inference" if option in ("--prompt-tokens", "--output-tokens", "--requests-per-month",
                                       "--weight-bits", "--concurrency") else "lora"
    args = ["estimate", "--model", "meta-llama/Llama-2-7b-hf", "--method", method, "--json"]
    args += [option, value] if option == "--tokens" else ["--tokens", "1M", option, value]
    r = cli(*args)
    assert r.exit_code == 2, r.output
    assert r.stdout == "" and "nan" not in r.stdout.lower()
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and option in lines[0] and "not finite" in lines[0]


@pytest.mark.parametrize("args,needle", [
    (["--rank", "0"], "--rank"), (["--gpus", "0"], "--gpus"), (["--seq-len", "-1"], "--seq-len"),
    (["--zero", "4"], "--zero"), (["--mfu", "0"], "--mfu"), (["--mfu", "1.5"], "--mfu"),
    (["--micro-batch", "abc"], "--micro-batch"), (["--gpus", "2.5"], "--gpus"), (["--method", "magic"], "--method"),
    (["--weight-bits", "3"], "--weight-bits"), (["--optimizer", "adam9"], "--optimizer"),
])
def test_range_errors_are_one_line_not_a_usage_box(args, needle):
    r = cli("estimate", "--model", "meta-llama/Llama-2-7b-hf", "--tokens", "1M", *args)
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "╭" not in r.stderr and "Usage" not in r.stderr


def test_config_missing_keys_is_one_line(tmp_path):
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    r = cli_subprocess("estimate", "--model", p, "--tokens", "1M")
    assert r.returncode == 2 and "num_hidden_layers" in r.stderr
    p.write_text(json.dumps({"model_type": "mamba", "hidden_size": 64}))
    r = cli_subprocess("estimate", "--model", p, "--tokens", "1M")
    assert r.returncode == 2 and "supported" in r.stderr


@pytest.mark.parametrize("method,ckpt,bf16,attention,s", [
    ("full", False, False, "sdpa", 128), ("lora", False, False, "sdpa", 128), ("full", True, False, "sdpa", 128),
    ("lora", False, True, "sdpa", 128),
    # eager at s=512: the s x s softmax and its backward's transient outweigh the rest of the model
    ("lora", True, False, "eager", 512), ("lora", False, False, "eager", 512), ("full", True, True, "eager", 512)])
def test_training_memory_within_10_percent_of_measured_peak(method, ckpt, bf16, attention, s):
    """Estimate vs the peak of live tensor bytes on torch's memory-profiler timeline during a real optimizer
    step (2 micro-batches, after a warm-up step) - a measurement that knows nothing of the formula.
    bf16: a 16-bit base with LoRA on every linear, where peft's fp32 adapters each keep an fp32 copy of
    their input (without those copies the estimate is 17 % under this peak). eager: without the softmax
    backward's transient (attention_backward_bytes) the estimate is 30-60 % under."""
    from training.memprobe import peak_tensor_bytes

    model, arch = _tiny("llama", attn_implementation=attention, max_position_embeddings=512)
    if bf16:
        model = model.to(torch.bfloat16)
    if ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] if bf16 \
        else ["q_proj", "v_proj"]
    if method == "lora":
        import peft
        model = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=targets))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    b = 4 if s <= 128 else 2
    batches = [torch.randint(0, 512, (b, s)) for _ in range(2)]

    def step():
        for ids in batches:
            (model(input_ids=ids, labels=ids).loss / 2).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    _, measured = peak_tensor_bytes(step)
    est = training_memory(arch, TrainSetup(method=method, tokens=b * s, seq_len=s, micro_batch=b, lora_rank=4,
                                           target_modules=targets, precision="mixed" if bf16 else "fp32",
                                           attention=attention,
                                           grad_checkpointing=ckpt, device="cpu"))
    assert est.total == pytest.approx(measured, rel=0.10)


def test_user_catalog_adds_gpus_and_models(tmp_path):
    cfg = tmp_path / "my-model.json"
    cfg.write_text(json.dumps({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
                               "num_attention_heads": 4, "vocab_size": 512, "intermediate_size": 128}))
    cat = tmp_path / "catalog.yaml"
    cat.write_text("gpus:\n  MY-GPU:\n    memory_gb: 32\n    bf16_tflops: 100\n    bandwidth_gbs: 900\n"
                   "    usd_per_hour: 0.5\n  A100-80GB:\n    usd_per_hour: 1.0\nmodels:\n  acme/tiny: my-model.json\n")
    env = {"TUNEPATH_CATALOG": str(cat)}
    gpus = {g["id"]: g for g in json.loads(cli_subprocess("gpus", "--json", env=env).stdout)}
    assert gpus["MY-GPU"]["memory_gb"] == 32 and gpus["A100-80GB"]["usd_per_hour"] == 1.0
    assert gpus["A100-80GB"]["bf16_tflops"] == 312           # overriding the price keeps the specs
    r = cli_subprocess("estimate", "--model", "acme/tiny", "--gpu", "MY-GPU", "--tokens", "1M", "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"]["total_params"] == 64 * 512 * 2 + 2 * (4 * 64 * 64 + 3 * 64 * 128 + 128) + 64
    cat.write_text("gpus:\n  BAD:\n    memory_gb: -1\n")
    r = cli_subprocess("gpus", env=env)
    assert r.returncode == 2 and "BAD" in r.stderr


@pytest.mark.parametrize("variant,base", [
    ("meta-llama/Llama-2-7b-chat-hf", "meta-llama/Llama-2-7b-hf"), ("Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B"),
    ("mistralai/Mistral-7B-Instruct-v0.1", "mistralai/Mistral-7B-v0.1"), ("google/gemma-2b-it", "google/gemma-2b"),
    ("mistralai/Mistral-7B-Instruct-v0.3", "mistralai/Mistral-7B-v0.3"), ("google/gemma-2-9b-it", "google/gemma-2-9b"),
    ("Qwen/Qwen2.5-14B-Instruct", "Qwen/Qwen2.5-14B"), ("Qwen/Qwen2.5-32B-Instruct", "Qwen/Qwen2.5-32B"),
])
def test_chat_and_instruct_variants_resolve_to_their_base_architecture(variant, base):
    assert catalog.model_config(variant)[0] == base
    assert catalog.architecture(variant).total_params == catalog.architecture(base).total_params


# Base models of current projects, each as its users name it on the Hugging Face hub: every one resolves to a
# catalog config whose count transformers reproduces (test_catalog_counts_equal_transformers_on_meta_device).
CURRENT_BASES = {
    "meta-llama/Llama-3.1-70B-Instruct": 70_553_706_496, "meta-llama/Llama-3.3-70B-Instruct": 70_553_706_496,
    "meta-llama/Llama-3.1-70B": 70_553_706_496, "meta-llama/Llama-3.2-1B-Instruct": 1_235_814_400,
    "meta-llama/Llama-3.2-3B-Instruct": 3_212_749_824, "Qwen/Qwen2.5-14B-Instruct": 14_770_033_664,
    "Qwen/Qwen2.5-32B": 32_763_876_352, "Qwen/Qwen3-14B": 14_768_307_200, "google/gemma-2-9b-it": 9_241_705_984,
    "google/gemma-2-2b": 2_614_341_888, "mistralai/Mistral-7B-Instruct-v0.3": 7_248_023_552,
    "mistralai/Mistral-Nemo-Instruct-2407": 12_247_782_400, "mistralai/Mistral-Nemo-Base-2407": 12_247_782_400,
    "microsoft/Phi-3-mini-4k-instruct": 3_821_079_552, "microsoft/phi-4": 14_659_507_200,
    "mistralai/Mixtral-8x22B-v0.1": 140_620_634_112, "meta-llama/Llama-3.1-405B": 405_853_388_800,
    # the Instruct release has a larger vocabulary (32,768 against the base's 32,000): its own config
    "mistralai/Mixtral-8x22B-Instruct-v0.1": 140_630_071_296,
}


def test_current_base_models_resolve_through_the_cli():
    """`tunepath estimate --model <hub id>` answers for each (it said "unknown model" before they were added)."""
    for mid, total in CURRENT_BASES.items():
        assert catalog.architecture(mid).total_params == total, mid
    d = json.loads(cli("estimate", "--model", "meta-llama/Llama-3.3-70B-Instruct", "--method", "qlora", "--tokens",
                       "1M", "--gpu", "H100-SXM", "--json").stdout)
    assert d["model"]["total_params"] == 70_553_706_496


def _tiny_qwen3_moe(**over):
    return {"model_type": "qwen3_moe", "hidden_size": 64, "intermediate_size": 96, "moe_intermediate_size": 32,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
            "num_experts": 8, "num_experts_per_tok": 2, "vocab_size": 300, "tie_word_embeddings": False, **over}


def test_qwen3_moe_counts_total_and_active_from_the_module_tree():
    """Total = transformers' count; active = total less the experts a token does not run, read off the built model's
    expert tensors (not from the formula under test)."""
    raw = _tiny_qwen3_moe()
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(_hf_config(raw))
    arch = from_config(raw)
    assert arch.total_params == model.num_parameters()
    expert_params = sum(p.numel() for n, p in model.named_parameters() if ".mlp.experts." in n)
    idle = expert_params * (raw["num_experts"] - raw["num_experts_per_tok"]) // raw["num_experts"]
    assert arch.active_params == model.num_parameters() - idle
    assert arch.linear_names() == ["k_proj", "o_proj", "q_proj", "v_proj"]      # experts are 3-D parameters


@pytest.mark.parametrize("over", [{"mlp_only_layers": [0]}, {"decoder_sparse_step": 2}])
def test_qwen3_moe_with_dense_layers_is_refused_not_miscounted(over):
    """transformers builds a dense MLP of intermediate_size in such layers; one per-layer description cannot hold
    both kinds, so the count is refused rather than guessed."""
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(_hf_config(_tiny_qwen3_moe(**over)))
    assert type(model.model.layers[0].mlp).__name__ == "Qwen3MoeMLP"
    with pytest.raises(UserError, match="dense layers"):
        from_config(_tiny_qwen3_moe(**over))


def _published_rows():
    import importlib.util

    from helpers import REPO

    spec = importlib.util.spec_from_file_location("estimator_published", REPO / "bench" / "estimator_published.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod           # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(mod)
    return {r.setup: r for r in mod.evaluate()}


@pytest.mark.parametrize("setup_starts", [
    "Llama 2 13B, 2T tokens",                  # A100 anchors are Llama 2 7B and 70B
    "LLaMA 65B, 1.4T tokens",                  # LLaMA (v1) paper, not a fitted run
    "Llama 3.1 8B, 15T tokens",                # H100 anchors are Llama 3 8B and 70B (the 3.1 runs are held out)
    "Llama 3.1 70B, 15T tokens",
    "LLaMA2-7B, batch 4, LoRA r=8 all linear, max length 1024, gradient checkpointing (LLaMA-Factory default), "
    "16-bit LoRA, HF: peak VRAM",
    "QLoRA 4-bit, LLaMA 65B",
    "vLLM, Llama-3.1-8B bf16, 1x A40",         # decode efficiency was fitted on an A100 batch-1 run
    "llama.cpp, Llama 3 8B Q6_K",              # the int4 kernel factor was fitted on Qwen2.5-3B Q4_0
    "Llama 3 405B, 16,384 H100",               # steady-state TFLOP/s; the 405B anchor is whole-run GPU-hours
    # the longest context HF + FlashAttention-2 QLoRA fits on an 80 GB card (GQA, 128k vocabulary, long rows)
    "HF + FlashAttention-2 QLoRA 4-bit, Llama 3.1 8B, r=32 all linear, batch 1, rows padded to 28,454",
    "HF + FlashAttention-2 QLoRA 4-bit, Llama 3.3 70B",
])
def test_held_out_published_figures_within_25_percent(setup_starts):
    rows = _published_rows()
    [row] = [r for s, r in rows.items() if s.startswith(setup_starts)]
    assert not row.fitted, "a default fitted to a figure cannot be tested on it"
    assert 0.8 <= row.ratio <= 1.25, (row.setup, row.value, row.published)


def test_published_table_is_honest():
    rows = list(_published_rows().values())
    assert len(rows) >= 30
    for r in rows:
        assert r.source and 0.5 <= r.ratio <= 2.0, r.setup
        if not 0.8 <= r.ratio <= 1.25:
            assert r.reason, f"outside 25 % without a written reason: {r.setup}"


def test_serving_single_gpu_replica_and_embedding_lookup():
    """A 7B model in 16 bits fits one RTX 4090: one GPU per replica (no tensor parallelism), and batch-1
    decode streams the decoder weights and the head but not the input embedding (a lookup)."""
    from advisor.estimate import estimate_inference

    llama = catalog.architecture("meta-llama/Llama-2-7b-hf")
    g = catalog.gpu("RTX-4090")
    inf = estimate_inference(llama, g, 1000, 250, 1e5)
    assert inf.gpus_per_replica == 1
    streamed = llama.total_params - llama.vocab_size * llama.hidden_size      # untied: head streamed, embedding not
    assert inf.decode_tokens_per_s_batch1 < g.bandwidth_gbs * 1e9 * g.decode_bandwidth_efficiency / (2 * streamed)
    # continuous batching: the batch is what memory holds after the weights, and it multiplies throughput
    assert 1 < inf.concurrency == inf.max_batch and inf.decode_tokens_per_s > 3 * inf.decode_tokens_per_s_batch1
    int4 = estimate_inference(llama, g, 1000, 250, 1e5, weight_bits=4)
    assert int4.weights_gb < inf.weights_gb / 3 and int4.decode_tokens_per_s_batch1 > 2 * inf.decode_tokens_per_s_batch1
    assert int4.max_batch > inf.max_batch                                    # freed memory holds more KV


def test_mixture_of_experts_priced_by_total_params_on_the_moe_ladder():
    from advisor.estimate import hosted_monthly_usd

    mixtral = catalog.architecture("mistralai/Mixtral-8x7B-v0.1")
    prices = catalog.api_prices()
    assert prices.tier_for(mixtral.total_params, moe=True).input_per_m == 0.50      # Fireworks "MoE 0B-56B"
    assert prices.tier_for(mixtral.total_params).input_per_m == 0.90                # as a dense 46.7B model
    assert prices.tier_for(catalog.architecture("Qwen/Qwen2.5-7B").total_params).input_per_m == 0.20  # <= 16B
    assert hosted_monthly_usd(mixtral.total_params, 1e6, 1000, 0, moe=True) == pytest.approx(1e6 * 1000 * 0.5 / 1e6)


def test_price_classes_shown_and_a_user_file_overrides(tmp_path):
    r = cli_subprocess("gpus")
    assert r.returncode == 0 and "GPU cloud" in r.stdout and "hyperscaler" in r.stdout and "marketplace" in r.stdout
    rows = {g["id"]: g for g in json.loads(cli_subprocess("gpus", "--json").stdout)}
    h100 = rows["H100-SXM"]
    assert set(h100["prices"]) == {"gpu_cloud", "hyperscaler", "marketplace"}
    assert all(q["source"] and q["date"] for q in h100["prices"].values())
    assert h100["usd_per_hour"] == h100["prices"]["gpu_cloud"]["usd_per_hour"]
    cat = tmp_path / "catalog.yaml"
    cat.write_text("price_class: marketplace\ngpus:\n  H100-SXM:\n    prices:\n      marketplace: "
                   "{usd_per_hour: 1.11, source: my broker quote, date: 2026-12-01}\n")
    mine = {g["id"]: g for g in json.loads(cli_subprocess("gpus", "--json", env={"TUNEPATH_CATALOG": str(cat)}).stdout)}
    assert mine["H100-SXM"]["usd_per_hour"] == 1.11 and mine["H100-SXM"]["price_class"] == "marketplace"
    assert mine["H100-SXM"]["prices"]["hyperscaler"] == h100["prices"]["hyperscaler"]   # other classes kept
    assert mine["A100-80GB"]["usd_per_hour"] == rows["A100-80GB"]["prices"]["marketplace"]["usd_per_hour"]
    cat.write_text("price_class: cheapest\n")
    bad = cli_subprocess("gpus", env={"TUNEPATH_CATALOG": str(cat)})
    assert bad.returncode == 2 and "price_class" in bad.stderr


def test_attention_option_and_the_sdpa_math_path_note():
    """QLoRA's fp32 residual stream sends CUDA sdpa with grouped KV heads to its math kernel (quadratic memory);
    the estimate says so and prices flash_attention_2, which casts to 16 bits, beside it."""
    args = ["estimate", "--model", "meta-llama/Llama-3.1-8B", "--method", "qlora", "--tokens", "10M",
            "--seq-len", "16384", "--gpu", "H100-SXM", "--json"]
    sdpa = json.loads(cli(*args).stdout)
    flash = json.loads(cli(*args, "--attention", "flash_attention_2").stdout)
    assert sdpa["memory_per_gpu_gb"] > flash["memory_per_gpu_gb"] * 1.2
    [note] = [n for n in sdpa["notes"] if "math kernel" in n]
    assert f"{flash['memory_per_gpu_gb']:.1f} GB" in note
    assert not any("math kernel" in n for n in flash["notes"])
    # no grouped KV heads (Llama 2 7B): sdpa keeps its memory-efficient kernel, no note
    llama2 = json.loads(cli(*args[:2], "meta-llama/Llama-2-7b-hf", *args[3:]).stdout)
    assert not any("math kernel" in n for n in llama2["notes"])
    one_line_error(cli(*args[:-1], "--attention", "flash2"), "--attention", "flash_attention_2")


def test_a_peak_near_the_cards_limit_is_flagged():
    """Where published runs sat at a card's limit the estimate was 81-94 % of the card, so above 80 % the
    estimate says the plan may not fit."""
    base = ["estimate", "--model", "meta-llama/Llama-3.1-8B", "--method", "qlora", "--rank", "32",
            "--target-modules", "all-linear", "--tokens", "1M", "--attention", "flash_attention_2", "--gpu",
            "RTX-4090", "--json"]
    near = json.loads(cli(*base, "--seq-len", "5789").stdout)       # HF + FA2's longest row on a 24 GB card
    assert near["fits"] and 0.8 < near["memory_per_gpu_gb"] / near["gpu_memory_gb"] <= 1
    assert any("of the 24 GiB card" in n for n in near["notes"])
    roomy = json.loads(cli(*base, "--seq-len", "1024").stdout)
    assert roomy["fits"] and not any("GB card" in n for n in roomy["notes"])


def test_rows_longer_than_the_context_window_are_flagged():
    base = ["estimate", "--model", "meta-llama/Llama-2-7b-hf", "--method", "lora", "--tokens", "1M", "--json"]
    long = json.loads(cli(*base, "--seq-len", "8192").stdout)
    assert any("4,096 positions" in n for n in long["notes"])
    assert not any("positions" in n for n in json.loads(cli(*base, "--seq-len", "4096").stdout)["notes"])


def test_cards_hold_binary_gigabytes():
    """An "80 GB" A100 holds 80 GiB (85.9e9 bytes); GDDR data-center cards with ECC on keep 15/16 of theirs.
    A 70B LoRA under ZeRO-3 on 8 of them needs ~83e9 bytes a GPU: it fits, with a note that the margin is thin."""
    assert catalog.gpu("A100-80GB").memory_bytes == 80 * 2**30
    assert catalog.gpu("T4").memory_bytes == 15 * 2**30 and catalog.gpu("RTX-4090").memory_bytes == 24 * 2**30
    d = json.loads(cli("estimate", "--model", "meta-llama/Llama-2-70b-hf", "--method", "lora", "--tokens", "10M",
                       "--gpus", "8", "--zero", "3", "--json").stdout)
    assert 80 < d["memory_per_gpu_gb"] < d["gpu_memory_gb"] == pytest.approx(85.9, abs=0.05) and d["fits"]
    assert any("GiB card" in n for n in d["notes"])


def test_inference_notes_a_request_longer_than_the_window_and_prints_batch_1_once():
    r = cli("estimate", "--model", "meta-llama/Llama-2-7b-hf", "--method", "inference", "--prompt-tokens", "8000",
            "--concurrency", "1")
    assert r.exit_code == 0 and "4,096-token window" in r.stderr
    assert r.stdout.count("decode tokens/s") == 1
    # the serving engine it assumes is one line under the table, not a caption wrapped to the table's width
    assert "assumes a vLLM-class server: continuous batching, paged KV cache, CUDA graphs" in r.stdout


@pytest.mark.parametrize("name,hint", [("H100-80GB", "'H100-SXM' or 'H100-PCIe'"), ("a100", "'A100-80GB' or 'A100-40GB'"),
                                       ("V100", "'V100-16GB' or 'V100-32GB'")])
def test_unknown_gpu_names_its_family(name, hint):
    one_line_error(cli("estimate", "--model", "meta-llama/Llama-2-7b-hf", "--tokens", "1M", "--gpu", name),
                   f"did you mean {hint}?")


def test_more_gpus_than_sequences_is_flagged():
    base = ["estimate", "--model", "meta-llama/Llama-2-7b-hf", "--method", "lora", "--tokens", "2M", "--json"]
    many = json.loads(cli(*base, "--gpus", "4096").stdout)          # 2M / 2,048 = 977 sequences
    assert any("keep at most 976 of the 4,096 GPUs busy" in n for n in many["notes"])
    assert not any("GPUs busy" in n for n in json.loads(cli(*base, "--gpus", "8").stdout)["notes"])


def test_options_of_the_other_kind_of_estimate_are_named_as_ignored():
    r = cli("estimate", "--model", "meta-llama/Llama-2-7b-hf", "--method", "inference", "--gpus", "4", "--zero", "3")
    assert r.exit_code == 0 and "note: --gpus, --zero ignored for --method inference" in r.stderr
    r = cli("estimate", "--model", "meta-llama/Llama-2-7b-hf", "--tokens", "1M", "--weight-bits", "4")
    assert r.exit_code == 0 and "note: --weight-bits ignored for --method lora" in r.stderr
    assert "ignored" not in cli("estimate", "--model", "meta-llama/Llama-2-7b-hf", "--tokens", "1M").stderr


def test_h100_fine_tuning_runs_at_step_throughput_and_pretraining_at_whole_run():
    """Meta's whole-run H100 GPU-hours (Llama 3 8B: MFU 0.167) price a pretraining budget on ~16k GPUs; a LoRA job on
    one node is priced at step throughput, where matched runs put an H100 at ~2.2x an A100, not 1.3x."""
    args = ["estimate", "--model", "meta-llama/Llama-3.1-8B", "--tokens", "100M", "--json"]
    a100 = json.loads(cli(*args, "--method", "lora", "--gpu", "A100-80GB").stdout)
    h100 = json.loads(cli(*args, "--method", "lora", "--gpu", "H100-SXM").stdout)
    assert a100["hours"] / h100["hours"] > 2.0
    assert "step throughput" in h100["mfu_source"] and "MosaicML" in h100["mfu_source"]
    pre = json.loads(cli(*args, "--method", "pretrain", "--gpu", "H100-SXM").stdout)
    assert "step throughput" not in pre["mfu_source"] and "Llama 3 8B" in pre["mfu_source"]
    assert pre["mfu"] < h100["mfu"] / METHOD_MFU_FACTOR["lora"]


def test_optimizer_update_is_timed_once_per_step():
    """The update after each optimizer step streams every trainable parameter's states: it grows with the number of
    steps (fewer with accumulation), is split by ZeRO, and is negligible for adapters."""
    args = ["estimate", "--model", "meta-llama/Llama-3.1-8B", "--tokens", "50M", "--seq-len", "256",
            "--micro-batch", "2", "--json"]
    one = json.loads(cli(*args, "--method", "full").stdout)
    accum = json.loads(cli(*args, "--method", "full", "--grad-accum", "16").stdout)
    assert one["optimizer_update_hours"] == pytest.approx(16 * accum["optimizer_update_hours"], rel=1e-6)
    assert one["hours"] > accum["hours"]
    assert any("optimizer update" in n and "--grad-accum" in n for n in one["notes"])
    assert not any("optimizer update" in n for n in accum["notes"])
    zero1 = json.loads(cli(*args, "--method", "full", "--gpus", "8", "--zero", "1").stdout)
    assert zero1["optimizer_update_hours"] == pytest.approx(one["optimizer_update_hours"] / 64, rel=1e-6)
    lora = json.loads(cli(*args, "--method", "lora").stdout)
    assert lora["optimizer_update_hours"] < 0.01 * lora["hours"]
    one_line_error(cli(*args, "--grad-accum", "0"), "--grad-accum")


def test_optimizer_update_brings_peft_short_row_full_finetuning_within_reach():
    """peft's method comparison (held out: nothing was fitted to it): full fine-tuning of Llama-3.2-3B on 210-token
    rows, one step per batch of 4, ran at 2,310 tok/s; without the update the estimate is about 3x too fast. LoRA
    (6,780 tok/s) takes no update worth the name; its short micro-batches wait on the host's dispatch instead (it was
    1.33x too fast before the host floor)."""
    mod = sys.modules.get("estimator_published") or (_published_rows() and sys.modules["estimator_published"])
    full, lora = sorted(mod.short_rows_peft(), key=lambda r: not r["run"].startswith("full"))
    assert full["ratio_without_update"] > 2.5
    assert full["ratio"] < 2.1
    assert 0.8 <= lora["ratio"] <= 1.25


def test_fp32_matmuls_are_timed_on_cuda_cores():
    """PyTorch keeps TF32 off by default, so fp32 matmuls run at the data sheet's fp32 peak (A100: 19.5 TFLOP/s, not
    the 312 of bf16 tensor cores); QLoRA's fp32 attention on sdpa's math kernel likewise, and the note says how much
    of the time it takes (a single-author H100 run of this setup was 3.9x slower than the tensor-core estimate)."""
    args = ["estimate", "--model", "meta-llama/Llama-3.1-8B", "--tokens", "10M", "--json"]
    mixed = json.loads(cli(*args, "--method", "full", "--gpu", "A100-80GB").stdout)
    fp32 = json.loads(cli(*args, "--method", "full", "--gpu", "A100-80GB", "--precision", "fp32").stdout)
    assert fp32["hours"] / mixed["hours"] > 10
    assert any("CUDA cores" in n and "--precision mixed" in n for n in fp32["notes"])
    q = [*args, "--method", "qlora", "--seq-len", "8192", "--gpu", "H100-SXM"]
    sdpa = json.loads(cli(*q).stdout)
    flash = json.loads(cli(*q, "--attention", "flash_attention_2").stdout)
    assert sdpa["hours"] > 3 * flash["hours"]
    [note] = [n for n in sdpa["notes"] if "math kernel" in n]
    assert "fp32 on CUDA cores" in note and "% of the time" in note


def test_data_parallel_communication_sets_the_time_where_links_are_slow():
    """ZeRO-3 gathers every parameter for each micro-batch's forward and backward (3x data parallelism's traffic,
    ZeRO §7). Over NVLink it hides under the compute; over PCIe without peer-to-peer (RTX 4090) it sets the time,
    less so with larger micro-batches; adapters all-reduce only their own gradients."""
    args = ["estimate", "--model", "meta-llama/Llama-3.1-8B", "--tokens", "100M", "--gpus", "8", "--json"]
    full = [*args, "--method", "full", "--zero", "3", "--grad-checkpointing"]
    pcie = json.loads(cli(*full, "--gpu", "RTX-4090").stdout)
    nvlink = json.loads(cli(*full, "--gpu", "A100-80GB").stdout)
    assert pcie["communication_hours"] > pcie["hours"] * 0.9 and any("16 GB/s links" in n for n in pcie["notes"])
    assert nvlink["communication_hours"] < 0.5 * nvlink["hours"]
    assert not any("communication" in n for n in nvlink["notes"])
    bigger = json.loads(cli(*full, "--gpu", "RTX-4090", "--micro-batch", "4").stdout)
    assert bigger["communication_hours"] == pytest.approx(pcie["communication_hours"] / 4, rel=0.05)
    lora = json.loads(cli(*args, "--method", "lora", "--gpu", "RTX-4090").stdout)
    assert lora["communication_hours"] < 0.05 * lora["hours"]
    one = json.loads(cli(*args[:-3], "--method", "full", "--gpu", "RTX-4090", "--json").stdout)
    assert one["communication_hours"] == 0


def test_blind_check_rows_run_through_the_cli_and_explain_their_misses():
    """The second blind check (bench/published_blind2.py) runs every figure through `tunepath estimate --json` as
    written; each row outside 25 % must say why, and the ratios must be finite estimates of the published unit."""
    mod = sys.modules.get("estimator_published") or (_published_rows() and sys.modules["estimator_published"])
    rows = mod.blind_check_2()
    assert len(rows) >= 20
    for r in rows:
        assert r["source"] and r["command"].startswith("tunepath estimate ") and math.isfinite(r["ratio"]), r["setup"]
        if not 0.8 <= r["ratio"] <= 1.25:
            assert r["reason"], f"outside 25 % without a written reason: {r['setup']}"
    # held out of the fit, these memory rows come from a stack (litgpt) close to tunepath's for 7B LoRA
    [llama2] = [r for r in rows if r["setup"].startswith("litgpt llama-2-7b/lora.yaml")]
    assert 0.8 <= llama2["ratio"] <= 1.25


def test_every_estimate_says_how_far_to_trust_it():
    """Beside each estimate, how such estimates held against published figures nothing was fitted to - by kind."""
    from advisor.estimate import accuracy_sentence

    base = ["estimate", "--model", "meta-llama/Llama-2-7b-hf", "--gpu", "A100-80GB"]
    lora = json.loads(cli(*base, "--method", "lora", "--tokens", "20M", "--json").stdout)
    pre = json.loads(cli(*base, "--method", "pretrain", "--tokens", "1B", "--json").stdout)
    serve = json.loads(cli(*base, "--method", "inference", "--json").stdout)
    assert lora["accuracy"] == [accuracy_sentence("fine-tuning time"), accuracy_sentence("memory")]
    assert pre["accuracy"][0].startswith("pretraining time: within 25 % for ")
    assert serve["accuracy"].startswith("serving: within 25 % for ")
    text = cli(*base, "--method", "lora", "--tokens", "20M").stdout
    assert "fine-tuning time: within 25 %" in " ".join(text.split())


def test_short_micro_batches_wait_on_the_host_and_long_ones_do_not(tmp_path):
    """LitGPT's resource tables (A100-40GB, LoRA on ~110-token rows): phi-1.5 took 97-102 ms per micro-batch of 1, 2
    or 4 rows - nearly the same, because eager PyTorch's dispatch of 24 layers, not the GPU's 2-5 ms of work, set
    the time. The floor was set on Llama 2 7B (18.6 us per op issued); phi-1.5 is held out. Long packed rows are not
    host-bound, and the floor does not change their time."""
    cfg = tmp_path / "phi-1_5.json"   # microsoft/phi-1_5 config.json
    cfg.write_text(json.dumps({"model_type": "phi", "hidden_size": 2048, "num_hidden_layers": 24,
                               "num_attention_heads": 32, "intermediate_size": 8192, "vocab_size": 51200,
                               "max_position_embeddings": 2048, "partial_rotary_factor": 0.5}))
    base = ["estimate", "--model", str(cfg), "--method", "lora", "--gpu", "A100-40GB", "--seq-len", "110",
            "--no-grad-checkpointing", "--rank", "8", "--target-modules", "q_proj,v_proj", "--precision", "bf16",
            "--json"]
    ms = {}
    for mb, published in ((1, 97.2), (4, 102.0)):
        j = json.loads(cli(*base, "--micro-batch", str(mb), "--tokens", str(1000 * mb * 110)).stdout)
        ms[mb] = j["hours"] * 3600          # 1,000 micro-batches: seconds = ms per micro-batch
        assert j["host_bound"] and 0.8 <= ms[mb] / published <= 1.25, (mb, ms[mb])
        assert any("host dispatch" in n and "--micro-batch" in n for n in j["notes"])
    assert ms[4] < 1.1 * ms[1]              # four times the rows, about the same time
    long = json.loads(cli("estimate", "--model", "mistralai/Mistral-7B-v0.1", "--method", "lora", "--gpu", "A100-80GB",
                          "--seq-len", "4096", "--micro-batch", "4", "--tokens", "10M", "--json").stdout)
    assert not long["host_bound"] and not any("host dispatch" in n for n in long["notes"])


def test_third_check_runs_whole_published_tables_through_the_cli():
    """bench/published_check3.py: every single-GPU HF baseline row of fms-acceleration's A100 reference (time and
    max_memory_allocated) and every LitGPT LoRA row. Only the row that set the host floor is fitted; each held-out
    row outside 25 % says why. The memory rows - a 2025 Hugging Face stack tunepath never saw - hold within 25 %."""
    mod = sys.modules.get("estimator_published") or (_published_rows() and sys.modules["estimator_published"])
    rows = mod.third_check()
    assert [r["setup"] for r in rows if r["fitted"]] == [
        "LitGPT LoRA r=8, Llama 2 7B, None, micro-batch 1 of ~110-token rows, 1x A100-40GB: time per micro-batch"]
    for r in rows:
        assert r["command"].startswith("tunepath estimate ") and math.isfinite(r["ratio"]), r["setup"]
        if not r["fitted"] and not 0.8 <= r["ratio"] <= 1.25:
            assert r["reason"], f"outside 25 % without a written reason: {r['setup']}"
    memory = [r for r in rows if r["group"] == "memory"]
    assert len(memory) == 8 and all(0.8 <= r["ratio"] <= 1.25 for r in memory)


def test_host_op_counts_are_what_transformers_and_peft_dispatch_today():
    """The host-dispatch floor prices ops per layer (advisor/estimate.py HOST_OPS); recounted here with the installed
    transformers and peft on a tiny Llama and Mixtral, so a release that changes what a layer issues fails the suite."""
    import importlib.util

    from helpers import REPO

    from advisor.estimate import HOST_OPS

    spec = importlib.util.spec_from_file_location("host_ops", REPO / "bench" / "host_ops.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for ckpt in (False, True):
        full = mod.per_layer("full", None, ckpt)
        two = mod.per_layer("lora", ["q_proj", "v_proj"], ckpt)
        seven = mod.per_layer("lora", "all-linear", ckpt)
        want = HOST_OPS[ckpt]
        assert full == pytest.approx(want["full"], rel=0.05), (ckpt, full)
        assert (seven - two) / 5 == pytest.approx(want["adapter"], rel=0.05), (ckpt, seven, two)
        assert two - 2 * (seven - two) / 5 == pytest.approx(want["frozen"], rel=0.05), (ckpt, two)
        ia3_one = mod.per_layer("ia3", ["k_proj"], ckpt)
        ia3_three = mod.per_layer("ia3", ["k_proj", "v_proj", "down_proj"], ckpt)
        assert (ia3_three - ia3_one) / 2 == pytest.approx(want["ia3"], abs=1.5), (ckpt, ia3_one, ia3_three)
        moe_full = mod.per_layer("full", None, ckpt, True)
        moe_two = mod.per_layer("lora", ["q_proj", "v_proj"], ckpt, True)
        assert moe_full - full == pytest.approx(want["moe"], rel=0.05), (ckpt, moe_full)
        assert moe_two - two == pytest.approx(want["moe"], rel=0.05), (ckpt, moe_two)


def test_ia3_host_ops_count_the_modules_it_scales():
    """The host floor counts one IA3 scaling's ops per module IA3 scales (the given --target-modules, else peft's
    default): it counted three for every model and target list, each at a LoRA adapter's 35 ops."""
    def host_ops(targets):
        j = json.loads(cli("estimate", "--model", "HuggingFaceTB/SmolLM-135M", "--method", "ia3", "--target-modules",
                           targets, "--tokens", "1M", "--seq-len", "256", "--gpu", "H100-SXM", "--json").stdout)
        [note] = [n for n in j["notes"] if "host dispatch" in n]
        return int(note.split("layers x ~")[1].split()[0])
    one, three = host_ops("k_proj"), host_ops("k_proj,v_proj,down_proj")
    assert one < three and (three - one) / 2 == pytest.approx(HOST_OPS[False]["ia3"], abs=1)


def test_host_floor_counts_a_mixture_of_experts_layer_s_routing():
    """A Mixtral layer issues its router's and grouped experts' ops on top of a dense layer's: the floor of a short
    LoRA micro-batch counts them (it priced a Mixtral layer as a Llama one)."""
    def ops(model):
        j = json.loads(cli("estimate", "--model", model, "--method", "lora", "--target-modules", "q_proj,v_proj",
                           "--tokens", "1M", "--seq-len", "64", "--gpu", "H100-SXM", "--no-grad-checkpointing",
                           "--json").stdout)
        [note] = [n for n in j["notes"] if "host dispatch" in n]
        return int(note.split("layers x ~")[1].split()[0])
    dense, moe = ops("mistralai/Mistral-7B-v0.1"), ops("mistralai/Mixtral-8x7B-v0.1")
    assert moe - dense == HOST_OPS[False]["moe"] and dense == HOST_OPS[False]["frozen"] + 2 * HOST_OPS[False]["adapter"]


@pytest.mark.parametrize("method", ["lora", "ia3", "prompt_tuning", "prefix_tuning"])
def test_target_modules_default_to_peft_s_default_for_the_model_type(method):
    """Without --target-modules the estimate takes peft's default for the model type, as peft does with
    target_modules=None: GPT-2's is c_attn. It was q_proj,v_proj for every model, so every PEFT estimate of GPT-2 or
    Pythia - prompt tuning too, which targets no module - failed with 'q_proj, v_proj not in gpt2'."""
    r = cli("estimate", "--model", "openai-community/gpt2", "--method", method, "--tokens", "1M", "--json")
    assert r.exit_code == 0, r.output
    if method == "lora":     # c_attn: 768 in, 2,304 out, rank 16, 12 layers
        assert json.loads(r.stdout)["trainable_params"] == 12 * 16 * (768 + 2304)
