"""The one way tunepath generates text with a local causal LM: load with plain transformers (+ peft
for an adapter), render the prompt with the chat template when there is one, decode greedily.

Used by `tunepath generate`, RAG answers (rag/generate.py) and the prompting path's evaluation
(tunepath/launcher.py), so all three see the same model loading, template and stopping.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from advisor.errors import UserError


def load(model: str, adapter: str | None = None, trust_remote_code: bool = False,
         field: str = "MODEL_DIR") -> tuple[Any, Any]:
    """(tokenizer, model in eval mode) from a local folder or hub id, with an optional peft adapter."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars
    if adapter is not None and not Path(adapter).is_dir():
        raise UserError(f"--adapter {adapter}: not a directory")
    local = Path(model).expanduser().exists()
    src = str(Path(model).expanduser()) if local else model
    if not local and model.startswith((".", "/", "~")):  # a path, not a hub id: say so, not "Repo id must be..."
        raise UserError(f"{field} {model}: no such folder (expected a local causal LM folder or a hub id org/name)")
    tok_dir = adapter if adapter and (Path(adapter) / "tokenizer_config.json").is_file() else src
    try:
        tok = AutoTokenizer.from_pretrained(tok_dir, trust_remote_code=trust_remote_code)
        lm = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise UserError(f"{field} {model}: cannot load a causal LM ({str(e).splitlines()[0]})") from None
    if adapter:
        from peft import PeftModel

        lm = PeftModel.from_pretrained(lm, adapter)
    return tok, lm.eval()


def prompt_ids(tok: Any, prompt: str, chat: bool = True) -> Any:
    """Input ids of `prompt`: rendered with the chat template (as a user turn) when the tokenizer has one."""
    if chat and getattr(tok, "chat_template", None):
        return tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                       return_tensors="pt", return_dict=True)["input_ids"]
    return tok(prompt, return_tensors="pt")["input_ids"]


def complete(tok: Any, lm: Any, ids: Any, max_new_tokens: int = 64, temperature: float = 0.0,
             seed: int = 0) -> tuple[str, int]:
    """(decoded continuation, number of new tokens) of `ids`; greedy unless temperature > 0."""
    import torch
    from transformers import set_seed

    set_seed(seed)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    with torch.inference_mode():
        out = lm.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                          do_sample=temperature > 0, temperature=temperature if temperature > 0 else None,
                          top_p=None, top_k=None, pad_token_id=pad, eos_token_id=tok.eos_token_id)
    new = out[0, ids.shape[1]:]
    return tok.decode(new, skip_special_tokens=True), int(new.shape[0])


def context_limit(lm: Any, default: int = 2048) -> int:
    """The model's context window (max_position_embeddings)."""
    return int(getattr(lm.config, "max_position_embeddings", 0) or default)


def generate(model_dir: str, prompt: str, adapter: str | None = None, max_new_tokens: int = 64, chat: bool = True,
             temperature: float = 0.0, seed: int = 0, trust_remote_code: bool = False) -> str:
    """Load, render, generate: a quick look at a trained model (`tunepath generate`)."""
    if not Path(model_dir).is_dir():
        raise UserError(f"MODEL_DIR {model_dir}: not a directory")
    tok, lm = load(model_dir, adapter, trust_remote_code)
    return complete(tok, lm, prompt_ids(tok, prompt, chat), max_new_tokens, temperature, seed)[0]
