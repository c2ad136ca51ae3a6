"""PEFT methods behind one registry: `adapter: {method: lora | dora | ia3 | prompt_tuning | prefix_tuning | qlora, ...}`.

Importing this package costs pydantic only; the functions that need torch/peft import
`adapters.ops` when called.
"""
from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field

from adapters import dora, ia3, lora, prefix_tuning, prompt_tuning, qlora  # noqa: F401  (registers the methods)
from adapters.base import REGISTRY, AdapterConfig, register

#: The `adapter:` section of a train config: one of the registered methods, chosen by `method`.
AdapterSpec = Annotated[Union[tuple(REGISTRY.values())], Field(discriminator="method")]  # type: ignore[valid-type]


def methods() -> list[str]:
    """Names accepted as `adapter.method`."""
    return sorted(REGISTRY)


def build_peft_model(model: Any, spec: AdapterConfig, tokenizer_path: str | None = None,
                     task_type: str | None = None) -> Any:
    """Wrap a transformers model with the adapter; see adapters.ops.build_peft_model."""
    from adapters import ops

    return ops.build_peft_model(model, spec, tokenizer_path, task_type)


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    from adapters import ops

    return ops.count_parameters(model)


def load_with_adapter(adapter_dir: str, base: str | None = None, **kw: Any) -> Any:
    """Base model + adapter loaded with plain peft (PeftModel.from_pretrained)."""
    from adapters import ops

    return ops.load_with_adapter(adapter_dir, base, **kw)


def merge(adapter_dir: str, out_dir: str, base: str | None = None, trust_remote_code: bool = False) -> Any:
    """Merge an adapter into its base with merge_and_unload and save the plain model to out_dir."""
    from adapters import ops

    return ops.merge(adapter_dir, out_dir, base, trust_remote_code)


__all__ = ["AdapterConfig", "AdapterSpec", "REGISTRY", "register", "methods", "build_peft_model",
           "count_parameters", "load_with_adapter", "merge"]
