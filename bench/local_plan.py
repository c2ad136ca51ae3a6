"""How far a local CPU training plan is from the run it plans: small models, where a step is mostly per-op overhead.

For each model shape, a short pretraining run through the training backend (`training.run`, as `tunepath run` and
`tunepath train` do) measures the training wall time; beside it, the plan's time (advisor.calibration.
local_train_estimate, what `tunepath run --dry-run` shows and the run summary prints) three ways:
  - flops_only: FLOPs / FLOP/s of `tunepath calibrate` - the baseline, what the plan was before per-step costs;
  - uncalibrated: the stated defaults (DEFAULT_CPU_FLOPS, DEFAULT_CPU_SECONDS_PER_LAYER / _PER_MICRO_BATCH);
  - calibrated: this machine's `tunepath calibrate` measurement (FLOP/s and per-step costs).
Ratio = plan / measured. One torch thread (the steadiest on a shared 2-core machine); the calibration runs in the
same process with the same thread count.

Then SFT runs that do not pack (prompt tuning never packs; LoRA with `packing: false`), on the bundled garden_qa
rows with the first shape's model as the base: the plan as `tunepath run` makes it (tunepath.launcher._train_estimate:
the data tokenized and batched as the Trainer will run it, training/schedule.py) against the measured run, beside
the plan as it was before, micro-batches of full max_seq_len rows (full_rows: the baseline). Steps and micro-batches
are compared too.

    python bench/local_plan.py [--steps 30]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHAPES = {   # name: (architecture, row length, rows per micro-batch)
    "llama h64 L2 (the tests' and README's tiny base)": (
        {"hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2}, 128, 8),
    "llama h128 L8": ({"hidden_size": 128, "intermediate_size": 352, "num_hidden_layers": 8, "num_attention_heads": 4,
                       "num_key_value_heads": 2}, 128, 4),
    "llama h256 L4 (calibrate's micro-run)": ({"hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4,
                                               "num_attention_heads": 8, "num_key_value_heads": 4}, 256, 4),
    "llama h512 L8": ({"hidden_size": 512, "intermediate_size": 1376, "num_hidden_layers": 8, "num_attention_heads": 8,
                       "num_key_value_heads": 4}, 256, 4),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench-local-plan-"))
    os.environ["TUNEPATH_CALIBRATION"] = str(tmp / "none.json")     # the run summaries' own estimate: defaults
    import training
    from advisor.architecture import from_config
    from advisor.calibration import Calibration, load, local_train_estimate
    from advisor.estimate import TrainSetup
    from bench.results import record
    from tunepath.calibrate import _corpus, measure

    load_before = os.getloadavg()[0]      # a shared machine: other work slows the runs the plan is compared with
    cal = measure(None, embed=False)
    defaults = load()
    flops_only = Calibration(**{**cal.__dict__, "train_seconds_per_layer": 0.0, "train_seconds_per_micro_batch": 0.0})
    corpus = _corpus(tmp / "corpus.txt", words=60_000)
    rows = []
    for name, (shape, seq, mb) in SHAPES.items():
        arch_cfg = {"model_type": "llama", "max_position_embeddings": 512, **shape}
        cfg = training.load_config(data={
            "stage": "pretrain", "output_dir": str(tmp / name.split()[1]), "seed": 0,
            "model": {"architecture": arch_cfg}, "tokenizer": {"vocab_size": 2048},
            "data": {"paths": [str(corpus)], "max_seq_len": seq, "eval_fraction": 0.0},
            "training": {"max_steps": args.steps, "micro_batch_size": mb, "logging_steps": args.steps,
                         "save_steps": 10 * args.steps, "warmup": 0},
        })
        s = training.run(cfg, progress=False)
        arch = from_config({**arch_cfg, "vocab_size": 2048}, name)
        setup = TrainSetup(method="pretrain", tokens=s.tokens, seq_len=seq, micro_batch=mb, precision="fp32",
                           device="cpu")
        plan = {k: local_train_estimate(arch, setup, c)["train_wall_s"]
                for k, c in (("flops_only", flops_only), ("uncalibrated", defaults), ("calibrated", cal))}
        row = {"model": name, "params": arch.total_params, "seq_len": seq, "micro_batch": mb, "steps": s.steps,
               "tokens": s.tokens, "measured_train_s": round(s.train_wall_s, 3),
               **{f"plan_{k}_s": v for k, v in plan.items()},
               **{f"ratio_{k}": round(v / s.train_wall_s, 3) for k, v in plan.items()}}
        rows.append(row)
        print(f"{name:48} measured {s.train_wall_s:7.2f} s | plan/measured: flops-only {row['ratio_flops_only']:.2f}, "
              f"uncalibrated {row['ratio_uncalibrated']:.2f}, calibrated {row['ratio_calibrated']:.2f}", flush=True)
    worst = {k: max(max(r[f"ratio_{k}"], 1 / r[f"ratio_{k}"]) for r in rows)
             for k in ("flops_only", "uncalibrated", "calibrated")}
    print("worst factor off (max of ratio, 1/ratio): " + ", ".join(f"{k} {v:.2f}x" for k, v in worst.items()))
    sft = _unpacked_sft(tmp, tmp / SHAPES_DIR, cal)
    sft_worst = {k: max(max(r[f"ratio_{k}"], 1 / r[f"ratio_{k}"]) for r in sft) for k in ("full_rows", "plan")}
    print("unpacked SFT, worst factor off: " + ", ".join(f"{k} {v:.2f}x" for k, v in sft_worst.items()))
    record("local_plan", baseline="flops_only: the plan as FLOPs / calibrated FLOP/s, without per-step costs",
           target="a calibrated plan within 1.5x of the measured run for every shape",
           figures={"calibration": {k: cal.__dict__[k] for k in ("train_flops_per_s", "train_seconds_per_layer",
                                                                 "train_seconds_per_micro_batch", "device")},
                    "rows": rows, "worst_factor": worst, "unpacked_sft": sft, "unpacked_sft_worst_factor": sft_worst},
           ratios={**{f"worst_{k}": round(v, 3) for k, v in worst.items()},
                   **{f"unpacked_sft_worst_{k}": round(v, 3) for k, v in sft_worst.items()}},
           notes=f"{args.steps} steps per pretraining shape, one torch thread; unpacked SFT: 1 epoch of garden_qa; "
                 f"1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on "
                 f"{os.cpu_count()} cores")


SHAPES_DIR = "h64"    # the first shape's run: a saved model + tokenizer, the base of the SFT runs
SFT_RUNS = {"prompt_tuning (never packs)": {"method": "prompt_tuning"},
            "lora, packing: false": {"method": "lora"}}


def _unpacked_sft(tmp: Path, base: Path, cal) -> list[dict]:
    import training
    from advisor.architecture import from_config
    from advisor.calibration import local_train_estimate
    from advisor.estimate import TrainSetup
    from tunepath.launcher import _train_estimate

    garden = REPO / "examples" / "data" / "garden_qa.jsonl"
    arch = from_config(__import__("json").loads((base / "config.json").read_text()), "base")
    rows = []
    for name, adapter in SFT_RUNS.items():
        cfg = {"stage": "peft", "output_dir": str(tmp / f"sft-{adapter['method']}"), "seed": 0,
               "model": {"name_or_path": str(base)}, "adapter": adapter,
               "data": {"paths": [str(garden)], "max_seq_len": 128, "eval_fraction": 0.1, "packing": False},
               "training": {"epochs": 1, "micro_batch_size": 8, "logging_steps": 50, "save_steps": 1000}}
        plan = _train_estimate(arch, cfg, garden.stat().st_size, cal)
        s = training.run(training.load_config(data=cfg), progress=False)
        # the plan before training/schedule.py: the run's real tokens in micro-batches of full max_seq_len rows
        full = local_train_estimate(arch, TrainSetup(method=adapter["method"], tokens=s.tokens, seq_len=128,
                                                     micro_batch=8, device="cpu"), cal)
        row = {"run": name, "steps": s.steps, "planned_steps": plan["steps"], "micro_batches": s.micro_batches,
               "planned_micro_batches": plan["micro_batches"],
               "full_rows_micro_batches": round(s.tokens / (128 * 8), 1), "tokens": s.tokens,
               "padded_tokens": s.padded_tokens, "planned_padded_tokens": plan["padded_tokens"],
               "measured_train_s": round(s.train_wall_s, 3), "plan_full_rows_s": full["train_wall_s"],
               "plan_s": plan["train_wall_s"], "ratio_full_rows": round(full["train_wall_s"] / s.train_wall_s, 3),
               "ratio_plan": round(plan["train_wall_s"] / s.train_wall_s, 3)}
        rows.append(row)
        print(f"{name:48} measured {s.train_wall_s:7.2f} s, {s.micro_batches} micro-batches (planned "
              f"{plan['micro_batches']}, full rows {row['full_rows_micro_batches']}) | plan/measured: full rows "
              f"{row['ratio_full_rows']:.2f}, plan {row['ratio_plan']:.2f}", flush=True)
    return rows


if __name__ == "__main__":
    main()
