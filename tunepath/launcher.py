"""`tunepath run`: from the recommendation to a finished local run, measured beside the estimate.

plan_run() is cheap and pure (no torch): it picks the path, resolves the spec's `run:` section
and estimates each step on this machine from the calibration. execute() imports rag/ or
training/ lazily and runs the steps, then returns a summary with estimated and measured wall
time, peak memory and throughput side by side.
"""
from __future__ import annotations

import json
import math
import random
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from advisor import calibration, catalog, paths
from advisor.architecture import from_config
from advisor.costs import FEW_SHOT_EXAMPLES
from advisor.errors import UserError
from advisor.estimate import ESTIMABLE_METHODS, GB, TrainSetup
from advisor.recommend import recommend
from advisor.retrieval import CHUNK_STRIDE, TOP_K
from advisor.spec import ProjectSpec, RunSection
from advisor.textio import atomic_write_text, check_output_dir, read_user_text

CHARS_PER_TOKEN = 4.0          # English text averages ~4 characters per BPE token (OpenAI tokenizer docs)
DEFAULT_PRETRAIN_ARCH = {      # a tiny Llama that pretrains in about a minute on 2 CPU cores
    "model_type": "llama", "hidden_size": 128, "intermediate_size": 352, "num_hidden_layers": 4,
    "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512,
    "tie_word_embeddings": True}


@dataclass
class Step:
    kind: str                          # tune | index | answer | evaluate | train | prompt
    description: str
    estimate: dict[str, Any] = field(default_factory=dict)   # wall_s, peak_memory_gb, throughput
    config: dict[str, Any] = field(default_factory=dict)
    cluster: dict[str, Any] | None = None   # Ray: address, workers, gpus_per_worker (run.cluster)


@dataclass
class RunPlan:
    path: str
    recommended: str | None
    spec_name: str
    output_dir: str
    calibration: str
    steps: list[Step]

    def to_dict(self) -> dict:
        return asdict(self)


def _resolve(base: Path, p: str | None) -> str | None:
    if p is None:
        return None
    q = Path(p).expanduser()
    return str(q if q.is_absolute() else (base / q))


def _resolve_existing(base: Path, p: str, field_name: str) -> str:
    r = _resolve(base, p)
    if not Path(r).exists():
        raise UserError(f"run.{field_name}: {p} does not exist (relative paths are relative to the spec file)")
    return r


def _text_chars(paths: list[str]) -> int:
    total = 0
    for p in paths:
        q = Path(p)
        files = [f for f in q.rglob("*") if f.is_file()] if q.is_dir() else [q]
        total += sum(f.stat().st_size for f in files)
    return total


def _local_path_form(ref: str) -> bool:
    """A reference only a local path can be: ./x, ../x, /x, ~/x, or more than one '/' (a hub id is org/name)."""
    return ref.startswith((".", "/", "~")) or ref.count("/") > 1


def _needs(run: RunSection, names: list[str], path: str) -> None:
    missing = [n for n in names if not getattr(run, n)]
    if missing:
        raise UserError(f"path {path} needs run.{', run.'.join(missing)} in the spec (where the local data or model is)")


PRETRAIN_VOCAB = 2048          # byte-level BPE trained on the corpus; the model's vocab_size comes from it


def _arch_of(ref: str | dict) -> Any:
    if isinstance(ref, dict):
        return from_config({**ref, "vocab_size": PRETRAIN_VOCAB}, "run.architecture")
    return catalog.architecture(ref)


def _train_estimate(arch, cfg: dict, chars: int, cal: calibration.Calibration) -> dict:
    """The estimate for the TrainConfig this plan will run - its method, rank, targets and batch - timed with
    this machine's calibration (advisor.calibration.local_train_estimate, as the run summary is), over the
    micro-batches the Trainer will run (training.schedule: unpacked rows are padded per batch, not full rows)."""
    adapter = cfg.get("adapter") or {}
    method = adapter.get("method", "lora") if cfg["stage"] == "peft" else cfg["stage"]
    if method not in ESTIMABLE_METHODS:
        return {"note": f"the estimator does not model {method}"}
    sched, counted = _schedule(cfg, chars)
    virtual = int(adapter.get("num_virtual_tokens", 20)) if method == "prompt_tuning" else 0  # prepended to each row
    targets = adapter.get("target_modules")
    device, gpu = local_device()
    setup = TrainSetup(method=method, tokens=max(sched.padded_tokens + virtual * sched.rows, 1),
                       seq_len=sched.widest + virtual,
                       micro_batch=cfg["training"]["micro_batch_size"], device=device,
                       grad_accum=int(cfg["training"].get("gradient_accumulation_steps", 1)),
                       target_modules=targets if isinstance(targets, (str, list)) or targets is None else list(targets),
                       lora_rank=int(adapter.get("r", 8)), virtual_tokens=int(adapter.get("num_virtual_tokens", 20)))
    est = calibration.local_train_estimate(arch, setup, cal, gpu=gpu, micro_batches=sched.micro_batches,
                                           real_tokens=sched.tokens)
    return {**{k: est[k] for k in ("wall_s", "train_wall_s", "peak_memory_gb", "tokens_per_s", "flops", "tokens",
                                   "calibration")},
            "steps": sched.steps, "micro_batches": sched.micro_batches, "padded_tokens": sched.padded_tokens,
            "batching": sched.batching, "counted": counted}


def _spec_fields(message: str, stage: str) -> str:
    """A training-data error in the terms of the spec's run: section (data.paths -> run.labeled_data, ...)."""
    return (message.replace("data.paths:", "run.corpus:" if stage == "pretrain" else "run.labeled_data:")
            .replace("data.max_seq_len", "run.max_seq_len"))


def _schedule(cfg: dict, chars: int) -> tuple[Any, str]:
    """(training.schedule.Schedule of the run, how its rows were counted). SFT data with a local base model is
    tokenized and batched as the run will do it (training.data.prepare, the same packing decision); otherwise
    rows are sized at CHARS_PER_TOKEN - pretraining's tokenizer is trained when the run starts."""
    from training import data as datamod, load_config
    from training.schedule import simulate

    config = load_config(data=cfg)
    t, d = config.training, config.data
    kw = dict(micro_batch=t.micro_batch_size, grad_accum=t.gradient_accumulation_steps, epochs=t.epochs,
              max_steps=t.max_steps, seed=config.seed)
    approx = f"rows sized at ~{CHARS_PER_TOKEN:g} characters per token"
    if config.stage == "pretrain":
        tokens = max(int(chars / CHARS_PER_TOKEN), 2)
        blocks = [d.max_seq_len] * (tokens // d.max_seq_len) + ([tokens % d.max_seq_len] if tokens % d.max_seq_len >= 2
                                                                 else [])
        train, _ = datamod.split(len(blocks), d.eval_fraction, config.seed)
        return simulate([blocks[i] for i in train], batching="blocks", **kw), \
            approx + " (the tokenizer is trained when the run starts)"
    from training.runner import VARLEN_ATTENTION, resolve_batching

    pack, _ = resolve_batching(config)
    name = config.model.name_or_path
    if Path(name).is_dir():
        from training import tokenizer as tokmod

        tok = tokmod.load(name, config.model.trust_remote_code, config.tokenizer.chat_template, field="run.base_model")
        prepared = datamod.prepare(tok, d.paths, d.format, d.max_seq_len, pack, d.eval_fraction, config.seed,
                                   d.max_examples)
        lengths = [len(r["input_ids"]) for r in prepared.train]
        counted = "tokenized with the base model's tokenizer"
    else:   # a hub id: no tokenizer here before the run downloads it
        _, records = datamod.load_records(d.paths, d.format, d.max_examples)
        sizes = [min(d.max_seq_len, max(2, math.ceil(len(json.dumps(r, ensure_ascii=False)) / CHARS_PER_TOKEN)))
                 for _, r in records]
        train, _ = datamod.split(len(sizes), d.eval_fraction, config.seed)
        sizes = [sizes[i] for i in train]
        lengths = [sum(sizes[i] for i in b) for b in datamod.pack(sizes, d.max_seq_len)] if pack else sizes
        counted = approx
    batching = ("flat" if config.model.attn_implementation in VARLEN_ATTENTION else "packing") if pack \
        else "length_grouped"
    return simulate(lengths, batching=batching, **kw), counted


def local_device() -> tuple[str, Any]:
    """("cuda", its catalog GPU or None) where torch sees a CUDA device - the training backend trains there, so
    the plan is priced there - else ("cpu", None)."""
    try:
        import torch
    except ImportError:          # no training extra: the run will say so; plan as CPU
        return "cpu", None
    if not torch.cuda.is_available():
        return "cpu", None
    return "cuda", catalog.gpu_for_device(torch.cuda.get_device_name())


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def _check_weights(folder: Path, given: str) -> None:
    """A local base model must hold weights transformers loads: it failed only after the confirmation."""
    if not folder.is_dir():
        raise UserError(f"run.base_model: {given} is a file; expected a model folder (config.json + weights) or a hub id")
    if (folder / "adapter_config.json").is_file() and not (folder / "config.json").is_file():
        raise UserError(f"run.base_model: {given} is a peft adapter, not a model; merge it first "
                        f"(`tunepath merge {given} --out DIR`) or point at the model it was trained on")
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        raise UserError(f"run.base_model: {given} holds no weights (expected config.json and {' or '.join(WEIGHT_FILES[::2])})")


def _train_config(spec: ProjectSpec, run: RunSection, base: Path, stage: str, out: Path) -> dict:
    train = {"epochs": 1, "micro_batch_size": 4, "logging_steps": 5, "save_steps": 1000, **run.train}
    cfg: dict[str, Any] = {"stage": stage, "output_dir": str(out), "seed": 0, "training": train,
                           "data": {"max_seq_len": run.max_seq_len, "eval_fraction": 0.1}}
    if stage == "pretrain":
        arch = run.architecture or DEFAULT_PRETRAIN_ARCH
        cfg["model"] = {"architecture": _resolve(base, arch) if isinstance(arch, str) else arch}
        cfg["tokenizer"] = {"vocab_size": PRETRAIN_VOCAB}
        cfg["data"]["paths"] = [_resolve_existing(base, c, "corpus") for c in run.corpus]
    else:
        model = run.base_model
        local = Path(_resolve(base, model)).exists()
        if not local and _local_path_form(model):
            raise UserError(f"run.base_model: {model} does not exist (relative paths are relative to the spec file; "
                            "a hub id has the form org/name)")
        if local:
            _check_weights(Path(_resolve(base, model)), model)
        cfg["model"] = {"name_or_path": _resolve(base, model) if local else model}
        cfg["data"]["paths"] = [_resolve_existing(base, run.labeled_data, "labeled_data")]
        if stage == "peft":
            cfg["adapter"] = dict(run.adapter)
    return cfg


def check_run_section(spec: ProjectSpec, spec_path: Path, overrides: list[str] | None = None) -> None:
    """Validate run.train and run.adapter as the TrainConfig sections they become, at load time: a typo is
    reported with its file:line, dotted path and a did-you-mean before anything is estimated or confirmed."""
    run = spec.run
    if run is None or not (run.train or run.adapter):
        return
    from adapters import REGISTRY
    from advisor import fields
    from training.config import TrainingSection

    source = str(spec_path)
    text = spec_path.read_text(encoding="utf-8-sig")   # JSON too: yaml_line finds its lines (or gives up quietly)
    touched = {tuple(fields.parse_override(o)[0]) for o in overrides or []}
    fields.validate(TrainingSection, run.train, source, text=text, prefix=("run", "train"), touched=touched)
    method = run.adapter.get("method", "lora")
    if not isinstance(method, str) or method not in REGISTRY:   # a list here was an internal 'unhashable type'
        import difflib

        lower = {m.lower(): m for m in REGISTRY}
        close = [lower[str(method).lower()]] if str(method).lower() in lower else \
            difflib.get_close_matches(str(method), list(REGISTRY), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        line = fields.yaml_line(text, ("run", "adapter", "method")) if text else None
        where = ("--set run.adapter.method" if ("run", "adapter", "method") in touched
                 else f"{source}:{line}: run.adapter.method" if line else f"{source}: run.adapter.method")
        raise UserError(f"{where}: unknown method {method!r}; {hint}"
                        f"expected one of {', '.join(sorted(REGISTRY))}")
    fields.validate(REGISTRY[method], {"method": method, **run.adapter}, source, text=text, prefix=("run", "adapter"),
                    touched=touched)


# Tuning cost per (query, positive, hard negative) text in units of one chunk embedding: forward +
# backward ~ 3x a forward pass (Kaplan et al. 2020, 6·N vs 2·N FLOPs per token).
TUNE_TEXTS_PER_PAIR = 3
TUNE_PASSES = 3


def _pair_rows(pairs: str) -> int:
    """Pairs the embedder will see: judgement lines of a qrels .tsv (a BEIR folder's qrels/train.tsv) or
    rows of a pairs .jsonl; a cheap count for the estimate (rag.tune validates them at run time)."""
    p = Path(pairs)
    if p.is_dir():
        p = p / "qrels" / "train.tsv"
    if not p.is_file():
        raise UserError(f"run.retrieval_pairs: {pairs}: expected a BEIR folder with qrels/train.tsv, a qrels .tsv "
                        "or a .jsonl of {query, positive, negative?}")
    lines = [ln for ln in p.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    return len(lines) - (1 if lines and lines[0].startswith("query-id") else 0)


def _tune_step(run: RunSection, base: Path, out: Path, docs: list[str], chunks: int, rate: float,
               cal: calibration.Calibration) -> Step:
    pairs = _resolve_existing(base, run.retrieval_pairs, "retrieval_pairs")
    rows = _pair_rows(pairs)
    held_out_eval = 2 * min(chunks, 2000)  # held-out nDCG@10 before and after (rag.tune.EVAL_POOL)
    wall = cal.rag_startup_s + (rows * TUNE_TEXTS_PER_PAIR * TUNE_PASSES + held_out_eval) / rate
    tsv = Path(pairs).suffix == ".tsv"
    return Step("tune", f"tune the embedder on {rows} pair(s) from {pairs} -> {out / 'embedder'}",
                {"wall_s": round(wall, 1), "peak_memory_gb": cal.rag_process_gb},
                {"pairs": pairs, "out": str(out / "embedder"),
                 "queries": _resolve_existing(base, run.queries, "queries") if tsv and run.queries else None,
                 "documents": docs[0] if tsv and len(docs) == 1 else None})


def _check_no_earlier_checkpoints(train_out: Path, train_yaml: Path) -> None:
    """Refuse, at plan time, to train where an earlier run left checkpoints: the backend would refuse after the
    confirmation, advising --resume / --force, which `tunepath run` does not take. Say what does continue it."""
    from training.checkpoints import checkpoints  # stdlib only: the plan stays free of torch

    found = checkpoints(train_out)
    if found:
        raise UserError(f"run.output_dir: {train_out} already holds checkpoint-{found[-1][0]} of an earlier run; "
                        f"continue it with `tunepath train {train_yaml} --resume`, or start over by deleting "
                        f"{train_out} or setting run.output_dir to another folder")


def plan_run(spec: ProjectSpec, spec_path: Path, path: str | None = None) -> RunPlan:
    advice = recommend(spec)
    recommended = advice.recommendation.path
    chosen = recommended if path is None else paths.check(path)
    if chosen is None:
        raise UserError("no path is feasible for this spec (see `tunepath recommend`); choose one with --path")
    run = spec.run or RunSection()
    base = spec_path.resolve().parent
    out = check_output_dir(_resolve(base, run.output_dir) if run.output_dir else Path("runs") / spec.name,
                           "run.output_dir").resolve()
    cal = calibration.load()
    cluster = cluster_scaling(spec)
    steps: list[Step] = []
    for part in chosen.split("+"):
        if part == "rag":
            _needs(run, ["documents"], part)
            docs = [_resolve_existing(base, d, "documents") for d in run.documents]
            chunks = max(1, math.ceil(_text_chars(docs) / CHARS_PER_TOKEN / CHUNK_STRIDE))
            rate = cal.embed_chunks_per_s or calibration.DEFAULT_EMBED_CHUNKS_PER_S
            model = None
            if run.retrieval_pairs:
                steps.append(_tune_step(run, base, out, docs, chunks, rate, cal))
                model = steps[-1].config["out"]
            steps.append(Step("index", f"index {', '.join(run.documents)}, ~{chunks} chunks, into {out / 'index'}"
                              + (" with the tuned embedder" if model else ""),
                              {"wall_s": round(cal.rag_startup_s + chunks / rate, 1),
                               "peak_memory_gb": cal.rag_process_gb, "chunks_per_s": round(rate, 1)},
                              {"paths": docs, "out": str(out / "index"), "model": model}))
            if cluster:
                steps[-1].cluster = {**cluster, "workers": spec.run.cluster.workers}  # default: one actor per GPU
                steps[-1].description += (f"; embedded on Ray ({cluster['address'] or 'local'}): "
                                          + (f"{spec.run.cluster.workers} actor(s)" if spec.run.cluster.workers
                                             else "one actor per GPU (per node without GPUs)"))
            questions = _questions(run, base)
            if questions:
                gen = _resolve(base, run.generator) if run.generator else None
                steps.append(Step("answer", f"answer {len(questions)} sample question(s)"
                                  + (f" with {gen}" if gen else " (passages with sources; no generator configured)"),
                                  {}, {"questions": questions, "generator": gen}))
            if run.queries and run.qrels:
                steps.append(Step("evaluate", "evaluate retrieval (nDCG@10, recall@k, MRR@10)", {},
                                  {"queries": _resolve_existing(base, run.queries, "queries"),
                                   "qrels": _resolve_existing(base, run.qrels, "qrels")}))
        elif paths.BY_NAME[part].training_stage:
            stage = paths.BY_NAME[part].training_stage
            _needs(run, ["corpus"] if stage == "pretrain" else ["labeled_data", "base_model"], part)
            cfg = _train_config(spec, run, base, stage, out / ("adapter" if stage == "peft" else "model"))
            _check_no_earlier_checkpoints(Path(cfg["output_dir"]), out / "train.yaml")
            ref = cfg["model"].get("architecture") or cfg["model"]["name_or_path"]
            field_name = "run.architecture" if stage == "pretrain" else "run.base_model"
            no_estimate = "not in the catalog"
            try:
                arch = _arch_of(ref)
            except UserError as e:
                if isinstance(ref, str) and Path(ref).exists():
                    raise UserError(f"{field_name}: {e}") from None
                if stage == "pretrain" and isinstance(ref, str):  # training reads a config.json path, nothing else
                    raise UserError(f"run.architecture: {run.architecture} does not exist (expected HF config "
                                    "fields or a config.json path; relative paths are relative to the spec file)") from None
                if isinstance(ref, dict):  # the estimator cannot count it: say why in the plan, training checks it
                    no_estimate = str(e).removeprefix("run.architecture: ")
                arch = None       # a hub id outside the catalog: it loads at run time, no config to estimate from
            chars = _text_chars(cfg["data"]["paths"])
            try:
                est = {} if arch is None else _train_estimate(arch, cfg, chars, cal)
            except UserError as e:   # the data's errors name the train.yaml fields this spec writes: say which
                raise UserError(_spec_fields(str(e), stage)) from None
            shown = f"model_type {ref.get('model_type')!r}" if isinstance(ref, dict) else ref
            size = f"{arch.total_params:,} params" if arch else f"{shown}, {no_estimate}: no estimate"
            steps.append(Step("train", f"{stage} training ({size}) -> {cfg['output_dir']}; "
                                       f"config written to {out / 'train.yaml'}", est, cfg))
            if est.get("calibration") and est["calibration"] != cal.describe():
                steps[-1].description += f"; timed as {est['calibration']}"
            if cluster:
                steps[-1].cluster = cluster
                steps[-1].description += f"; on Ray ({cluster['address'] or 'local'}): {cluster['workers_note']}"
        elif part == "prompting":
            _needs(run, ["labeled_data"], part)
            gen = run.generator or run.base_model
            gen = _resolve(base, gen) if gen and (base / gen).exists() else gen
            steps.append(Step("prompt", f"build a {FEW_SHOT_EXAMPLES}-shot prompt from {run.labeled_data}"
                                        + (f", evaluate {gen} on {run.eval_examples} held-out examples" if gen else
                                           " (no local model configured: template only)"), {},
                              {"labeled_data": _resolve_existing(base, run.labeled_data, "labeled_data"),
                               "generator": gen, "eval_examples": run.eval_examples}))
    return RunPlan(path=chosen, recommended=recommended, spec_name=spec.name, output_dir=str(out),
                calibration=cal.describe(), steps=steps)


def cluster_scaling(spec: ProjectSpec) -> dict[str, Any] | None:
    """run.cluster -> Ray Train's scaling: workers x gpus_per_worker. Unless run.cluster.workers is
    given, the workers cover the GPUs the cost estimate assumed (constraints.gpu_count of
    constraints.gpu), so the cluster run is the run that was priced; the note says which."""
    c = spec.run.cluster if spec.run else None
    if c is None:
        return None
    g, n, gpu = c.gpus_per_worker, spec.constraints.gpu_count, spec.constraints.gpu
    if c.workers:
        workers, source = c.workers, "run.cluster.workers"
        if g and workers * g != n:
            source += f"; the cost estimate assumed {n} x {gpu} (constraints.gpu_count)"
    elif g:
        workers = max(1, math.ceil(n / g))
        source = f"the estimate's {n} x {gpu} (constraints.gpu_count) / {g:g} GPU(s) per worker"
    else:
        workers, source = n, f"one CPU worker per GPU of the estimate ({n}, constraints.gpu_count)"
    each = f"{g:g} GPU(s)" if g else "CPU"
    return {"address": None if c.ray == "local" else c.ray, "workers": workers, "gpus_per_worker": g,
            "workers_note": f"{workers} worker(s) x {each}, from {source}"}


def _questions(run: RunSection, base: Path) -> list[str]:
    q = run.questions
    if q is None:
        return []
    if isinstance(q, list):
        return q
    p = Path(_resolve_existing(base, q, "questions"))
    text = read_user_text(p, "run.questions: a .jsonl of {question} rows or one question per line")
    if p.suffix == ".jsonl":
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise UserError(f"{p}:{n}: invalid JSON ({e.msg})") from None
                text = row.get("question") or row.get("text") if isinstance(row, dict) else row
                if not isinstance(text, str):
                    raise UserError(f"{p}:{n}: expected a 'question' or 'text' field")
                out.append(text)
        return out
    return [line.strip() for line in text.splitlines() if line.strip()]


# --- execution ----------------------------------------------------------------------------------

def _peak_rss_gb() -> float:
    from training.summary import peak_memory

    return peak_memory()[0] / GB


def _write_yaml_atomic(path: Path, data: dict) -> None:
    atomic_write_text(path, f"# Written by `tunepath run`; rerun by hand with: tunepath train {path}\n"
                      + yaml.safe_dump(data, sort_keys=False))


def _normalize(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]", " ", text.lower()).split()


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD's token-overlap F1 (Rajpurkar et al. 2016)."""
    p, r = _normalize(prediction), _normalize(reference)
    common = sum((Counter(p) & Counter(r)).values())
    if not p or not r or common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def _load_examples(path: str) -> list[tuple[str, str]]:
    """(prompt, reference) pairs from alpaca or chat rows (the training backend's readers)."""
    from training.data import alpaca_to_messages, chat_messages, detect_format, read_rows

    pairs = []
    for where, row in read_rows(path):
        fmt = detect_format(row, where)
        if fmt == "text":
            raise UserError(f"{where}: run.labeled_data needs input -> output rows (alpaca or chat), not raw text")
        msgs = alpaca_to_messages(row, where) if fmt == "alpaca" else chat_messages(row, where)
        user = next(m["content"] for m in reversed(msgs) if m["role"] == "user")
        pairs.append((user, msgs[-1]["content"]))
    if not pairs:
        raise UserError(f"{path}: no labeled examples")
    return pairs


def build_prompt(shots: list[tuple[str, str]], instruction: str) -> str:
    """Few-shot template (Brown et al. 2020): instruction, k solved examples, then the new input."""
    parts = [instruction.strip(), ""]
    for q, a in shots:
        parts += [f"Input: {q}", f"Output: {a}", ""]
    parts += ["Input: {input}", "Output:"]
    return "\n".join(parts)


def _run_prompting(step: Step, out: Path, spec: ProjectSpec) -> dict:
    pairs = _load_examples(step.config["labeled_data"])
    rng = random.Random(0)
    order = list(range(len(pairs)))
    rng.shuffle(order)
    shots = [pairs[i] for i in order[:FEW_SHOT_EXAMPLES]]
    held = [pairs[i] for i in order[FEW_SHOT_EXAMPLES:FEW_SHOT_EXAMPLES + step.config["eval_examples"]]]
    template = build_prompt(shots, f"Task ({spec.task.kind.value}): answer in the style of the examples.")
    out.mkdir(parents=True, exist_ok=True)
    (out / "prompt_template.txt").write_text(template)
    result: dict[str, Any] = {"prompt_template": str(out / "prompt_template.txt"), "few_shot": len(shots)}
    gen = step.config["generator"]
    if gen and held:
        from training import generate as generation

        tok, lm = generation.load(gen, field="run.generator")
        rows, t0, new_tokens = [], time.perf_counter(), 0
        for q, ref in held:
            # the few-shot template is the whole prompt: no chat wrapping, as a completion model reads it
            ids = generation.prompt_ids(tok, template.replace("{input}", q), chat=False)
            text, n = generation.complete(tok, lm, ids, max_new_tokens=48)
            pred = text.split("\nInput:")[0].strip()
            new_tokens += n
            rows.append({"input": q, "reference": ref, "prediction": pred,
                         "exact_match": _normalize(pred) == _normalize(ref), "f1": round(token_f1(pred, ref), 4)})
        dt = time.perf_counter() - t0
        result.update({"generator": gen, "eval_examples": len(rows),
                       "exact_match": sum(r["exact_match"] for r in rows) / len(rows),
                       "token_f1": sum(r["f1"] for r in rows) / len(rows),
                       "generated_tokens_per_s": round(new_tokens / dt, 1) if dt else None, "predictions": rows})
    return result


def execute(plan: RunPlan, spec: ProjectSpec, on_step: Callable[[Step], None] | None = None,
            progress: bool = True) -> dict:
    """Run the plan's steps; returns the run summary (also written to OUTPUT_DIR/run_summary.json)."""
    out = Path(plan.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    t_all = time.perf_counter()
    for step in plan.steps:
        if on_step:
            on_step(step)
        t0 = time.perf_counter()
        measured: dict[str, Any] = {}
        detail: dict[str, Any] = {}
        if step.kind == "index":
            import sentence_transformers  # noqa: F401  (start-up measured apart from embedding)
            from rag import build_index

            embedder = None
            if step.cluster:
                from rag.distributed import RayEmbedder

                embedder = RayEmbedder(address=step.cluster["address"], workers=step.cluster["workers"])
            t_embed = time.perf_counter()
            model = step.config.get("model")
            # a (re-)tuned embedder gives every vector a new meaning: embed the corpus afresh
            rep = build_index(step.config["paths"], step.config["out"], model=model, rebuild=bool(model),
                              embedder=embedder)
            # the rate of the embedding phase (what the estimate's chunks/s and `tunepath rag index` mean); the
            # rest of the build - reading, chunking, FAISS, BM25, SQLite - is in the step's wall time
            measured = {"startup_s": round(t_embed - t0, 1), "embed_s": round(rep.embed_seconds, 2),
                        "chunks_per_s": round(rep.chunks_per_s, 1) if rep.chunks_embedded else None}
            detail = {"chunks_embedded": rep.chunks_embedded, "chunks_reused": rep.chunks_reused,
                      "counts": rep.manifest.counts.model_dump(), "index_type": rep.manifest.index.model_dump(),
                      "skipped_files": len(rep.skipped), "index_dir": step.config["out"]}
        elif step.kind == "tune":
            from rag.tune import tune

            rep = tune(step.config["pairs"], step.config["out"], queries=step.config.get("queries"),
                       documents=step.config.get("documents"), overwrite=True)
            measured = {"train_s": round(rep.train_seconds, 1)}
            detail = rep.model_dump()
        elif step.kind == "answer":
            from rag import answer

            index_dir = str(out / "index")
            answers = []
            for q in step.config["questions"]:
                a = answer(index_dir, q, k=TOP_K, mode="hybrid", generator=step.config["generator"])
                answers.append({"question": q, "answer": a.answer,
                                "sources": [f"{h.source}:{h.start}-{h.end}" for h in a.passages[:3]],
                                "top_passage": a.passages[0].text[:300] if a.passages else None})
            detail = {"answers": answers}
        elif step.kind == "evaluate":
            from rag import evaluate

            metrics = evaluate(str(out / "index"), step.config["queries"], step.config["qrels"], mode="hybrid")
            detail = {"metrics": metrics.model_dump()}
        elif step.kind == "train":
            import training

            cfg_path = out / "train.yaml"
            _write_yaml_atomic(cfg_path, step.config)
            if step.cluster:
                from training.ray_launch import run_on_ray

                c = step.cluster
                summary = run_on_ray(training.load_config(cfg_path), c["workers"], c["gpus_per_worker"], c["address"])
            else:
                summary = training.run(training.load_config(cfg_path), progress=progress)
            measured = {"tokens_per_s": round(summary.tokens_per_s, 1), "tokens": summary.tokens,
                        "steps": summary.steps, "micro_batches": summary.micro_batches,
                        "padded_tokens": summary.padded_tokens,
                        "peak_memory_gb_reported": round(summary.peak_memory_bytes / GB, 3)}
            detail = {"train_config": str(cfg_path), "output_dir": summary.output_dir, "steps": summary.steps,
                      "estimate_for_exact_tokens": summary.estimate,
                      "train_loss": summary.train_loss, "eval_loss": summary.eval_loss,
                      "perplexity": summary.perplexity, "trainable_params": summary.trainable_params}
        elif step.kind == "prompt":
            detail = _run_prompting(step, out, spec)
            if "generated_tokens_per_s" in detail:
                measured["generated_tokens_per_s"] = detail["generated_tokens_per_s"]
        measured["wall_s"] = round(time.perf_counter() - t0, 1)
        measured["peak_memory_gb"] = round(_peak_rss_gb(), 3)
        if step.cluster:
            detail["ray"] = {k: v for k, v in step.cluster.items() if k != "workers_note"}
        results.append({"kind": step.kind, "description": step.description, "estimate": step.estimate,
                        "measured": measured, "detail": detail})
    summary = {"spec": plan.spec_name, "path": plan.path, "recommended": plan.recommended,
               "output_dir": plan.output_dir, "calibration": plan.calibration,
               "wall_s": round(time.perf_counter() - t_all, 1), "peak_memory_gb": round(_peak_rss_gb(), 3),
               "peak_memory_kind": "process peak RSS (ru_maxrss)", "steps": results}
    atomic_write_text(out / "run_summary.json", json.dumps(summary, indent=2, default=str))
    return summary
