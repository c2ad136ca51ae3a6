"""The GPU catalog as a user types it: names in any spelling, aliases, GPUs without a price quote."""
from __future__ import annotations

import json

import pytest
import yaml

from advisor import catalog
from helpers import EXAMPLES, cli, cli_subprocess, one_line_error

EST = ("estimate", "--model", "meta-llama/Llama-2-7b-hf", "--method", "lora", "--tokens", "2M")


@pytest.mark.parametrize("typed,gid", [("rtx4090", "RTX-4090"), ("RTX 4090", "RTX-4090"), ("a100 80gb", "A100-80GB"),
                                       ("a100_80gb", "A100-80GB"), ("A6000", "RTX-A6000"), ("rtx-a6000", "RTX-A6000"),
                                       ("3090", "RTX-3090"), (" h100 sxm ", "H100-SXM"), ("l40", "L40"),
                                       ("L40S", "L40S"), ("v100 32gb", "V100-32GB")])
def test_a_gpu_is_found_however_it_is_spelt(typed, gid):
    """Case, spaces, hyphens and underscores are ignored, and unambiguous aliases name their GPU: the estimate is
    the one the catalog id gives (`--gpu A6000` used to be 'unknown GPU')."""
    r = cli(*EST, "--gpu", typed, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == json.loads(cli(*EST, "--gpu", gid, "--json").stdout)
    shown = cli(*EST, "--gpu", typed)
    assert f"lora on 1 x {gid}" in shown.stdout            # the table names the catalog id, not the spelling


@pytest.mark.parametrize("name,hint", [("H100", "'H100-SXM' or 'H100-PCIe'"), ("V100", "'V100-16GB' or 'V100-32GB'")])
def test_a_name_of_two_gpus_stays_a_question(name, hint):
    one_line_error(cli(*EST, "--gpu", name), f"unknown GPU '{name}'", f"did you mean {hint}?")


def test_a_gpu_without_a_quote_is_estimated_without_a_cost():
    """RTX-A6000 has no dated quote: the estimate runs (time, memory) and says why it has no cost."""
    r = cli(*EST, "--gpu", "A6000", "--json")
    assert r.exit_code == 0, r.output
    est = json.loads(r.stdout)
    assert est["cost_usd"] is None and est["hours"] > 0 and est["fits"]
    assert any("RTX-A6000 has no dated price quote" in n for n in est["notes"])
    priced = json.loads(cli(*EST, "--gpu", "A40", "--json").stdout)
    assert priced["cost_usd"] > 0 and not any("price quote" in n for n in priced["notes"])
    table = cli(*EST, "--gpu", "A6000")
    assert table.exit_code == 0 and "no cost: RTX-A6000 has no dated price quote" in table.stdout.replace("\n", " ")
    inf = cli("estimate", "--model", "meta-llama/Llama-2-7b-hf", "--method", "inference", "--gpu", "GH200", "--json")
    assert inf.exit_code == 0 and json.loads(inf.stdout)["monthly_usd"] is None
    gpus = cli("gpus")
    assert "No price quote found: RTX-A6000" in gpus.stdout.replace("\n", " ")


def test_the_search_skips_a_gpu_without_a_quote_and_says_so(tmp_path):
    """The advisor compares GPUs on cost: an unpriced one is left out, named with the reason in the report's
    assumptions; priced in a TUNEPATH_CATALOG file it is searched like any other."""
    unpriced = [g.id for g in catalog.gpus().values() if not g.priced]
    assert "RTX-A6000" in unpriced
    spec = EXAMPLES / "brand-voice-writer.yaml"
    out = tmp_path / "r.json"
    r = cli("report", spec, "-o", out)
    assert r.exit_code == 0, r.output
    report = json.loads(out.read_text())
    skipped = next(a for a in report["assumptions"] if a["what"] == "GPUs the search skipped")
    assert skipped["value"].split(", ") == unpriced and "no dated price quote" in skipped["source"]
    used = {g for p in report["paths"] for g in (p["setup"].get("train_gpu"), p["setup"].get("serving_gpu")) if g}
    assert used and not used & set(unpriced)
    # priced at a cent an hour, the same GPU becomes the cheapest choice for the peft run
    cat = tmp_path / "cat.yaml"
    cat.write_text(yaml.safe_dump({"gpus": {"RTX-A6000": {"usd_per_hour": 0.01}}}))
    r = cli_subprocess("recommend", spec, "--json", env={"TUNEPATH_CATALOG": str(cat)}, timeout=300)
    assert r.returncode == 0, r.stderr
    peft = next(p for p in json.loads(r.stdout)["paths"] if p["path"] == "peft")
    assert peft["cost"]["setup"]["train_gpu"] == "RTX-A6000"


def test_a_spec_on_a_gpu_without_a_quote_is_told_how_to_price_it():
    r = cli("recommend", EXAMPLES / "brand-voice-writer.yaml", "--set", "constraints.gpu=A6000")
    one_line_error(r, "constraints.gpu: RTX-A6000 has no dated price quote", "usd_per_hour", "TUNEPATH_CATALOG")


def test_consumer_cards_carry_the_geforce_caveat_and_stay_in_one_server():
    from advisor.costs import MAX_TRAIN_GPUS

    for gid in ("RTX-3090", "RTX-4090", "RTX-5090"):
        assert "No Datacenter Deployment" in catalog.gpu(gid).caveat and MAX_TRAIN_GPUS[gid] == 8
    r = cli("recommend", EXAMPLES / "contracts-assistant.yaml", "--json", "--set", "constraints.gpu_fixed=true",
            "--set", "constraints.gpu=3090")
    assert r.exit_code == 0, r.output
    assert any("RTX-3090: a consumer GeForce card" in x for x in json.loads(r.stdout)["recommendation"]["rationale"])


def test_names_that_collide_are_a_catalog_error(tmp_path):
    cat = tmp_path / "cat.yaml"
    cat.write_text("gpus:\n  rtx_4090: {memory_gb: 24, bf16_tflops: 100, bandwidth_gbs: 1000, usd_per_hour: 1}\n")
    r = cli_subprocess("gpus", env={"TUNEPATH_CATALOG": str(cat)}, timeout=60)
    assert r.returncode == 2 and "gpus.rtx_4090: the name 'rtx_4090' also names RTX-4090" in r.stderr, r.stderr


@pytest.mark.parametrize("device,gid", [("NVIDIA RTX A6000", "RTX-A6000"), ("Tesla V100-SXM2-32GB", "V100-32GB"),
                                        ("Tesla V100-SXM2-16GB", "V100-16GB"), ("NVIDIA GeForce RTX 3090", "RTX-3090"),
                                        ("NVIDIA GeForce RTX 5090", "RTX-5090"), ("NVIDIA L40", "L40"),
                                        ("NVIDIA L40S", "L40S"), ("NVIDIA B200", "B200"),
                                        ("NVIDIA GH200 480GB", "GH200"), ("NVIDIA H200", "H200"),
                                        ("NVIDIA A40", "A40"), ("NVIDIA RTX A4000", None),
                                        ("NVIDIA H100 80GB HBM3", "H100-SXM"), ("NVIDIA H100 PCIe", "H100-PCIe"),
                                        ("NVIDIA A100-SXM4-40GB", "A100-40GB"), ("Tesla T4", "T4"),
                                        ("NVIDIA A10", "A10"), ("NVIDIA GeForce RTX 4090", "RTX-4090")])
def test_a_cuda_device_name_finds_its_row(device, gid):
    """torch.cuda.get_device_name() -> the catalog row a run's measured MFU is computed against."""
    g = catalog.gpu_for_device(device)
    assert (g.id if g else None) == gid
