"""Resume: SIGKILL mid-training then --resume reaches the uninterrupted run's loss; half-written checkpoints
are never picked; a changed schedule or changed data refuses to resume unless forced."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml
from conftest import GARDEN_QA
from helpers import REPO, cli

from training import checkpoints

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # see conftest.torch_one_thread


def _cfg(tmp_path, base, out, data):
    cfg = {"stage": "full", "model": {"name_or_path": str(base)}, "seed": 3,
           "data": {"paths": [str(data)], "max_seq_len": 96, "eval_fraction": 0.1},
           "training": {"max_steps": 24, "micro_batch_size": 4, "logging_steps": 1, "save_steps": 4,
                        "learning_rate": 1e-3},
           "output_dir": str(out)}
    path = tmp_path / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path, tiny_base_model):
    data = tmp_path / "qa.jsonl"
    shutil.copy(GARDEN_QA, data)
    ref_out, out = tmp_path / "ref", tmp_path / "killed"
    r = cli("train", _cfg(tmp_path, tiny_base_model, ref_out, data), "--json")
    assert r.exit_code == 0, r.output
    ref = json.loads(r.stdout)

    cfg = _cfg(tmp_path, tiny_base_model, out, data)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("TUNEPATH_DEBUG", None)
    proc = subprocess.Popen([sys.executable, "-m", "tunepath.cli", "train", str(cfg)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    marker = out / "checkpoint-8" / checkpoints.MARKER
    deadline = time.time() + 240
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert not (out / "run_summary.json").exists(), "the run finished before the kill"
    killed_at = max(step for step, _, _ in checkpoints.checkpoints(out))
    assert 8 <= killed_at < 24

    # a half-written newer checkpoint (as a kill during a save leaves it) must not be picked
    fake = out / "checkpoint-37"  # off the save grid, so the resumed run never writes it
    fake.mkdir(exist_ok=True)
    (fake / "model.safetensors").write_bytes(b"\0" * 10)
    newest = checkpoints.newest_complete(out)
    assert newest is not None and newest.name != "checkpoint-37"

    # changed schedule or data: refused with the reason, nothing silently skipped
    r = cli("train", cfg, "--resume", "--set", "training.learning_rate=2e-3")
    assert r.exit_code == 2 and "resume refused" in r.stderr and "schedule.learning_rate: 0.001 -> 0.002" in r.stderr
    r = cli("train", cfg)
    assert r.exit_code == 2 and "pass --resume" in r.stderr
    data.write_text(data.read_text() + json.dumps({"instruction": "x", "output": "y"}) + "\n")
    r = cli("train", cfg, "--resume")
    assert r.exit_code == 2 and "data.files" in r.stderr and "changed" in r.stderr
    shutil.copy(GARDEN_QA, data)

    r = cli("train", cfg, "--resume", "--json")
    assert r.exit_code == 0, r.output
    resumed = json.loads(r.stdout)
    assert resumed["resumed_from_step"] == int(newest.name.split("-")[1])
    assert not fake.exists()
    assert resumed["steps"] == ref["steps"] == 24
    assert resumed["final_loss"] == pytest.approx(ref["final_loss"], rel=1e-4)
    assert resumed["eval_loss"] == pytest.approx(ref["eval_loss"], rel=1e-4)
    assert resumed["tokens"] == ref["tokens"]


def test_newest_complete_skips_unmarked_and_incomplete(tmp_path):
    for step, marked, state in ((2, True, True), (4, True, True), (6, False, True), (8, True, False)):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        if marked:
            (d / checkpoints.MARKER).write_text("{}")
        if state:
            (d / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()
    assert checkpoints.newest_complete(tmp_path).name == "checkpoint-4"
    assert sorted(p.name for p in checkpoints.remove_incomplete(tmp_path)) == ["checkpoint-6", "checkpoint-8"]
    assert checkpoints.newest_complete(tmp_path).name == "checkpoint-4"


def test_fingerprint_diff_names_each_change():
    old = {"schedule": {"learning_rate": 0.001, "max_steps": 10}, "data": {"files": {"/a": "x" * 64}}}
    new = {"schedule": {"learning_rate": 0.002, "max_steps": 10}, "data": {"files": {"/a": "y" * 64}}}
    assert checkpoints.diff(old, new) == ["data.files./a changed", "schedule.learning_rate: 0.001 -> 0.002"]
    assert checkpoints.diff(old, old) == []


def test_resume_from_a_checkpoint_damaged_after_its_save_is_one_line(tmp_path, tiny_base_model):
    """A checkpoint truncated or edited after its marker was written (an interrupted copy) made --resume an
    internal error inside torch.load ('PytorchStreamReader failed') or json; now it is refused by name, and
    the checkpoint before it still resumes."""
    out = tmp_path / "run"
    cfg = _cfg(tmp_path, tiny_base_model, out, GARDEN_QA)
    data = yaml.safe_load(cfg.read_text())
    data["training"].update(max_steps=4, save_steps=2)
    cfg.write_text(yaml.safe_dump(data))
    assert cli("train", cfg).exit_code == 0
    ckpt = out / "checkpoint-4"
    assert json.loads((ckpt / checkpoints.MARKER).read_text())["sizes"]["optimizer.pt"] > 0
    optimizer = (ckpt / "optimizer.pt").read_bytes()
    (ckpt / "optimizer.pt").write_bytes(optimizer[:100])
    r = cli("train", cfg, "--resume")
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"{ckpt} was damaged after it was saved (optimizer.pt is 100 bytes, was {len(optimizer):,})" in r.stderr
    (ckpt / "optimizer.pt").write_bytes(optimizer)
    (ckpt / "trainer_state.json").write_text("{")
    r = cli("train", cfg, "--resume")
    assert r.exit_code == 2 and "trainer_state.json is not readable JSON" in r.stderr, r.stderr
    shutil.rmtree(ckpt)
    r = cli("train", cfg, "--resume", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["resumed_from_step"] == 2
