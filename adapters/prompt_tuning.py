"""Prompt tuning (Lester et al. 2021): trained virtual-token embeddings prepended to the input."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PositiveInt, model_validator

from adapters.base import AdapterConfig, register


@register
class PromptTuningSpec(AdapterConfig):
    """Only num_virtual_tokens x hidden_size parameters are trained; the model is untouched."""

    method: Literal["prompt_tuning"] = "prompt_tuning"
    supports_packing = False
    mergeable = False

    num_virtual_tokens: PositiveInt = Field(20, description="Number of trained virtual tokens.")
    init: Literal["random", "text"] = Field("random", description="Initialise from random vectors or from init_text.")
    init_text: str | None = Field(None, description="Text whose token embeddings initialise the prompt (init: text).")

    @model_validator(mode="after")
    def _text_needs_text(self):
        if self.init == "text" and not self.init_text:
            raise ValueError("init: text needs init_text")
        return self

    def to_peft(self, model: Any, tokenizer_path: str | None = None) -> Any:
        from peft import PromptTuningConfig

        kw: dict[str, Any] = {}
        if self.init == "text":
            kw = dict(prompt_tuning_init="TEXT", prompt_tuning_init_text=self.init_text,
                      tokenizer_name_or_path=tokenizer_path)
        return PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=self.num_virtual_tokens, **kw)
