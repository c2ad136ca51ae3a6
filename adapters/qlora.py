"""QLoRA (Dettmers et al. 2023): LoRA on a base model quantised to 4-bit NF4 by bitsandbytes (CUDA only)."""
from __future__ import annotations

import importlib.util
from typing import Any, Literal

from pydantic import Field

from adapters.base import register
from adapters.lora import LoraSpec


@register
class QloraSpec(LoraSpec):
    """LoRA fields plus the 4-bit quantisation of the frozen base."""

    method: Literal["qlora"] = "qlora"  # type: ignore[assignment]
    # Merging into a 4-bit base would re-quantise the merged weights; merge onto the 16-bit base instead.
    mergeable = False

    quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type; NF4 is the QLoRA paper's (section 3).")
    double_quant: bool = Field(True, description="Quantise the quantisation constants too (~0.37 bits/param saved, paper section 3).")
    compute_dtype: Literal["bfloat16", "float16"] = Field("bfloat16", description="Dtype of the de-quantised matmuls.")

    def check_environment(self) -> None:
        from advisor.errors import UserError

        import torch

        if not torch.cuda.is_available():
            raise UserError("adapter.method: qlora needs a CUDA GPU (bitsandbytes 4-bit kernels); "
                            "on this machine use method: lora (same adapter, unquantised base)")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise UserError("adapter.method: qlora needs bitsandbytes: pip install bitsandbytes "
                            "(or use method: lora)")

    def model_load_kwargs(self) -> dict[str, Any]:
        import torch
        from transformers import BitsAndBytesConfig

        return {"quantization_config": BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type=self.quant_type, bnb_4bit_use_double_quant=self.double_quant,
            bnb_4bit_compute_dtype=getattr(torch, self.compute_dtype))}

    def to_peft(self, model: Any, tokenizer_path: str | None = None) -> Any:
        from peft import LoraConfig

        return LoraConfig(**self._lora_kwargs())
