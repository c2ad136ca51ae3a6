"""Rich renderings of the advisor's results (the CLI shell's only presentation code)."""
from __future__ import annotations

from rich import box
from rich.markup import escape
from rich.table import Table

from advisor.estimate import GB, InferenceEstimate, TrainEstimate

GIB = 2**30
from advisor.paths import label
from advisor.recommend import Advice
from advisor.textio import human, usd


def new_table(title: str | None = None, **kw) -> Table:
    """A table that reads in 80 columns and pipes cleanly: a rule under the header on a terminal, no box
    drawing at all when the output goes to a file or another program (rich drops colour there itself,
    and honours NO_COLOR)."""
    from advisor.console import out

    kw.setdefault("box", box.SIMPLE_HEAD if out.is_terminal else None)
    kw.setdefault("title_justify", "left")
    kw.setdefault("pad_edge", False)
    kw.setdefault("show_edge", False)
    kw.setdefault("collapse_padding", True)
    # titles carry user text (a spec's name, a model path, a GPU id): '[/]' in one was an internal MarkupError
    return Table(title=escape(title) if title else title, **kw)


def advice_table(advice: Advice) -> Table:
    chosen = (advice.recommendation.path or "").split("+")
    default = "; the default, model.base is not set" if "model.base" in advice.defaults else ""
    t = new_table(f"{advice.spec_name}: {advice.model} ({human(advice.total_params)} params{default})")
    t.caption = "> recommended, x infeasible (why: below); memory/GPU: need/have"
    t.caption_justify = "left"
    t.add_column("path", no_wrap=True)
    for col in ("fit", "one-off", "monthly", "12-month", "1st result", "memory/GPU"):
        t.add_column(col, justify="right", no_wrap=True)
    for r in sorted(advice.paths, key=lambda r: (not r.feasible, -r.fit)):
        c = r.cost
        mark = "[bold green]>[/] " if r.path in chosen else "  " if r.feasible else "[red]x[/] "
        # GiB, the unit the card is sold in and nvidia-smi shows (an H200's 141, not 151 GB of 1e9 bytes)
        mem = (f"{c.memory_gb_per_gpu * GB / GIB:,.0f}/{c.gpu_memory_gb * GB / GIB:,.0f} GiB"
               if c.memory_gb_per_gpu is not None else "-")
        t.add_row(mark + label(r.path), f"{r.fit:+g}",
                  usd(c.one_off_usd), usd(c.monthly_usd), usd(c.total_usd(12)),
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
        lines.append(f"[bold]{label(r.path)}[/]: " + ", ".join(parts))
    return lines


def train_table(est: TrainEstimate, gpu_id: str, gpus: int) -> Table:
    t = new_table(f"{est.method} on {gpus} x {gpu_id}", show_header=False)
    t.add_column("quantity")
    t.add_column("value", justify="right")
    rows = [
        ("total params", f"{est.total_params:,}"),
        ("active params / token", f"{est.active_params:,}"),
        ("trainable params", f"{est.trainable_params:,} ({100 * est.trainable_params / est.total_params:.4g} %)"),
        ("training tokens", human(est.tokens)),
        ("FLOPs", f"{est.flops:.3e}"),
    ]
    mem = est.memory.as_gb()
    rows += [(f"memory: {k}", f"{v:,.2f} GB") for k, v in mem.items() if k != "total"]
    rows += [
        ("memory per GPU", f"[bold]{mem['total']:,.2f} GB[/] of {est.gpu_memory_gb:,.1f} GB "
                           f"({est.gpu_memory_gb * 1e9 / 2**30:,.0f} GiB) -> "
                           + ("[green]fits[/]" if est.fits else "[red]does not fit[/]")),
        ("MFU", f"{est.mfu:.2f}"),
        ("tokens/s per GPU", f"{est.tokens / (est.hours * 3600 * gpus):,.0f}" if est.hours else "-"),
        ("wall time", f"{est.hours:,.1f} h ({est.hours / 24:,.1f} days)"
                      + "".join(f", {name} {share:.0%}" for name, share in (
                          ("optimizer update", est.optimizer_update_hours / est.hours if est.hours else 0),
                          ("NF4 dequantisation", est.dequant_hours / est.hours if est.hours else 0)) if share >= 0.01)),
        ("GPU-hours", f"{est.gpu_hours:,.1f}"),
        ("cost", usd(est.cost_usd)),
    ]
    for k, v in rows:
        t.add_row(k, v)
    return t


def inference_table(est: InferenceEstimate, gpu_id: str) -> Table:
    t = new_table(f"serving on {gpu_id}", show_header=False)
    t.add_column("quantity")
    t.add_column("value", justify="right")
    for k, v in (("weights", f"{est.weights_gb:,.2f} GB"),
                 ("KV cache per token", f"{est.kv_bytes_per_token / 1024:,.0f} KiB"),
                 (f"KV cache ({est.concurrency} concurrent)", f"{est.kv_cache_gb:,.2f} GB"),
                 ("GPUs per replica", str(est.gpus_per_replica)),
                 ("prefill tokens/s", f"{est.prefill_tokens_per_s:,.0f}"),
                 ("decode tokens/s (batch 1)", f"{est.decode_tokens_per_s_batch1:,.0f}"),
                 *([(f"decode tokens/s (batch {est.concurrency})", f"{est.decode_tokens_per_s:,.0f}")]
                   if est.concurrency != 1 else []),
                 ("replicas", str(est.replicas)),
                 ("GPU-hours / month", f"{est.monthly_gpu_hours:,.0f}"),
                 ("cost / month", usd(est.monthly_usd))):
        t.add_row(k, v)
    return t   # the engine it assumes is printed under it (a caption wraps to the narrow table's width)


def _fmt(v, unit: str = "") -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}{unit}"
    return f"{v}{unit}"


def plan_table(plan) -> Table:
    """One row per step: what runs, then its estimate on this machine."""
    t = new_table(f"plan: {plan.path} for {plan.spec_name}"
                    + (f" (recommended: {plan.recommended})" if plan.recommended != plan.path else "")
                    + f" -> {plan.output_dir}", show_lines=True)
    t.add_column("step")
    t.add_column("what runs, estimated on this machine")
    for s in plan.steps:
        e = s.estimate
        thr = (f"{e['tokens_per_s']:,.0f} tokens/s" if e.get("tokens_per_s") else
               f"{e['chunks_per_s']:,.1f} chunks/s" if e.get("chunks_per_s") else None)
        est = ", ".join(x for x in (f"~{_fmt(e.get('wall_s'), ' s')}" if e.get("wall_s") else None,
                                     f"peak ~{_fmt(e.get('peak_memory_gb'), ' GB')}" if e.get("peak_memory_gb") else None,
                                     thr) if x)
        if e.get("steps"):   # what the Trainer will run (training/schedule.py), as the run summary counts it
            est += (f"\n{e['steps']:,} steps, {e['micro_batches']:,} micro-batches ({e['batching']}), "
                    f"{e['tokens']:,} tokens + {e['padded_tokens'] - e['tokens']:,} padding; {e['counted']}")
        t.add_row(s.kind, escape(s.description) + (f"\n[dim]{est}[/]" if est else ""))
    return t


def run_summary_table(summary: dict) -> Table:
    t = new_table(f"run: {summary['path']} ({summary['wall_s']:,.1f} s, peak RSS {summary['peak_memory_gb']:.2f} GB)",
              title_justify="left", show_lines=True)
    t.add_column("step")
    t.add_column("estimated -> measured")
    t.add_column("result")
    for s in summary["steps"]:
        e, m, d = s["estimate"], s["measured"], s["detail"]
        lines = [f"time {_fmt(e.get('wall_s'), ' s')} -> {m['wall_s']:,.1f} s",
                 f"memory {_fmt(e.get('peak_memory_gb'), ' GB')} -> {m['peak_memory_gb']:.2f} GB"]
        if "tokens_per_s" in m:
            lines.append(f"tokens/s {_fmt(e.get('tokens_per_s'))} -> {m['tokens_per_s']:,.1f}")
        elif m.get("chunks_per_s") is not None:
            lines.append(f"chunks/s {_fmt(e.get('chunks_per_s'))} -> {m['chunks_per_s']:,.1f}")
        elif "generated_tokens_per_s" in m:
            lines.append(f"generated tokens/s -> {_fmt(m['generated_tokens_per_s'])}")
        if s["kind"] == "train" and e.get("steps"):   # the plan's counts (training/schedule.py) beside the run's
            lines.append(f"steps {e['steps']:,} -> {_fmt(m.get('steps'))}, micro-batches {e['micro_batches']:,} -> "
                         f"{_fmt(m.get('micro_batches'))}")
        if s["kind"] == "train":
            res = f"loss {_fmt(d.get('train_loss'))}, eval loss {_fmt(d.get('eval_loss'))}\n-> {d.get('output_dir')}"
        elif s["kind"] == "tune":
            res = (f"held-out nDCG@10 {d['ndcg_at_10_before']:.3f} -> {d['ndcg_at_10_after']:.3f}"
                   if d.get("ndcg_at_10_after") is not None else "no held-out queries") + f"\n-> {d.get('out')}"
        elif s["kind"] == "index":
            res = f"{d.get('chunks_embedded')} chunks embedded, {d.get('chunks_reused')} reused"
        elif s["kind"] == "evaluate":
            mt = d["metrics"]
            res = f"nDCG@10 {mt['ndcg_at_10']:.3f}, recall@10 {mt['recall_at_10']:.3f}, MRR@10 {mt['mrr_at_10']:.3f}"
        elif s["kind"] == "answer":
            res = f"{len(d['answers'])} questions answered (first answers below)"
        elif s["kind"] == "prompt":
            res = (f"exact match {d['exact_match']:.2f}, token F1 {d['token_f1']:.2f} on {d['eval_examples']} "
                   f"held-out examples\n-> {d['prompt_template']}" if "token_f1" in d
                   else f"template: {d['prompt_template']}")
        else:
            res = ""
        t.add_row(s["kind"], "\n".join(lines), escape(res))
    return t


def sample_answers(summary: dict, n: int = 3) -> list[str]:
    """The first answers of a RAG run, with where they come from - what a user checks first."""
    lines = []
    for st in summary["steps"]:
        if st["kind"] != "answer":
            continue
        for a in st["detail"]["answers"][:n]:
            src = a["sources"][0].rsplit("/", 1)[-1] if a["sources"] else "-"
            body = a["answer"] if a["answer"] else (a["top_passage"] or "").replace("\n", " ")[:160] + "..."
            label = "A" if a["answer"] else "top passage"
            lines.append(f"[bold]Q:[/] {escape(a['question'])}\n   [bold]{label}:[/] {escape(body)}  "
                         f"[dim]({escape(src)})[/]")
    return lines
