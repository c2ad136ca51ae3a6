"""The memory-short fallback index: recall@10 against exact Flat, and memory per vector, for the
compressed FAISS index kinds auto can fall back on when an HNSW index would not fit.

Vectors: real all-MiniLM-L6-v2 embeddings from bench/real_vectors.py (sentence chunks of
../shared/data, SciFact first), the first --blocks blocks of 5,000 (embedded once, cached in
bench/.cache). Queries: the SciFact claims (not indexed);
search settings are chosen on the *train* claims and reported once on the *test* claims.
Baseline: exact search (IndexFlatIP) on the same vectors and queries, same invocation.

Candidates (FAISS's own index types, built as rag/ann.py's registry builds them):
  ivfpq       the previous fallback: IVF + PQ (dim/4 sub-vectors x 8 bits), nprobe swept
  ivfsq8      IVF + 8-bit scalar quantizer (IndexIVFScalarQuantizer QT_8bit), nprobe swept
  hnswsq8     HNSW over 8-bit scalar-quantized vectors (IndexHNSWSQ, M 32), efSearch swept
  ivfpq+sq8   IVF-PQ re-ranked by SQ8 codes (IndexRefine, k_factor swept)
  ivfpq+flat  IVF-PQ re-ranked by the float32 vectors (IndexRefineFlat): as large as Flat
Memory per vector is measured (the serialized index size / vectors) beside the FAISS wiki's
formula ("Faiss indexes" summary table: Flat 4d, IVFSQ8 d + 8 for the id, IVFPQ M + 8, HNSW
4d + 2M*4 links, so an 8-bit HNSW code gives d + 2M*4).

    python bench/rag_ann_fallback.py [--blocks 4]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from results import record  # noqa: E402

RECALL_TARGET = 0.95
TUNE_TARGET = 0.98  # pick the smallest search setting reaching this on the train claims (margin for the test set)


def _recall(exact_ids, ids) -> float:
    k = exact_ids.shape[1]
    return sum(len(set(a[a >= 0]) & set(b[b >= 0])) for a, b in zip(exact_ids, ids)) / (len(exact_ids) * k)


def _bytes_per_vector(index, n: int) -> float:
    import faiss

    return len(faiss.serialize_index(index)) / n


def _p50_ms(index, xq) -> float:
    import faiss
    import numpy as np

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        times = []
        for q in xq:
            t = time.perf_counter()
            index.search(q[None, :], 10)
            times.append(time.perf_counter() - t)
    finally:
        faiss.omp_set_num_threads(before)
    return float(np.percentile(times, 50) * 1e3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=4, help="5,000-vector blocks of bench/real_vectors.py's corpus")
    args = ap.parse_args()

    import faiss
    import numpy as np

    import real_vectors
    from rag import ann

    texts, splits = real_vectors.corpus()
    texts = texts[:args.blocks * real_vectors.BLOCK]
    xb = real_vectors.embed_cached(texts, f"base{args.blocks}")
    xq = {k: real_vectors.embed_cached(v, f"claims-{k}") for k, v in splits.items()}
    n, dim = xb.shape
    rng = np.random.default_rng(0)
    flat = faiss.IndexFlatIP(dim)
    flat.add(xb)
    exact = {k: flat.search(v, 10)[1] for k, v in xq.items()}
    nlist = ann.ivf_nlist(n)
    train = xb[np.sort(rng.choice(n, ann.ivf_train_size(n), replace=False))]
    pq = ann.default_params("ivfpq", dim, n)
    print(f"{n:,} real MiniLM vectors (dim {dim}), nlist {nlist}; tune on {len(xq['train'])} train claims, "
          f"report on {len(xq['test'])} test claims; baseline exact Flat")

    trained_pq = []  # IVF-PQ's training takes minutes: train it once, and clone the trained, empty index

    def ivfpq():
        if not trained_pq:
            index = ann.new_index("ivfpq", dim, pq)
            t = time.perf_counter()
            index.train(train)
            trained_pq.append((index, time.perf_counter() - t))
        return faiss.clone_index(trained_pq[0][0])

    def ivfsq8():
        return ann.new_index("ivfsq8", dim, ann.default_params("ivfsq8", dim, n))

    def hnswsq8():
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, ann.HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ann.HNSW_EF_CONSTRUCTION
        return index

    def refine_sq8():
        sq = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        sq.train(train)
        return faiss.IndexRefine(ivfpq(), sq)

    def refine_flat():
        return faiss.IndexRefineFlat(ivfpq())

    def set_nprobe(index, v):
        faiss.extract_index_ivf(index).nprobe = v

    def set_ef(index, v):
        index.hnsw.efSearch = v

    def set_kf(index, v):
        index.k_factor = v

    wiki = {"flat": 4 * dim, "ivfpq": pq["pq_m"] + 8, "ivfsq8": dim + 8, "hnswsq8": dim + 2 * ann.HNSW_M * 4,
            "ivfpq+sq8": pq["pq_m"] + 8 + dim, "ivfpq+flat": pq["pq_m"] + 8 + 4 * dim}
    candidates = [("ivfpq", ivfpq, "nprobe", set_nprobe, (8, 16, 32, 64, 128, 256)),
                  ("ivfsq8", ivfsq8, "nprobe", set_nprobe, (8, 16, 32, 64, 128)),
                  ("hnswsq8", hnswsq8, "efSearch", set_ef, (32, 64, 128, 256)),
                  ("ivfpq+sq8", refine_sq8, "k_factor", set_kf, (1, 2, 4, 8)),
                  ("ivfpq+flat", refine_flat, "k_factor", set_kf, (1, 2, 4, 8))]
    rows = {"flat": {"bytes_per_vector": _bytes_per_vector(flat, n), "wiki_bytes_per_vector": wiki["flat"],
                     "report_recall_at_10": 1.0, "p50_ms_1thread": _p50_ms(flat, xq["test"][:300])}}
    print(f"  {'kind':11} {'B/vec':>7} {'wiki':>5} {'build s':>7}  tune sweep (recall@10)  -> chosen: report recall, p50 ms")
    print(f"  {'flat':11} {rows['flat']['bytes_per_vector']:7.0f} {wiki['flat']:5d} {0:7.0f}  exact"
          f"{'':19}-> 1.0000, {rows['flat']['p50_ms_1thread']:.2f}")
    for name, make, param, setter, grid in candidates:
        index = make()
        t = time.perf_counter()
        if not index.is_trained:
            index.train(train)
        index.add(xb)
        build_s = time.perf_counter() - t + (trained_pq[0][1] if name.startswith("ivfpq") else 0.0)  # + PQ training
        if name.startswith("ivfpq+"):
            set_nprobe(index.base_index, pq["nprobe"])
        sweep = {}
        for v in grid:
            setter(index, v)
            sweep[v] = _recall(exact["train"], index.search(xq["train"], 10)[1])
        chosen = next((v for v in grid if sweep[v] >= TUNE_TARGET), grid[-1])
        setter(index, chosen)
        rec = _recall(exact["test"], index.search(xq["test"], 10)[1])
        same = float(np.mean([set(a) == set(b) for a, b in zip(exact["test"], index.search(xq["test"], 10)[1])]))
        rows[name] = {"bytes_per_vector": _bytes_per_vector(index, n), "wiki_bytes_per_vector": wiki[name],
                      "build_s": build_s, "param": param, "tune_sweep_recall_at_10": {str(k): v for k, v in sweep.items()},
                      "chosen": chosen, "report_recall_at_10": rec, "report_identical_top10_share": same,
                      "p50_ms_1thread": _p50_ms(index, xq["test"][:300])}
        print(f"  {name:11} {rows[name]['bytes_per_vector']:7.0f} {wiki[name]:5d} {build_s:7.0f}  "
              + " ".join(f"{param}={k}:{v:.3f}" for k, v in sweep.items())
              + f"  -> {param}={chosen}: {rec:.4f} (identical top-10 {same:.0%}), {rows[name]['p50_ms_1thread']:.2f} ms")
        del index
    # the shipped fallback at its shipped defaults, searched once on the report set
    sp = ann.default_params("ivfsq8", dim, n)
    index = ann.new_index("ivfsq8", dim, sp)
    index.train(train)
    index.add(xb)
    rows["ivfsq8"]["shipped_params"] = sp
    rows["ivfsq8"]["shipped_report_recall_at_10"] = shipped_rec = _recall(exact["test"], index.search(xq["test"], 10)[1])
    auto_kind = ann.choose_kind(n, dim, memory=int(ann._hnsw_bytes(n, dim) / ann.MEMORY_SHARE) - 1)
    print(f"  shipped fallback (auto picks {auto_kind} when HNSW would not fit): {ann.KINDS['ivfsq8'].built_as}, "
          f"params {sp}: report recall@10 {shipped_rec:.4f}; target >= {RECALL_TARGET}: "
          f"{'met' if shipped_rec >= RECALL_TARGET else 'NOT met'}")
    record("rag_ann_fallback",
           figures={"vectors": n, "dim": dim, "nlist": nlist, "ivfpq_params": pq, "auto_fallback": auto_kind,
                    "corpus": f"bench/real_vectors.py, first {args.blocks} blocks (SciFact sentences), all-MiniLM-L6-v2 bf16",
                    "tune_queries": len(xq["train"]), "report_queries": len(xq["test"]), "kinds": rows},
           baseline="exact search (FAISS IndexFlatIP) on the same vectors and queries, same run",
           ratios={"shipped_fallback_recall_at_10_vs_flat": shipped_rec}
           | {f"{k}_recall_at_10_vs_flat": v["report_recall_at_10"] for k, v in rows.items() if k != "flat"}
           | {f"{k}_bytes_vs_flat": v["bytes_per_vector"] / rows["flat"]["bytes_per_vector"] for k, v in rows.items()
              if k != "flat"},
           target=f"memory-short fallback recall@10 >= {RECALL_TARGET} vs Flat",
           notes="each kind's search setting chosen on the train claims (smallest reaching "
                 f"{TUNE_TARGET}); the test claims searched once with it")


if __name__ == "__main__":
    main()
