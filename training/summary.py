"""The run summary: what a training run measured, written as run_summary.json beside the model."""
from __future__ import annotations

import resource
import sys
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RunSummary(BaseModel):
    """Measured cost and quality of one run; `estimate` holds the advisor's prediction for the same run."""

    model_config = ConfigDict(extra="forbid")

    stage: str = Field(..., description="pretrain | full | peft")
    method: str | None = Field(None, description="Adapter method for peft runs.")
    output_dir: str
    model: str = Field(..., description="Base model path/id, or the architecture's model_type for pretraining.")
    precision: str = Field(..., description="Precision actually used (auto resolved).")
    batching: str | None = Field(None, description="How rows were batched: packing, length_grouped (padding with "
                                 "length-grouped batches) or blocks (text cut into full rows); data.packing auto resolved "
                                 "per hardware (training.runner.resolve_batching).")
    world_size: int = 1
    steps: int = Field(..., description="Optimizer steps completed (global, including before a resume).")
    resumed_from_step: int | None = None
    epochs: float
    tokens: int = Field(..., description="Non-padding input tokens processed (all ranks, whole run).")
    micro_batches: int | None = Field(None, description="Forward + backward passes this session ran (this rank); "
                                      "the plan of `tunepath run` counts them ahead (training/schedule.py).")
    padded_tokens: int | None = Field(None, description="Rows x width of those micro-batches (this rank, this "
                                      "session): the tokens the model computed on, padding included.")
    tokens_per_s: float = Field(..., description="Non-padding tokens per second of training in this session.")
    train_wall_s: float = Field(..., description="Seconds inside Trainer.train in this session.")
    wall_s: float = Field(..., description="Seconds from start to summary, including loading and saving.")
    peak_memory_bytes: int
    peak_memory_kind: str = Field(..., description="cpu_rss (getrusage ru_maxrss) or cuda_max_allocated.")
    train_loss: float | None = Field(None, description="Mean training loss over this session's steps (Trainer's).")
    final_loss: float | None = Field(
        None, description="Last logged training loss (mean over the last logging window; train_loss if none was logged).")
    eval_loss: float | None = Field(None, description="Mean loss over every held-out loss token (all batches and ranks), "
                                    "whatever the batch size.")
    perplexity: float | None = Field(None, description="exp(eval_loss): per-token perplexity of the held-out examples.")
    trainable_params: int
    total_params: int
    trainable_percent: float
    data: dict[str, Any] = Field(default_factory=dict, description="DataStats: rows, tokens, truncation, packing fill.")
    replica_checksums: list[float] | None = Field(None, description="Sum of trainable weights on each rank (DDP agreement).")
    estimate: dict[str, Any] | None = Field(None, description="The advisor's estimate for this run: FLOPs, memory "
                                                              "breakdown, calibrated time (advisor/estimate.py).")
    model_flops_per_s: float | None = Field(None, description="Achieved model FLOP/s: estimated FLOPs per token "
                                                              "x measured tokens/s.")
    mfu: float | None = Field(None, description="model_flops_per_s / the GPU's dense bf16 peak (catalog); null on CPU, "
                                                "which has no reliable peak figure.")


def peak_memory() -> tuple[int, str]:
    """Peak memory in bytes: CUDA max_memory_allocated when on GPU, else this process's peak RSS."""
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            return int(torch.cuda.max_memory_allocated()), "cuda_max_allocated"
    # ru_maxrss is in KiB on Linux (getrusage(2)), bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024), "cpu_rss"
