"""Retrieval metrics over document rankings, as trec_eval/pytrec_eval compute them for BEIR
(Thakur et al. 2021): nDCG with linear gain, recall = found relevant / all relevant, MRR cut at k."""
from __future__ import annotations

import math
from typing import Mapping, Sequence


def ndcg_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """trec_eval's ndcg_cut: gain = relevance grade, discount = 1/log2(rank + 1). Only positive grades
    gain: trec_eval adds a judged document to DCG when its grade is > 0, so a negative grade (TREC's -1/-2
    for spam or junk) counts as non-relevant, never as a penalty that could drive nDCG below 0."""
    dcg = sum(max(qrels.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(ranking[:k]))
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    relevant = {d for d, g in qrels.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def mrr_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    for i, d in enumerate(ranking[:k]):
        if qrels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def doc_ranking(scored_chunks: Sequence[tuple[str, float]]) -> list[str]:
    """Documents ranked as trec_eval ranks a run: a document scores the max over its chunks, and
    documents are sorted by that score, descending, ties broken by document id, descending
    (usnistgov/trec_eval form_res_rels.c, comp_sim_docno: strcmp on docno, which orders as Python
    compares str code points). A run written as (doc id, best chunk score) and scored by
    trec_eval/pytrec_eval therefore gets the same figures as `rag eval`, whatever order the
    retriever broke its own ties in (RRF scores tie often: rank r in one list alone ties with rank
    r in the other)."""
    best: dict[str, float] = {}
    for d, score in scored_chunks:
        if d not in best or score > best[d]:
            best[d] = score
    # two stable sorts: by id descending, then by score descending
    return sorted(sorted(best, reverse=True), key=lambda d: -best[d])


def rrf(rankings: Sequence[Sequence[int]], k: int = 60) -> list[tuple[int, float]]:
    """Reciprocal rank fusion, score = sum 1/(k + rank), k = 60 (Cormack, Clarke & Buettcher,
    SIGIR 2009, "Reciprocal rank fusion outperforms Condorcet and individual rank learning methods")."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def aggregate(per_query: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Mean of each metric over queries (queries without any retrieved document count as 0)."""
    if not per_query:
        return {}
    keys = per_query[0].keys()
    return {key: sum(q[key] for q in per_query) / len(per_query) for key in keys}


def score_query(ranking: Sequence[str], qrels: Mapping[str, int]) -> dict[str, float]:
    return {
        "ndcg_at_10": ndcg_at_k(ranking, qrels, 10),
        "recall_at_1": recall_at_k(ranking, qrels, 1),
        "recall_at_5": recall_at_k(ranking, qrels, 5),
        "recall_at_10": recall_at_k(ranking, qrels, 10),
        "recall_at_100": recall_at_k(ranking, qrels, 100),
        "mrr_at_10": mrr_at_k(ranking, qrels, 10),
    }
