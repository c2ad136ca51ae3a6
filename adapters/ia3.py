"""IA3 (Liu et al. 2022): learned vectors rescaling keys, values and feed-forward activations."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from adapters.base import AdapterConfig, register


@register
class Ia3Spec(AdapterConfig):
    """IA3 with peft's per-architecture defaults (Llama: k_proj, v_proj, down_proj) unless named."""

    method: Literal["ia3"] = "ia3"
    targets_linear = True

    target_modules: list[str] | Literal["all-linear"] | None = Field(
        None, description="Linear modules to rescale; null for peft's default for the architecture.")
    feedforward_modules: list[str] | None = Field(
        None, description="Subset of target_modules that are feed-forward (scaled on the input, IA3 paper fig. 1).")

    def to_peft(self, model: Any, tokenizer_path: str | None = None) -> Any:
        from peft import IA3Config

        ff = self.feedforward_modules
        if ff is None and isinstance(self.target_modules, list):
            # peft requires feedforward_modules to be a subset of target_modules; MLP output
            # projections are the feed-forward ones in Llama/Qwen2 (peft's IA3 default mapping).
            ff = [m for m in self.target_modules if m in ("down_proj", "fc2", "c_proj", "w2")]
        return IA3Config(target_modules=self.target_modules, feedforward_modules=ff, task_type="CAUSAL_LM")
