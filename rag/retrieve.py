"""Query an index: dense (FAISS), BM25 (SQLite postings) and hybrid (reciprocal rank fusion),
plus document-level evaluation on BEIR files."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Callable, Sequence

from advisor.errors import UserError
from advisor.retrieval import TOP_K
from advisor.textio import read_user_text
from rag import ann, metrics, store
from rag.bm25 import B as BM25_B, K1 as BM25_K1
from rag.indexer import read_manifest
from rag.models import Hit, Manifest, Metrics, Mode

MODES = ("dense", "bm25", "hybrid")
# Candidates each retriever passes to fusion for a top-k query. RRF was defined over full
# rankings (Cormack et al. 2009); 100 per list is the depth BEIR reports recall at. Evaluation
# fuses deeper lists (enough chunks for 100 distinct documents), so its recall@100 is exact.
FUSION_DEPTH = 100
QUERY_BLOCK = 64  # queries embedded per call while ranking many (rag eval's progress steps)
RRF_K = 60  # Cormack, Clarke & Buettcher, SIGIR 2009


class RagIndex:
    """An opened index: manifest checked, FAISS loaded, SQLite open read-only. Reuse it for many
    queries (the launcher and `eval` do); the embedding model loads on the first dense query."""

    def __init__(self, index_dir: str | os.PathLike, model: str | None = None):
        self.dir = Path(index_dir).expanduser().resolve()
        self.manifest: Manifest = read_manifest(self.dir)
        m = self.manifest
        if model is not None:
            from rag.embed import resolve_model

            if resolve_model(model) != m.model:
                raise UserError(f"--model {model}: {self.dir} was built with {m.model}; its vectors cannot be "
                                f"queried with another model (re-index with --model {model} --rebuild)")
        self.con = store.connect(self.dir / m.sqlite_file, readonly=True)
        self.index = ann.read(self.dir / m.faiss_file)
        if self.index.d != m.dim:
            raise UserError(f"{self.dir / 'manifest.json'}: dim {m.dim} but {m.faiss_file} holds "
                            f"{self.index.d}-d vectors (rebuild with --rebuild)")
        ann.set_search_params(self.index, m.index.kind, m.index.params)
        self.dead = {r for (r,) in self.con.execute("SELECT id FROM dead")}
        self._model = None
        self._query_vectors: dict[str, object] = {}  # evaluating several settings encodes each query once

    def close(self) -> None:
        self.con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def model(self):
        if self._model is None:
            from rag.embed import dimension, load_model, model_sha256

            m = self.manifest
            if Path(m.model).is_absolute() and not Path(m.model).exists():
                raise UserError(f"{self.dir}: built with the local model {m.model}, which no longer exists; restore "
                                "it, or re-index with --model MODEL --rebuild")
            if m.model_sha256 and model_sha256(m.model) != m.model_sha256:
                raise UserError(f"{self.dir}: built with {m.model} (sha256 {m.model_sha256[:12]}), whose files "
                                f"have changed since (now {model_sha256(m.model)[:12]}); re-index with --rebuild")
            st = load_model(m.model)
            if dimension(st) != self.manifest.dim:
                raise UserError(f"{self.dir / 'manifest.json'}: dim {self.manifest.dim} but model "
                                f"{self.manifest.model} gives {dimension(st)}")
            self._model = st
        return self._model

    # -- retrievers: chunk ids, best first ---------------------------------------------------
    def dense(self, queries: Sequence[str], depth: int) -> list[list[tuple[int, float]]]:
        from rag.embed import encode

        if self.index.ntotal == 0:
            return [[] for _ in queries]
        new = [t for t in dict.fromkeys(queries) if t not in self._query_vectors]
        if new:
            self._query_vectors.update(zip(new, encode(self.model, new)))
        import numpy as np

        q = np.stack([self._query_vectors[t] for t in queries])
        fetch = min(depth + len(self.dead), self.index.ntotal)
        scores, ids = self.index.search(q, fetch)
        out = []
        for srow, irow in zip(scores, ids):
            hits = [(int(i), float(s)) for s, i in zip(srow, irow) if i >= 0 and int(i) not in self.dead]
            out.append(hits[:depth])
        return out

    def bm25(self, query: str, depth: int, k1: float = BM25_K1, b: float = BM25_B) -> list[tuple[int, float]]:
        return store.bm25_rank(self.con, query, depth, k1, b)

    def rank(self, queries: Sequence[str], mode: Mode, depth: int, rrf_k: int = RRF_K, k1: float = BM25_K1,
             b: float = BM25_B, progress: Callable[[int, int], None] | None = None,
             ) -> list[list[tuple[int, float, int | None, int | None]]]:
        """(chunk id, score, dense rank, bm25 rank) per query. rrf_k, k1 and b default to the
        shipped settings; bench/rag_scifact.py passes others to show them on train qrels.
        progress(done, total) is called as queries are ranked (dense ones in blocks of QUERY_BLOCK)."""
        if mode not in MODES:
            raise UserError(f"--mode {mode}: expected one of {', '.join(MODES)}")
        n = len(queries)
        dense = None
        if mode != "bm25":
            dense = []
            for s in range(0, n, QUERY_BLOCK):
                dense += self.dense(queries[s:s + QUERY_BLOCK], max(depth, FUSION_DEPTH))
                if progress and mode == "dense":
                    progress(min(s + QUERY_BLOCK, n), n)
        out = []
        for qi, query in enumerate(queries):
            if progress and mode != "dense" and (qi % 16 == 15 or qi == n - 1):
                progress(qi + 1, n)
            if mode == "dense":
                out.append([(c, s, r, None) for r, (c, s) in enumerate(dense[qi][:depth], 1)])
                continue
            sparse = self.bm25(query, max(depth, FUSION_DEPTH), k1, b)
            if mode == "bm25":
                out.append([(c, s, None, r) for r, (c, s) in enumerate(sparse[:depth], 1)])
                continue
            d_rank = {c: r for r, (c, _) in enumerate(dense[qi], 1)}
            s_rank = {c: r for r, (c, _) in enumerate(sparse, 1)}
            fused = metrics.rrf([[c for c, _ in dense[qi]], [c for c, _ in sparse]], k=rrf_k)
            out.append([(c, s, d_rank.get(c), s_rank.get(c)) for c, s in fused[:depth]])
        return out

    def search(self, query: str, k: int = TOP_K, mode: Mode = "hybrid") -> list[Hit]:
        if not query.strip():
            raise UserError("query: expected a non-empty question")
        if k < 1:
            raise UserError(f"-k {k}: expected at least 1")
        ranked = self.rank([query], mode, k)[0]
        rows = store.chunk_rows(self.con, [c for c, *_ in ranked])
        hits = []
        for rank, (cid, score, dr, br) in enumerate(ranked, 1):
            doc_id, path, start, end, text = rows[cid]
            hits.append(Hit(rank=rank, chunk_id=cid, doc_id=doc_id, source=path, start=start, end=end,
                            text=text, score=score, dense_rank=dr, bm25_rank=br))
        return hits

    def evaluate(self, queries: dict[str, str], qrels: dict[str, dict[str, int]], mode: Mode,
                 progress: Callable[[int, int], None] | None = None, **settings: float) -> Metrics:
        """Document-level metrics: a document scores its best chunk's score, and documents rank by
        score with ties broken as trec_eval breaks them (metrics.doc_ranking)."""
        qids = [q for q in qrels if q in queries]
        if not qids:
            raise UserError("qrels: no query id in the qrels file appears in the queries file")
        notes = []
        if len(qids) < len(qrels):
            absent = next(q for q in qrels if q not in queries)
            notes.append(f"{len(qrels) - len(qids)} of {len(qrels)} qrels query ids are not in the queries file "
                         f"(e.g. {absent!r}): not evaluated")
        no_positive = [q for q in qids if not any(g > 0 for g in qrels[q].values())]
        if no_positive:  # trec_eval scores such a query 0 and keeps it in num_q; MTEB drops it: say which is done
            notes.append(f"{len(no_positive)} of {len(qids)} queries have no positive judgement (e.g. "
                         f"{no_positive[0]!r}): they score 0 in every metric and count in the means, as in trec_eval")
        judged = sorted({d for q in qids for d in qrels[q]})
        found = store.known_doc_ids(self.con, judged)
        if len(found) < len(judged):
            missing = next(d for d in judged if d not in found)
            in_index = store.some_doc_id(self.con)
            if not found:  # every score would be 0.0: a wrong id scheme, not a bad retriever
                raise UserError(f"qrels: none of its {len(judged)} document ids is in the index "
                                f"(qrels e.g. {missing!r}, index e.g. {in_index!r}); qrels must use the "
                                "index's doc ids (a file's path under the indexed folder, or a JSONL row's _id)")
            notes.append(f"{len(found)} of {len(judged)} qrels document ids are in the index (e.g. "
                         f"{next(iter(sorted(found)))!r}); {len(judged) - len(found)} are not (e.g. {missing!r}; "
                         f"index ids look like {in_index!r}): they count as relevant documents never retrieved")
        note = "; ".join(notes) or None
        c = self.manifest.counts
        per_doc = max(1.0, c.chunks / max(c.documents, 1))
        depth = int(math.ceil(100 * per_doc * 2))  # enough chunks for 100 distinct documents
        ranked = self.rank([queries[q] for q in qids], mode, depth, progress=progress, **settings)
        doc_of = store.chunk_docs(self.con, sorted({cid for r in ranked for cid, *_ in r}))
        per_query = [metrics.score_query(metrics.doc_ranking([(doc_of[cid], s) for cid, s, *_ in r]), qrels[q])
                     for q, r in zip(qids, ranked)]
        return Metrics(mode=mode, queries=len(qids), qrels_docs=len(judged), qrels_docs_in_index=len(found),
                       note=note, **metrics.aggregate(per_query))


def search(index_dir: str | os.PathLike, query: str, k: int = TOP_K, mode: Mode = "hybrid") -> list[Hit]:
    with RagIndex(index_dir) as idx:
        return idx.search(query, k, mode)


def load_queries(path: str | os.PathLike) -> dict[str, str]:
    """BEIR queries.jsonl: one {"_id", "text"} per line."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"--queries {path}: no such file (expected BEIR queries.jsonl)")
    out: dict[str, str] = {}
    first: dict[str, int] = {}
    for n, line in enumerate(read_user_text(p, "BEIR queries.jsonl").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or "_id" not in row or not isinstance(row.get("text"), str):
            raise UserError(f"{path}:{n}: expected a JSON object with '_id' and 'text' (a string)")
        qid = str(row["_id"])
        if qid in first:  # which text would its qrels judge?
            raise UserError(f"{path}:{n}: duplicate _id {qid!r} (first on line {first[qid]})")
        first[qid] = n
        out[qid] = row["text"]
    return out


def qrels_rows(path: str | os.PathLike, flag: str = "--qrels") -> list[tuple[int, str, str, int]]:
    """BEIR qrels .tsv rows as (line, query-id, corpus-id, grade): `query-id corpus-id score` per line, header
    optional, scores integer relevance grades as trec_eval and pytrec_eval read them. The one qrels reader (rag
    eval and rag tune); `flag` names the option the file came from in errors."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{flag} {path}: no such file (expected BEIR qrels .tsv)")
    rows = []
    seen: dict[tuple[str, str], tuple[int, int]] = {}  # (query, doc) -> (line, grade)
    expected = "expected 'query-id<TAB>corpus-id<TAB>score'"
    for n, line in enumerate(read_user_text(p, "a BEIR qrels .tsv").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if n == 1 and parts[0] == "query-id":
            continue
        if len(parts) != 3:
            trec = " (a TREC qrels 'query-id 0 corpus-id score': drop the second column)" if len(parts) == 4 else ""
            raise UserError(f"{path}:{n}: {expected}, got {len(parts)} columns{trec}")
        qid, did, score = parts
        try:
            grade = float(score)
        except ValueError:
            raise UserError(f"{path}:{n}: score {score!r} is not a number ({expected})") from None
        if not math.isfinite(grade) or grade != int(grade):
            raise UserError(f"{path}:{n}: score {score!r}: expected an integer relevance grade (0, 1, 2, ...)")
        first = seen.setdefault((qid, did), (n, int(grade)))
        if first[1] != int(grade):  # trec_eval stops on a repeated docno ("duplicate docs"); a dict keeps the last
            raise UserError(f"{path}:{n}: query {qid!r} judges {did!r} {int(grade)}, but line {first[0]} "
                            f"judged it {first[1]}: keep one judgement per query and document")
        rows.append((n, qid, did, int(grade)))
    if not rows:
        raise UserError(f"{flag} {path}: no judgements found")
    if not any(g > 0 for *_, g in rows):
        raise UserError(f"{flag} {path}: no positive judgement (every score is <= 0), so every metric would be 0")
    return rows


def load_qrels(path: str | os.PathLike, flag: str = "--qrels") -> dict[str, dict[str, int]]:
    """{query-id: {corpus-id: grade}} from a BEIR qrels .tsv (qrels_rows)."""
    out: dict[str, dict[str, int]] = {}
    for _, qid, did, grade in qrels_rows(path, flag):
        out.setdefault(qid, {})[did] = grade
    return out


def evaluate(index_dir: str | os.PathLike, queries: str | os.PathLike | dict[str, str],
             qrels: str | os.PathLike | dict[str, dict[str, int]], mode: Mode = "hybrid") -> Metrics:
    q = queries if isinstance(queries, dict) else load_queries(queries)
    r = qrels if isinstance(qrels, dict) else load_qrels(qrels)
    with RagIndex(index_dir) as idx:
        return idx.evaluate(q, r, mode)
