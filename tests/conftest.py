"""Shared test setup. Tests drive tunepath through its public CLI (see helpers.py) and API."""
import os

import pytest as _pytest

os.environ.setdefault("TUNEPATH_DEBUG", "1")  # a bug in a test shows its traceback
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may come from the hub here
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# `make test` runs the suite on two pytest-xdist workers (the 2-core CI finishes in about two thirds of the time).
# Each worker's torch then keeps to one thread: two workers with two OpenMP threads each on two cores stall (see
# torch_one_thread). A module runs whole on one worker, so its module- and session-scoped fixtures are built once;
# the modules that launch several processes (torchrun, accelerate, Ray) take both cores themselves and share one
# scope, so they never run at once. The heaviest scopes go first, so that the lighter ones fill in around them.
MULTI_PROCESS_MODULES = ("test_training_ray", "test_training_distributed", "test_rag_ray", "test_launcher_cluster")
HEAVY_FIRST = (*MULTI_PROCESS_MODULES, "test_rag_tune", "test_rag_cli")
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")


def pytest_collection_modifyitems(config, items):
    rank = {m: i for i, m in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(_module(item.nodeid), len(rank)))   # stable: file order otherwise


@_pytest.hookimpl(optionalhook=True)   # an xdist hook: the suite still runs where pytest-xdist is absent
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = _module(nodeid)
            return "multi-process" if module in MULTI_PROCESS_MODULES else module

    return ModuleScheduling(config, log)


# ---- training/ and adapters/ fixtures (issue 5) --------------------------------------------------
# A tiny base model built the way a user would: tunepath's own pretrain stage (byte-level BPE
# trained on the bundled corpus, random-init Llama, a few steps). Session-scoped: built once, in
# seconds; the training, adapter and launcher tests all reuse it.
from pathlib import Path as _Path


TINY_LLAMA = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256,
              "tie_word_embeddings": True}
GARDEN_TXT = _Path(__file__).resolve().parents[1] / "examples" / "data" / "garden.txt"
GARDEN_QA = _Path(__file__).resolve().parents[1] / "examples" / "data" / "garden_qa.jsonl"


@_pytest.fixture
def torch_one_thread():
    """Run a test with one torch thread, restoring the count after.

    On a busy 2-core machine two OpenMP threads stall whenever another process takes a core:
    the example pretraining ran at 672 tok/s with 2 threads and 10,364 tok/s with 1 under load.
    """
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@_pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory) -> _Path:
    """Path of a saved tiny Llama (+ tokenizer with chat template) pretrained by `training.run`."""
    import torch

    from training import load_config, run

    out = tmp_path_factory.mktemp("tiny_base") / "model"
    cfg = load_config(data={
        "stage": "pretrain", "output_dir": str(out), "seed": 0,
        "model": {"architecture": TINY_LLAMA},
        "tokenizer": {"vocab_size": 1000},
        "data": {"paths": [str(GARDEN_TXT)], "max_seq_len": 128, "eval_fraction": 0.0},
        "training": {"max_steps": 12, "micro_batch_size": 8, "logging_steps": 4, "save_steps": 1000},
    })
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # see torch_one_thread
    try:
        run(cfg, progress=False)
    finally:
        torch.set_num_threads(n)
    return out
# ---- end of training/ and adapters/ fixtures -------------------------------------------------------


# ---- Ray (issue 15) ---------------------------------------------------------------------------------
@_pytest.fixture(scope="session")
def ray_local():
    """One local Ray cluster for the session, sized for this 2-core CI: 2 CPUs, a 200 MiB object
    store, no dashboard (~2-8 s to start). Workers import this checkout (PYTHONPATH), not an
    installed tunepath. The CLI's --ray joins it instead of starting its own."""
    ray = _pytest.importorskip("ray")
    root = str(_Path(__file__).resolve().parents[1])
    ray.init(num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False,
             logging_config=ray.LoggingConfig(log_level="ERROR"),
             runtime_env={"env_vars": {"PYTHONPATH": root, "TOKENIZERS_PARALLELISM": "false",
                                       "HF_HUB_OFFLINE": "1"}})
    yield ray
    ray.shutdown()
