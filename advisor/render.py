"""Rich renderings of the advisor's results (the CLI shell's only presentation code)."""
from __future__ import annotations

from rich.table import Table

from advisor.estimate import InferenceEstimate, TrainEstimate
from advisor.recommend import PATH_LABELS, Advice


def money(x: float | None) -> str:
    if x is None:
        return "-"
    if x < 0.005:
        return "$0"
    if x >= 1e6:
        return f"${x / 1e6:,.2f}M"
    return f"${x:,.0f}" if x >= 10 else f"${x:,.2f}"


def num(x: float) -> str:
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.3g}"


def advice_table(advice: Advice) -> Table:
    chosen = (advice.recommendation.path or "").split("+")
    t = Table(title=f"{advice.spec_name}: {advice.model} ({num(advice.total_params)} params)", title_justify="left")
    t.add_column("path")
    t.add_column("feasible")
    for col in ("fit", "one-off", "monthly", "12-month", "first result", "memory/GPU"):
        t.add_column(col, justify="right")
    for r in sorted(advice.paths, key=lambda r: (not r.feasible, -r.fit)):
        c = r.cost
        mark = "[bold green]>[/] " if r.path in chosen else "  "
        mem = f"{c.memory_gb_per_gpu:,.0f}/{c.gpu_memory_gb:,.0f} GB" if c.memory_gb_per_gpu is not None else "-"
        t.add_row(mark + PATH_LABELS[r.path], "[green]yes[/]" if r.feasible else "[red]no[/]", f"{r.fit:+g}",
                  money(c.one_off_usd), money(c.monthly_usd), money(c.total_usd(12)),
                  f"{c.time_to_first_result_days:,.0f} d", mem)
    return t


def rules_lines(advice: Advice) -> list[str]:
    """Per path: the rules that moved it, strongest first."""
    lines = []
    for r in advice.paths:
        fired = sorted((f for f in r.rules if f.weight != 0.0),
                       key=lambda f: (f.weight is not None, -abs(f.weight or 0)))
        if not fired:
            continue
        parts = [f"[red]{f.id}[/]" if f.weight is None else f"{f.id} {f.effect}" for f in fired]
        lines.append(f"[bold]{PATH_LABELS[r.path]}[/]: " + ", ".join(parts))
    return lines


def train_table(est: TrainEstimate, gpu_id: str, gpus: int) -> Table:
    t = Table(title=f"{est.method} on {gpus} x {gpu_id}", title_justify="left", show_header=False)
    t.add_column("quantity")
    t.add_column("value", justify="right")
    rows = [
        ("total params", f"{est.total_params:,}"),
        ("active params / token", f"{est.active_params:,}"),
        ("trainable params", f"{est.trainable_params:,} ({100 * est.trainable_params / est.total_params:.4g} %)"),
        ("training tokens", num(est.tokens)),
        ("FLOPs", f"{est.flops:.3e}"),
    ]
    mem = est.memory.as_gb()
    rows += [(f"memory: {k}", f"{v:,.2f} GB") for k, v in mem.items() if k != "total"]
    rows += [
        ("memory per GPU", f"[bold]{mem['total']:,.2f} GB[/] of {est.gpu_memory_gb:,.0f} GB -> "
                           + ("[green]fits[/]" if est.fits else "[red]does not fit[/]")),
        ("MFU", f"{est.mfu:.2f}"),
        ("wall time", f"{est.hours:,.1f} h ({est.hours / 24:,.1f} days)"),
        ("GPU-hours", f"{est.gpu_hours:,.1f}"),
        ("cost", money(est.cost_usd)),
    ]
    for k, v in rows:
        t.add_row(k, v)
    return t


def inference_table(est: InferenceEstimate, gpu_id: str) -> Table:
    t = Table(title=f"serving on {gpu_id}", title_justify="left", show_header=False)
    t.add_column("quantity")
    t.add_column("value", justify="right")
    for k, v in (("weights", f"{est.weights_gb:,.2f} GB"),
                 ("KV cache per token", f"{est.kv_bytes_per_token / 1024:,.0f} KiB"),
                 (f"KV cache ({est.concurrency} concurrent)", f"{est.kv_cache_gb:,.2f} GB"),
                 ("GPUs per replica", str(est.gpus_per_replica)),
                 ("prefill tokens/s", f"{est.prefill_tokens_per_s:,.0f}"),
                 ("decode tokens/s (batch 1)", f"{est.decode_tokens_per_s_batch1:,.0f}"),
                 (f"decode tokens/s (batch {est.concurrency})", f"{est.decode_tokens_per_s:,.0f}"),
                 ("replicas", str(est.replicas)),
                 ("GPU-hours / month", f"{est.monthly_gpu_hours:,.0f}"),
                 ("cost / month", money(est.monthly_usd))):
        t.add_row(k, v)
    return t
