"""`tunepath calibrate`: measure this machine with the real backends, for local estimates.

Training: a short pretraining run of a ~10M-parameter Llama (or the architecture of `--model`) on a
synthetic corpus, through the same training backend `tunepath train` uses; the run summary's achieved
model FLOP/s (the estimator's FLOPs for the run / measured time) becomes the calibrated rate, its
start-up and resident memory beyond the model states become the fixed costs. Embedding: the RAG
backend's default embedder encodes 256-token chunks in a fresh interpreter.
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from advisor import catalog
from advisor.architecture import from_config
from advisor.calibration import Calibration
from advisor.errors import UserError

# Default micro-run model: a small Llama, big enough that matmuls dominate (~10M parameters).
MICRO_LLAMA = {"model_type": "llama", "hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4,
               "num_attention_heads": 8, "num_key_value_heads": 4, "max_position_embeddings": 512}
VOCAB = 4096
# Step-overhead probe: FLOPs too small to matter, so a step's time is eager PyTorch's per-op work (DEFAULT_CPU_SECONDS_
# PER_LAYER in advisor/calibration.py); two depths separate the per-layer part from the rest of the step.
TINY_LLAMA = {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4,
              "num_key_value_heads": 2, "max_position_embeddings": 64}
PROBE_LAYERS = (1, 6)
MAX_PARAMS = 2e9   # the micro-run trains the model here: keep it to what a workstation can step through


def _corpus(path: Path, words: int = 60_000, seed: int = 0) -> Path:
    """Zipf-distributed pseudo-words: enough distinct tokens for a BPE vocabulary, deterministic."""
    rng = random.Random(seed)
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    vocab = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(8000)]
    weights = [1 / (i + 1) for i in range(len(vocab))]
    lines = []
    for _ in range(words // 60):
        lines.append(" ".join(rng.choices(vocab, weights, k=60)) + ".")
    path.write_text("\n".join(lines))
    return path


def _architecture(model: str | None) -> tuple[str, dict]:
    if not model:
        return "micro-llama-10M", dict(MICRO_LLAMA)
    name, raw = catalog.model_config(model)
    arch = from_config(raw, name)
    if arch.total_params > MAX_PARAMS:
        raise UserError(f"--model {model}: {arch.total_params / 1e9:.1f}B parameters; calibrate with a model under "
                        f"{MAX_PARAMS / 1e9:.0f}B (the micro-run trains it for a few steps here)")
    keep = {k: v for k, v in raw.items() if k not in ("architectures", "auto_map", "_name_or_path",
                                                      "transformers_version", "torch_dtype", "dtype")
            and v is not None}
    return name, keep


def measure(model: str | None = None, steps: int = 6, seq_len: int = 256, micro_batch: int = 4,
            embed: bool = True) -> Calibration:
    """Train `steps` steps (plus one untimed warm-up step's worth of start-up) and read the run summary."""
    import training

    name, arch = _architecture(model)
    seq_len = min(seq_len, int(arch.get("max_position_embeddings") or seq_len))
    with tempfile.TemporaryDirectory(prefix="tunepath-calibrate-") as tmp:
        corpus = _corpus(Path(tmp) / "corpus.txt")
        cfg = training.load_config(data={
            "stage": "pretrain", "output_dir": str(Path(tmp) / "run"), "seed": 0,
            "model": {"architecture": arch}, "tokenizer": {"vocab_size": VOCAB},
            "data": {"paths": [str(corpus)], "max_seq_len": seq_len, "eval_fraction": 0.0},
            "training": {"max_steps": steps, "micro_batch_size": micro_batch, "logging_steps": steps,
                         "save_steps": 10 * steps, "warmup": 0},
        })
        summary = training.run(cfg, progress=False)
        per_layer, per_micro_batch = _measure_step_overhead(Path(tmp))
    if not summary.model_flops_per_s or not summary.estimate:
        raise UserError(f"{name}: the estimator does not model this architecture, so no FLOP/s can be derived")
    states_gb = summary.estimate["memory_gb"]["total"]
    # the FLOP/s of the run's matmuls: on a CPU its time less the per-micro-batch costs measured apart (at most half
    # of it), which plans add back; on a GPU the host's dispatch overlaps the kernels and plans take the longer of
    # the two (advisor.calibration.local_train_estimate), so nothing is taken out
    overhead = summary.steps * (arch["num_hidden_layers"] * per_layer + per_micro_batch)
    if _device().startswith("cpu"):
        flops_per_s = summary.estimate["flops"] / max(summary.train_wall_s - overhead, 0.5 * summary.train_wall_s)
    else:
        flops_per_s = summary.model_flops_per_s
    emb = _measure_embedding() if embed else None
    cal = Calibration(train_flops_per_s=flops_per_s, embed_chunks_per_s=emb[0] if emb else None,
                      measured_at=time.strftime("%Y-%m-%d %H:%M"), device=_device(), model=name,
                      precision=summary.precision,
                      train_process_gb=round(max(summary.peak_memory_bytes / 1e9 - states_gb, 0.0), 3),
                      train_startup_s=round(max(summary.wall_s - summary.train_wall_s, 0.0), 2),
                      train_seconds_per_layer=per_layer, train_seconds_per_micro_batch=per_micro_batch)
    if emb:
        cal.rag_startup_s, cal.rag_process_gb = round(emb[1], 2), round(emb[2], 3)
    return cal


def _measure_step_overhead(tmp: Path, steps: int = 40) -> tuple[float, float]:
    """(seconds per layer, seconds per micro-batch beyond its layers) of training steps whose FLOPs are negligible:
    one-row micro-batches of 16 tokens through a 1-layer and a 6-layer 32-wide Llama, the same backend as a run."""
    import training

    corpus = _corpus(tmp / "probe.txt", words=3000)
    wall = {}
    for layers in PROBE_LAYERS:
        cfg = training.load_config(data={
            "stage": "pretrain", "output_dir": str(tmp / f"probe-{layers}"), "seed": 0,
            "model": {"architecture": {**TINY_LLAMA, "num_hidden_layers": layers}}, "tokenizer": {"vocab_size": 512},
            "data": {"paths": [str(corpus)], "max_seq_len": 16, "eval_fraction": 0.0},
            "training": {"max_steps": steps, "micro_batch_size": 1, "logging_steps": steps,
                         "save_steps": 10 * steps, "warmup": 0},
        })
        s = training.run(cfg, progress=False)
        wall[layers] = s.train_wall_s / max(s.steps, 1)
    lo, hi = PROBE_LAYERS
    per_layer = max((wall[hi] - wall[lo]) / (hi - lo), 0.0)
    return per_layer, max(wall[lo] - lo * per_layer, 0.0)


def _device() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"cpu x{torch.get_num_threads()} threads"


_EMBED_PROBE = """
import json, resource, time
t0 = time.perf_counter()
try:
    from rag.embed import encode, load_model, resolve_model
except ImportError:
    print("null"); raise SystemExit
st = load_model(resolve_model(None))
startup = time.perf_counter() - t0
text = " ".join(["calibration sentence about backups and restores"] * 40)
encode(st, [text] * 8)
t1 = time.perf_counter()
encode(st, [text] * {n})
rate = {n} / (time.perf_counter() - t1)
print(json.dumps([rate, startup, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9]))
"""


def _measure_embedding(n: int = 48) -> tuple[float, float, float] | None:
    """(chunks/s on 256-token chunks, import + load seconds, process GB) of the RAG backend's default
    embedder, in a fresh interpreter (this one holds the training run); None without the rag extra."""
    r = subprocess.run([sys.executable, "-c", _EMBED_PROBE.format(n=n)], capture_output=True, text=True, timeout=600)
    if r.returncode != 0 or not r.stdout.strip():
        return None
    data = json.loads(r.stdout.strip().splitlines()[-1])
    return tuple(data) if data else None
