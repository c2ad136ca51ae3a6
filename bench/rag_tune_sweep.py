"""Choosing `tunepath rag tune` settings on SciFact *train* only: a held-out fifth of the train claims.

Each setting tunes all-MiniLM-L6-v2 on 80 % of the train claims (seeded split, rag.tune.heldout_split:
a held-out claim with a training claim's text is not scored)
and ranks the corpus for the other 20 % (exact dense search over every document); the setting with the
best held-out nDCG@10 is printed as bench/rag_tune.py arguments, and the whole table is recorded in
bench/results/rag_tune_sweep.json. Test claims are never read here: bench/rag_tune.py reports the chosen
setting on test once. The baseline row is the untuned model on the same held-out claims.

    python bench/rag_tune_sweep.py [--data ../shared/data/scifact] [--grid quick|full]

Slow on a CPU (each setting is a full tuning run); meant for a GPU, where a setting takes seconds.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GRIDS = {
    "quick": {"epochs": [1, 3], "learning_rate": [2e-5, 1e-4], "max_seq_length": [128], "batch_size": [32]},
    "full": {"epochs": [1, 3, 6], "learning_rate": [2e-5, 5e-5, 1e-4, 2e-4], "max_seq_length": [256],
             "batch_size": [32, 64]},
    # around the best of a first GPU pass (3 epochs: 2e-5 0.687, 5e-5 0.751, 1e-4 0.806 held-out)
    "high-lr": {"epochs": [3, 6], "learning_rate": [1e-4, 2e-4], "max_seq_length": [256], "batch_size": [32, 64]},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "scifact")
    ap.add_argument("--grid", choices=sorted(GRIDS), default="full")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--budget-s", type=float, default=float("inf"), help="stop starting new settings after this")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    import torch

    from rag.tune import EVAL_POOL, tune

    grid = GRIDS[args.grid]
    keys = list(grid)
    settings = [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]
    # most informative first: the budget may stop the sweep part way
    settings.sort(key=lambda s: (s["max_seq_length"] != 256, s["batch_size"] != 32, s["epochs"] == 1))
    rows, t_all, base = [], time.perf_counter(), None
    print(f"{len(settings)} settings on SciFact train (80/20 claim split, seed 0); device "
          f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for i, s in enumerate(settings):
            if time.perf_counter() - t_all > args.budget_s:
                print(f"budget reached after {i} settings", flush=True)
                break
            t = time.perf_counter()
            rep = tune(args.data, Path(tmp) / f"m{i}", split="train", holdout=0.2, seed=0, overwrite=True,
                       hard_negatives="bm25", bf16=args.bf16, eval_pool=max(EVAL_POOL, 10**6), **s)
            base = rep.ndcg_at_10_before
            row = {**s, "steps": rep.steps, "heldout_ndcg_at_10": round(rep.ndcg_at_10_after, 4),
                   "heldout_recall_at_10": round(rep.recall_at_10_after, 4), "seconds": round(time.perf_counter() - t, 1)}
            rows.append(row)
            print(f"  {s}  held-out nDCG@10 {base:.4f} -> {rep.ndcg_at_10_after:.4f}  "
                  f"({rep.steps} steps, {row['seconds']:.0f} s)", flush=True)
    best = max(rows, key=lambda r: r["heldout_ndcg_at_10"])
    flags = (f"--epochs {best['epochs']} --learning-rate {best['learning_rate']} "
             f"--train-max-seq-length {best['max_seq_length']} --batch-size {best['batch_size']}")
    print(f"untuned held-out nDCG@10 {base:.4f}; best {best['heldout_ndcg_at_10']:.4f} with {flags}")
    print(f"BEST_FLAGS {flags}", flush=True)
    if not args.no_record:
        from bench.results import record

        record("rag_tune_sweep", figures={"heldout_queries": rep.heldout_queries, "train_queries": rep.train_queries,
                                          "documents": rep.eval_documents, "untuned_heldout_ndcg_at_10": round(base, 4),
                                          "rows": rows, "best": best, "best_flags": flags},
               baseline="untuned all-MiniLM-L6-v2 on the same held-out train claims",
               ratios={"best_over_untuned": round(best["heldout_ndcg_at_10"] / base, 4)},
               target="choose rag tune settings on train only (test is read once, by bench/rag_tune.py)",
               device=torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu")


if __name__ == "__main__":
    main()
