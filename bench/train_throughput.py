"""Training throughput and loss: tunepath's default against what users actually run, same examples.

Contenders (same base model, same tokenized examples with tunepath's formatting and response-only
labels, same LoRA, precision, optimizer, learning rate and seed; each trains one epoch over the same
examples, so every contender processes exactly the same real tokens, about --batch examples a step):
  pad-random    transformers Trainer + peft + per-batch padding (DataCollatorForSeq2Seq), random order
  pad-grouped   the same + length-grouped batches (`train_sampling_strategy="group_by_length"`,
                transformers' LengthGroupedSampler)  <- the named baseline: what a careful user runs
  tunepath      tunepath's default (`data.packing: auto`, resolved per hardware by training.runner)
  tp-packing    tunepath with `data.packing: true` (first-fit decreasing rows, position ids restart)
  tp-varlen     tp-packing with `attn_implementation: varlen` (training/varlen.py: each packed example
                attends on its own, PyTorch's fused varlen kernel on CUDA; not flash-attn)
  trl-bfd       TRL SFTTrainer, `packing=True` (best-fit decreasing; TRL then collates padding-free)
  trl-padfree   TRL SFTTrainer, `padding_free=True` without packing (the batch flattened into one row)
TRL's `gradient_checkpointing` defaults to on; it is off on every side here (like for like).

Base model: a tiny Llama (hidden 256, 4 layers, byte-level BPE 4096; --hidden/--layers for GPUs)
pretrained here by tunepath's own pretrain stage on LIMA's text, so LoRA starts from a model that
has learnt something and the fine-tuning loss is a real comparison (held-out loss before and after
is reported; ln(4096) = 8.32 is the untrained level).
Data: ../shared/data/sft/alpaca_en_demo.json; variable-length rows, and fixed-length rows (the
examples of >= --fixed-len tokens cut to exactly that). Held-out: 48 other examples, token-mean
cross-entropy one example at a time (no padding, no packing), identical for every contender.

Measurement: real (non-padding) tokens / seconds inside .train(); the Trainer's own non-padding
counter must equal the examples' token count. Each contender runs --repeats times, interleaved,
the order rotating each repeat; the ratio vs the baseline is the median of the per-repeat ratios
(each repeat's runs are close in time, which matters on a shared machine).

CPU (this machine): `python bench/train_throughput.py --threads 1`.
GPU (prepared for when one is lent; not run on this CPU-only machine):
  `python bench/train_throughput.py --device cuda --attn flash_attention_2 --hidden 2048 --layers 16 --max-len 1024`
  runs the same contenders with flash-attention 2 on every side (tunepath packing then goes through
  flash-attention's varlen kernel; padding contenders unpad through it), bf16.
Targets (issue 14): CPU: tunepath default >= 1.0x pad-grouped; GPU with varlen: tunepath packing
>= 1.3x pad-grouped; >= 1.0x TRL's packing at equal held-out loss on both.
Results: bench/results/train_throughput.json (bench/results.py).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data" / "sft" / "alpaca_en_demo.json"
PRETRAIN = REPO.parent / "shared" / "data" / "sft" / "lima.json"
LORA = {"method": "lora", "r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
LR = 1e-3
N_EVAL = 48
CONTENDERS = ("pad-random", "pad-grouped", "tunepath", "tp-packing", "tp-varlen", "trl-bfd", "trl-padfree")
BASELINE = "pad-grouped"


def build_base(work: Path, a) -> tuple[Path, float]:
    """Tiny Llama pretrained by tunepath's pretrain stage on LIMA's text (tokenizer trained on it too)."""
    from training import load_config, run

    from training import data as D

    text = work / "lima.jsonl"
    with text.open("w") as f:
        for _, r in D.read_rows(str(PRETRAIN)):
            f.write(json.dumps({"text": f"{r.get('instruction', '')}\n{r.get('output', '')}"}) + "\n")
    arch = {"model_type": "llama", "hidden_size": a.hidden, "intermediate_size": int(a.hidden * 2.6875) // 8 * 8,
            "num_hidden_layers": a.layers, "num_attention_heads": max(4, a.hidden // 64),
            "num_key_value_heads": max(4, a.hidden // 64), "max_position_embeddings": 1024, "tie_word_embeddings": True}
    out = work / "base"
    t0 = time.perf_counter()
    s = run(load_config(data={
        "stage": "pretrain", "model": {"architecture": arch, "attn_implementation": a.attn_base},
        "tokenizer": {"vocab_size": 4096}, "precision": a.precision, "seed": 0, "output_dir": str(out),
        "data": {"paths": [str(text)], "max_seq_len": 512, "eval_fraction": 0},
        "training": {"max_steps": a.pretrain_steps, "micro_batch_size": 4, "learning_rate": 2e-3, "warmup": 0.1,
                     "logging_steps": 10, "save_steps": 100_000}}), progress=False)
    print(f"base: pretrained {s.steps} steps on {s.tokens:,} LIMA tokens in {time.perf_counter() - t0:.0f} s, "
          f"final loss {s.final_loss:.3f}")
    return out, s.final_loss


def examples(base: Path, max_len: int, fixed: int | None, n_train: int):
    """(tokenizer, raw rows, train examples, eval examples) with tunepath's formatting and masking."""
    from transformers import AutoTokenizer

    from training import data as D

    tok = AutoTokenizer.from_pretrained(base)
    rows = list(D.read_rows(str(DATA)))
    convs = [(w, D.alpaca_to_messages(r, w)) for w, r in rows]
    exs = D.tokenize_sft(tok, convs, max_len, D.DataStats())  # truncates to max_len, drops response-less ones
    if fixed:
        exs = [e for e in exs if len(e.input_ids) == fixed]  # were >= fixed tokens, cut to exactly fixed
    by_where = dict(rows)
    ev, tr = exs[:N_EVAL], exs[N_EVAL:N_EVAL + n_train]
    return tok, [by_where[e.where] for e in tr], tr, ev


def eval_loss(model, exs, device) -> float:
    """Token-mean cross-entropy over held-out examples, one at a time (no padding, no packing)."""
    import torch

    from training.data import IGNORE

    import contextlib

    model.eval()
    total, n = 0.0, 0
    # flash-attention has no fp32 kernel: on CUDA the held-out pass runs under bf16 autocast (CPU: plain fp32)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if str(device).startswith("cuda") else contextlib.nullcontext()
    with torch.no_grad(), amp:
        for e in exs:
            ids = torch.tensor([e.input_ids], device=device)
            labels = torch.tensor(e.labels[1:], device=device)
            logits = model(input_ids=ids).logits[0, :-1].float()
            total += float(torch.nn.functional.cross_entropy(logits, labels, ignore_index=IGNORE, reduction="sum"))
            n += int((labels != IGNORE).sum())
    return total / n


def _args(cls, out: Path, batch: int, a, **kw):
    return cls(output_dir=str(out), num_train_epochs=a.epochs, per_device_train_batch_size=batch, learning_rate=a.lr,
               lr_scheduler_type="constant", warmup_steps=0, logging_steps=5, save_strategy="no", report_to="none",
               seed=0, data_seed=0, bf16=a.precision == "bf16", use_cpu=a.device == "cpu", disable_tqdm=True,
               optim="adamw_torch", include_num_input_tokens_seen="non_padding", remove_unused_columns=False,
               dataloader_pin_memory=False, gradient_checkpointing=False, **kw)


def _lora_model(base: Path, a):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, attn_implementation=a.attn)
    return get_peft_model(model, LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=0.0,
                                            target_modules=LORA["target_modules"], task_type="CAUSAL_LM"))


def _timed(trainer) -> dict:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    trainer.train()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"seconds": dt, "counted_tokens": int(trainer.state.num_input_tokens_seen), "steps": trainer.state.global_step,
            "final_loss": losses[-1] if losses else float("nan")}


def run_trainer(kind, base, tok, raw, train_ex, eval_ex, batch, a, work) -> dict:
    """Trainer + peft + DataCollatorForSeq2Seq (padding per batch); random or length-grouped order."""
    from transformers import DataCollatorForSeq2Seq, PrinterCallback, Trainer, TrainingArguments

    model = _lora_model(base, a)
    rows = [{"input_ids": e.input_ids, "labels": e.labels, "attention_mask": [1] * len(e.input_ids)} for e in train_ex]
    strategy = "group_by_length" if kind == "pad-grouped" else "random"
    trainer = Trainer(model=model, args=_args(TrainingArguments, work / kind, batch, a, train_sampling_strategy=strategy),
                      train_dataset=rows, processing_class=tok,
                      data_collator=DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100))
    trainer.remove_callback(PrinterCallback)
    r = _timed(trainer)
    r["eval_loss"] = eval_loss(trainer.model, eval_ex, trainer.args.device)
    return r


def run_trl(kind, base, tok, raw, train_ex, eval_ex, batch, a, work, rows_per_step, max_len) -> dict:
    """TRL SFTTrainer on the same pre-tokenized examples (input_ids + labels columns: TRL keeps given labels)."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    model = _lora_model(base, a)
    ds = Dataset.from_list([{"input_ids": e.input_ids, "labels": e.labels} for e in train_ex])
    if kind == "trl-bfd":
        cfg = _args(SFTConfig, work / kind, rows_per_step, a, packing=True, packing_strategy="bfd", max_length=max_len)
    else:
        cfg = _args(SFTConfig, work / kind, batch, a, padding_free=True, max_length=None)
    trainer = SFTTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok)
    trainer.remove_callback(PrinterCallback)
    r = _timed(trainer)
    r["eval_loss"] = eval_loss(trainer.model, eval_ex, trainer.args.device)
    return r


def run_tunepath(kind, base, tok, raw, train_ex, eval_ex, batch, a, work, rows_per_step, max_len) -> dict:
    """tunepath's own path: a data file of the same rows -> TrainConfig -> runner.plan -> Trainer.train."""
    from training import load_config, runner

    data_file = work / f"train-{max_len}-{len(train_ex)}.jsonl"
    if not data_file.exists():
        data_file.write_text("".join(json.dumps(r) + "\n" for r in raw[:len(train_ex)]))
    def config(micro: int):
        return load_config(data={
            "stage": "peft", "model": {"name_or_path": str(base),
                                       "attn_implementation": "varlen" if kind == "tp-varlen" else a.attn},
            "adapter": LORA,
            "precision": a.precision, "seed": 0, "output_dir": str(work / f"{kind}-{time.monotonic_ns()}"),
            "data": {"paths": [str(data_file)], "max_seq_len": max_len, "eval_fraction": 0,
                     "packing": "auto" if kind == "tunepath" else True},
            "training": {"epochs": a.epochs, "micro_batch_size": micro, "learning_rate": a.lr, "lr_scheduler": "constant",
                         "warmup": 0, "logging_steps": 5, "save_steps": 100_000}})

    cfg = config(batch)
    if runner.resolve_batching(cfg)[0]:  # packed: a step of `rows_per_step` rows holds about `batch` examples
        cfg = config(rows_per_step)
    p = runner.plan(cfg, progress=False)
    want = sum(len(e.input_ids) for e in train_ex)
    assert p.prepared.stats.train_tokens == want, (p.prepared.stats.train_tokens, want)
    r = _timed(p.trainer)
    r["batching"] = p.batching
    r["eval_loss"] = eval_loss(p.trainer.model, eval_ex, p.trainer.args.device)
    return r


def compare(label, base, work, a, max_len, fixed) -> dict:
    from training import data as D

    tok, raw, train_ex, eval_ex = examples(base, max_len, fixed, a.examples)
    lengths = [len(e.input_ids) for e in train_ex]
    real = sum(lengths)
    mean = real / len(lengths)
    fill = real / (len(D.pack(lengths, max_len)) * max_len)
    rows = max(1, round(a.batch * mean / (fill * max_len)))
    print(f"\n== {label}: {len(train_ex)} train examples ({real:,} real tokens), mean {mean:.0f} tokens "
          f"(min {min(lengths)}, max {max(lengths)}); {a.batch} examples/step padded, {rows} packed rows of "
          f"{max_len}/step ({100 * fill:.0f}% full); {a.epochs} epoch(s) each, {a.precision}, attention {a.attn}", flush=True)

    def one(kind):
        if kind.startswith("pad-"):
            return run_trainer(kind, base, tok, raw, train_ex, eval_ex, a.batch, a, work)
        if kind.startswith("trl-"):
            return run_trl(kind, base, tok, raw, train_ex, eval_ex, a.batch, a, work, rows, max_len)
        return run_tunepath(kind, base, tok, raw, train_ex, eval_ex, a.batch, a, work, rows, max_len)

    saved = list(train_ex)  # warm-up on 16 examples, not measured: first-use costs (imports, kernel creation)
    del train_ex[16:]
    for kind in a.contenders:
        one(kind)
    train_ex[:] = saved
    runs: dict[str, list[dict]] = {k: [] for k in a.contenders}
    for i in range(a.repeats):
        order = a.contenders[i % len(a.contenders):] + a.contenders[:i % len(a.contenders)]
        for kind in order:
            r = one(kind)
            r["tokens_per_s"] = real * a.epochs / r["seconds"]
            runs[kind].append(r)
            print(f"  repeat {i + 1} {kind:<12} {r['tokens_per_s']:>8,.0f} tok/s  {r['seconds']:6.1f} s  "
                  f"{r['steps']} steps  held-out loss {r['eval_loss']:.4f}", flush=True)
    out = {"train_examples": len(train_ex), "real_tokens": real, "mean_tokens": round(mean, 1),
           "examples_per_step": a.batch, "packed_rows_per_step": rows, "max_len": max_len,
           "base_eval_loss": round(eval_loss(_lora_model(base, a).to(a.device), eval_ex, a.device), 4),
           "contenders": {}}
    base_runs = runs[BASELINE]
    for kind, rs in runs.items():
        for r in rs:
            if r["counted_tokens"] != real * a.epochs:
                print(f"  note: {kind} counted {r['counted_tokens']:,} non-padding tokens, expected {real * a.epochs:,}")
        ratio = statistics.median(r["tokens_per_s"] / b["tokens_per_s"] for r, b in zip(rs, base_runs))
        out["contenders"][kind] = {
            "tokens_per_s_median": round(statistics.median(r["tokens_per_s"] for r in rs), 1),
            "tokens_per_s_runs": [round(r["tokens_per_s"], 1) for r in rs],
            "ratio_vs_baseline": round(ratio, 3), "steps": rs[0]["steps"],
            "eval_loss": round(statistics.median(r["eval_loss"] for r in rs), 4),
            "final_train_loss": round(statistics.median(r["final_loss"] for r in rs), 4),
            "counted_tokens": rs[0]["counted_tokens"], **({"batching": rs[0]["batching"]} if "batching" in rs[0] else {})}
    print(f"  held-out loss of the base before fine-tuning: {out['base_eval_loss']:.4f} (ln 4096 = {math.log(4096):.2f})")
    for kind, c in out["contenders"].items():
        print(f"  {kind:<12} {c['tokens_per_s_median']:>8,.0f} real tok/s (median)  {c['ratio_vs_baseline']:.2f}x "
              f"{BASELINE}  held-out loss {c['eval_loss']:.4f}  train loss {c['final_train_loss']:.4f}"
              + (f"  [{c['batching']}]" if "batching" in c else ""))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=96, help="train examples per contender (one epoch)")
    ap.add_argument("--batch", type=int, default=8, help="examples per step (padded contenders)")
    ap.add_argument("--max-len", type=int, default=512)
    ap.add_argument("--fixed-len", type=int, default=256)
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pretrain-steps", type=int, default=40,
                    help="steps of the base model's pretraining (a learning run wants the base past unigram level)")
    ap.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs, the same for every contender")
    ap.add_argument("--lr", type=float, default=LR, help="fine-tuning learning rate, the same for every contender")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager", "varlen", "flash_attention_2"],
                    help="attention kernel for every contender")
    ap.add_argument("--contenders", default=",".join(CONTENDERS))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default). On a shared "
                    "machine 1 thread gives stable figures: OpenMP threads stall when another process takes a core")
    ap.add_argument("--no-record", action="store_true", help="print only; do not write bench/results")
    ap.add_argument("--name", default="train_throughput", help="results file name (a GPU run: train_throughput_gpu)")
    ap.add_argument("--notes", help="how the machine was during the run (recorded); default: shared 2-core machine")
    a = ap.parse_args()
    a.contenders = tuple(a.contenders.split(","))
    try:
        import trl  # noqa: F401  (the bench extra; a machine without it still compares the rest)
    except Exception as e:  # noqa: BLE001 - an import broken by a mismatched dependency counts as absent
        print(f"TRL contenders skipped: {e}")
        a.contenders = tuple(k for k in a.contenders if not k.startswith("trl-"))
    if BASELINE not in a.contenders or not set(a.contenders) <= set(CONTENDERS):
        ap.error(f"--contenders: names from {CONTENDERS}, including {BASELINE}")
    for f in (DATA, PRETRAIN):
        if not f.is_file():
            print(f"missing {f}", file=sys.stderr)
            return 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if a.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import warnings

    warnings.filterwarnings("ignore")
    import torch
    from transformers.utils import logging as hf_logging

    from training.runner import resolve_precision

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
    except Exception:  # noqa: BLE001 - only quiets TRL's dataset maps
        pass
    if a.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA device", file=sys.stderr)
        return 2
    a.precision = resolve_precision(a.precision)
    a.attn_base = "sdpa" if a.attn in ("flash_attention_2", "varlen") else a.attn
    if "tp-varlen" in a.contenders or a.attn == "varlen":
        from training import varlen

        varlen.register()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.cuda.get_device_name() if a.device == "cuda" else "cpu"
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads, precision {a.precision}, "
          f"attention {a.attn}")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base, base_loss = build_base(work, a)
        var = compare("variable-length (alpaca_en_demo)", base, work, a, a.max_len, None)
        fix = compare(f"fixed-length ({a.fixed_len} tokens)", base, work, a, a.fixed_len, a.fixed_len)
    default = "tunepath"
    ratios = {f"{d}/{k}": r[k]["ratio_vs_baseline"] for d, r in (("variable", var["contenders"]),
                                                                 ("fixed", fix["contenders"])) for k in r}
    for d, r in (("variable", var["contenders"]), ("fixed", fix["contenders"])):
        for trl in ("trl-bfd", "trl-padfree"):
            if trl in r and default in r:
                ratios[f"{d}/{default}_vs_{trl}"] = round(r[default]["tokens_per_s_median"] / r[trl]["tokens_per_s_median"], 3)
    ok = all(ratios.get(f"{d}/{default}", 0) >= 1.0 for d in ("variable", "fixed"))
    for d, r in (("variable", var["contenders"]), ("fixed", fix["contenders"])):
        for trl in ("trl-bfd", "trl-padfree"):
            if trl in r and "tp-varlen" in r:
                ratios[f"{d}/tp-varlen_vs_{trl}"] = round(r["tp-varlen"]["tokens_per_s_median"]
                                                          / r[trl]["tokens_per_s_median"], 3)
    print(f"\ntunepath default vs {BASELINE}: variable {ratios.get('variable/tunepath')}x, "
          f"fixed {ratios.get('fixed/tunepath')}x (target >= 1.0 on CPU): {'PASS' if ok else 'FAIL'} "
          f"({time.perf_counter() - t0:.0f} s)")
    if not a.no_record:
        from bench.results import record

        record(a.name, figures={"variable": var, "fixed": fix, "base_pretrain_loss": round(base_loss, 4),
                                            "settings": {"lora": LORA, "learning_rate": a.lr, "epochs": a.epochs,
                                                         "pretrain_steps": a.pretrain_steps, "precision": a.precision,
                                                         "attention": a.attn, "threads": torch.get_num_threads(),
                                                         "repeats": a.repeats, "hidden": a.hidden, "layers": a.layers}},
               baseline=f"{BASELINE}: transformers Trainer + peft, per-batch padding, "
                        "train_sampling_strategy=group_by_length",
               ratios=ratios, target="CPU: tunepath default >= 1.0x pad-grouped; GPU (flash-attn varlen): tunepath "
                                     "packing >= 1.3x pad-grouped; >= 1.0x TRL packing at equal held-out loss",
               notes=(a.notes or "Shared 2-core machine (other developers' jobs running)")
               + ": medians of interleaved repeats, ratios are medians of per-repeat ratios. "
                 f"{a.epochs} epoch(s) over the same examples per contender.",
               device=device)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
