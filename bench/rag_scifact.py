"""SciFact retrieval quality: dense, BM25 and hybrid nDCG@10 (and recall, MRR) on BEIR qrels.

Baselines (published, test split): BM25 0.665 (BEIR paper, Thakur et al. 2021), all-MiniLM-L6-v2
0.645 (MTEB). Goal: hybrid >= 0.68 on test. Knobs (BM25 k1/b and stemming, RRF k, fusion depth)
are chosen on the train qrels: run with --split train to see those numbers.

    python bench/rag_scifact.py [--data ../shared/data/scifact] [--index-dir runs/bench/scifact]

The index is cached in --index-dir; a second run finds it up to date and only evaluates.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PUBLISHED = {"bm25": 0.665, "dense": 0.645}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "scifact")
    ap.add_argument("--index-dir", type=Path, default=REPO / "runs" / "bench" / "scifact")
    ap.add_argument("--split", action="append", choices=["train", "test"],
                    help="qrels split(s) to report (default: train and test)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    splits = args.split or ["train", "test"]

    from rag.indexer import build_index
    from rag.retrieve import RagIndex, load_qrels, load_queries

    t = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 15 or done == total:
            last[0] = now
            print(f"  embedded {done}/{total} chunks", file=sys.stderr, flush=True)

    report = build_index([args.data / "corpus.jsonl.gz"], args.index_dir, progress=progress)
    m = report.manifest
    print(f"index: {m.counts.documents} docs, {m.counts.chunks} chunks, {m.index.kind}, "
          f"{report.chunks_embedded} embedded in {report.embed_seconds:.0f} s "
          f"({report.chunks_per_s:.1f} chunks/s), build {time.perf_counter() - t:.0f} s", file=sys.stderr)

    queries = load_queries(args.data / "queries.jsonl")
    results = {}
    with RagIndex(args.index_dir) as idx:
        for split in splits:
            qrels = load_qrels(args.data / "qrels" / f"{split}.tsv")
            for mode in ("dense", "bm25", "hybrid"):
                t0 = time.perf_counter()
                r = idx.evaluate(queries, qrels, mode)
                results[(split, mode)] = (r, time.perf_counter() - t0)
    if args.json:
        print(json.dumps([{"split": s, **r.model_dump(), "seconds": sec} for (s, _), (r, sec) in results.items()], indent=2))
        return
    print(f"{'split':6} {'mode':7} {'nDCG@10':>8} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'R@100':>6} {'MRR@10':>7}"
          f" {'published':>9} {'queries':>7} {'s':>5}")
    for (split, mode), (r, sec) in results.items():
        pub = f"{PUBLISHED[mode]:.3f}" if split == "test" and mode in PUBLISHED else "-"
        print(f"{split:6} {mode:7} {r.ndcg_at_10:8.4f} {r.recall_at_1:6.3f} {r.recall_at_5:6.3f} "
              f"{r.recall_at_10:6.3f} {r.recall_at_100:6.3f} {r.mrr_at_10:7.4f} {pub:>9} {r.queries:7d} {sec:5.1f}")
    if "test" in splits:
        h = results[("test", "hybrid")][0].ndcg_at_10
        print(f"hybrid test nDCG@10 {h:.4f} vs goal 0.68: {'met' if h >= 0.68 else 'NOT met'}; "
              f"ratio to published BM25 {h / PUBLISHED['bm25']:.3f}x, to published MiniLM {h / PUBLISHED['dense']:.3f}x")


if __name__ == "__main__":
    main()
