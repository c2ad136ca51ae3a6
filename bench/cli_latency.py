"""Median wall time of `tunepath recommend` vs the floor of any typer CLI that validates its input
with one pydantic model and prints one rich table (the named baseline), and vs
`python -c "import typer, rich, pydantic"` for reference (`import pydantic` alone is lazy: it
loads none of the model machinery, so it is not a CLI's floor).

Target: `tunepath recommend` median <= 1.3x the floor. All run as fresh interpreters,
interleaved, on the same machine. The CLI runs as `python -m tunepath.cli` when that module
exists (the product shell), else `python -m advisor.cli`. Records bench/results/cli_latency.json.
Usage: python bench/cli_latency.py [SPEC] [--runs 9]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from results import record  # noqa: E402

TARGET = 1.3


def cli_module() -> str:
    """`tunepath.cli` once the product shell exists in this checkout, else the advisor's CLI. The
    module must come from this checkout: an editable install elsewhere would be found too."""
    for mod in ("tunepath.cli", "advisor.cli"):
        try:
            spec = find_spec(mod)
        except ModuleNotFoundError:
            continue
        if spec is not None and spec.origin and Path(spec.origin).resolve().is_relative_to(REPO):
            return mod
    raise SystemExit(f"no tunepath.cli or advisor.cli in {REPO}")

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
    mod = cli_module()
    floor_name = "floor: typer command + 1 pydantic model + rich table"
    rec_name = f"tunepath recommend {Path(args.spec).name}"
    json_name = f"tunepath recommend --json {Path(args.spec).name}"
    cmds = {
        floor_name: [sys.executable, "-c", FLOOR, "x"],
        "reference: import typer, rich, pydantic": [sys.executable, "-c", "import typer, rich, pydantic"],
        rec_name: [sys.executable, "-m", mod, "recommend", args.spec],
        json_name: [sys.executable, "-m", mod, "recommend", "--json", args.spec],
    }
    for c in cmds.values():  # warm the page cache
        _time(c)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(args.runs):
        for k, c in cmds.items():
            times[k].append(_time(c))
    med = {k: statistics.median(v) for k, v in times.items()}
    floor = med[floor_name]
    print(f"median of {args.runs} interleaved runs (python -m {mod})")
    for k, v in med.items():
        print(f"  {k:55} {v * 1000:6.0f} ms  {v / floor:4.2f}x floor")
    ratio = med[rec_name] / floor
    print(f"target: tunepath recommend median <= {TARGET}x the floor: {ratio:.2f}x, "
          f"{'met' if ratio <= TARGET else 'NOT met'}")
    record("cli_latency", figures={"runs": args.runs, "module": mod, "spec": Path(args.spec).name,
                                   "median_ms": {k: v * 1000 for k, v in med.items()}},
           baseline=floor_name + " (fresh interpreter, interleaved)",
           ratios={"recommend_vs_floor": ratio, "recommend_json_vs_floor": med[json_name] / floor},
           target=f"`tunepath recommend` median <= {TARGET}x the floor")


if __name__ == "__main__":
    main()
