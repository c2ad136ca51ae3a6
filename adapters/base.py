"""The adapter registry: one pydantic config per PEFT method, registered by its `method` name.

Each method lives in its own module (peft's layout: one folder per tuner) and maps its
validated fields onto a peft config in `to_peft`. Only pydantic is imported here; peft and
torch are imported inside `to_peft`, so `import adapters` stays cheap for the CLI.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

REGISTRY: dict[str, type["AdapterConfig"]] = {}


def register(cls: type["AdapterConfig"]) -> type["AdapterConfig"]:
    """Class decorator: make a method selectable as `adapter.method: <name>` in a train config."""
    name = cls.model_fields["method"].default
    if name in REGISTRY:
        raise ValueError(f"adapter method {name!r} registered twice")
    REGISTRY[name] = cls
    return cls


class AdapterConfig(BaseModel):
    """Fields common to every method; subclasses add theirs and implement `to_peft`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)   # inf/nan: one-line error, never Infinity in JSON

    method: str
    # Prompt-learning methods prepend virtual tokens once per row: packed examples after the
    # first would not see them, so the trainer refuses packing for them.
    supports_packing: ClassVar[bool] = True
    # merge_and_unload exists only for methods that add to existing weights (peft docs, "Merge").
    mergeable: ClassVar[bool] = True
    # Modules named in target_modules must be nn.Linear layers of the base model.
    targets_linear: ClassVar[bool] = False

    @abstractmethod
    def to_peft(self, model: Any, tokenizer_path: str | None = None) -> Any:
        """Return the peft config for `model` (a transformers PreTrainedModel)."""

    def check_environment(self) -> None:
        """Raise UserError when this machine cannot run the method (e.g. QLoRA without CUDA)."""

    def model_load_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for `AutoModelForCausalLM.from_pretrained` (QLoRA: quantization)."""
        return {}
