"""The same `tunepath train` under torchrun and accelerate launch: 2 CPU ranks (gloo) agree, rank 0 writes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import GARDEN_QA, GARDEN_TXT, TINY_LLAMA
from helpers import REPO

BIN = Path(sys.executable).parent


def _launch(launcher: list[str], cfg: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread per rank on 2 cores
    env.pop("TUNEPATH_DEBUG", None)
    r = subprocess.run([*launcher, "-m", "tunepath.cli", "train", str(cfg), "--json"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def test_torchrun_two_ranks_pretrain(tmp_path):
    out = tmp_path / "out"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "stage": "pretrain", "model": {"architecture": TINY_LLAMA}, "tokenizer": {"vocab_size": 400},
        "data": {"paths": [str(GARDEN_TXT)], "max_seq_len": 64, "eval_fraction": 0.05},
        "training": {"max_steps": 4, "micro_batch_size": 2, "logging_steps": 1, "save_steps": 2},
        "output_dir": str(out)}))
    s = _launch([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2"], cfg)
    assert s["world_size"] == 2 and s["steps"] == 4
    # both replicas hold the same weights after 4 DDP steps (rank 0 trained the tokenizer, rank 1 loaded it)
    a, b = s["replica_checksums"]
    assert a == b
    assert s["tokens"] == 4 * 2 * 2 * 64  # steps x ranks x micro batch x block
    # stdout carried one summary (rank 0 only) and rank-specific RNG states were kept for resume
    assert sorted(p.name for p in (out / "checkpoint-4").glob("rng_state_*.pth")) == ["rng_state_0.pth",
                                                                                    "rng_state_1.pth"]
    assert json.loads((out / "run_summary.json").read_text())["replica_checksums"] == [a, b]


def test_accelerate_launch_two_ranks_lora(tmp_path, tiny_base_model):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "stage": "peft", "model": {"name_or_path": str(tiny_base_model)}, "adapter": {"method": "lora", "r": 4},
        "data": {"paths": [str(GARDEN_QA)], "max_seq_len": 96, "eval_fraction": 0.1},
        "training": {"max_steps": 4, "micro_batch_size": 2, "logging_steps": 1, "save_steps": 2},
        "output_dir": str(tmp_path / "out")}))
    # `--cpu --num_processes 2` would quietly run one process; --multi_gpu on a CPU host runs two gloo ranks
    s = _launch([str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                 "--mixed_precision", "no", "--dynamo_backend", "no"], cfg)
    assert s["world_size"] == 2 and s["method"] == "lora"
    a, b = s["replica_checksums"]
    assert a == b
