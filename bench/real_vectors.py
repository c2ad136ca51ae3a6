"""Real MiniLM embeddings of every text in ../shared/data, for ANN benchmarks at >= 100k vectors.

The corpus is every sentence (>= 20 characters) of the SciFact titles and abstracts and of the
SFT sets' instructions, inputs and outputs, plus the SFT texts cut into non-overlapping
two-sentence chunks (their long multi-paragraph answers are where passage chunks differ most
from sentences), deduplicated: ~109k texts. The SciFact claims are the queries and are not
indexed. Vectors are embedded once with all-MiniLM-L6-v2 and cached under bench/.cache/
(git-ignored) in blocks, so an interrupted run resumes where it stopped.

The model runs with bf16 weights on one thread: on this shared 2-core machine that embeds
~2-4x faster than fp32, and the vectors agree with fp32 ones to cosine >= 0.998 (checked on 400
sentences). Recall is measured against exact search over the same vectors, so it is a
property of the index on real MiniLM neighbourhoods either way.

    python bench/real_vectors.py      # build or complete the cache, print its size
"""
from __future__ import annotations

import gzip
import hashlib
import json
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
CACHE = Path(__file__).resolve().parent / ".cache"
BLOCK = 5_000
MIN_CHARS = 20  # shorter fragments are list markers and headings, not sentences
_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SPLIT.split(text or "") if len(s.strip()) >= MIN_CHARS]


def corpus(data: Path = DATA) -> tuple[list[str], dict[str, list[str]]]:
    """(unique chunk texts, {"train": [...], "test": [...]} SciFact claims by qrels split)."""
    docs: list[list[str]] = []
    with gzip.open(data / "scifact" / "corpus.jsonl.gz", "rt") as f:
        for line in f:
            r = json.loads(line)
            docs.append([r["title"]] + _sentences(r["text"]))
    sft: list[list[str]] = []
    for name in sorted(p.name for p in (data / "sft").glob("*.json")):
        for r in json.loads((data / "sft" / name).read_text()):
            for key in ("instruction", "input", "output"):
                if r.get(key):
                    sft.append(_sentences(r[key]))
    seen: dict[str, None] = {}
    for sents in docs + sft:
        for s in sents:
            seen.setdefault(s)
    for sents in sft:
        for i in range(0, len(sents) - 1, 2):
            seen.setdefault(sents[i] + " " + sents[i + 1])
    queries = {r["_id"]: r["text"] for r in map(json.loads, (data / "scifact" / "queries.jsonl").open())}
    splits = {}
    for split in ("train", "test"):
        rows = (data / "scifact" / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]
        qids = sorted({line.split("\t")[0] for line in rows if line.strip()}, key=int)
        splits[split] = [queries[q] for q in qids if q in queries]
    claims = {q for v in splits.values() for q in v}
    return [s for s in seen if s not in claims], splits


def _key(texts: list[str]) -> str:
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]


def embed_cached(texts: list[str], tag: str, model: str | None = None, cached_only: bool = False):
    """float32 (len(texts), 384) unit vectors, embedded block by block into CACHE/<tag>-<hash>/.
    cached_only: stop at the first block not yet embedded (the vectors of a prefix of texts)."""
    import numpy as np

    from rag.embed import DEFAULT_MODEL, encode, load_model

    folder = CACHE / f"{tag}-bf16-{_key(texts)}"
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    st = None
    t0 = time.perf_counter()
    for b, s in enumerate(range(0, len(texts), BLOCK)):
        path = folder / f"{b:05d}.npy"
        if not path.exists():
            if cached_only:
                break
            if st is None:
                import copy

                import torch

                threads = torch.get_num_threads()
                torch.set_num_threads(1)
                st = copy.deepcopy(load_model(model or DEFAULT_MODEL)).to(torch.bfloat16)  # the cached fp32 model stays as is
            vecs = encode(st, texts[s:s + BLOCK], batch_size=64)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, vecs.astype(np.float32))
            tmp.replace(path)
            done = s + len(vecs)
            print(f"  embedded {done:,}/{len(texts):,} {tag} ({time.perf_counter() - t0:.0f} s)", flush=True)
        parts.append(np.load(path))
    if st is not None:
        import torch

        torch.set_num_threads(threads)
    return np.concatenate(parts) if parts else np.zeros((0, 384), np.float32)


def load(cached_only: bool = False):
    """(base vectors, {"train": query vectors, "test": query vectors}, base texts). cached_only:
    the base vectors embedded so far (a prefix of the corpus), embedding only the queries."""
    texts, splits = corpus()
    xb = embed_cached(texts, "base", cached_only=cached_only)
    xq = {k: embed_cached(v, f"claims-{k}") for k, v in splits.items()}
    return xb, xq, texts


if __name__ == "__main__":
    xb, xq, texts = load()
    print(f"{len(xb):,} base vectors, queries " + ", ".join(f"{k} {len(v)}" for k, v in xq.items()))
