"""Data that crosses the rag/ boundary: plain pydantic models, so the CLI, the launcher and
JSON output all see the same shapes (and typoed keys fail loudly: extra="forbid")."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from advisor.retrieval import CHUNK_OVERLAP, CHUNK_TOKENS
from rag.ann import CHOICES, KIND_NAMES

Mode = Literal["dense", "bm25", "hybrid"]
IndexKind = Literal[CHOICES]  # "auto" or a kind registered in rag/ann.py

MANIFEST_FORMAT = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)   # inf/nan: one-line error, never Infinity in JSON


class Chunking(_Model):
    chunk_tokens: int = Field(CHUNK_TOKENS, description="requested chunk length in embedding-model tokens")
    overlap: int = Field(CHUNK_OVERLAP, description="tokens shared by consecutive chunks of a document")
    effective_chunk_tokens: int = Field(0, description="chunk_tokens capped at what the model reads "
                                        "(max_seq_length minus special tokens)")
    tokenizer: str = Field("", description="the embedding model's tokenizer class that counted tokens")


class IndexSpec(_Model):
    kind: Literal[KIND_NAMES]
    auto: bool = Field(True, description="chosen by size (re-chosen as the corpus grows) rather than by --index")
    params: dict[str, int | float | str] = Field(default_factory=dict)


class Counts(_Model):
    files: int = 0
    documents: int = 0
    chunks: int = 0
    vectors: int = Field(0, description="vectors stored in FAISS, including deleted-but-not-yet-purged ones")
    dead_vectors: int = Field(0, description="HNSW only: deleted chunks still in the graph, filtered at query time")


class Manifest(_Model):
    """The commit point of an index: it names the SQLite and FAISS files of the live generation."""

    format: int = MANIFEST_FORMAT
    generation: int
    model: str = Field(description="embedding model as resolved at build time (hub id or absolute path)")
    model_sha256: str = Field("", description="content hash of the model folder at build time; queries with "
                              "a model whose files differ (e.g. re-tuned at the same path) are refused")
    dim: int
    normalized: bool = True
    metric: Literal["inner_product"] = "inner_product"
    max_seq_length: int
    chunking: Chunking
    index: IndexSpec
    counts: Counts
    sqlite_file: str
    faiss_file: str
    updated_at: str


class SkippedFile(_Model):
    path: str
    reason: str


class IndexReport(_Model):
    index_dir: str
    manifest: Manifest
    files_seen: int = 0
    files_unchanged: int = 0
    files_added: int = 0
    files_changed: int = 0
    files_deleted: int = 0
    skipped: list[SkippedFile] = Field(default_factory=list)
    docs_added: int = 0
    docs_changed: int = 0
    docs_deleted: int = 0
    docs_unchanged: int = 0
    chunks_embedded: int = Field(0, description="chunks sent through the embedding model in this run")
    chunks_reused: int = Field(0, description="chunks whose stored vectors were kept without re-embedding")
    chunks_removed: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    chunks_per_s: float = Field(0.0, description="chunks_embedded / embed_seconds")
    up_to_date: bool = False
    notes: list[str] = Field(default_factory=list)


class Hit(_Model):
    rank: int
    chunk_id: int
    doc_id: str
    source: str
    start: int = Field(description="character offset of the chunk in the loaded document text")
    end: int
    text: str
    score: float = Field(description="cosine (dense), BM25 (bm25) or RRF score (hybrid)")
    dense_rank: int | None = None
    bm25_rank: int | None = None


class Metrics(_Model):
    mode: Mode
    queries: int
    ndcg_at_10: float
    recall_at_1: float
    recall_at_5: float
    recall_at_10: float
    recall_at_100: float
    mrr_at_10: float
    qrels_docs: int = Field(0, description="distinct document ids the evaluated queries' qrels name")
    qrels_docs_in_index: int = Field(0, description="how many of them are documents of the index")
    note: str | None = Field(None, description="when some qrels ids are not in the queries file or the index: how many, with examples")


class Answer(_Model):
    question: str
    answer: str | None = Field(None, description="generated text; None when no generator is configured")
    cited: list[int] = Field(default_factory=list, description="passage numbers [n] the answer cites")
    passages: list[Hit]
    generator: str | None = None
