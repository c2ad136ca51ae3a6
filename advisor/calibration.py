"""Measured efficiency of *this* machine, so local estimates rest on a measurement, not a guess.

`tunepath calibrate` (tunepath/calibrate.py) runs a short training run on the training backend and
an embedding run on the RAG backend, and stores the achieved model FLOP/s, chunks/s, start-up time
and process memory in $XDG_CACHE_HOME/tunepath/calibration.json (TUNEPATH_CALIBRATION overrides
the path). This module only reads and writes that file - pure Python, so the advisor, the launcher
and the training backend's run summaries all use the same numbers. Local estimates say whether
they rest on a calibration or on the stated guess below.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from advisor.errors import UserError

# Uncalibrated guesses, stated as such in every plan that uses them (measured on a 2-core AVX-512
# cloud VM, the reference machine of docs/benchmarks.md): fp32 matmuls reach ~150 GFLOP/s per core;
# a training step's matmuls, once its per-step costs below are counted apart, 118-120 GFLOP/s on two
# threads (two runs of `tunepath calibrate`). Before those costs were modelled this guess was 40 GFLOP/s,
# a small model's whole step.
DEFAULT_CPU_FLOPS = 118e9
DEFAULT_EMBED_CHUNKS_PER_S = 26.0   # all-MiniLM-L6-v2, 256-token chunks, 2 cores
# Resident memory and start-up of a process that has loaded its backend (ru_maxrss): torch +
# transformers + Trainer 0.46 GB; sentence-transformers + faiss + all-MiniLM-L6-v2 0.58 GB; imports
# of torch + transformers + peft, or of sentence_transformers, take several seconds.
DEFAULT_TRAIN_PROCESS_GB = 0.46
DEFAULT_RAG_PROCESS_GB = 0.58
DEFAULT_TRAIN_STARTUP_S = 8.0
DEFAULT_RAG_STARTUP_S = 8.0
# Costs of each micro-batch that do not scale with its FLOPs. On a CPU every op runs synchronously, so eager
# PyTorch's per-op work (dispatch, autograd bookkeeping, small elementwise kernels) adds to the matmuls, and for a
# small model it is most of the step: a 2-layer, 64-wide model steps ~100x slower than FLOPs / FLOP/s says.
# `tunepath calibrate` measures both from two tiny runs (1 and 6 layers); the defaults are the mean of two runs of it
# on the reference machine, 2 threads (2.6 / 3.0 ms per layer, 5.9 / 4.1 ms per micro-batch). On a GPU the host's
# dispatch is a floor under the GPU's time instead (estimate.host_seconds).
DEFAULT_CPU_SECONDS_PER_LAYER = 2.8e-3
DEFAULT_CPU_SECONDS_PER_MICRO_BATCH = 5.0e-3


@dataclass
class Calibration:
    train_flops_per_s: float
    embed_chunks_per_s: float | None
    measured_at: str
    device: str
    model: str
    precision: str
    calibrated: bool = True
    train_process_gb: float = DEFAULT_TRAIN_PROCESS_GB
    rag_process_gb: float = DEFAULT_RAG_PROCESS_GB
    train_startup_s: float = DEFAULT_TRAIN_STARTUP_S
    rag_startup_s: float = DEFAULT_RAG_STARTUP_S
    train_seconds_per_layer: float = DEFAULT_CPU_SECONDS_PER_LAYER           # per micro-batch, CPU
    train_seconds_per_micro_batch: float = DEFAULT_CPU_SECONDS_PER_MICRO_BATCH  # beyond the layers, CPU

    def describe(self) -> str:
        step = (f" + {self.train_seconds_per_layer * 1e3:.1f} ms per layer and "
                f"{self.train_seconds_per_micro_batch * 1e3:.1f} ms per micro-batch")
        if not self.calibrated:   # both guesses: a RAG plan's estimates rest on the embedding one
            emb = f", {self.embed_chunks_per_s:.0f} chunks/s embedding" if self.embed_chunks_per_s else ""
            return (f"uncalibrated guesses: {self.train_flops_per_s / 1e9:.0f} GFLOP/s training{step}{emb} "
                    "(run `tunepath calibrate` to measure this machine)")
        emb = f", {self.embed_chunks_per_s:.1f} chunks/s embedding" if self.embed_chunks_per_s else ""
        return (f"calibrated {self.measured_at} on {self.device} ({self.model}, {self.precision}): "
                f"{self.train_flops_per_s / 1e9:.1f} GFLOP/s training{step}{emb}")


def path() -> Path:
    if os.environ.get("TUNEPATH_CALIBRATION"):
        return Path(os.environ["TUNEPATH_CALIBRATION"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tunepath" / "calibration.json"


def load() -> Calibration:
    p = path()
    if p.is_file():
        try:
            return Calibration(**json.loads(p.read_text()))
        except (ValueError, TypeError) as e:
            raise UserError(f"{p}: unreadable calibration ({e}); run `tunepath calibrate` again") from None
    return Calibration(train_flops_per_s=DEFAULT_CPU_FLOPS, embed_chunks_per_s=DEFAULT_EMBED_CHUNKS_PER_S,
                       measured_at="", device="cpu", model="", precision="", calibrated=False)


def save(cal: Calibration) -> Path:
    from advisor.textio import atomic_write_text

    return atomic_write_text(path(), json.dumps(asdict(cal), indent=2))


def local_train_estimate(arch: Any, setup: Any, cal: Calibration | None = None, gpu: Any = None,
                         micro_batches: float | None = None, real_tokens: float | None = None) -> dict[str, Any]:
    """The estimator's FLOPs and memory for a run on this machine, timed with this machine's calibration.

    One function for the launcher's plan and the training backend's run summary, so the estimate a
    user confirms and the one printed beside the measurement are the same. Memory on CPU adds the
    process's own resident memory (libraries, allocator), measured by `tunepath calibrate`. On a GPU
    (`gpu`: the catalog row of this machine's device, setup.device "cuda") without a calibration measured
    on it, the time is the estimator's for that GPU at its default MFU - never the CPU guess.

    By default every micro-batch is micro_batch full rows of setup.seq_len tokens (packed SFT rows, text blocks).
    A run that pads one example per row (prompt and prefix tuning, `packing: false`) runs more, narrower
    micro-batches: pass their count (`micro_batches`, per GPU, training/schedule.py counts them) with setup.tokens
    the tokens computed on (padding and prompt tuning's virtual tokens included) and setup.seq_len the widest row
    (it sizes the activations); FLOPs and time then use the mean row width. `real_tokens`: the non-padding tokens,
    which the tokens/s is of (as the run summary measures it).
    """
    from advisor.estimate import GB, estimate_training, training_flops, training_memory

    cal = cal or load()
    timing = setup
    if micro_batches:
        width = setup.tokens / (micro_batches * setup.micro_batch * setup.gpus)
        timing = setup.model_copy(update={"seq_len": max(1, round(width))})
    flops, mem = training_flops(arch, timing), training_memory(arch, setup)
    on_gpu = setup.device == "cuda" and gpu is not None
    if on_gpu and not gpu_calibrated(cal):
        est = estimate_training(arch, gpu, timing)
        seconds = est.hours * 3600
        source = (f"{gpu.id} at the estimator's default MFU {est.mfu:.2f} (not calibrated on this GPU: "
                  "`tunepath calibrate` measures it)")
    else:
        overhead = step_overhead_seconds(arch, timing, cal, micro_batches)
        # a CPU runs the ops one after another; a GPU runs its kernels while the host issues the next ones
        seconds = (max if on_gpu else sum)((flops / cal.train_flops_per_s, overhead))
        source = cal.describe()
    process_gb = cal.train_process_gb if setup.device == "cpu" else 0.0
    tokens = real_tokens if real_tokens is not None else setup.tokens
    out = {"flops": flops, "memory_gb": mem.as_gb(), "process_gb": process_gb,
           "peak_memory_gb": round(mem.total / GB + process_gb, 3), "train_wall_s": round(seconds, 2),
           "wall_s": round(seconds + cal.train_startup_s, 1),
           "tokens_per_s": round(tokens / seconds, 1) if seconds else None,
           "tokens": tokens, "calibration": source}
    if micro_batches:
        out.update(micro_batches=micro_batches, computed_tokens=setup.tokens)
    return out


def step_overhead_seconds(arch: Any, setup: Any, cal: Calibration, micro_batches: float | None = None) -> float:
    """The per-micro-batch costs that FLOP/s misses (see DEFAULT_CPU_SECONDS_PER_LAYER), over the run's micro-batches
    (`micro_batches`, per GPU; by default those of full rows: tokens / (seq_len x micro_batch x GPUs)). The per-layer
    cost was timed on fully trained layers; a layer of another method, or under gradient checkpointing's replay,
    costs in proportion to the ops it issues (the counts of advisor.estimate.HOST_OPS: a LoRA layer 238 against 211,
    checkpointing ~1.6x)."""
    from advisor.estimate import HOST_OPS, host_ops_per_layer

    if not micro_batches:
        micro_batches = setup.tokens / (setup.seq_len * setup.micro_batch * setup.gpus)
    layers = arch.num_layers * host_ops_per_layer(arch, setup) / HOST_OPS[False]["full"]
    return micro_batches * (layers * cal.train_seconds_per_layer + cal.train_seconds_per_micro_batch)


def gpu_calibrated(cal: Calibration) -> bool:
    """Whether the calibration was measured on a CUDA device (tunepath calibrate names a CPU 'cpu x N threads')."""
    return cal.calibrated and not cal.device.startswith("cpu")
