"""`tunepath models / gpus`: the catalogs, with exact parameter counts and dated prices.

The default view fits 80 columns with every id whole (numbers in human units, long texts left to
`--wide` and `--json`); a wider terminal simply gets more room.
"""
from __future__ import annotations

import typer
from rich.markup import escape

from advisor.console import out
from tunepath.commands.options import JsonOpt, WideOpt, print_json

app = typer.Typer()


def _tokens(n: int | None) -> str:
    """Context windows as people write them: 4k, 32k, 128k (powers of two in units of 1,024)."""
    if not n:
        return "-"
    return f"{n // 1024}k" if n % 1024 == 0 else f"{n:,}"


@app.command(rich_help_panel="Catalogs")
def models(as_json: bool = JsonOpt, wide: bool = WideOpt) -> None:
    """List the model catalog with exact parameter counts (add your own with TUNEPATH_CATALOG).

    The id is what `model.base` in a spec and `tunepath estimate --model` take.
    """
    from advisor import catalog
    from advisor.costs import context_window
    from advisor.textio import human

    rows = []
    for mid, row in catalog.models().items():
        a = catalog.architecture(mid)
        rows.append({"id": mid, "model_type": a.model_type, "total_params": a.total_params,
                     "active_params": a.active_params, "layers": a.num_layers, "hidden_size": a.hidden_size,
                     "kv_heads": a.num_kv_heads, "vocab_size": a.vocab_size,
                     "context": context_window(mid), "tied_embeddings": a.tied_embeddings, "note": row.note})
    # by owner, then size: a family reads as the ladder the search steps along (advisor/costs.py `ladder`)
    rows.sort(key=lambda r: (r["id"].split("/")[0].lower(), r["total_params"], r["id"].lower()))
    if as_json:
        print_json(rows)
        return
    from tunepath.render import new_table

    t = new_table("Model catalog")
    cols = ["id", "params", "active", "layers", "kv", "ctx", "vocab"]
    if wide:
        cols += ["type", "hidden", "tied", "note"]
    for col in cols:
        t.add_column(col, justify="left" if col in ("id", "type", "tied", "note") else "right",
                     no_wrap=col != "note")
    for r in rows:
        cells = [r["id"], human(r["total_params"]), human(r["active_params"]), str(r["layers"]), str(r["kv_heads"]),
                 _tokens(r["context"]), human(r["vocab_size"])]
        if wide:
            cells += [r["model_type"], str(r["hidden_size"]), "yes" if r["tied_embeddings"] else "no", r["note"]]
        t.add_row(*map(escape, cells))     # ids and notes of TUNEPATH_CATALOG rows are the user's text
    out.print(t)
    if not wide:
        out.print("[dim]kv: key/value heads; ctx: context window. Exact counts and details: --wide or --json[/]")


@app.command(rich_help_panel="Catalogs")
def gpus(as_json: bool = JsonOpt, wide: bool = WideOpt) -> None:
    """List the GPU catalog: memory, dense bf16 TFLOP/s, bandwidth, and $/GPU-hour per provider class
    (GPU cloud on-demand, hyperscaler on-demand, marketplace), each quote with its page and date read."""
    from advisor import catalog

    rows = [g.model_dump() for g in catalog.gpus().values()]
    if as_json:
        print_json(rows)
        return
    from tunepath.render import new_table

    classes = catalog.PRICE_CLASSES
    short = {"gpu_cloud": "cloud $/h", "hyperscaler": "hyper $/h", "marketplace": "market $/h"}
    t = new_table("GPU catalog ($/GPU-hour; * = the price costs use)")
    cols = ["id", "GiB", "bf16 TFLOP/s", "GB/s", *(short[c] for c in classes)] + (["read", "spec source"] if wide else [])
    for col in cols:
        t.add_column(col, justify="left" if col in ("id", "read", "spec source") else "right",
                     no_wrap=col != "spec source")
    unquoted, unpriced = [], []
    for g in rows:
        prices = [f"{g['prices'][c]['usd_per_hour']:.2f}" + ("*" if g["price_class"] == c else "")
                  if c in g["prices"] else "-" for c in classes]
        if g["usd_per_hour"] is None:
            unpriced.append(g["id"])
            unquoted.append(f"{g['id']}: {g['price_source'] or 'no quote'}")
        elif g["price_class"] == "user" or not g["prices"]:
            prices[0] = f"{g['usd_per_hour']:.2f}*"
            unquoted.append(f"{g['id']}: {g['price_source'] or 'no source'}")
        dates = sorted({q["date"] for q in g["prices"].values()})
        cells = [g["id"], f"{g['memory_gb']:g}", f"{g['bf16_tflops']:g}" + ("" if g["bf16"] else " fp16"),
                 f"{g['bandwidth_gbs']:,.0f}", *prices]
        t.add_row(*map(escape, [*cells, *([", ".join(dates) or "-", g["spec_source"]] if wide else [])]))
    out.print(t)
    if unpriced:      # why a listed GPU never shows up in a recommendation
        out.print(f"No price quote found: {', '.join(unpriced)}. `tunepath estimate` gives no cost on them and "
                  "the advisor's search skips them; price one in a TUNEPATH_CATALOG file "
                  "(gpus.<id>.usd_per_hour).", markup=False)
    out.print("$/GPU-hour classes: " + "; ".join(f"{short[c].split()[0]} = {catalog.PRICE_CLASS_LABELS[c]}"
                                                for c in classes))
    if wide:
        sources = sorted({q["source"] for g in rows for q in g["prices"].values()})
        out.print("Price sources (page; date read in the table):")
        for line in sources + unquoted:
            out.print(f"  - {line}", markup=False)
    out.print("[dim]Override in a TUNEPATH_CATALOG file: gpus.<id>.prices.<class> or usd_per_hour; "
              "price_class: hyperscaler|marketplace. Quotes' pages, dates read and data-sheet sources: --wide "
              "or --json[/]")
