"""Prefix tuning (Li & Liang 2021): trained key/value prefixes in every attention layer."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PositiveInt

from adapters.base import AdapterConfig, register


@register
class PrefixTuningSpec(AdapterConfig):
    """Trains num_virtual_tokens key/value vectors per layer (optionally through an MLP re-parametrisation)."""

    method: Literal["prefix_tuning"] = "prefix_tuning"
    supports_packing = False
    mergeable = False

    num_virtual_tokens: PositiveInt = Field(20, description="Prefix length per layer.")
    prefix_projection: bool = Field(False, description="Re-parametrise the prefix through a 2-layer MLP (paper, section 4.3).")
    encoder_hidden_size: PositiveInt | None = Field(None, description="Hidden size of that MLP (default: model hidden size).")

    def to_peft(self, model: Any, tokenizer_path: str | None = None) -> Any:
        from peft import PrefixTuningConfig

        kw: dict[str, Any] = {}
        if self.prefix_projection:
            kw = dict(prefix_projection=True, encoder_hidden_size=self.encoder_hidden_size or model.config.hidden_size)
        return PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=self.num_virtual_tokens, **kw)
