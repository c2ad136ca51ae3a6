"""Embedding on a Ray cluster: `tunepath rag index ... --ray [--ray-address ADDRESS]`.

Only the embedding moves. The driver reads, chunks and numbers the chunks as a local build does
(rag/indexer.py) and keeps the SQLite store, the FAISS index and the atomic generation swap; the
chunk texts go to Ray Data actors (`Dataset.map_batches` with a callable class: one model per
actor, loaded once, on a GPU when the cluster has them) and their vectors stream back into the
same build, block by block in the local build's order, so ids, vectors and search results match
a single-process build.

Fault tolerance is Ray's: Ray Data starts actor pools with max_restarts=-1 and
max_task_retries=-1 (ray/data/_internal/execution/operators/actor_pool_map_operator.py), so a
worker process that dies mid-batch is restarted and its batch re-run; the driver only adds a
block once all its vectors have arrived, so nothing is lost or added twice.

ray is imported inside the functions here; nothing imports this module unless --ray is given.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from advisor.errors import UserError

# Chunks sent to the cluster per Ray dataset: bounds the driver's and the object store's share
# of chunk text (~64k x ~1 KiB) at the price of one model load per actor per window.
WINDOW_CHUNKS = 65536
# Rows per map_batches call: small enough that every actor gets work on a small corpus and a
# retried batch is cheap, large enough that sentence-transformers' length sorting removes padding.
MAX_BATCH_ROWS = 1024
# CPUs left to the driver and Ray Data's own tasks on a CPU-only cluster. Without it, actors
# holding every CPU starve the operators that feed them (measured: two 1-CPU actors on a
# 2-CPU cluster deadlocked in map_batches).
CPU_RESERVE = 0.5


def ray_module() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UserError("--ray needs the cluster extra: pip install 'tunepath[cluster]'") from None
    return ray


def connect(address: str | None) -> Any:
    """Join the cluster at `address` ('auto' = the one `ray start` made here), or start a local
    one; a Ray already initialised in this process (tests, notebooks) is used as it is."""
    ray = ray_module()
    if ray.is_initialized():
        return ray
    # the workers import rag/ and advisor/ from where this driver imports them
    root = str(Path(__file__).resolve().parents[1])
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}}
    try:
        if address:
            # a remote cluster gets the two packages shipped with the job (Ray runtime_env py_modules)
            import advisor
            import rag

            remote = {"py_modules": [str(Path(rag.__file__).parent), str(Path(advisor.__file__).parent)]}
            ray.init(address=address, runtime_env=remote, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, runtime_env=env, log_to_driver=False,
                     logging_config=ray.LoggingConfig(log_level="WARNING"))
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise UserError(f"--ray-address {address}: cannot join a Ray cluster ({str(e).splitlines()[0]})") from None
    return ray


class ChunkEmbedder:
    """A Ray Data actor: one sentence-transformers model, loaded when the actor starts."""

    def __init__(self, model: str, batch_size: int, threads: int) -> None:
        import torch

        from rag.embed import load_model

        if not torch.cuda.is_available():
            torch.set_num_threads(threads)  # Ray's CPU share for this actor, not the node's core count
        self.st = load_model(model)
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from rag.embed import encode

        return {"id": batch["id"], "vector": encode(self.st, [str(t) for t in batch["text"]], self.batch_size)}


def actor_resources(cluster: dict[str, float], workers: int | None) -> tuple[int, dict[str, float], int]:
    """(actors, Ray resources of each, torch threads of each). With GPUs: one GPU per actor and by
    default one actor per GPU. Without: by default one actor per node, the cluster's CPUs less
    CPU_RESERVE shared out among the actors."""
    gpus = int(cluster.get("GPU", 0))
    cpus = float(cluster.get("CPU", 1))
    if workers is not None and workers < 1:
        raise UserError(f"--workers {workers}: expected at least 1")
    if gpus:
        n = workers or gpus
        return n, {"num_gpus": 1, "num_cpus": 1}, 1
    n = workers or max(1, int(cluster.get("_nodes", 1)))
    share = (cpus - CPU_RESERVE) / n
    if share <= 0:
        raise UserError(f"--workers {n}: the cluster has only {cpus:g} CPUs")
    # Ray accepts fractions below 1 and whole numbers above it
    per = math.floor(share) if share >= 1 else math.floor(share * 100) / 100
    return n, {"num_cpus": max(per, 0.01)}, max(1, int(per))


class RayEmbedder:
    """The `embedder` of rag.indexer.build_index that embeds on a Ray cluster: called with the
    index's model and batch size, it returns the BlockEmbedder. `actor_cls` lets a test put a
    failing actor in place of ChunkEmbedder."""

    def __init__(self, address: str | None = None, workers: int | None = None,
                 actor_cls: type = ChunkEmbedder) -> None:
        self.address, self.workers, self.actor_cls = address, workers, actor_cls
        self.model, self.batch_size = "", 32
        self.plan: dict[str, Any] = {}

    def __call__(self, model: str, batch_size: int) -> Callable[..., Iterator[Any]]:
        self.model, self.batch_size = model, batch_size
        return self._embed

    def _embed(self, blocks: list[list[int]], texts: Callable[[list[int]], list[str]]) -> Iterator[Any]:
        if not blocks:
            return
        ray = connect(self.address)
        cluster = dict(ray.cluster_resources())
        cluster["_nodes"] = sum(1 for n in ray.nodes() if n.get("Alive"))
        n, res, threads = actor_resources(cluster, self.workers)
        self.plan = {"actors": n, "resources_per_actor": res, "threads_per_actor": threads,
                     "cluster": {k: v for k, v in cluster.items() if k in ("CPU", "GPU", "_nodes")}}
        window: list[list[int]] = []
        size = 0
        for ids in blocks:
            window.append(ids)
            size += len(ids)
            if size >= WINDOW_CHUNKS:
                yield from self._window(ray, window, texts, n, res, threads)
                window, size = [], 0
        if window:
            yield from self._window(ray, window, texts, n, res, threads)

    def _window(self, ray: Any, blocks: list[list[int]], texts: Callable[[list[int]], list[str]], n: int,
                res: dict[str, float], threads: int) -> Iterator[Any]:
        """Embed a window of blocks on the cluster; yield each block's vectors, in order, as soon
        as all of them are back (Ray Data returns batches in completion order)."""
        import numpy as np

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # tunepath shows its own bar; Ray's would log every 10 s
        ctx.print_on_execution_start = False
        rows = [{"id": i, "text": t} for ids in blocks for i, t in zip(ids, texts(ids))]
        batch_rows = max(4, min(MAX_BATCH_ROWS, math.ceil(len(rows) / (4 * n))))
        ds = ray.data.from_items(rows, override_num_blocks=max(1, math.ceil(len(rows) / batch_rows)))
        del rows
        ds = ds.map_batches(self.actor_cls, batch_size=batch_rows, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(size=n),
                            fn_constructor_kwargs={"model": self.model, "batch_size": self.batch_size,
                                                   "threads": threads}, **res)
        pending: dict[int, Any] = {}
        nxt = 0
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for i, v in zip(batch["id"].tolist(), batch["vector"]):
                pending[i] = v
            while nxt < len(blocks) and all(i in pending for i in blocks[nxt]):
                yield np.ascontiguousarray(np.stack([pending.pop(i) for i in blocks[nxt]]), dtype=np.float32)
                nxt += 1
        if nxt < len(blocks):
            missing = sum(len(b) for b in blocks[nxt:]) - len(pending)
            raise RuntimeError(f"Ray returned no vectors for {missing} chunk(s)")
