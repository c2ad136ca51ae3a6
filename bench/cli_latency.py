"""Median wall time of `tunepath recommend` vs `python -c "import typer, rich, pydantic"`.

Target: `tunepath recommend` <= 1.3x the floor below. `import pydantic` is lazy: it loads none of the model
machinery, so a second reference is printed too - the floor of any typer CLI that validates its
input with one pydantic model and prints one rich table - to show what the ratio is made of.
All run as fresh interpreters, interleaved, on the same machine.
Usage: python bench/cli_latency.py [SPEC] [--runs 9]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FLOOR = """
import sys, typer, pydantic
from rich.console import Console
from rich.table import Table
class Spec(pydantic.BaseModel):
    name: str
app = typer.Typer()
@app.command()
def recommend(spec: str, as_json: bool = typer.Option(False, "--json")):
    s = Spec(name=spec)
    t = Table(); t.add_column("path"); t.add_row(s.name); Console().print(t)
app()
"""


# Installed packages carry compiled bytecode (pip compiles at install; a checkout writes __pycache__ on
# first run). With PYTHONDONTWRITEBYTECODE set, every run would recompile tunepath's own modules from
# source while the libraries' stay compiled - not what a user's machine does - so it is unset here.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _time(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=REPO, env=ENV)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("spec", nargs="?", default=str(REPO / "examples" / "support-assistant.yaml"))
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    cmds = {
        "baseline: import typer, rich, pydantic": [sys.executable, "-c", "import typer, rich, pydantic"],
        "floor: typer command + 1 pydantic model + rich table": [sys.executable, "-c", FLOOR, "x"],
        f"tunepath recommend {Path(args.spec).name}": [sys.executable, "-m", "tunepath.cli", "recommend", args.spec],
        f"tunepath recommend --json {Path(args.spec).name}": [sys.executable, "-m", "tunepath.cli", "recommend",
                                                              "--json", args.spec],
    }
    for c in cmds.values():  # warm the page cache
        _time(c)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(args.runs):
        for k, c in cmds.items():
            times[k].append(_time(c))
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med[next(iter(med))]
    floor = med[list(med)[1]]
    print(f"median of {args.runs} interleaved runs")
    for k, v in med.items():
        print(f"  {k:55} {v * 1000:6.0f} ms  {v / base:4.2f}x baseline  {v / floor:4.2f}x floor")
    print("target: tunepath recommend <= 1.3x floor")


if __name__ == "__main__":
    main()
