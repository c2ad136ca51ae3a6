"""TrainConfig: the one validated description of a training run (YAML + dotted `--set` overrides).

Pure pydantic: importing this module never imports torch. Relative paths are taken from the
current working directory, as in transformers' example scripts and litgpt.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from adapters import AdapterSpec
from advisor import fields
from advisor.errors import UserError
from advisor.spec import load_yaml
from advisor.textio import read_user_text

Stage = Literal["pretrain", "full", "peft"]

# Default peak learning rates per stage when training.learning_rate is unset:
# pretrain 1e-3 (nanoGPT's small-model configs, e.g. config/train_shakespeare_char.py),
# full 2e-5 (Stanford Alpaca's full fine-tuning of LLaMA-7B), peft 2e-4 (QLoRA paper, table 9).
DEFAULT_LR: dict[str, float] = {"pretrain": 1e-3, "full": 2e-5, "peft": 2e-4}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)   # inf/nan: one-line error, never Infinity in JSON


class ModelSection(_Section):
    """Which model to train: an existing checkpoint (full, peft) or an architecture to initialise (pretrain)."""

    name_or_path: str | None = Field(None, description="HF hub id or local directory of the base model (stages full, peft).")
    architecture: dict[str, Any] | str | None = Field(
        None, description="pretrain: HF config fields including model_type (e.g. llama, qwen2), or a path to a config.json. "
        "vocab_size and special token ids are taken from the tokenizer.")
    attn_implementation: Literal["sdpa", "eager", "varlen", "flash_attention_2"] = Field(
        "sdpa", description="Attention kernel. sdpa and eager honour packed position_ids with a block-diagonal mask "
        "(transformers masking_utils), computing the whole packed row; varlen (training/varlen.py) runs each packed "
        "example on its own, through PyTorch's fused varlen kernel on CUDA (torch >= 2.9, nothing to compile) and "
        "sdpa per example elsewhere; flash_attention_2 (CUDA, flash-attn installed) uses flash-attn's varlen kernel.")
    trust_remote_code: bool = Field(False, description="Run Python code shipped with a hub model. Off unless you trust it.")


class TokenizerSection(_Section):
    """Which tokenizer to use, or how to train one for pretraining."""

    name_or_path: str | None = Field(
        None, description="Existing tokenizer (default: the model's). For pretrain, null trains a byte-level BPE on the data.")
    vocab_size: int = Field(4096, ge=300, description="Vocabulary size of a trained tokenizer (256 byte symbols + merges + specials).")
    chat_template: str | None = Field(
        None, description="Jinja chat template replacing the tokenizer's; tunepath's default is used when it has none.")


class DataSection(_Section):
    """Training data and how it becomes token rows."""

    paths: list[str] = Field(..., min_length=1, description=".txt, .jsonl or .json (array) files.")
    format: Literal["auto", "text", "alpaca", "chat"] = Field(
        "auto", description="text: {text} rows or .txt; alpaca: instruction/input/output(/history/system); "
        "chat: {messages: [{role, content}]}; auto: decided from each file's first row.")
    eval_fraction: float = Field(0.05, ge=0, le=0.5, description="Share of examples (or text blocks) held out for eval loss/perplexity.")
    max_seq_len: PositiveInt = Field(512, description="Tokens per row; longer SFT examples are truncated (and counted).")
    packing: Literal["auto"] | bool | None = Field(
        "auto", description="true: pack SFT examples into max_seq_len rows, position ids restarting per example "
        "(no attention across examples). false: one example per row, padded per batch, batches grouped by length "
        "(transformers' group_by_length sampler). auto (or null): packing on CPU (measured faster: "
        "bench/results/train_throughput.json) and on CUDA with flash_attention_2 (varlen kernel); length-grouped "
        "padding on CUDA with sdpa/eager; never packing for prompt/prefix tuning.")
    max_examples: PositiveInt | None = Field(None, description="Use only the first N rows of the data (quick trials).")


class TrainingSection(_Section):
    """Optimisation hyperparameters (mapped onto transformers.TrainingArguments)."""

    learning_rate: float | None = Field(None, gt=0, description="Peak LR; null: 1e-3 pretrain, 2e-5 full, 2e-4 peft.")
    epochs: float = Field(1.0, gt=0, description="Passes over the training rows (ignored when max_steps is set).")
    max_steps: PositiveInt | None = Field(None, description="Optimizer steps; overrides epochs.")
    micro_batch_size: PositiveInt = Field(4, description="Rows per device per forward pass.")
    gradient_accumulation_steps: PositiveInt = Field(1, description="Micro-batches per optimizer step; the loss is "
                                                     "normalised by the token count of the whole step.")
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = Field("cosine", description="LR schedule.")
    warmup: float = Field(0.03, ge=0, description="Warmup: a fraction of the steps when < 1, else a number of steps.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW decoupled weight decay.")
    max_grad_norm: float = Field(1.0, ge=0, description="Gradient clipping norm (0: off).")
    optimizer: Literal["adamw", "sgd"] = Field("adamw", description="adamw (torch, fused where available) or plain sgd.")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in backward: less memory, ~30% more compute.")
    logging_steps: PositiveInt = Field(10, description="Log the loss every N steps.")
    eval_steps: PositiveInt | None = Field(None, description="Evaluate every N steps; null: once at the end.")
    save_steps: PositiveInt = Field(200, description="Write a resumable checkpoint every N steps.")
    save_total_limit: int = Field(2, ge=2, description="Checkpoints kept (>= 2, so a complete one survives a kill during a save).")


class TrainConfig(_Section):
    """A training run: stage, model, tokenizer, data, hyperparameters, adapter (peft), outputs."""

    stage: Stage = Field(..., description="pretrain (random init), full (all weights) or peft (an adapter).")
    model: ModelSection = Field(default_factory=ModelSection)
    tokenizer: TokenizerSection = Field(default_factory=TokenizerSection)
    data: DataSection
    training: TrainingSection = Field(default_factory=TrainingSection)
    adapter: AdapterSpec | None = Field(None, description="stage peft: the method and its settings (adapters/).")  # type: ignore[valid-type]
    output_dir: str = Field(..., min_length=1, description="Where checkpoints, the final model/adapter, tokenizer and "
                            "run_summary.json go.")
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Seeds model init, data split, shuffling and dropout "
                      "(0 to 2**32-1, the range numpy's seed takes).")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 autocast where the hardware runs bf16 matmuls natively (CUDA bf16, CPUs with "
        "AMX/AVX512-BF16), else fp32 (fp16 on CUDA without bf16). Weights stay fp32 (mixed precision).")

    @model_validator(mode="after")
    def _stage_needs(self) -> "TrainConfig":
        if self.stage == "pretrain" and self.model.architecture is None:
            raise ValueError("stage pretrain needs model.architecture (HF config fields or a config.json path)")
        if self.stage in ("full", "peft") and not self.model.name_or_path:
            raise ValueError(f"stage {self.stage} needs model.name_or_path (HF id or local model dir)")
        if self.stage == "peft" and self.adapter is None:
            raise ValueError("stage peft needs an adapter section, e.g. adapter: {method: lora}")
        if self.stage != "peft" and self.adapter is not None:
            raise ValueError(f"adapter is only used with stage: peft (stage is {self.stage})")
        if self.data.packing is True and self.adapter is not None and not self.adapter.supports_packing:
            raise ValueError(f"data.packing: {self.adapter.method} prepends virtual tokens per row, so packed "
                             "examples would not see them; set data.packing: false")
        return self

    @property
    def learning_rate(self) -> float:
        """The configured LR or the stage default (see DEFAULT_LR)."""
        return self.training.learning_rate or DEFAULT_LR[self.stage]

    @property
    def packing(self) -> bool | str:
        """The packing request: True, False or 'auto' (resolved per hardware by training.runner.resolve_batching)."""
        if self.data.packing is None or self.data.packing == "auto":
            return "auto" if self.adapter is None or self.adapter.supports_packing else False
        return self.data.packing


# --- loading: YAML + --set, errors as one line naming file:line and field ----------------------

def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                data: dict[str, Any] | None = None) -> TrainConfig:
    """Read a YAML config (or take `data`), apply `--set` overrides, validate; UserError on any mistake."""
    text, where = "", "<config>"
    if path is not None:
        where = str(path)
        p = Path(path)
        if not p.is_file():
            raise UserError(f"{path}: no such config file")
        text = read_user_text(p, "a YAML training config")
        try:
            # the spec's YAML rules: a duplicated key is an error, not "last wins"; inf/nan are refused by
            # the field they are in (the sections' allow_inf_nan=False), which names it
            data = load_yaml(text, where, finite_numbers=False)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise UserError(f"{path}{line}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
    if data is None and path is not None:
        raise UserError(f"{where}: the file is empty (expected a training config: stage, model, data, ...)")
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping of sections (stage, model, data, ...), got {type(data).__name__}")
    if "stage" not in data and {"task", "knowledge", "traffic", "constraints"} & set(data):
        raise UserError(f"{where}: this is a project spec (task, knowledge, ...), not a training config: "
                        f"`tunepath run {where}` runs its recommended path, `tunepath recommend {where}` explains it")
    touched = fields.apply_overrides(data, list(overrides or []))
    from adapters import REGISTRY

    return fields.validate(TrainConfig, data, where, text=text, touched=touched, union_tags=REGISTRY)
