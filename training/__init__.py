"""The training backend: `training.run(TrainConfig) -> RunSummary` for pretrain, full and peft.

Importing the package costs pydantic only; `run` imports torch/transformers when called.
"""
from __future__ import annotations

from typing import Any

from training.config import TrainConfig, load_config
from training.summary import RunSummary


def run(config: TrainConfig, resume: bool = False, force: bool = False, progress: bool = True,
        on_plan: Any = None) -> RunSummary:
    """Train as configured; see training.runner.run."""
    from training import runner

    return runner.run(config, resume=resume, force=force, progress=progress, on_plan=on_plan)


__all__ = ["TrainConfig", "RunSummary", "load_config", "run"]
