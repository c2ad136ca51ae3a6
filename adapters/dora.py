"""DoRA (Liu et al. 2024): LoRA on the direction plus a trained per-output magnitude vector."""
from __future__ import annotations

from typing import Any, Literal

from adapters.base import register
from adapters.lora import LoraSpec


@register
class DoraSpec(LoraSpec):
    """Same fields as LoRA; peft adds one magnitude parameter per output feature of each target."""

    method: Literal["dora"] = "dora"  # type: ignore[assignment]

    def to_peft(self, model: Any, tokenizer_path: str | None = None) -> Any:
        from peft import LoraConfig

        return LoraConfig(**self._lora_kwargs(), use_dora=True)
