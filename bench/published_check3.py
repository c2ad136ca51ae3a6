"""Third check of the estimator (beside the table of bench/estimator_published.py): two published sets of
fine-tuning figures measured on one A100, taken whole by a rule fixed before any estimate was run.

1. IBM fms-acceleration's reference benchmark (github.com/foundation-model-stack/fms-acceleration,
   scripts/benchmarks/refs/a100_80gb.csv, last changed 2025-02-07; setup in scripts/benchmarks/scenarios.yaml and
   defaults.yaml; versions in refs/requirements.txt: torch 2.4.1, transformers 4.48.1, peft 0.13.2,
   bitsandbytes 0.43.3, flash-attn 2.7.3). Rule: every single-GPU row of the plain Hugging Face baselines
   (framework_config "none": full fine-tuning and LoRA; "baseline-peft-bnb": QLoRA) that has a figure. Setup
   common to all: 1x A100-80GB, Alpaca packed into 4,096-token rows, FlashAttention-2, gradient checkpointing,
   100 steps, no accumulation, AdamW (transformers' adamw_torch), weights in bf16; LoRA/QLoRA r=16 on
   q,k,v,o_proj. Two figures per row: train_tokens_per_second (= 100 x batch x 4,096 / train_runtime: checked)
   and mem_peak_torch_mem_alloc_in_bytes (torch.cuda.max_memory_allocated, so the estimate is compared without
   its 1 GB for the CUDA context). Left out: santacoder, whose 2,048 positions cannot hold the 4,096-token rows
   the bench sets, so what ran is unclear; the 2-GPU FSDP rows, whose per-device token counts differ between
   transformers versions.
2. LitGPT's resource tables (github.com/Lightning-AI/litgpt, tutorials/resource-tables.md, 2023-10-20: A100-SXM4-40GB,
   PyTorch 2.1, bitsandbytes 0.41.1, bf16-true, LoRA r=8 on query and value, Alpaca rows - the longest 1,044-1,304
   tokens by the table's note, 110 the median by LitGPT's tutorials/oom.md, the length used here - no
   checkpointing). Rule: every LoRA row with a time,
   unquantised and bnb.nf4. "Time 1k iterations" is read as 1,000 micro-batches. The Llama 2 7B unquantised row at
   micro-batch 1 set advisor/estimate.py's HOST_SECONDS_PER_OP: it is marked fitted and counts nowhere.

Each row runs through `tunepath estimate ... --json` as written (bench/estimator_published.py, third_check).
Metrics: tok_s_per_gpu, max_allocated_gb (the estimate's peak less CUDA_OVERHEAD_GB), ms_per_micro_batch.
"""
FMS = ("foundation-model-stack/fms-acceleration scripts/benchmarks/refs/a100_80gb.csv (2025-02-07), "
       "framework_config {cfg}, 1 GPU, batch {b}")
LIT = ("Lightning-AI/litgpt tutorials/resource-tables.md (2023-10-20), 'Finetuning with LoRA on 1 GPU': "
       "{model}, {quant}, micro-batch {b}: {minutes} min per 1k iterations")

ROWS: list[dict] = []

_METHOD_ARGS = {
    "full": ["--method", "full", "--precision", "bf16", "--optimizer", "adamw"],
    "lora": ["--method", "lora", "--precision", "bf16", "--optimizer", "adamw", "--rank", "16",
             "--target-modules", "q_proj,k_proj,v_proj,o_proj"],
    "qlora": ["--method", "qlora", "--optimizer", "adamw", "--rank", "16", "--target-modules",
              "q_proj,k_proj,v_proj,o_proj"],
}
_CFG = {"full": "none", "lora": "none", "qlora": "baseline-peft-bnb"}
# (catalog model, method, per-device batch, train_tokens_per_second, mem_peak_torch_mem_alloc_in_bytes)
_FMS = (
    ("mistralai/Mistral-7B-v0.1", "full", 4, 3062.694, 72434837504),
    ("mistralai/Mistral-7B-v0.1", "full", 8, 3143.118, 72435230720),
    ("mistralai/Mistral-7B-v0.1", "lora", 4, 3324.155, 26704571904),
    ("mistralai/Mistral-7B-v0.1", "lora", 8, 3353.809, 38742912512),
    ("mistralai/Mistral-7B-v0.1", "qlora", 4, 2903.78, 20669338112),
    ("mistralai/Mistral-7B-v0.1", "qlora", 8, 2987.456, 37002646016),
    # Mixtral-8x7B-Instruct-v0.1 in the csv: the same architecture as the catalog's base model
    ("mistralai/Mixtral-8x7B-v0.1", "qlora", 4, 1528.07, 42794268160),
    ("mistralai/Mixtral-8x7B-v0.1", "qlora", 8, 1690.27, 60545920512),
)
for _model, _method, _b, _tok_s, _peak in _FMS:
    _args = ["--model", _model, *_METHOD_ARGS[_method], "--gpu", "A100-80GB", "--seq-len", "4096",
             "--micro-batch", str(_b), "--grad-checkpointing", "--attention", "flash_attention_2",
             "--tokens", str(100 * _b * 4096)]
    _name = _model.split("/")[1]
    _what = {"full": "full fine-tuning bf16", "lora": "LoRA r=16 qkvo", "qlora": "QLoRA r=16 qkvo"}[_method]
    _setup = f"fms-acceleration HF baseline: {_name}, {_what}, 1x A100-80GB, {_b} x 4,096 packed, FA2, checkpointing"
    _src = FMS.format(cfg=_CFG[_method], b=_b)
    ROWS.append({"group": "fine-tuning time", "setup": _setup + ": tokens/s", "published": _tok_s, "unit": "tok/s",
                 "source": _src, "args": _args, "metric": "tok_s_per_gpu"})
    ROWS.append({"group": "memory", "setup": _setup + ": max_memory_allocated", "published": _peak / 1e9,
                 "unit": "GB", "source": _src, "args": _args, "metric": "max_allocated_gb"})

# Architectures written from the published config.json of models not in the catalog.
PHI_15 = {"model_type": "phi", "hidden_size": 2048, "num_hidden_layers": 24, "num_attention_heads": 32,
          "intermediate_size": 8192, "vocab_size": 51200, "max_position_embeddings": 2048,
          "partial_rotary_factor": 0.5, "tie_word_embeddings": False}           # microsoft/phi-1_5
STABLELM_ALPHA_3B = {"model_type": "gpt_neox", "hidden_size": 4096, "num_hidden_layers": 16,
                     "num_attention_heads": 32, "intermediate_size": 16384, "vocab_size": 50688,
                     "max_position_embeddings": 4096, "tie_word_embeddings": False}  # stablelm-base-alpha-3b
# (model label, catalog id or config, quantisation, micro-batch, minutes per 1k iterations, lit's LoRA targets)
_LIT = (
    ("phi-1.5", PHI_15, "None", 1, 1.62, "q_proj,v_proj"),
    ("phi-1.5", PHI_15, "None", 2, 1.65, "q_proj,v_proj"),
    ("phi-1.5", PHI_15, "None", 4, 1.70, "q_proj,v_proj"),
    ("phi-1.5", PHI_15, "bnb.nf4", 1, 1.77, "q_proj,v_proj"),
    ("StableLM Alpha 3B", STABLELM_ALPHA_3B, "None", 1, 1.24, "query_key_value"),
    ("StableLM Alpha 3B", STABLELM_ALPHA_3B, "None", 2, 1.33, "query_key_value"),
    ("StableLM Alpha 3B", STABLELM_ALPHA_3B, "None", 4, 1.50, "query_key_value"),
    ("StableLM Alpha 3B", STABLELM_ALPHA_3B, "bnb.nf4", 1, 1.82, "query_key_value"),
    ("Llama 2 7B", "meta-llama/Llama-2-7b-hf", "None", 1, 2.36, "q_proj,v_proj"),
    ("Llama 2 7B", "meta-llama/Llama-2-7b-hf", "None", 2, 2.52, "q_proj,v_proj"),
    ("Llama 2 7B", "meta-llama/Llama-2-7b-hf", "bnb.nf4", 1, 3.68, "q_proj,v_proj"),
    ("Llama 2 13B", "meta-llama/Llama-2-13b-hf", "None", 1, 3.19, "q_proj,v_proj"),
    ("Llama 2 13B", "meta-llama/Llama-2-13b-hf", "bnb.nf4", 1, 6.38, "q_proj,v_proj"),
)
LIT_ROW_TOKENS = 110
for _label, _model, _quant, _b, _minutes, _targets in _LIT:
    _method = "qlora" if _quant == "bnb.nf4" else "lora"
    _args = ["--model", "{config}" if isinstance(_model, dict) else _model, "--method", _method, "--gpu", "A100-40GB",
             "--seq-len", str(LIT_ROW_TOKENS), "--micro-batch", str(_b), "--no-grad-checkpointing", "--rank", "8",
             "--target-modules", _targets, "--optimizer", "adamw", "--tokens", str(1000 * _b * LIT_ROW_TOKENS)]
    if _method == "lora":
        _args += ["--precision", "bf16"]
    row = {"group": "fine-tuning time",
           "setup": f"LitGPT LoRA r=8, {_label}, {_quant}, micro-batch {_b} of ~{LIT_ROW_TOKENS}-token rows, 1x A100-40GB: "
                    "time per micro-batch",
           "published": _minutes * 60, "unit": "ms", "source": LIT.format(model=_label, quant=_quant, b=_b,
                                                                         minutes=_minutes),
           "args": _args, "metric": "ms_per_micro_batch",
           "fitted": "HOST_SECONDS_PER_OP" if (_label, _quant, _b) == ("Llama 2 7B", "None", 1) else ""}
    if isinstance(_model, dict):
        row["config"] = _model
    ROWS.append(row)


def reason(row: dict) -> str:
    """Why a row may sit outside 25 %, written before the results were read where the mechanism was known, and
    after for the rest (then it says so)."""
    s = row["setup"]
    if "LitGPT" in s and "bnb.nf4" in s:
        return ("bitsandbytes 0.41's NF4 path adds its dequantisation (about a quarter of the GPU's bandwidth) to "
                "the host's dispatch time instead of hiding under it; the estimate takes the longer of the two")
    if "LitGPT" in s and "StableLM" in s:
        return ("LitGPT runs two LoRA paths (query and value) inside StableLM's fused qkv linear, where a peft user "
                "targets the one module, whose single adapter issues fewer ops; and as the micro-batch grows the "
                "GPU's own work no longer hides wholly under the dispatch (read after the run)")
    if "LitGPT" in s:
        return ("as the micro-batch grows the GPU's own work no longer hides wholly under the host's dispatch: the "
                "run paid part of both, where the estimate takes the longer of the two (read after the run)")
    if "fms-acceleration" in s and "tokens/s" in s:
        return ("the Hugging Face stack of 2025 reaches a higher step utilisation on 16-32k-token micro-batches "
                "than the whole-run MFU anchors the estimate uses (read after the run)")
    return ""
