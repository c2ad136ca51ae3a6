"""The training backend: `training.run(TrainConfig) -> RunSummary` for pretrain, full and peft.

Names resolve lazily (PEP 562), so `import training` - done by the CLI at every start -
costs nothing; `run` imports torch/transformers when called.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"TrainConfig": "training.config", "load_config": "training.config", "RunSummary": "training.summary"}


def run(config: Any, resume: bool = False, force: bool = False, progress: bool = True, on_plan: Any = None):
    """Train as configured; see training.runner.run."""
    from training import runner

    return runner.run(config, resume=resume, force=force, progress=progress, on_plan=on_plan)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'training' has no attribute {name!r}")


__all__ = ["TrainConfig", "RunSummary", "load_config", "run"]
