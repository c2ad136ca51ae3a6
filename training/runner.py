"""One training run with transformers' Trainer, top to bottom: checks, tokenizer, data, model, train, save.

The Trainer brings checkpointing, gradient accumulation (loss normalised by the step's token
count through `num_items_in_batch`), mixed precision and torchrun/accelerate distribution.
tunepath adds data formatting and packing (training/data.py), complete-checkpoint markers and
a resume fingerprint (training/checkpoints.py), display and the run summary.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from advisor.errors import UserError
from advisor.textio import atomic_write_text, check_output_dir, share_tree
from training import checkpoints, data as datamod, tokenizer as tokmod
from training.config import TrainConfig
from training.plot import loss_svg
from training.schedule import trainer_steps
from training.summary import RunSummary, peak_memory

# Fields of TrainingSection that do not change what is computed: editing them never blocks a resume.
_NON_SCHEDULE = {"logging_steps", "eval_steps", "save_steps", "save_total_limit", "gradient_checkpointing"}


# --- hardware ------------------------------------------------------------------------------------

def _cpu_has_native_bf16() -> bool:
    """AMX or AVX512-BF16 in /proc/cpuinfo: the CPU multiplies bf16 natively (oneDNN uses them)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(requested: str) -> str:
    """auto -> bf16 where native (CUDA with bf16, AMX/AVX512-BF16 CPUs), fp16 on older CUDA, else fp32.

    Measured here (2-core Xeon with AMX, tiny Llama): bf16 autocast trained 1.3-2x faster than fp32 at
    hidden 256 (numbers in the commit that set this default); weights and optimizer stay fp32.
    """
    cuda = torch.cuda.is_available()
    if requested == "auto":
        if cuda:
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if _cpu_has_native_bf16() else "fp32"
    if requested == "fp16" and not cuda:
        raise UserError("precision: fp16 mixed precision needs a CUDA GPU; use bf16 or fp32 on CPU")
    if requested == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise UserError("precision: this GPU has no bf16; use fp16 or fp32")
    return requested


VARLEN_ATTENTION = ("flash_attention_2", "varlen")  # kernels that skip masked-out blocks of a packed row


def resolve_batching(config: TrainConfig) -> tuple[bool, str]:
    """(pack SFT examples?, why): data.packing auto -> packing, except on CUDA without a varlen kernel.

    Measured on CPU (bench/results/train_throughput.json, tiny Llama, LoRA, bf16, sdpa): packing ran
    1.2-1.5x the real tokens/s of length-grouped padding on variable-length data in every repeat on a
    quiet machine, 1.4-2.0x under load (padding wastes whole-vocabulary logits and MLP work on pad
    slots, which cost more than the masked attention blocks of a packed row at these sizes), and the
    same on fixed-length data (rows of one example are collated exactly as padding). On CUDA a varlen
    kernel (FlashAttention-2, Dao 2023; PyTorch's, training/varlen.py) computes only each example's
    own blocks: packing. CUDA with sdpa or eager computes the whole packed row under a mask; the one
    GPU run (bench/results/train_throughput_gpu.json) was too small to tell, so auto stays with
    length-grouped padding there (transformers' LengthGroupedSampler).
    """
    req = config.packing
    if req is True:
        return True, "data.packing: true"
    if req is False:
        why = "data.packing: false" if config.data.packing is False else \
            f"{config.adapter.method} prepends virtual tokens per row"
        return False, why
    attn = config.model.attn_implementation
    if not torch.cuda.is_available():
        return True, f"auto: CPU ({attn}); measured faster than length-grouped padding"
    if attn in VARLEN_ATTENTION:
        return True, f"auto: CUDA with {attn} (varlen kernel)"
    return False, f"auto: CUDA with {attn} computes whole packed rows; no varlen kernel"


def batching_name(prepared: datamod.Prepared) -> str:
    """What the run summary records: packing | length_grouped (SFT) | blocks (text cut into full rows)."""
    if not prepared.sft:
        return "blocks"
    return "packing" if prepared.stats.packed else "length_grouped"


# --- fingerprint of what a resume must not change ---------------------------------------------------

def fingerprint(config: TrainConfig, world_size: int) -> dict[str, Any]:
    """Data (file hashes + how they are cut) and schedule; a resume with a different one is refused."""
    sched = {k: v for k, v in config.training.model_dump().items() if k not in _NON_SCHEDULE}
    sched.update(learning_rate=config.learning_rate, seed=config.seed, world_size=world_size)
    d = config.data
    return {
        "stage": config.stage,
        "model": config.model.model_dump(),
        "tokenizer": config.tokenizer.model_dump(),
        "adapter": config.adapter.model_dump() if config.adapter else None,
        "data": {"files": datamod.files_digest(d.paths), "format": d.format, "max_seq_len": d.max_seq_len,
                 "packing": resolve_batching(config)[0], "eval_fraction": d.eval_fraction, "max_examples": d.max_examples},
        "schedule": sched,
    }


# --- building blocks -----------------------------------------------------------------------------------

def build_tokenizer(config: TrainConfig, fresh: bool, is_main: bool, barrier: Callable[[], None]) -> Any:
    """The run's tokenizer: the given one, the model's, or (pretrain) a BPE trained on the data and saved."""
    t = config.tokenizer
    if t.name_or_path or config.stage != "pretrain":
        return _load_tokenizer(config)
    tok_dir = Path(config.output_dir) / "tokenizer"
    if fresh or not (tok_dir / "tokenizer_config.json").is_file():
        if is_main:
            tok = train_tokenizer(config)
            tokmod.save_atomic(tok, tok_dir)
        barrier()  # other ranks load what rank 0 trained: one vocabulary for all
    return tokmod.load(str(tok_dir), chat_template=t.chat_template)


def check_source(name: str, field: str) -> None:
    """Fail in one line, before transformers' retries, when `name` can load from nowhere: a path that does
    not exist, or a hub id that is neither in the local Hugging Face cache nor reachable. A missing local
    folder otherwise costs ~50 s of download retries before the error (found by a new-user review)."""
    p = Path(name).expanduser()
    if p.exists():
        return
    if p.is_absolute() or name.startswith((".", "~")) or name.count("/") != 1:
        raise UserError(f"{field}: {name}: no such folder (a hub id has the form org/name)")
    import huggingface_hub as hub

    if os.environ.get("HF_HUB_OFFLINE") or hub.try_to_load_from_cache(name, "config.json") is not None:
        return
    try:
        hub.model_info(name, timeout=10)
    except hub.errors.RepositoryNotFoundError:
        raise UserError(f"{field}: {name}: no such folder here, and no such repository on the Hugging Face "
                        "hub") from None
    except hub.errors.HfHubHTTPError:
        return                 # gated or private: from_pretrained says what it needs
    except Exception as e:  # noqa: BLE001 - httpx/requests connection errors differ by version
        raise UserError(f"{field}: {name}: no such folder here, not in the Hugging Face cache, and the hub is "
                        f"unreachable ({type(e).__name__}); relative paths are read from the working "
                        f"directory, {Path.cwd()}") from None


def _load_tokenizer(config: TrainConfig) -> Any:
    """The configured tokenizer, else the model's; errors name the field that pointed at it."""
    t = config.tokenizer
    field = "tokenizer.name_or_path" if t.name_or_path else "model.name_or_path"
    check_source(t.name_or_path or config.model.name_or_path, field)
    return tokmod.load(t.name_or_path or config.model.name_or_path, config.model.trust_remote_code, t.chat_template,
                       field=field)


def train_tokenizer(config: TrainConfig) -> Any:
    """Byte-level BPE on the text of the configured data files."""
    _, records = datamod.load_records(config.data.paths, config.data.format, config.data.max_examples)

    def text(where: str, row: dict) -> str:  # chat rows' text is in their messages (it was read as empty)
        kind = datamod.detect_format(row, where)
        if kind == "text":
            return str(row.get("text") or "")
        msgs = datamod.chat_messages(row, where) if kind == "chat" else datamod.alpaca_to_messages(row, where)
        return "\n\n".join(m["content"] for m in msgs)

    return tokmod.train_bpe((text(w, r) for w, r in records), config.tokenizer.vocab_size)


def architecture_config(config: TrainConfig, tok: Any) -> Any:
    """HF config for pretraining from a dict or config.json; vocabulary and special ids come from the tokenizer."""
    import json

    from transformers import AutoConfig, CONFIG_MAPPING

    arch = config.model.architecture
    where = "model.architecture"
    if isinstance(arch, str):
        where = arch
        try:
            arch = json.loads(Path(arch).read_text())
        except (OSError, ValueError) as e:
            raise UserError(f"model.architecture: cannot read {where} ({e})") from None
        if not isinstance(arch, dict):
            raise UserError(f"model.architecture: {where} holds a JSON {type(arch).__name__}, expected an object of "
                            "config fields (model_type, hidden_size, ...)")
    arch = dict(arch)
    model_type = arch.pop("model_type", None)
    if model_type not in CONFIG_MAPPING:
        raise UserError(f"{where}: model_type {model_type!r} unknown to transformers (e.g. llama, qwen2, mistral)")
    known = set(CONFIG_MAPPING[model_type]().to_dict())
    ignored = {"architectures", "transformers_version", "_name_or_path", "torch_dtype", "dtype"}
    unknown = sorted(k for k in arch if k not in known and k not in ignored)
    if unknown:
        raise UserError(f"{where}: {', '.join(unknown)} not fields of {model_type}'s config")
    for k in ignored:
        arch.pop(k, None)
    arch.update(vocab_size=len(tok), eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                bos_token_id=tok.bos_token_id)
    try:
        from huggingface_hub.errors import StrictDataclassError  # transformers 5 configs validate their fields
    except ImportError:  # pragma: no cover
        StrictDataclassError = ValueError
    try:
        hf_config = AutoConfig.for_model(model_type, **arch)
    except (StrictDataclassError, TypeError, ValueError) as e:
        raise UserError(f"{where}: {' '.join(line.strip() for line in str(e).splitlines())}") from None
    for name in _SIZES:  # a zero or negative size passes the config and fails inside torch
        value = getattr(hf_config, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise UserError(f"{where}: {name} {value}: expected an integer >= 1")
    return hf_config


# Config fields that size a tensor or a loop in every decoder config transformers ships.
_SIZES = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
          "head_dim", "max_position_embeddings")


def build_model(config: TrainConfig, tok: Any) -> Any:
    """Random init (pretrain), or the pretrained model, wrapped with the adapter for peft."""
    from transformers import AutoModelForCausalLM, set_seed

    m = config.model
    set_seed(config.seed)  # same init on every rank and every rerun
    if m.attn_implementation == "varlen":
        from training import varlen

        varlen.register()
    if config.stage == "pretrain":
        model = AutoModelForCausalLM.from_config(architecture_config(config, tok),
                                                 attn_implementation=m.attn_implementation)
        return model
    kw = config.adapter.model_load_kwargs() if config.adapter else {}
    if config.adapter:
        config.adapter.check_environment()
    try:
        model = AutoModelForCausalLM.from_pretrained(m.name_or_path, dtype=torch.float32,
                                                     attn_implementation=m.attn_implementation,
                                                     trust_remote_code=m.trust_remote_code, **kw)
    except (OSError, ValueError) as e:
        raise UserError(f"model.name_or_path: cannot load {m.name_or_path!r} ({str(e).splitlines()[0]})") from None
    if len(tok) > model.get_input_embeddings().weight.shape[0]:
        raise UserError(f"tokenizer: {len(tok)} tokens but the model embeds only "
                        f"{model.get_input_embeddings().weight.shape[0]}; use the model's own tokenizer")
    if config.stage == "peft":
        import adapters

        tok_path = config.tokenizer.name_or_path or m.name_or_path
        model = adapters.build_peft_model(model, config.adapter, tok_path)
    return model


def _estimate_for(config: TrainConfig, model: Any, tokens: int, precision: str, micro_batches: int = 0,
                  padded_tokens: int = 0, session_tokens: int = 0, rows: int = 0,
                  widest: int | None = None) -> dict[str, Any] | None:
    """The advisor's estimate (FLOPs, memory, time) for this very run, stored beside the measurements.

    Time uses this machine's calibration (`tunepath calibrate`; a stated guess without one), over the micro-batches
    and padded tokens this session ran (scaled to the whole run after a resume), so a padded run is priced as it
    ran. None for architectures or adapter methods the estimator does not model.
    """
    import torch

    from advisor.architecture import from_config
    from advisor.calibration import local_train_estimate
    from advisor.errors import UserError
    from advisor.estimate import ESTIMABLE_METHODS, TrainSetup
    from training.methods import of_run

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    method = of_run(config.stage, config.adapter.method if config.adapter else None)
    if method not in ESTIMABLE_METHODS or tokens <= 0:
        return None
    try:
        arch = from_config(base.config.to_dict(), "model")
        targets = getattr(config.adapter, "target_modules", "all-linear") if config.adapter else "all-linear"
        virtual = getattr(config.adapter, "num_virtual_tokens", None)
        scale = tokens / session_tokens if session_tokens else 1.0
        computed = (padded_tokens + (rows * virtual if method == "prompt_tuning" else 0)) * scale
        setup = TrainSetup(method=method, tokens=computed if micro_batches else tokens,
                           seq_len=(widest + (virtual if method == "prompt_tuning" else 0)) if widest
                           else config.data.max_seq_len, virtual_tokens=virtual or 20,
                           micro_batch=config.training.micro_batch_size,
                           precision="fp32" if precision == "fp32" else "mixed",
                           grad_checkpointing=config.training.gradient_checkpointing,
                           attention="eager" if config.model.attn_implementation == "eager" else "sdpa",  # flash: as sdpa
                           lora_rank=getattr(config.adapter, "r", 8),
                           target_modules=targets if targets in ("all-linear", None) else list(targets),
                           device="cuda" if torch.cuda.is_available() else "cpu")
        from advisor.catalog import gpu_for_device

        gpu = gpu_for_device(torch.cuda.get_device_name()) if setup.device == "cuda" else None
        if not micro_batches:
            return local_train_estimate(arch, setup, gpu=gpu)
        return local_train_estimate(arch, setup, gpu=gpu, micro_batches=micro_batches * scale, real_tokens=tokens)
    except (UserError, ValueError, TypeError):
        return None


def _mfu(estimate: dict | None, tokens: int, tokens_per_s: float, world_size: int) -> tuple[float | None, float | None]:
    """Model FLOPs utilisation (PaLM's definition, Chowdhery et al. 2022): achieved model FLOP/s over peak."""
    import torch

    from advisor.catalog import gpu_for_device

    if not estimate or tokens <= 0 or tokens_per_s <= 0:
        return None, None
    achieved = estimate["flops"] / tokens * tokens_per_s
    gpu = gpu_for_device(torch.cuda.get_device_name()) if torch.cuda.is_available() else None
    return achieved, (achieved / (world_size * gpu.bf16_tflops * 1e12) if gpu else None)


def _checkpointing_args(cls: Any, on: bool) -> dict[str, Any]:
    """transformers >= 5.2x names it activation_checkpointing; earlier 5.x gradient_checkpointing."""
    import dataclasses

    name = "activation_checkpointing" if "activation_checkpointing" in {f.name for f in dataclasses.fields(cls)} \
        else "gradient_checkpointing"
    return {name: on, f"{name}_kwargs": {"use_reentrant": False} if on else None}


def training_arguments(config: TrainConfig, precision: str, has_eval: bool, grouped: bool = False) -> Any:
    """TrainingArguments from the config (transformers 5 names); `grouped`: length-grouped batches of padded rows."""
    from transformers import TrainingArguments

    t = config.training
    cuda = torch.cuda.is_available()
    optim = {"adamw": "adamw_torch_fused" if cuda else "adamw_torch", "sgd": "sgd"}[t.optimizer]
    return TrainingArguments(
        output_dir=config.output_dir, seed=config.seed, data_seed=config.seed,
        per_device_train_batch_size=t.micro_batch_size, per_device_eval_batch_size=t.micro_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps, learning_rate=config.learning_rate,
        num_train_epochs=t.epochs, max_steps=t.max_steps or -1, lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup, weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm, optim=optim,
        bf16=precision == "bf16", fp16=precision == "fp16", use_cpu=not cuda,
        logging_steps=t.logging_steps, eval_strategy="steps" if (has_eval and t.eval_steps) else "no",
        eval_steps=t.eval_steps, save_strategy="steps", save_steps=t.save_steps, save_total_limit=t.save_total_limit,
        **_checkpointing_args(TrainingArguments, t.gradient_checkpointing),
        include_num_input_tokens_seen="non_padding", report_to="none", disable_tqdm=True,
        train_sampling_strategy="group_by_length" if grouped else "random",
        # gloo for CPU ranks; a backend on a single process would make accelerate init a process group
        ddp_backend="gloo" if not cuda and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None, ddp_find_unused_parameters=False, dataloader_pin_memory=cuda,
        remove_unused_columns=False, log_level="error", log_level_replica="error",
    )


# --- the plan: everything built, nothing trained yet ------------------------------------------------------

@dataclass
class Plan:
    """A built run: the derived quantities to print before training, and what execute() needs."""

    config: TrainConfig
    precision: str
    derived: dict[str, Any]
    warnings: list[str]
    trainer: Any = None
    resume_from: Path | None = None
    prepared: datamod.Prepared | None = None
    t_start: float = field(default_factory=time.perf_counter)
    batching: str = "blocks"


def plan(config: TrainConfig, resume: bool = False, force: bool = False, progress: bool = True) -> Plan:
    """Check the output dir and resume fingerprint, then build tokenizer, data, model and Trainer."""
    from transformers import PrinterCallback, Trainer
    from transformers.utils import logging as hf_logging

    import adapters
    from training.callbacks import CompleteCheckpoints, Meter, RichProgress

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # "Writing model shards" bars; tunepath shows its own progress
    t0 = time.perf_counter()
    check_output_dir(config.output_dir, "output_dir")  # before TrainingArguments, which creates it
    precision = resolve_precision(config.precision)
    # A throwaway TrainingArguments first: it initialises torch.distributed under torchrun/accelerate.
    args = training_arguments(config, precision, has_eval=config.data.eval_fraction > 0)
    world, is_main = args.world_size, args.process_index == 0

    def barrier() -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()

    out = Path(config.output_dir)
    warnings: list[str] = []
    fp = fingerprint(config, world)
    resume_from = None
    existing = checkpoints.checkpoints(out)
    if resume:
        resume_from = checkpoints.newest_complete(out)
        finished = _read_json(out / "run_summary.json") if resume_from is None else None
        if isinstance(finished, dict):   # it retrained the finished run from step 0 over its saved model
            raise UserError(f"--resume: nothing to resume in {out}: it holds a finished run "
                            f"({finished.get('steps', '?')} steps, run_summary.json) and no checkpoint; run without "
                            "--resume to train it again, or set output_dir to another folder")
        if resume_from is None:
            warnings.append(f"--resume: no complete checkpoint in {out}; starting from step 0")
        else:
            checkpoints.check_intact(resume_from)
            old = _read_json(out / checkpoints.RUN_FILE)
            changes = checkpoints.diff(old, fp) if old is not None else [f"no readable {checkpoints.RUN_FILE}"]
            if changes and not force:
                raise UserError(f"--resume refused: changed since {resume_from.name}: {'; '.join(changes)}. "
                                "Revert them, or pass --force to resume anyway")
            if changes:
                warnings.append(f"--force: resuming {resume_from.name} despite: {'; '.join(changes)}")
    elif existing and not force:
        raise UserError(f"output_dir {out} already holds checkpoint-{existing[-1][0]}; pass --resume to continue "
                        "it or --force to start over")
    if is_main:
        gone = checkpoints.remove_incomplete(out)
        if gone:
            warnings.append(f"removed half-written {', '.join(d.name for d in gone)}")
        if resume_from is None:
            import shutil

            for _, d, _ in checkpoints.checkpoints(out):
                shutil.rmtree(d)
        checkpoints.write_json_atomic(out / checkpoints.RUN_FILE, fp)
    barrier()

    tok = build_tokenizer(config, fresh=resume_from is None, is_main=is_main, barrier=barrier)
    pack, why = resolve_batching(config)
    prepared = datamod.prepare(tok, config.data.paths, config.data.format, config.data.max_seq_len, pack,
                               config.data.eval_fraction, config.seed, config.data.max_examples)
    batching = batching_name(prepared)
    if config.stage == "pretrain" and prepared.sft:
        warnings.append("stage pretrain on instruction data: the loss covers responses only")
    warnings += prepared.stats.warnings
    if prepared.eval == [] and config.data.eval_fraction > 0:
        warnings.append("too little data for an eval split: no eval loss/perplexity")
    args = training_arguments(config, precision, has_eval=bool(prepared.eval), grouped=batching == "length_grouped")
    model = build_model(config, tok)
    warnings += _check_positions(model, config, prepared)
    trainable, total = adapters.count_parameters(model)

    t = config.training
    s = prepared.stats
    eff_rows = t.micro_batch_size * t.gradient_accumulation_steps * world
    steps, per_epoch, _ = trainer_steps(s.train_rows, t.micro_batch_size, t.gradient_accumulation_steps, world,
                                        t.epochs, t.max_steps)
    tokens_per_step = eff_rows * s.train_tokens / max(1, s.train_rows)
    derived = {
        "stage": config.stage + (f" ({config.adapter.method})" if config.adapter else ""),
        "parameters": total, "trainable": trainable, "trainable_percent": 100 * trainable / max(1, total),
        "precision": precision, "world_size": world,
        "data": f"{s.examples} examples ({s.format}) -> {s.train_rows} train rows"
                f"{' packed' if s.packed else ''} ({100 * s.fill:.0f}% full), {s.eval_rows} eval rows",
        "batching": f"{batching} ({why})" if prepared.sft else batching,
        "effective_batch_rows": eff_rows, "tokens_per_step": round(tokens_per_step),
        "loss_tokens_per_epoch": s.train_loss_tokens,
        "steps": steps, "epochs": round(steps / per_epoch, 2), "learning_rate": config.learning_rate,
        "resume_from": resume_from.name if resume_from else None,
    }

    callbacks = [CompleteCheckpoints(), RichProgress(enabled=progress), Meter()]
    trainer = _trainer_class(Trainer)(model=model, args=args, train_dataset=prepared.train, eval_dataset=prepared.eval or None,
                      data_collator=datamod.Collator(tok.pad_token_id, s.packed, flat=_flat(config)), processing_class=tok,
                      callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # it prints raw log dicts to stdout; RichProgress shows them
    return Plan(config, precision, derived, warnings, trainer, resume_from, prepared, t0, batching)


def _trainer_class(base: Any) -> Any:
    """transformers' Trainer, counting a packed batch's tokens from its rows and taking the eval loss per token.

    - Without an attention_mask (packed batches must have none) the Trainer counts ids != pad_token_id
      (trainer.py, _track_num_input_tokens), and a tokenizer without a pad token pads with EOS
      (training/tokenizer.py): every example's EOS went uncounted in `tokens` and tokens/s.
    - evaluation_loop averages each eval step's loss weighted by its rows, so eval_loss and the perplexity
      moved with the batch size; here it is the mean over all held-out loss tokens (each batch's token-mean
      loss times its token count, summed over batches and ranks), as the training loss is normalised.
    """
    class TunepathTrainer(base):
        _eval_sums: list[float] = [0.0, 0.0]
        micro_batches = 0      # this session's forward + backward passes (training.schedule counts them ahead)
        padded_tokens = 0      # and the rows x width they computed on, padding included
        rows = 0               # and their rows (prompt tuning prepends its virtual tokens to each)
        widest = 0

        def _track_num_input_tokens(self, inputs: dict[str, Any]) -> None:
            self.micro_batches += 1
            self.padded_tokens += int(inputs["input_ids"].numel())
            self.rows += int(inputs["input_ids"].shape[0])
            self.widest = max(self.widest, int(inputs["input_ids"].shape[-1]))
            if "attention_mask" in inputs or "position_ids" not in inputs:
                return super()._track_num_input_tokens(inputs)
            n = torch.as_tensor(datamod.packed_real_tokens(inputs["position_ids"], inputs["labels"]),
                                device=self.args.device, dtype=torch.int64)
            self.state.num_input_tokens_seen += self.accelerator.gather(n).sum().item()

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if model.training:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            # evaluation: the batch's own token mean (no num_items_in_batch: no scaling across ranks), kept as a sum
            n = int(inputs["labels"][..., 1:].ne(datamod.IGNORE).sum()) if "labels" in inputs else 0
            result = super().compute_loss(model, inputs, return_outputs, None)
            if n:
                loss = result[0] if return_outputs else result
                self._eval_sums = [self._eval_sums[0] + float(loss) * n, self._eval_sums[1] + n]
            return result

        def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None,
                            metric_key_prefix="eval"):
            self._eval_sums = [0.0, 0.0]
            out = super().evaluation_loop(dataloader, description, prediction_loss_only=prediction_loss_only,
                                          ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
            sums = torch.tensor(self._eval_sums, dtype=torch.float64, device=self.args.device)
            total, n = self.accelerator.reduce(sums, reduction="sum").tolist()
            if n > 0 and f"{metric_key_prefix}_loss" in out.metrics:
                out.metrics[f"{metric_key_prefix}_loss"] = total / n
            return out

    return TunepathTrainer


def _flat(config: TrainConfig) -> bool:
    """Packed batches as one row with sequence boundaries: what flash-attention's varlen path needs."""
    return config.model.attn_implementation in VARLEN_ATTENTION


def _model_label(config: TrainConfig) -> str:
    """The base model id/path, or 'model_type (from config)' for pretraining."""
    arch = config.model.architecture
    if config.model.name_or_path:
        return config.model.name_or_path
    return f"{arch.get('model_type')} (from config)" if isinstance(arch, dict) else str(arch)


def _check_positions(model: Any, config: TrainConfig, prepared: datamod.Prepared) -> list[str]:
    """Rows longer than the model's positions: an error where it learns one embedding per position (GPT-2's
    wpe: torch's 'index out of range' mid-step otherwise), a warning where positions are computed (RoPE)."""
    limit = getattr(model.config, "max_position_embeddings", None)
    longest = max((len(r["input_ids"]) for r in prepared.train + prepared.eval), default=0)
    if not isinstance(limit, int) or limit <= 0 or longest <= limit:
        return []
    what = (f"data.max_seq_len {config.data.max_seq_len}: rows of up to {longest} tokens, but the model has "
            f"{limit} positions (max_position_embeddings)")
    if any(isinstance(m, torch.nn.Embedding) and m.num_embeddings == limit for m in model.modules()):
        raise UserError(f"{what} and learns one embedding per position; lower data.max_seq_len to {limit}")
    return [f"{what}; longer rows train past the context the model was built for"]


def _read_json(path: Path) -> dict | None:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _replica_checksums(model: Any) -> list[float] | None:
    """Sum of trainable weights on every rank (all_gather): DDP replicas must agree exactly."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return None
    mine = float(sum(p.detach().double().sum() for p in model.parameters() if p.requires_grad))
    gathered: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, mine)
    return gathered


def execute(p: Plan) -> RunSummary:
    """Train (resuming if planned), evaluate, save the final model/adapter + tokenizer, write run_summary.json."""
    import shutil

    import adapters
    from training.callbacks import Meter

    trainer, config = p.trainer, p.config
    out = Path(config.output_dir)
    result = trainer.train(resume_from_checkpoint=str(p.resume_from) if p.resume_from else None)
    meter = next(c for c in trainer.callback_handler.callbacks if isinstance(c, Meter))
    eval_loss = None
    if p.prepared.eval:
        eval_loss = float(trainer.evaluate()["eval_loss"])

    model = trainer.model
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.config.use_cache = True  # the Trainer turned it off for training; generation wants it on
    tmp = out / ".final.tmp"
    if trainer.args.process_index == 0 and tmp.exists():
        shutil.rmtree(tmp)
    trainer.save_model(str(tmp))  # every rank takes part (FSDP/DeepSpeed gather); only rank 0 writes
    checksums = _replica_checksums(model)
    state = trainer.state
    losses = [h["loss"] for h in state.log_history if "loss" in h]
    trainable, total = adapters.count_parameters(model)
    mem, mem_kind = peak_memory()
    summary = RunSummary(
        stage=config.stage, method=config.adapter.method if config.adapter else None, output_dir=str(out),
        model=_model_label(config),
        precision=p.precision, batching=p.batching, world_size=trainer.args.world_size, steps=state.global_step,
        resumed_from_step=int(p.resume_from.name.split("-")[1]) if p.resume_from else None,
        epochs=round(float(state.epoch or 0), 4), tokens=int(state.num_input_tokens_seen),
        tokens_per_s=meter.tokens / meter.seconds if meter.seconds > 0 else 0.0, train_wall_s=meter.seconds,
        wall_s=0.0, peak_memory_bytes=mem, peak_memory_kind=mem_kind,
        train_loss=float(result.training_loss) if result.training_loss is not None else None,
        final_loss=float(losses[-1]) if losses else (float(result.training_loss) if result.training_loss else None),
        eval_loss=eval_loss,
        perplexity=math.exp(min(eval_loss, 700)) if eval_loss is not None else None,
        trainable_params=trainable, total_params=total, trainable_percent=100 * trainable / max(1, total),
        micro_batches=trainer.micro_batches, padded_tokens=trainer.padded_tokens,
        data=asdict(p.prepared.stats), replica_checksums=checksums,
        estimate=_estimate_for(config, model, int(state.num_input_tokens_seen), p.precision,
                               trainer.micro_batches, trainer.padded_tokens, meter.tokens, trainer.rows,
                               trainer.widest or None),
    )
    summary.model_flops_per_s, summary.mfu = _mfu(summary.estimate, summary.tokens, summary.tokens_per_s,
                                                  summary.world_size)
    if trainer.args.process_index == 0:
        share_tree(tmp)  # safetensors writes 0600: the model or adapter would be unreadable to colleagues
        for f in tmp.iterdir():
            dest = out / f.name
            if dest.is_dir():
                shutil.rmtree(dest)
            os.replace(f, dest)
        tmp.rmdir()
        summary.wall_s = time.perf_counter() - p.t_start
        checkpoints.write_json_atomic(out / "run_summary.json", summary.model_dump())
        svg = loss_svg(state.log_history, f"{config.stage}{f' ({summary.method})' if summary.method else ''}: "
                                          f"{_model_label(config)}")
        if svg:
            atomic_write_text(out / "loss.svg", svg)
    return summary


def run(config: TrainConfig, resume: bool = False, force: bool = False, progress: bool = True,
        on_plan: Callable[[Plan], None] | None = None) -> RunSummary:
    """Plan, show the plan (on_plan), train. The API the launcher calls."""
    p = plan(config, resume=resume, force=force, progress=progress)
    if on_plan is not None:
        on_plan(p)
    return execute(p)


def inspect(config: TrainConfig) -> datamod.Prepared:
    """Tokenizer + data only (a pretrain tokenizer is trained in memory, nothing is written)."""
    t = config.tokenizer
    if t.name_or_path or config.stage != "pretrain":
        tok = _load_tokenizer(config)
    else:
        tok = tokmod.prepare(train_tokenizer(config), t.chat_template)
    prepared = datamod.prepare(tok, config.data.paths, config.data.format, config.data.max_seq_len,
                               resolve_batching(config)[0], config.data.eval_fraction, config.seed,
                               config.data.max_examples)
    prepared.tokenizer = tok
    return prepared
