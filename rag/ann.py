"""FAISS index choice, construction, persistence and search. Vectors carry the SQLite chunk id
as their FAISS id, so a search result maps straight back to a chunk row.

Each index kind is one entry of the KINDS registry below (like adapters/ for PEFT methods): its
name, FAISS construction, parameters, which of them apply at query time, whether it trains,
whether it keeps vectors exactly and can remove them, and when the automatic choice picks it.
A new kind is a new entry; the indexer, `rag index --index` and its help text read the registry.

Deletes per index kind:
  flat   IndexIDMap2(IndexFlatIP): remove_ids removes the vectors.
  ivfpq, ivfsq8  IVF lists keep their own ids: remove_ids removes them.
  hnsw   FAISS cannot remove from an HNSW graph. Deleted chunk ids are kept in a `dead` table
         and filtered out at query time (search over-fetches by the number of dead ids); when
         dead vectors exceed DEAD_REBUILD_FRACTION of the graph, the next build rebuilds it
         from the live vectors (reconstructed from HNSW's flat storage: no re-embedding).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from advisor.errors import UserError

# Exact search below this many vectors: Flat's single-query time grows linearly with the corpus
# (bench/results/rag_ann.json: flat_p50_ms_1thread beside HNSW's p50 on the same queries) and has
# perfect recall; above it HNSW keeps latency nearly flat. The threshold is a design choice.
FLAT_MAX_VECTORS = 50_000

# HNSW: M=32 links per node (Malkov & Yashunin 2018 suggest M in 5-48; FAISS's "HNSW32");
# efConstruction=80: twice FAISS's default 40, for graph quality at a build cost paid once.
# efSearch=128: bench/rag_throughput.py (bench/results/rag_ann.json) on 106,830 real MiniLM
# sentence-chunk vectors, tuned on 1,809 queries (SciFact train claims + held-out sentences):
# recall@10 vs Flat 0.945/0.978/0.988/0.992/0.997/0.999 at efSearch 16/32/48/64/128/256. 48 is the
# smallest reaching 0.98; 128 is shipped for the recall, at a sub-millisecond cost. Reported once
# on 1,300 other queries: recall 0.987 at 48, 0.997 at 128; single-query p50 on one thread
# 0.30 ms at 48, 0.53 ms at 128, Flat 13.8 ms.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
# Design choice, not a published figure: dead ids cost an over-fetch of len(dead) per query and
# their memory; past a quarter of the graph, rebuilding from the stored vectors (seconds to
# minutes, no re-embedding) is cheaper than carrying them.
DEAD_REBUILD_FRACTION = 0.25

# IVF-PQ: nlist ~ 4*sqrt(N) (FAISS wiki, "Guidelines to choose an index": 4*sqrt(N)..16*sqrt(N));
# k-means wants >= 39 training points per centroid (FAISS warns below that). PQ with 8-bit codes
# of 4-dim sub-vectors: 96 bytes per 384-d vector, 16x smaller than float32. Measured recall@10
# vs Flat on SciFact MiniLM embeddings (9,651 vectors, nlist 247, nprobe 32): 8-dim sub-vectors
# 0.72, 4-dim 0.85 (nprobe 8/64: 0.77/0.86), 2-dim 0.92 at 3x the training time. IVF-PQ trades recall
# for memory: auto picks it only when not even IVF-SQ8 codes would fit (MEMORY_SHARE below).
IVF_POINTS_PER_CENTROID = 39
PQ_SUBVECTOR_DIM = 4
PQ_TRAIN_POINTS_PER_CENTROID = 64  # FAISS default 256; 64 x 256 codes = 16k points keeps training minutes, not hours
IVF_NPROBE = 32
# PQ's 8-bit codebooks have 256 centroids; FAISS refuses fewer training points than that, and
# ~4 per centroid is the least that gives non-degenerate codebooks: require 1,000 vectors.
IVF_MIN_TRAIN = 1000

# IVF-SQ8, the memory-short fallback: each vector kept as d one-byte codes (8-bit scalar quantizer,
# per-dimension ranges trained on a sample), d + 8 bytes with its id: 4x smaller than Flat/HNSW's
# 4d (FAISS wiki, "Faiss indexes", summary table: IndexIVFScalarQuantizer SQ8 d, IndexIVFPQ M + 8,
# IndexHNSWFlat 4d + 2*M*4). bench/rag_ann_fallback.py measures it against IVF-PQ, HNSW-SQ8 and
# IVF-PQ re-ranked by SQ8 or float codes on real MiniLM vectors (bench/results/rag_ann_fallback.json):
# 20,000 sentence vectors, nlist 512, tuned on SciFact train claims, reported on test claims:
#   ivfsq8 nprobe 128 (a quarter of the lists): recall@10 0.987, 432 B/vector measured (392 + centroids)
#   hnswsq8 efSearch 64: 0.985 at 656 B/vector, but an HNSW graph cannot remove vectors and SQ8 codes
#     cannot be rebuilt into a new graph without re-embedding
#   ivfpq (the former fallback) tops out at 0.867 even at nprobe 256 (PQ codes), 163 B/vector
#   ivfpq re-ranked by SQ8 codes (IndexRefine): 0.929 at 547 B/vector (IVF at nprobe 32 bounds it)
# nprobe scales with nlist (a quarter of the lists, as measured): conservative where nlist is larger,
# since the lists then hold more vectors each; not measured beyond 20,000 vectors.
IVFSQ_PROBE_SHARE = 4  # nprobe = ceil(nlist / 4)
IVFSQ_NPROBE = 128  # nprobe of an index whose manifest names none (nlist 512)


def ivfsq_nprobe(nlist: int) -> int:
    return max(1, -(-nlist // IVFSQ_PROBE_SHARE))


# Auto switches to IVF-SQ8 when an HNSW index would take more than this share of free memory, and
# to IVF-PQ (4x smaller again) when IVF-SQ8 would (design choice: leaves the other half for the
# embedding model, SQLite cache and the OS).
MEMORY_SHARE = 0.5

# An index folder is shared (a team queries one index): its files are 0644 whatever the umask.
SHARED_MODE = 0o644


def _faiss():
    try:
        import faiss
    except ImportError:
        raise UserError("RAG needs the rag extra: pip install 'tunepath[rag]'") from None
    return faiss


def available_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _hnsw_bytes(n_vectors: int, dim: int) -> int:
    return n_vectors * (dim * 4 + HNSW_M * 2 * 4 + 8)  # vectors + level-0 links + id map


def ivf_nlist(n_vectors: int) -> int:
    nlist = int(4 * math.sqrt(max(n_vectors, 1)))
    return max(1, min(nlist, n_vectors // IVF_POINTS_PER_CENTROID))


def ivf_train_size(n_vectors: int) -> int:
    """64 points per centroid: inside FAISS's 39..256 band (it subsamples above 256 per centroid)."""
    return min(n_vectors, max(64 * ivf_nlist(n_vectors), IVF_MIN_TRAIN))


def _largest_divisor(n: int, at_most: int) -> int:
    return max(d for d in range(1, max(at_most, 1) + 1) if n % d == 0)


# -- the registry: one entry per index kind ------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    """One FAISS index kind: how it is built, which of its parameters apply at query time, whether
    it must be trained before vectors are added, whether it keeps vectors exactly (so they can be
    moved into another index without re-embedding) or removes them, and when auto picks it."""

    name: str
    built_as: str  # the FAISS construction, for help texts and docs
    defaults: Callable[[int, int], dict]  # (dim, n_vectors) -> build and search parameters
    build: Callable[[Any, int, dict], Any]  # (faiss, dim, params) -> empty index
    search_params: tuple[str, ...]  # parameters that apply at query time (set on every open)
    apply_search: Callable[[Any, Any, dict], None]  # (faiss, index, params)
    needs_training: bool
    exact: bool  # vectors recoverable exactly (reconstruct): migration and --index changes work
    removes: bool  # remove_ids works; otherwise deletes are kept as dead ids and filtered
    auto_when: str  # when choose_kind picks it, in words
    picks: Callable[[int, int, int], bool]  # (n_vectors, dim, memory) -> auto picks this kind


def _flat(faiss, dim: int, params: dict):
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def _hnsw(faiss, dim: int, params: dict):
    inner = faiss.IndexHNSWFlat(dim, int(params["M"]), faiss.METRIC_INNER_PRODUCT)
    inner.hnsw.efConstruction = int(params["efConstruction"])
    inner.hnsw.efSearch = int(params["efSearch"])
    return faiss.IndexIDMap2(inner)


def _ivfpq(faiss, dim: int, params: dict):
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFPQ(quantizer, dim, int(params["nlist"]), int(params["pq_m"]),
                             int(params["pq_bits"]), faiss.METRIC_INNER_PRODUCT)
    index.nprobe = int(params["nprobe"])
    index.pq.cp.max_points_per_centroid = PQ_TRAIN_POINTS_PER_CENTROID
    return index


def _ivfsq8(faiss, dim: int, params: dict):
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFScalarQuantizer(quantizer, dim, int(params["nlist"]), faiss.ScalarQuantizer.QT_8bit,
                                          faiss.METRIC_INNER_PRODUCT)
    index.nprobe = int(params["nprobe"])
    return index


def _ivfsq8_bytes(n_vectors: int, dim: int) -> int:
    return n_vectors * (dim + 8)  # FAISS wiki, "Faiss indexes": IVF SQ8 codes are d bytes, + 8 for the id


def _ivfpq_defaults(dim: int, n_vectors: int) -> dict:
    m = dim // PQ_SUBVECTOR_DIM if dim % PQ_SUBVECTOR_DIM == 0 else _largest_divisor(dim, dim // PQ_SUBVECTOR_DIM)
    return {"nlist": ivf_nlist(n_vectors), "pq_m": m, "pq_bits": 8, "nprobe": IVF_NPROBE}


def _set_ef(faiss, index, params: dict) -> None:
    faiss.downcast_index(index.index).hnsw.efSearch = int(params.get("efSearch", HNSW_EF_SEARCH))


def _set_nprobe(faiss, index, params: dict) -> None:
    index.nprobe = int(params.get("nprobe", IVF_NPROBE))


def _set_sq_nprobe(faiss, index, params: dict) -> None:
    index.nprobe = int(params.get("nprobe", IVFSQ_NPROBE))


# Ordered as choose_kind asks: the first kind whose `picks` holds is the automatic choice.
KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("ivfpq", "IndexIVFPQ(IndexFlatIP quantizer, nlist, dim/4 x 8-bit codes), inner product",
         _ivfpq_defaults, _ivfpq, ("nprobe",), _set_nprobe, needs_training=True, exact=False, removes=True,
         auto_when=f"even an IVF-SQ8 index would take more than {MEMORY_SHARE:.0%} of available memory",
         picks=lambda n, dim, memory: _ivfsq8_bytes(n, dim) > MEMORY_SHARE * memory),
    Kind("ivfsq8", "IndexIVFScalarQuantizer(IndexFlatIP quantizer, nlist, 8-bit codes), inner product",
         lambda dim, n: {"nlist": ivf_nlist(n), "nprobe": ivfsq_nprobe(ivf_nlist(n))}, _ivfsq8, ("nprobe",),
         _set_sq_nprobe,
         needs_training=True, exact=False, removes=True,
         auto_when=f"an HNSW index would take more than {MEMORY_SHARE:.0%} of available memory",
         picks=lambda n, dim, memory: _hnsw_bytes(n, dim) > MEMORY_SHARE * memory),
    Kind("flat", "IndexIDMap2(IndexFlatIP): exact inner product", lambda dim, n: {}, _flat, (),
         lambda faiss, index, params: None, needs_training=False, exact=True, removes=True,
         auto_when=f"fewer than {FLAT_MAX_VECTORS:,} vectors",
         picks=lambda n, dim, memory: n < FLAT_MAX_VECTORS),
    Kind("hnsw", f"IndexIDMap2(IndexHNSWFlat M={HNSW_M}, efConstruction={HNSW_EF_CONSTRUCTION}), inner product",
         lambda dim, n: {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": HNSW_EF_SEARCH},
         _hnsw, ("efSearch",), _set_ef, needs_training=False, exact=True, removes=False,
         auto_when=f"{FLAT_MAX_VECTORS:,} vectors or more, when they fit in memory",
         picks=lambda n, dim, memory: True),
)}
KIND_NAMES = tuple(KINDS)
CHOICES = ("auto", *KINDS)


def kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise UserError(f"--index {name}: expected {', '.join(CHOICES[:-1])} or {CHOICES[-1]}") from None


def choose_kind(n_vectors: int, dim: int, memory: int | None = None) -> str:
    """The first registered kind whose rule holds: IVF-PQ when not even 8-bit codes would fit,
    IVF-SQ8 when uncompressed vectors would not, Flat when small, HNSW otherwise."""
    memory = available_memory() if memory is None else memory
    return next(k.name for k in KINDS.values() if k.picks(n_vectors, dim, memory))


def default_params(kind_name: str, dim: int, n_vectors: int) -> dict[str, int | float | str]:
    return kind(kind_name).defaults(dim, n_vectors)


def new_index(kind_name: str, dim: int, params: dict) -> Any:
    return kind(kind_name).build(_faiss(), dim, params)


def needs_training(index: Any) -> bool:
    return not index.is_trained


def add(index: Any, vectors, ids) -> None:
    import numpy as np

    index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))


def remove(index: Any, kind_name: str, ids: list[int]) -> bool:
    """True when the vectors were removed; False for kinds that cannot (HNSW: caller records them as dead)."""
    if not ids or not kind(kind_name).removes:
        return not ids
    import numpy as np

    index.remove_ids(np.asarray(ids, dtype=np.int64))
    return True


def stored_ids(index: Any, kind_name: str):
    faiss = _faiss()
    if kind(kind_name).exact:
        return faiss.vector_to_array(index.id_map)
    raise UserError(f"a {kind_name} index does not keep its vectors exactly; rebuild with --rebuild")


def iter_vectors(index: Any, kind_name: str, batch: int = 10_000):
    """(ids, vectors) of an exact index in batches, to move them into a new index without
    holding two full copies in memory."""
    ids = stored_ids(index, kind_name)
    for s in range(0, len(ids), batch):
        n = min(batch, len(ids) - s)
        yield ids[s:s + n], index.index.reconstruct_n(s, n)


def set_search_params(index: Any, kind_name: str, params: dict) -> None:
    kind(kind_name).apply_search(_faiss(), index, params)


def write_atomic(index: Any, path: Path) -> None:
    """Temp file + fsync + rename: the name `path` always holds a complete index."""
    faiss = _faiss()
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    faiss.write_index(index, str(tmp))
    os.chmod(tmp, SHARED_MODE)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: Path) -> Any:
    faiss = _faiss()
    if not path.is_file():
        raise UserError(f"{path}: FAISS index file missing (rebuild the index with `tunepath rag index`)")
    try:
        return faiss.read_index(str(path))
    except RuntimeError:
        raise UserError(f"{path}: corrupt FAISS index (rebuild it with `tunepath rag index --rebuild`)") from None
