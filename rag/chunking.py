"""Split documents into windows of embedding-model tokens.

Counting in the model's own tokens matters: sentence-transformers silently truncates input past
max_seq_length, so a chunk measured in words or characters can lose its tail unseen."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class Span:
    start: int  # character offsets into the document text
    end: int
    n_tokens: int


def effective_chunk_tokens(requested: int, max_seq_length: int, n_special: int) -> int:
    """The model reads max_seq_length tokens including [CLS]/[SEP]-style specials."""
    return max(1, min(requested, max_seq_length - n_special))


def windows(offsets: Sequence[tuple[int, int]], size: int, overlap: int) -> list[tuple[int, int]]:
    """Token windows [i, j) of at most `size` tokens, consecutive ones sharing about `overlap`.

    Windows start and end at word boundaries (a gap in the character offsets) when one exists
    within the window, so that re-tokenising the chunk text gives the same token count
    (a window starting at a '##' word-piece would tokenise differently)."""
    n = len(offsets)
    if n == 0:
        return []
    if not 0 <= overlap < size:
        raise ValueError(f"overlap must be in [0, {size}), got {overlap}")
    # boundary[i]: a new word starts at token i (whitespace before it, or punctuation split).
    boundary = [True] + [offsets[i][0] > offsets[i - 1][1] for i in range(1, n)]
    out: list[tuple[int, int]] = []
    start = 0
    while True:
        end = min(start + size, n)
        if end < n:
            # back off to a word boundary, but never below half the window
            j = end
            while j > start + size // 2 and not boundary[j]:
                j -= 1
            if boundary[j] and j > start:
                end = j
        out.append((start, end))
        if end >= n:
            return out
        nxt = max(end - overlap, start + 1)
        k = nxt
        while k > start + 1 and not boundary[k]:
            k -= 1
        start = k if boundary[k] and k > start else nxt


def chunk_texts(texts: Sequence[str], tokenizer: Any, size: int, overlap: int) -> list[list[Span]]:
    """Spans for each text, using a Hugging Face fast tokenizer's offset mapping."""
    enc = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True,
                    return_attention_mask=False, return_token_type_ids=False, verbose=False)
    result = []
    for offsets in enc["offset_mapping"]:
        spans = []
        for i, j in windows(offsets, size, overlap):
            spans.append(Span(start=offsets[i][0], end=offsets[j - 1][1], n_tokens=j - i))
        result.append(spans)
    return result
