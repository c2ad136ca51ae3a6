"""Answers from retrieved passages with a local causal LM, citing passages as [n].

Without a generator the passages themselves are the answer: retrieval is still useful, and no
text is invented."""
from __future__ import annotations

import os
import re
from pathlib import Path

from advisor.errors import UserError
from advisor.retrieval import TOP_K
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


def generate(question: str, passages: list[Hit], generator: str, max_new_tokens: int = 200) -> str:
    """Greedy decoding (deterministic, so an answer can be reproduced and checked), with the lowest-ranked
    passages dropped until the prompt fits the generator's context beside the answer."""
    try:
        from training import generate as gen
    except ImportError:
        raise UserError("--generator needs transformers: pip install 'tunepath[train]'") from None
    tok, lm = gen.load(generator, field="--generator")
    limit = gen.context_limit(lm)
    keep = list(passages)
    while True:
        ids = gen.prompt_ids(tok, build_prompt(question, keep) + ("" if getattr(tok, "chat_template", None)
                                                                   else "\nAnswer:"))
        if ids.shape[1] + max_new_tokens <= limit or len(keep) <= 1:
            break
        keep.pop()
    ids = ids[:, -max(1, limit - max_new_tokens):]
    return gen.complete(tok, lm, ids, max_new_tokens)[0].strip()


def answer(index_dir: str | os.PathLike, question: str, k: int = TOP_K, mode: Mode = "hybrid",
           generator: str | None = None, max_new_tokens: int = 200) -> Answer:
    if max_new_tokens < 1:  # checked before the search and the model load (generate() raised a ValueError)
        raise UserError(f"--max-new-tokens {max_new_tokens}: expected at least 1")
    with RagIndex(index_dir) as idx:
        passages = idx.search(question, k, mode)
    if generator is None:
        return Answer(question=question, passages=passages)
    text = generate(question, passages, generator, max_new_tokens)
    return Answer(question=question, answer=text, cited=cited(text, len(passages)), passages=passages,
                  generator=generator)
