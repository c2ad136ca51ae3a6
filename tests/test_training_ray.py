"""`tunepath train CONFIG --ray --workers 2`: Ray Train's TorchTrainer runs the same Trainer on 2
workers under Ray's process group; it trains what 2 torchrun ranks train and resumes as today."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import GARDEN_TXT, TINY_LLAMA
from helpers import REPO, cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _config(tmp_path: Path, name: str) -> Path:
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(yaml.safe_dump({
        "stage": "pretrain", "model": {"architecture": TINY_LLAMA}, "tokenizer": {"vocab_size": 400}, "seed": 0,
        "data": {"paths": [str(GARDEN_TXT)], "max_seq_len": 64, "eval_fraction": 0.05},
        "training": {"max_steps": 4, "micro_batch_size": 2, "logging_steps": 1, "save_steps": 2},
        "output_dir": str(tmp_path / name)}))
    return cfg


def _torchrun(cfg: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread per rank on 2 cores
    env.pop("TUNEPATH_DEBUG", None)
    r = subprocess.run([str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node", "2",
                        "-m", "tunepath.cli", "train", str(cfg), "--json"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def _ray(cfg: Path, *extra: str) -> dict:
    res = cli("train", cfg, "--ray", "--workers", "2", "--json", *extra)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_ray_train_matches_torchrun_and_resumes(tmp_path, ray_local):
    ref = _torchrun(_config(tmp_path, "torchrun"))
    cfg = _config(tmp_path, "ray")
    got = _ray(cfg)
    assert got["world_size"] == ref["world_size"] == 2 and got["steps"] == ref["steps"] == 4
    assert got["tokens"] == ref["tokens"]  # each rank read its own shard, as under torchrun
    for k in ("train_loss", "final_loss", "eval_loss"):
        assert got[k] == pytest.approx(ref[k], rel=1e-3), k
    a, b = got["replica_checksums"]
    assert a == b == pytest.approx(ref["replica_checksums"][0], rel=1e-4)  # DDP replicas agree
    out = tmp_path / "ray"
    assert json.loads((out / "run_summary.json").read_text())["replica_checksums"] == [a, b]
    assert sorted(p.name for p in (out / "checkpoint-4").glob("rng_state_*.pth")) == ["rng_state_0.pth",
                                                                                    "rng_state_1.pth"]
    # killed after step 2: the last checkpoint is gone; --resume on Ray continues from checkpoint-2
    shutil.rmtree(out / "checkpoint-4")
    again = _ray(cfg, "--resume")
    assert again["resumed_from_step"] == 2 and again["steps"] == 4
    assert again["replica_checksums"] == pytest.approx([a, b], rel=1e-6)
    # a changed schedule is refused on Ray as it is locally: one line, exit 2
    res = cli("train", cfg, "--ray", "--workers", "2", "--resume", "--set", "training.learning_rate=0.5")
    assert res.exit_code == 2 and "--resume refused" in res.output
    res = cli("train", cfg, "--ray", "--workers", "2")  # a used output_dir needs --resume or --force
    assert res.exit_code == 2 and "already holds checkpoint-4" in res.output


def test_ray_options_are_checked_before_ray_starts(tmp_path):
    cfg = _config(tmp_path, "x")
    res = cli("train", cfg, "--workers", "2")
    assert res.exit_code == 2 and "only with --ray" in res.output
