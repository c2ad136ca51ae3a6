"""`tunepath models / gpus`: the catalogs, with exact parameter counts and dated prices."""
from __future__ import annotations

import typer

from advisor.console import out
from tunepath.commands.options import JsonOpt, print_json

app = typer.Typer()


@app.command(rich_help_panel="Catalogs")
def models(as_json: bool = JsonOpt) -> None:
    """List the model catalog with exact parameter counts (add your own with TUNEPATH_CATALOG)."""
    from advisor import catalog

    rows = []
    for mid, row in catalog.models().items():
        a = catalog.architecture(mid)
        rows.append({"id": mid, "model_type": a.model_type, "total_params": a.total_params,
                     "active_params": a.active_params, "layers": a.num_layers, "hidden_size": a.hidden_size,
                     "kv_heads": a.num_kv_heads, "vocab_size": a.vocab_size, "tied_embeddings": a.tied_embeddings,
                     "note": row.note})
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    t = Table(title="Model catalog")
    for col in ("id", "type", "params", "active", "layers", "hidden", "kv heads", "vocab", "tied", "note"):
        t.add_column(col, justify="right" if col in ("params", "active", "layers", "hidden", "kv heads", "vocab")
                     else "left")
    for r in rows:
        t.add_row(r["id"], r["model_type"], f"{r['total_params']:,}", f"{r['active_params']:,}", str(r["layers"]),
                  str(r["hidden_size"]), str(r["kv_heads"]), f"{r['vocab_size']:,}",
                  "yes" if r["tied_embeddings"] else "no", r["note"])
    out.print(t)


@app.command(rich_help_panel="Catalogs")
def gpus(as_json: bool = JsonOpt) -> None:
    """List the GPU catalog: memory, dense bf16 TFLOP/s, bandwidth, $/hour (with sources and dates)."""
    from advisor import catalog

    rows = [g.model_dump() for g in catalog.gpus().values()]
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    t = Table(title="GPU catalog")
    for col in ("id", "memory GB", "bf16 TFLOP/s", "GB/s", "$/h", "price date", "spec source"):
        t.add_column(col)
    for g in rows:
        t.add_row(g["id"], f"{g['memory_gb']:g}", f"{g['bf16_tflops']:g}" + ("" if g["bf16"] else " (fp16)"),
                  f"{g['bandwidth_gbs']:,.0f}", f"{g['usd_per_hour']:.2f}", g["price_date"], g["spec_source"])
    out.print(t)
    out.print(f"Prices: {rows[0]['price_source']}" if rows else "")
