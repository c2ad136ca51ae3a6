"""One writer for benchmark results: `bench/results/<name>.json`, read by `bench/make_docs.py`.

Every benchmark calls `record()` once with its figures, the named baseline it ran in the same
invocation and the ratios against it; the file also carries when, where and with what it ran
(date, CPU model, core count, library versions, git commit), so a number quoted in the README or
docs/ can be traced to the run that produced it.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
REPO = RESULTS.parents[1]
_VERSIONED = ("torch", "transformers", "peft", "sentence-transformers", "faiss-cpu", "trl", "ray")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _commit() -> str | None:
    if os.environ.get("BENCH_COMMIT"):  # a copy of the tree without .git (a lent GPU machine): the caller says
        return os.environ["BENCH_COMMIT"]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def environment() -> dict:
    versions = {}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {"date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": _cpu_model(),
            "cores": os.cpu_count(), "python": platform.python_version(), "versions": versions,
            "commit": _commit()}


def record(name: str, *, figures: dict, baseline: str, ratios: dict | None = None, target: str | None = None,
           notes: str | None = None, device: str | None = None) -> Path:
    """Write bench/results/<name>.json (0644) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    extra = os.environ.get("BENCH_NOTES")  # how this run's machine differed (set by whoever ran it)
    notes = "; ".join(n for n in (notes, extra) if n) or None
    data = {"name": name, "baseline": baseline, "target": target, "figures": figures, "ratios": ratios or {},
            "notes": notes, "device": device or "cpu", **environment()}
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    print(f"recorded {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return path
