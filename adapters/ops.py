"""Build, count, load and merge adapters with peft. Imports torch/peft: load it lazily."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from adapters.base import AdapterConfig
from advisor.errors import UserError
from advisor.textio import check_output_dir, share_tree


def linear_module_names(model: nn.Module) -> list[str]:
    """Leaf names of the model's nn.Linear layers (what peft matches target_modules against), lm_head excluded."""
    names = set()
    out_emb = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    for full, mod in model.named_modules():
        if isinstance(mod, nn.Linear) and mod is not out_emb:
            names.add(full.rsplit(".", 1)[-1])
    return sorted(names)


def check_target_modules(spec: AdapterConfig, model: nn.Module) -> None:
    """Unknown module names fail here with the list of valid ones (peft's own error does not list them)."""
    targets = getattr(spec, "target_modules", None)
    if not spec.targets_linear or not isinstance(targets, list):
        return
    valid = linear_module_names(model)
    full_names = {n for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    unknown = [t for t in targets if t not in valid and t not in full_names]
    if unknown:
        raise UserError(f"adapter.target_modules: {', '.join(unknown)} not in the model; "
                        f"its linear modules are: {', '.join(valid)} (or use 'all-linear')")
    ff = getattr(spec, "feedforward_modules", None)
    if ff and not set(ff) <= set(targets):
        raise UserError(f"adapter.feedforward_modules: {sorted(set(ff) - set(targets))} must also be in target_modules")


def build_peft_model(model: nn.Module, spec: AdapterConfig, tokenizer_path: str | None = None,
                     task_type: str | None = None) -> Any:
    """Wrap `model` with the adapter `spec`; only the adapter's parameters stay trainable.

    task_type overrides the method's peft task (CAUSAL_LM for the LLM): the embedder is an encoder
    without a head, which peft wraps as FEATURE_EXTRACTION (PeftModelForFeatureExtraction)."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    spec.check_environment()
    check_target_modules(spec, model)
    if getattr(model, "is_loaded_in_4bit", False):
        # QLoRA paper / peft docs: cast norms to fp32 and enable input grads for 4-bit bases.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    config = spec.to_peft(model, tokenizer_path)
    if task_type is not None:
        config.task_type = task_type
    return get_peft_model(model, config)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters; peft's own count for peft models (it handles 4-bit packing)."""
    if hasattr(model, "get_nb_trainable_parameters"):
        return tuple(model.get_nb_trainable_parameters())  # type: ignore[return-value]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def adapter_config(adapter_dir: str | os.PathLike) -> dict[str, Any]:
    """The adapter's adapter_config.json (peft's format), or a UserError saying what is wrong."""
    import json

    cfg_path = Path(adapter_dir) / "adapter_config.json"
    if not cfg_path.is_file():
        raise UserError(f"{adapter_dir}: not an adapter directory (no adapter_config.json)")
    try:
        return json.loads(cfg_path.read_text())
    except ValueError as e:
        raise UserError(f"{cfg_path}: unreadable adapter config ({e})") from None


def adapter_base_path(adapter_dir: str | os.PathLike) -> str:
    """The base model recorded in the adapter's adapter_config.json."""
    base = adapter_config(adapter_dir).get("base_model_name_or_path")
    if not base:
        raise UserError(f"{adapter_dir}/adapter_config.json: base_model_name_or_path is empty; pass --base")
    return base


def load_with_adapter(adapter_dir: str | os.PathLike, base: str | None = None, dtype: torch.dtype = torch.float32,
                      trust_remote_code: bool = False) -> Any:
    """Base model + adapter, exactly as a user would load it with plain transformers + peft."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    given = base is not None
    base = base or adapter_base_path(adapter_dir)
    where = "--base" if given else f"{adapter_dir}: the adapter's base_model_name_or_path"
    if str(base).startswith((".", "/", "~")) and not Path(base).expanduser().exists():  # a path, not a hub id
        raise UserError(f"{where} {base}: no such folder (moved? pass --base with its new location)")
    try:
        model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise UserError(f"{where} {base}: cannot load ({str(e).splitlines()[0]})") from None
    return PeftModel.from_pretrained(model, str(adapter_dir))


def merge(adapter_dir: str | os.PathLike, out_dir: str | os.PathLike, base: str | None = None,
          trust_remote_code: bool = False) -> Path:
    """merge_and_unload the adapter into its base and save a plain transformers model (+ tokenizer) to out_dir."""
    import shutil
    import tempfile

    from transformers import AutoTokenizer

    method = adapter_config(adapter_dir).get("peft_type", "")
    if method in ("PROMPT_TUNING", "PREFIX_TUNING", "P_TUNING"):
        raise UserError(f"{adapter_dir}: {method.lower()} adds virtual tokens and cannot be merged into the "
                        "weights; load it with PeftModel.from_pretrained instead")
    check_output_dir(out_dir, "--out")  # before the model loads: a file there, or under it, is one line
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"--out {out}: exists and is not empty")
    model = load_with_adapter(adapter_dir, base, trust_remote_code=trust_remote_code)
    merged = model.merge_and_unload()
    merged.config.use_cache = True
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        merged.save_pretrained(tmp)
        tok_src = adapter_dir if (Path(adapter_dir) / "tokenizer_config.json").is_file() else \
            (base or adapter_base_path(adapter_dir))
        AutoTokenizer.from_pretrained(str(tok_src), trust_remote_code=trust_remote_code).save_pretrained(tmp)
        share_tree(tmp)  # mkdtemp's 0700 folder and safetensors' 0600 file: readable by colleagues
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)  # atomic on one filesystem: a reader sees no half-merged model
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
