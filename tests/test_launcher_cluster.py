"""`tunepath run` with `run.cluster`: the plan maps the GPUs the estimate assumed onto Ray Train's
scaling (workers x GPUs per worker) and says so; the steps then run on Ray."""
from __future__ import annotations

import json

import pytest
import yaml
from helpers import EXAMPLES, cli

GARDEN_QA = EXAMPLES / "data" / "garden_qa.jsonl"


@pytest.fixture(autouse=True)
def _calibration(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEPATH_CALIBRATION", str(tmp_path / "calibration.json"))


def _plan(tmp_path, cluster: dict, gpu_count: int = 8) -> dict:
    spec = yaml.safe_load((EXAMPLES / "brand-voice-writer.yaml").read_text())
    spec["constraints"]["gpu_count"] = gpu_count
    spec["run"] = {"output_dir": str(tmp_path / "run"), "labeled_data": str(GARDEN_QA),
                   "base_model": "Qwen/Qwen2.5-0.5B", "cluster": cluster}
    p = tmp_path / "spec.yaml"
    p.write_text(yaml.safe_dump(spec))
    r = cli("run", p, "--dry-run", "--json", "--path", "peft")
    assert r.exit_code == 0, r.output
    (step,) = json.loads(r.stdout)["steps"]
    return step


def test_plan_maps_the_estimates_gpus_to_workers(tmp_path):
    step = _plan(tmp_path, {"ray": "auto", "gpus_per_worker": 2})
    c = step["cluster"]
    assert (c["address"], c["workers"], c["gpus_per_worker"]) == ("auto", 4, 2)  # 8 GPUs / 2 per worker
    assert "4 worker(s) x 2 GPU(s), from the estimate's 8 x L40S (constraints.gpu_count)" in step["description"]
    # one GPU per worker by default: a worker per GPU
    assert _plan(tmp_path, {"ray": "10.0.0.1:6379"}, gpu_count=3)["cluster"]["workers"] == 3
    # explicit workers win, and the plan says the estimate priced another count
    step = _plan(tmp_path, {"ray": "auto", "workers": 2, "gpus_per_worker": 1})
    assert step["cluster"]["workers"] == 2 and "the cost estimate assumed 8 x L40S" in step["description"]
    # without run.cluster nothing mentions Ray
    spec = yaml.safe_load((EXAMPLES / "brand-voice-writer.yaml").read_text())
    assert "cluster" not in (spec.get("run") or {})


def test_cluster_fields_are_validated(tmp_path):
    spec = yaml.safe_load((EXAMPLES / "brand-voice-writer.yaml").read_text())
    spec["run"] = {"cluster": {"ray": "auto", "workers": 0}}
    p = tmp_path / "spec.yaml"
    p.write_text(yaml.safe_dump(spec))
    r = cli("run", p, "--dry-run")
    assert r.exit_code == 2 and "run.cluster.workers" in r.output
    spec["run"] = {"cluster": {"ray": "auto", "gpu_per_worker": 1}}  # typo
    p.write_text(yaml.safe_dump(spec))
    r = cli("run", p, "--dry-run")
    assert r.exit_code == 2 and "gpu_per_worker" in r.output


def test_rag_path_embeds_on_ray(tmp_path, ray_local):
    """The bundled RAG demo with run.cluster: the index step embeds on Ray actors and retrieval
    evaluates as it does locally (test_launcher.py's bar)."""
    r = cli("run", EXAMPLES / "acme-support.yaml", "--yes", "--json", "--set", f"run.output_dir={tmp_path / 'acme'}",
            "--set", "run.cluster.ray=local", "--set", "run.cluster.workers=1", "--set", "run.cluster.gpus_per_worker=0")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    index, _, evaluate = s["steps"]
    assert index["detail"]["ray"] == {"address": None, "workers": 1, "gpus_per_worker": 0}
    assert "embedded on Ray (local): 1 actor(s)" in index["description"]
    assert index["detail"]["chunks_embedded"] == index["detail"]["counts"]["vectors"] > 0
    assert evaluate["detail"]["metrics"]["recall_at_10"] >= 0.8
