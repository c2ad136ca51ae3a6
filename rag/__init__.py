"""Retrieval-augmented generation backend: ingest -> chunk -> embed -> FAISS -> query -> evaluate.

Python API (mirrors `tunepath rag ...`; names resolve lazily so `import rag` stays cheap and
torch-free until one of them is used):

    build_index(paths, out_dir, model=None, chunk_tokens=256, overlap=32, index="auto",
                rebuild=False, progress=None) -> IndexReport   (chunk defaults: advisor/retrieval.py)
    search(index_dir, query, k=5, mode="hybrid") -> list[Hit]
    answer(index_dir, question, k=5, mode="hybrid", generator=None) -> Answer
    evaluate(index_dir, queries, qrels, mode="hybrid") -> Metrics
    rag.tune.tune(pairs, out, base=None, method="full", epochs=1.0, hard_negatives="bm25", ...)
                               -> TuneReport (the submodule's name, so it is not re-exported here)
    RagIndex(index_dir)        an opened index for many queries (.search, .evaluate)
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "build_index": "rag.indexer",
    "search": "rag.retrieve",
    "evaluate": "rag.retrieve",
    "load_queries": "rag.retrieve",
    "load_qrels": "rag.retrieve",
    "RagIndex": "rag.retrieve",
    "answer": "rag.generate",
    "TuneReport": "rag.tune",
    "IndexReport": "rag.models",
    "Hit": "rag.models",
    "Metrics": "rag.models",
    "Answer": "rag.models",
    "Manifest": "rag.models",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
