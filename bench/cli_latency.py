"""Median wall time of `tunepath recommend` vs the floor `python -c "import typer, rich, pydantic"`.

Target (design.md §7): ratio <= 1.5. Both run as fresh interpreters, interleaved, same machine.
Usage: python bench/cli_latency.py [SPEC] [--runs 9]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _time(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("spec", nargs="?", default=str(REPO / "examples" / "support-assistant.yaml"))
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    baseline = [sys.executable, "-c", "import typer, rich, pydantic"]
    tool = [sys.executable, "-m", "advisor.cli", "recommend", args.spec]
    _time(baseline), _time(tool)  # warm the page cache
    base, ours = [], []
    for _ in range(args.runs):
        base.append(_time(baseline))
        ours.append(_time(tool))
    b, o = statistics.median(base), statistics.median(ours)
    print(f"baseline (import typer, rich, pydantic): median {b * 1000:.0f} ms over {args.runs} runs")
    print(f"tunepath recommend {Path(args.spec).name}: median {o * 1000:.0f} ms")
    print(f"ratio: {o / b:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
