"""The same `tunepath train` under torchrun and accelerate launch: 2 CPU ranks (gloo) agree, rank 0 writes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import GARDEN_QA, GARDEN_TXT, TINY_LLAMA
from helpers import REPO

BIN = Path(sys.executable).parent


def _launch(launcher: list[str], cfg: Path, *args: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread per rank on 2 cores
    env.pop("TUNEPATH_DEBUG", None)
    r = subprocess.run([*launcher, "-m", "tunepath.cli", "train", str(cfg), "--json", *args], cwd=REPO, env=env,
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


def _cfg(tmp_path, name, base, **over):
    data = {"stage": "full", "model": {"name_or_path": str(base)}, "seed": 5, "precision": "fp32",
            "data": {"paths": [str(GARDEN_QA)], "max_seq_len": 96, "eval_fraction": 0.1, "max_examples": 40},
            "training": {"max_steps": 4, "micro_batch_size": 4, "logging_steps": 1, "save_steps": 2,
                         "learning_rate": 1e-3},
            "output_dir": str(tmp_path / name)}
    for k, v in over.items():
        data[k] = {**data[k], **v}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_ranks_see_disjoint_shards_covering_the_data(tmp_path, tiny_base_model):
    """One epoch of each rank's dataloader (length-grouped padding, and packed rows): no row on two ranks,
    every row on one. The padded run's row count is a multiple of world x micro batch, so accelerate's
    even_batches adds no repeated rows; packed rows come in any count, and accelerate repeats the first
    few to even out the last batch."""
    cfgs = [_cfg(tmp_path, f"shards-{packing}", tiny_base_model,
                 data={"packing": packing, "eval_fraction": 0, "max_examples": 40 if packing else 16},
                 training={"micro_batch_size": 2}) for packing in (False, True)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    r = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2",
                        str(REPO / "tests" / "dist_shards.py"), str(tmp_path), *map(str, cfgs)],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    for cfg in cfgs:
        a, b = (json.loads((tmp_path / f"rank{i}-{cfg.stem}.json").read_text()) for i in (0, 1))
        expected = sorted(map(tuple, a["expected"]))
        assert expected == sorted(map(tuple, b["expected"]))  # both ranks prepared the same rows
        mine, theirs = list(map(tuple, a["rows"])), list(map(tuple, b["rows"]))
        if cfg.stem == "shards-False":
            assert len(expected) == 16
            assert not set(mine) & set(theirs), "a row went to both ranks"
            assert sorted(mine + theirs) == expected, "rows missing or repeated"
        else:
            assert 4 <= len(expected) < 40  # several examples per packed row
            assert set(mine) | set(theirs) == set(expected), "rows missing"
            extra = len(mine) + len(theirs) - len(expected)
            assert extra == (-len(expected)) % 4, "more repeats than evening out the last batch needs"
            assert len(set(mine) & set(theirs)) <= extra


def test_two_ranks_match_one_rank_and_resume_under_two_ranks(tmp_path, tiny_base_model):
    """Same global batch (1 x 4 rows vs 2 ranks x 2 rows): same losses. Then the 2-rank run loses everything after
    checkpoint-2 (what a kill right after that save leaves) and `--resume` under 2 ranks reaches the same end."""
    one = _launch([sys.executable], _cfg(tmp_path, "one", tiny_base_model))
    two_cfg = _cfg(tmp_path, "two", tiny_base_model, training={"micro_batch_size": 2})
    torchrun = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2"]
    two = _launch(torchrun, two_cfg)
    assert (one["world_size"], two["world_size"]) == (1, 2) and one["tokens"] == two["tokens"]
    assert two["final_loss"] == pytest.approx(one["final_loss"], rel=1e-4)
    assert two["eval_loss"] == pytest.approx(one["eval_loss"], rel=1e-4)

    out = tmp_path / "two"
    for p in [out / "checkpoint-4", out / "run_summary.json", out / "loss.svg", out / "model.safetensors"]:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    resumed = _launch(torchrun, two_cfg, "--resume")
    assert resumed["world_size"] == 2 and resumed["resumed_from_step"] == 2 and resumed["steps"] == 4
    assert resumed["final_loss"] == pytest.approx(two["final_loss"], rel=1e-5)
    assert resumed["eval_loss"] == pytest.approx(two["eval_loss"], rel=1e-5)
    assert resumed["replica_checksums"] == two["replica_checksums"]
