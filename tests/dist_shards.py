"""Run under torchrun by test_training_distributed: which training rows does each rank's dataloader yield?

Builds the run exactly as `tunepath train` does (runner.plan: tokenizer, data, Trainer, accelerate's
sharding) and writes the rows of one epoch, as token lists without padding, to OUT/rank<N>-<config>.json.
Usage: torchrun --nproc_per_node 2 tests/dist_shards.py OUT CONFIG...
"""
import json
import sys
from pathlib import Path

from training import load_config, runner

for cfg_path in sys.argv[2:]:
    p = runner.plan(load_config(cfg_path), force=True, progress=False)
    pad = p.prepared.tokenizer.pad_token_id
    rows = []
    for batch in p.trainer.get_train_dataloader():
        for i, ids in enumerate(batch["input_ids"].tolist()):
            n = int(batch["attention_mask"][i].sum()) if "attention_mask" in batch else \
                len(ids) - next((k for k, t in enumerate(reversed(ids)) if t != pad), len(ids))
            rows.append(ids[:n])
    out = Path(sys.argv[1], f"rank{p.trainer.args.process_index}-{Path(cfg_path).stem}.json")
    out.write_text(json.dumps({"rows": rows, "expected": [r["input_ids"] for r in p.prepared.train]}))
