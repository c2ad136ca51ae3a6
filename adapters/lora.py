"""LoRA (Hu et al. 2021): a low-rank update B·A added to frozen linear weights."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PositiveInt

from adapters.base import AdapterConfig, register

TargetModules = list[str] | Literal["all-linear"] | None


@register
class LoraSpec(AdapterConfig):
    """LoRA on the named linear modules; peft's per-architecture default (q_proj, v_proj for Llama) when unset."""

    method: Literal["lora"] = "lora"
    targets_linear = True

    r: PositiveInt = Field(8, description="Rank of the update matrices (LoRA paper, section 4).")
    alpha: float = Field(16, gt=0, description="Scaling numerator: the update is scaled by alpha / r (alpha / sqrt(r) with rslora).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input path.")
    target_modules: TargetModules = Field(
        None, description="Linear module names (e.g. [q_proj, v_proj]), 'all-linear', or null for peft's default.")
    bias: Literal["none", "all", "lora_only"] = Field("none", description="Which biases to train.")
    use_rslora: bool = Field(False, description="Rank-stabilised scaling alpha/sqrt(r) (Kalajdzievski 2023).")
    modules_to_save: list[str] | None = Field(
        None, description="Modules trained in full and saved with the adapter (e.g. [lm_head] for new tokens).")

    def _lora_kwargs(self) -> dict[str, Any]:
        return dict(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout, target_modules=self.target_modules,
                    bias=self.bias, use_rslora=self.use_rslora, modules_to_save=self.modules_to_save,
                    task_type="CAUSAL_LM")

    def to_peft(self, model: Any, tokenizer_path: str | None = None) -> Any:
        from peft import LoraConfig

        return LoraConfig(**self._lora_kwargs())
