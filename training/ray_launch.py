"""`tunepath train CONFIG --ray --workers N [--gpus-per-worker G] [--ray-address ADDRESS]`.

Ray Train's TorchTrainer starts N workers and joins them in a torch process group (gloo on CPU,
NCCL on GPUs) and sets RANK/WORLD_SIZE/LOCAL_RANK as torchrun does
(ray/train/torch/config.py, _set_torch_distributed_env_vars). Each worker then runs the same
`training.runner.run` as `tunepath train` under torchrun: transformers' Trainer finds the
initialised process group through accelerate and trains with DDP. Nothing else changes:
checkpoints, the complete-checkpoint markers, the resume fingerprint and run_summary.json live in
the config's output_dir, which every worker must see (one machine, or storage all nodes mount),
and `--resume` continues from the newest complete checkpoint there, as it does today.

ray is imported inside run_on_ray; nothing imports this module unless --ray is given.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from advisor.errors import UserError
from advisor.textio import check_output_dir
from training.config import TrainConfig, load_config
from training.summary import RunSummary


def _ray() -> Any:
    try:
        import ray
        import ray.train.torch  # noqa: F401
    except ImportError:
        raise UserError("--ray needs the cluster extra: pip install 'tunepath[cluster]'") from None
    return ray


def connect(address: str | None) -> Any:
    """Join the cluster at `address` ('auto' = the one `ray start` made here), or start a local
    one; a Ray already initialised in this process is used as it is. Worker output (rank 0's
    progress) is forwarded to this terminal."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    root = str(Path(__file__).resolve().parents[1])
    try:
        if address:
            import adapters
            import advisor
            import training

            # + the shell, whose plan printer (on_plan) rank 0 calls; by path: training/ never imports it
            mods = [str(Path(m.__file__).parent) for m in (training, adapters, advisor)] + [f"{root}/tunepath"]
            ray.init(address=address, runtime_env={"py_modules": mods})
        else:
            path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
            ray.init(include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": path}},
                     logging_config=ray.LoggingConfig(log_level="ERROR"))
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise UserError(f"--ray-address {address}: cannot join a Ray cluster ({str(e).splitlines()[0]})") from None
    return ray


def _absolute(config: TrainConfig) -> dict[str, Any]:
    """The config with local paths made absolute: Ray workers do not start in this directory."""
    data = config.model_dump(mode="json")

    def fix(p: Any) -> Any:
        return str(Path(p).expanduser().resolve()) if isinstance(p, str) and Path(p).expanduser().exists() else p

    data["output_dir"] = str(Path(config.output_dir).expanduser().resolve())
    data["data"]["paths"] = [fix(p) for p in data["data"]["paths"]]
    for section, key in (("model", "name_or_path"), ("model", "architecture"), ("tokenizer", "name_or_path")):
        if data.get(section) and isinstance(data[section].get(key), str):
            data[section][key] = fix(data[section][key])
    return data


def _worker(loop: dict[str, Any]) -> None:
    """One Ray Train worker: the same run as under torchrun, then the summary to the driver.

    Ray Train keeps rank 0's metrics only with a checkpoint, so rank 0 reports a small one that
    holds run_summary.json (the model checkpoints stay where the Trainer wrote them)."""
    import tempfile

    import ray.train

    from training.runner import run

    cfg = load_config(data=loop["config"])
    rank = ray.train.get_context().get_world_rank()
    summary = run(cfg, resume=loop["resume"], force=loop["force"], progress=rank == 0, on_plan=loop["on_plan"])
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if rank == 0:
            (Path(tmp) / "run_summary.json").write_text(summary.model_dump_json())
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report({"summary": summary.model_dump_json()}, checkpoint=checkpoint)  # a barrier: all ranks


def scaling(workers: int, gpus_per_worker: float) -> dict[str, Any]:
    """The ScalingConfig arguments for N workers (validated here, printed in the plan)."""
    if workers < 1:
        raise UserError(f"--workers {workers}: expected at least 1")
    if gpus_per_worker < 0:
        raise UserError(f"--gpus-per-worker {gpus_per_worker}: expected 0 or more")
    res = {"CPU": 1.0, **({"GPU": float(gpus_per_worker)} if gpus_per_worker else {})}
    return {"num_workers": workers, "use_gpu": gpus_per_worker > 0, "resources_per_worker": res}


def run_on_ray(config: TrainConfig, workers: int, gpus_per_worker: float = 0, address: str | None = None,
               resume: bool = False, force: bool = False,
               on_plan: Callable[[Any], None] | None = None) -> RunSummary:
    """Train `config` on `workers` Ray Train workers; returns rank 0's run summary."""
    sc = scaling(workers, gpus_per_worker)
    ray = connect(address)
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    have = ray.cluster_resources()
    for k, per in sc["resources_per_worker"].items():
        if have.get(k, 0) < per * workers:
            raise UserError(f"--workers {workers}: needs {per * workers:g} {k} in all, the Ray cluster has "
                            f"{have.get(k, 0):g}")
    data = _absolute(config)
    out = check_output_dir(data["output_dir"], "output_dir")  # absolute already (_absolute)
    if not force:
        _precheck(load_config(data=data), out, workers, resume)
    out.mkdir(parents=True, exist_ok=True)
    trainer = TorchTrainer(
        _worker,
        train_loop_config={"config": data, "resume": resume, "force": force, "on_plan": on_plan},
        scaling_config=ScalingConfig(**sc),
        torch_config=TorchConfig(backend="nccl" if sc["use_gpu"] else "gloo"),
        # Ray's own run records beside the checkpoints: both must be on storage every node sees
        run_config=RunConfig(name="ray_train", storage_path=str(out)),
    )
    try:
        result = trainer.fit()
    except Exception as e:  # a worker's UserError (e.g. --resume refused) comes back wrapped
        user = _user_error(e)
        if user is not None:
            raise UserError(user) from None
        raise
    return RunSummary.model_validate_json(result.metrics["summary"])


def _precheck(config: TrainConfig, out: Path, world: int, resume: bool) -> None:
    """The output_dir checks of training.runner.plan (a used output_dir without --resume; a
    changed fingerprint with it), run here too so that a refusal fails in a second, before Ray
    starts workers (they check again)."""
    import json

    from training import checkpoints
    from training.runner import fingerprint

    if not resume:
        existing = checkpoints.checkpoints(out)
        if existing:
            raise UserError(f"output_dir {out} already holds checkpoint-{existing[-1][0]}; pass --resume to continue "
                            "it or --force to start over")
        return
    newest = checkpoints.newest_complete(out)
    if newest is None:
        return
    try:
        old = json.loads((out / checkpoints.RUN_FILE).read_text())
    except (OSError, ValueError):
        return  # the workers' plan() reports it
    changes = checkpoints.diff(old, fingerprint(config, world))
    if changes:
        raise UserError(f"--resume refused: changed since {newest.name}: {'; '.join(changes)}. "
                        "Revert them, or pass --force to resume anyway")


def _user_error(e: BaseException) -> str | None:
    """The first UserError message inside Ray's wrapping of worker failures, if any."""
    seen: set[int] = set()
    todo: list[BaseException] = [e]
    while todo:
        x = todo.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, UserError):
            return str(x).strip().splitlines()[-1]
        todo += [c for c in (x.__cause__, x.__context__, getattr(x, "cause", None)) if isinstance(c, BaseException)]
        todo += [f for f in (getattr(x, "worker_failures", None) or {}).values() if isinstance(f, BaseException)]
    return None
