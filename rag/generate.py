"""Answers from retrieved passages with a local causal LM, citing passages as [n].

Without a generator the passages themselves are the answer: retrieval is still useful, and no
text is invented."""
from __future__ import annotations

import os
import re
from pathlib import Path

from advisor.errors import UserError
from rag.models import Answer, Hit, Mode
from rag.retrieve import RagIndex

INSTRUCTION = ("Answer the question using only the numbered passages below. Cite the passages you "
               "use as [1], [2], ... If the passages do not contain the answer, say so.")
_CITE = re.compile(r"\[(\d+)\]")


def build_prompt(question: str, passages: list[Hit]) -> str:
    blocks = "\n\n".join(f"[{i}] ({Path(h.source).name if h.source else h.doc_id}) {h.text.strip()}"
                         for i, h in enumerate(passages, 1))
    return f"{INSTRUCTION}\n\n{blocks}\n\nQuestion: {question}"


def cited(text: str, n_passages: int) -> list[int]:
    """Passage numbers the text cites, in order of first citation, ignoring out-of-range ones."""
    out: list[int] = []
    for m in _CITE.finditer(text):
        i = int(m.group(1))
        if 1 <= i <= n_passages and i not in out:
            out.append(i)
    return out


def _load_generator(generator: str):
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise UserError("--generator needs transformers: pip install 'tunepath[train]'") from None
    src = str(Path(generator).expanduser()) if Path(generator).expanduser().exists() else generator
    try:
        tok = AutoTokenizer.from_pretrained(src, trust_remote_code=False)
        lm = AutoModelForCausalLM.from_pretrained(src, trust_remote_code=False)
    except (OSError, ValueError) as e:
        raise UserError(f"--generator {generator}: cannot load a causal LM ({str(e).splitlines()[0]})") from None
    lm.eval()
    return tok, lm


def generate(question: str, passages: list[Hit], generator: str, max_new_tokens: int = 200) -> str:
    """Greedy decoding (deterministic, so an answer can be reproduced and checked)."""
    import torch

    tok, lm = _load_generator(generator)
    limit = int(getattr(lm.config, "max_position_embeddings", 0) or 2048)
    keep = list(passages)
    while True:  # drop the lowest-ranked passages until the prompt fits beside the answer
        prompt = build_prompt(question, keep)
        if getattr(tok, "chat_template", None):
            ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                          return_tensors="pt", return_dict=True)["input_ids"]
        else:
            ids = tok(prompt + "\nAnswer:", return_tensors="pt")["input_ids"]
        if ids.shape[1] + max_new_tokens <= limit or len(keep) <= 1:
            break
        keep.pop()
    ids = ids[:, -max(1, limit - max_new_tokens):]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    with torch.inference_mode():
        out = lm.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                          do_sample=False, pad_token_id=pad)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


def answer(index_dir: str | os.PathLike, question: str, k: int = 5, mode: Mode = "hybrid",
           generator: str | None = None, max_new_tokens: int = 200) -> Answer:
    with RagIndex(index_dir) as idx:
        passages = idx.search(question, k, mode)
    if generator is None:
        return Answer(question=question, passages=passages)
    text = generate(question, passages, generator, max_new_tokens)
    return Answer(question=question, answer=text, cited=cited(text, len(passages)), passages=passages,
                  generator=generator)
