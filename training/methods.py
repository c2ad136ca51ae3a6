"""The one table of training methods: `pretrain` and `full`, plus every PEFT method registered in
adapters/. The estimator CLI, the launcher and the run summaries read it; a new PEFT method is one
module in adapters/ and, where its cost differs from LoRA's, one entry in the estimator
(advisor.estimate.ESTIMABLE_METHODS) - tests/test_architecture.py checks that every method here
can be estimated.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainingMethod:
    name: str          # `--method` of `tunepath estimate`, `adapter.method` of a train config
    stage: str         # the training stage that runs it: pretrain | full | peft
    description: str
    estimable: bool    # the estimator models its memory and FLOPs


def methods() -> dict[str, TrainingMethod]:
    """Every method, in a stable order: full-weight stages first, then the adapters by name."""
    import adapters
    from advisor.estimate import ESTIMABLE_METHODS

    rows = [TrainingMethod("pretrain", "pretrain", "all weights from random initialisation", True),
            TrainingMethod("full", "full", "all weights of an existing model", True)]
    for name in adapters.methods():
        doc = (adapters.REGISTRY[name].__doc__ or name).strip().splitlines()[0]
        rows.append(TrainingMethod(name, "peft", doc, name in ESTIMABLE_METHODS))
    return {m.name: m for m in rows}


def of_run(stage: str, adapter_method: str | None) -> str:
    """The method a training run uses: its stage, or its adapter's method for stage peft."""
    return adapter_method if stage == "peft" and adapter_method else stage
