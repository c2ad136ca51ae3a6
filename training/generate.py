"""A quick look at a trained model: greedy (or sampled) continuation of one prompt."""
from __future__ import annotations

from pathlib import Path

from advisor.errors import UserError


def generate(model_dir: str, prompt: str, adapter: str | None = None, max_new_tokens: int = 64, chat: bool = True,
             temperature: float = 0.0, seed: int = 0, trust_remote_code: bool = False) -> str:
    """Load with plain transformers (+ peft for an adapter), render the prompt with the chat template, generate."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars

    for label, d in (("MODEL_DIR", model_dir), ("--adapter", adapter)):
        if d is not None and not Path(d).is_dir():
            raise UserError(f"{label} {d}: not a directory")
    tok_dir = adapter if adapter and (Path(adapter) / "tokenizer_config.json").is_file() else model_dir
    tok = AutoTokenizer.from_pretrained(tok_dir, trust_remote_code=trust_remote_code)
    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, trust_remote_code=trust_remote_code)
    except OSError as e:
        raise UserError(f"MODEL_DIR {model_dir}: not a model directory ({str(e).splitlines()[0]})") from None
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    if chat and getattr(tok, "chat_template", None):
        text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
        enc = tok(text, add_special_tokens=False, return_tensors="pt")
    else:
        enc = tok(prompt, return_tensors="pt")
    set_seed(seed)
    with torch.no_grad():
        ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=temperature > 0,
                             temperature=temperature if temperature > 0 else None, top_p=None, top_k=None,
                             pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
                             eos_token_id=tok.eos_token_id)
    return tok.decode(ids[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
