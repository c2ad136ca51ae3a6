"""The architecture holds: imports point one way, and the one table of training methods is complete.

Layers, top to bottom (README, "Where things live"): tunepath/ (the shell) -> rag/, training/ ->
adapters/ -> advisor/ (the ground). A module may import its own layer or any layer below; an
upward import - even a lazy one inside a function - fails this test. advisor/ also never imports
a heavy ML library.
"""
from __future__ import annotations

import ast
import json
import sys

import pytest

from helpers import REPO, cli

LAYERS = {"advisor": 0, "adapters": 1, "training": 2, "rag": 2, "tunepath": 3}
HEAVY = {"torch", "transformers", "peft", "sentence_transformers", "faiss", "accelerate", "ray", "numpy", "trl"}


def _imports(path):
    """(line, top-level module) of every import in a file, including those inside functions."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def _package_files():
    for pkg in LAYERS:
        for f in sorted((REPO / pkg).rglob("*.py")):
            yield pkg, f


def test_no_upward_imports():
    bad = []
    for pkg, f in _package_files():
        for line, mod in _imports(f):
            if mod in LAYERS and LAYERS[mod] > LAYERS[pkg]:
                bad.append(f"{f.relative_to(REPO)}:{line} imports {mod} (layer {LAYERS[mod]} > {pkg}'s {LAYERS[pkg]})")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_advisor_imports_no_ml_library():
    bad = [f"{f.relative_to(REPO)}:{line} imports {mod}" for pkg, f in _package_files() if pkg == "advisor"
           for line, mod in _imports(f) if mod in HEAVY]
    assert not bad, "\n".join(bad)


def test_the_layer_check_catches_an_upward_import(tmp_path):
    """The walker sees lazy imports inside functions (the kind that crept in before)."""
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from training.runner import run\n    import rag.cli\n")
    assert [m for _, m in _imports(f)] == ["training", "rag"]


def test_every_training_method_can_be_estimated(tmp_path):
    """Each method in the one table (training/methods.py): the estimator's trainable count equals peft's
    on a tiny Llama, through `tunepath estimate --json`."""
    from transformers import AutoConfig, AutoModelForCausalLM

    import adapters
    from conftest import TINY_LLAMA
    from training.methods import methods

    cfg = {**TINY_LLAMA, "vocab_size": 1000}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    table = methods()
    assert {"pretrain", "full"} <= set(table) and set(adapters.REGISTRY) <= set(table)
    for name, m in table.items():
        assert m.estimable, f"{name} is registered but the estimator does not model it"
        if name == "qlora":   # needs CUDA to build; its count is LoRA's (tests/test_estimator.py)
            continue
        r = cli("estimate", "--model", path, "--method", name, "--tokens", "1M", "--gpu", "A100-80GB",
                "--rank", "4", "--target-modules", "q_proj,v_proj", "--virtual-tokens", "7", "--json")
        assert r.exit_code == 0, r.output
        estimated = json.loads(r.stdout)["trainable_params"]
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**{k: v for k, v in cfg.items()}))
        if m.stage == "peft":
            spec_kw = {"lora": {"r": 4, "target_modules": ["q_proj", "v_proj"]},
                       "dora": {"r": 4, "target_modules": ["q_proj", "v_proj"]},
                       "ia3": {"target_modules": ["q_proj", "v_proj"]},
                       "prompt_tuning": {"num_virtual_tokens": 7},
                       "prefix_tuning": {"num_virtual_tokens": 7}}[name]
            model = adapters.build_peft_model(model, adapters.REGISTRY[name](method=name, **spec_kw))
        assert estimated == adapters.count_parameters(model)[0], name


def test_cli_imports_no_backend():
    """`import tunepath.cli` (every command module) loads no ML library and no ray."""
    import subprocess

    code = "import sys, tunepath.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in %r))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("typo, expected", [
    ("run.train.max_stepz=3", "run.train.max_stepz: unknown field; did you mean 'run.train.max_steps'?"),
    ("run.adapter.alpah=8", "run.adapter.alpah: unknown field; did you mean 'run.adapter.alpha'?"),
    ("run.adapter.rank=4", "run.adapter.rank: unknown field; expected one of: method, r, alpha"),
    ("run.adapter.method=lorra", "unknown method 'lorra'; did you mean 'lora'?"),
])
def test_run_section_typos_are_reported_at_load(typo, expected):
    """run.train and run.adapter are validated as TrainConfig sections by recommend and run --dry-run."""
    spec = REPO / "examples" / "acme-support.yaml"
    for args in (("recommend", spec), ("run", spec, "--dry-run")):
        r = cli(*args, "--set", typo)
        assert r.exit_code == 2, r.output
        assert expected in r.output and r.output.count("\n") == 1


def test_paths_in_a_spec_resolve_against_its_folder(tmp_path, monkeypatch):
    """model.base as a relative config path works from any working directory."""
    from conftest import TINY_LLAMA

    proj = tmp_path / "proj"
    (proj / "models").mkdir(parents=True)
    (proj / "models" / "config.json").write_text(json.dumps({**TINY_LLAMA, "vocab_size": 1000}))
    (proj / "spec.yaml").write_text("name: local-model\ntask: {kind: qa}\nmodel: {base: models/config.json}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    r = cli("recommend", proj / "spec.yaml", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["model"]["base"] == str((proj / "models" / "config.json").resolve())
