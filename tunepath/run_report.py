"""`tunepath run --html`: the run summary as one self-contained HTML page.

What ran (path, method, model, data), the plan's estimate beside the measurement (a table and a bar
chart), the training loss curve and the key figures of each step. Every figure comes from the run
summary `execute()` returns (also OUT/run_summary.json) and the training backend's own
run_summary.json / loss.svg; nothing is re-estimated here, and a quantity the plan did not estimate is
shown as measured only. The chart and table code is advisor/report_render.py's (the report's HTML).
"""
from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any

from advisor.errors import UserError
from advisor.report_render import CSS, bars_svg, fmt_measure, html_table
from advisor.retrieval import EMBED_MODEL
from advisor.textio import atomic_write_text

SUFFIXES = (".html", ".htm")

# (key in a step's estimate/measured dict, label) in the order the table and chart show them
QUANTITIES = [("wall_s", "wall time (s)"), ("startup_s", "start-up (s)"), ("train_s", "training (s)"),
              ("peak_memory_gb", "peak memory (GB)"), ("steps", "optimizer steps"), ("micro_batches", "micro-batches"),
              ("tokens", "tokens"), ("padded_tokens", "tokens with padding"), ("tokens_per_s", "tokens/s"),
              ("chunks_per_s", "chunks/s"), ("generated_tokens_per_s", "generated tokens/s")]

TRAIN_FIGURES = [("stage", "stage"), ("method", "method"), ("model", "model"), ("precision", "precision"),
                 ("batching", "batching"), ("steps", "optimizer steps"), ("epochs", "epochs"),
                 ("micro_batches", "micro-batches"), ("tokens", "tokens"), ("padded_tokens", "tokens with padding"),
                 ("tokens_per_s", "tokens/s"), ("train_wall_s", "seconds in Trainer.train"),
                 ("wall_s", "wall seconds"), ("peak_memory_bytes", "peak memory (bytes)"),
                 ("peak_memory_kind", "peak memory kind"), ("train_loss", "train loss"),
                 ("final_loss", "final loss"), ("eval_loss", "eval loss"), ("perplexity", "perplexity"),
                 ("trainable_params", "trainable params"), ("total_params", "total params"),
                 ("model_flops_per_s", "model FLOP/s"), ("mfu", "MFU")]


def check_html_path(path: Path) -> Path:
    """Fail before the run, not after it: a .html/.htm name in a folder that exists (or can be made) and
    can be written."""
    if path.suffix.lower() not in SUFFIXES:
        raise UserError(f"--html {path}: expected a .html or .htm file name")
    if path.is_dir():
        raise UserError(f"--html {path}: is a folder; expected a .html file name")
    anc = path.absolute().parent
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise UserError(f"--html {path}: cannot write there ({anc} is a file, not a folder)")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise UserError(f"--html {path}: cannot write there ({anc} is not writable)")
    return path


def _number(v: Any) -> float | int | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return v


def comparison_rows(summary: dict) -> list[dict]:
    """Per step and quantity: the plan's estimate (None where it made none) and the measurement."""
    rows = []
    for s in summary["steps"]:
        est, meas = s.get("estimate") or {}, s.get("measured") or {}
        for key, label in QUANTITIES:
            e, m = _number(est.get(key)), _number(meas.get(key))
            if e is None and m is None:
                continue
            rows.append({"step": s["kind"], "key": key, "label": label, "estimated": e, "measured": m,
                         "ratio": m / e if e and m is not None else None})
    return rows


def _what_ran(plan, summary: dict) -> list[list[str]]:
    out = []
    for step in plan.steps:
        c = step.config
        if step.kind == "train":
            model = c["model"].get("name_or_path") or c["model"].get("architecture")
            if isinstance(model, dict):
                model = f"{model.get('model_type', 'model')} from run.architecture"
            method = (c.get("adapter") or {}).get("method", "lora") if c["stage"] == "peft" else c["stage"]
            out.append([step.kind, method, str(model), ", ".join(c["data"]["paths"])])
        elif step.kind in ("index", "tune"):
            data = ", ".join(c["paths"]) if step.kind == "index" else c["pairs"]
            out.append([step.kind, "embed" if step.kind == "index" else "tune the embedder",
                        c.get("model") or EMBED_MODEL, data])
        elif step.kind == "answer":
            out.append([step.kind, "hybrid retrieval" + (" + generation" if c.get("generator") else ""),
                        c.get("generator") or "-", f"{len(c['questions'])} question(s)"])
        elif step.kind == "evaluate":
            out.append([step.kind, "nDCG@10, recall@k, MRR@10", "-", f"{c['queries']}, {c['qrels']}"])
        elif step.kind == "prompt":
            out.append([step.kind, "few-shot prompt", c.get("generator") or "-", c["labeled_data"]])
    return out


def _inline_svg(path: Path) -> str | None:
    """The training backend's loss.svg, inlined (our own plain SVG; any XML prolog dropped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    start = text.find("<svg")
    return text[start:] if start >= 0 else None


def _figure_rows(pairs: list[tuple[str, Any]]) -> tuple[list[list[str]], list[dict]]:
    rows, attrs = [], []
    for label, v in pairs:
        n = _number(v)
        rows.append([label, fmt_measure(n) if n is not None else ("-" if v is None else str(v))])
        attrs.append({1: f' data-value="{html.escape(repr(n))}"'} if n is not None else {})
    return rows, attrs


def _step_sections(summary: dict) -> list[str]:
    parts = []
    for s in summary["steps"]:
        d = s["detail"]
        if s["kind"] == "train":
            out = Path(d["output_dir"])
            try:
                train = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                train = {}
            parts.append(f"<h2>Training: {html.escape(str(train.get('stage', '')))}</h2>"
                         f"<p>From <code>{html.escape(str(out / 'run_summary.json'))}</code>.</p>")
            est = train.get("estimate") or {}
            rows, attrs = _figure_rows([(label, train.get(k)) for k, label in TRAIN_FIGURES if k in train]
                                       + [("estimated FLOPs for the tokens run (advisor)", est.get("flops"))])
            parts.append(f'<div class="figures" data-source="{html.escape(str(out / "run_summary.json"))}">'
                         + html_table(["figure", "value"], rows, num_cols=(1,), cell_attrs=attrs) + "</div>")
            svg = _inline_svg(out / "loss.svg")
            parts.append(f'<h3>Loss</h3><div class="loss">{svg}</div>' if svg else
                         "<p>No loss was logged (loss.svg absent).</p>")
        elif s["kind"] == "index":
            counts = d.get("counts") or {}
            rows, attrs = _figure_rows([("chunks embedded", d.get("chunks_embedded")),
                                        ("chunks reused", d.get("chunks_reused")),
                                        *[(k.replace("_", " "), v) for k, v in counts.items()],
                                        ("skipped files", d.get("skipped_files"))])
            itype = d.get("index_type") or {}
            parts.append(f"<h2>Index</h2><p><code>{html.escape(str(d.get('index_dir')))}</code>"
                         + (f", a {html.escape(str(itype['kind']))} index" if itype.get("kind") else "")
                         + '</p><div class="index">'
                         + html_table(["figure", "value"], rows, num_cols=(1,), cell_attrs=attrs) + "</div>")
        elif s["kind"] == "tune":
            rows, attrs = _figure_rows([(k.replace("_", " "), v) for k, v in d.items()
                                        if _number(v) is not None])
            parts.append('<h2>Embedder tuning</h2><div class="tune">'
                         + html_table(["figure", "value"], rows, num_cols=(1,), cell_attrs=attrs) + "</div>")
        elif s["kind"] == "evaluate":
            rows, attrs = _figure_rows([(k.replace("_", " "), v) for k, v in (d.get("metrics") or {}).items()])
            parts.append('<h2>Retrieval quality</h2><div class="metrics">'
                         + html_table(["metric", "value"], rows, num_cols=(1,), cell_attrs=attrs) + "</div>")
        elif s["kind"] == "answer":
            items = "".join(f"<li><b>{html.escape(a['question'])}</b><br>{html.escape(str(a['answer']))}"
                            f"<br><small>{html.escape(', '.join(a['sources']))}</small></li>"
                            for a in d.get("answers", []))
            parts.append(f"<h2>Sample answers</h2><ol>{items}</ol>")
        elif s["kind"] == "prompt":
            rows, attrs = _figure_rows([(k.replace("_", " "), d.get(k)) for k in
                                        ("few_shot", "eval_examples", "exact_match", "token_f1",
                                         "generated_tokens_per_s") if k in d])
            parts.append('<h2>Prompting</h2><div class="prompt">'
                         + html_table(["figure", "value"], rows, num_cols=(1,), cell_attrs=attrs) + "</div>")
    return parts


def run_html(plan, summary: dict) -> str:
    """The page, every text escaped; numbers carry their exact JSON value in data-value."""
    name = html.escape(summary["spec"])
    path = html.escape(summary["path"])
    rec = summary.get("recommended")
    rows = comparison_rows(summary)
    table_rows = [[r["step"], r["label"], fmt_measure(r["estimated"]), fmt_measure(r["measured"]),
                   f"\u00d7{r['ratio']:.3g}" if r["ratio"] is not None else
                   ("measured only" if r["estimated"] is None else "-")] for r in rows]
    attrs = [{j: f' data-value="{html.escape(repr(r[k]))}"' for j, k in ((2, "estimated"), (3, "measured"))
              if r[k] is not None} for r in rows]
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{name}: {path} run</title><style>{CSS}</style></head><body>",
             f"<h1>{name}: {path} run</h1>",
             f"<p>Path <b>{path}</b>" + (f" (recommended: {html.escape(rec)})" if rec and rec != summary["path"]
                                         else " (the recommended path)" if rec else "")
             + f", {html.escape(fmt_measure(summary['wall_s']))} s in all, peak memory "
             f"{html.escape(fmt_measure(summary['peak_memory_gb']))} GB "
             f"({html.escape(summary.get('peak_memory_kind', ''))}). Output: "
             f"<code>{html.escape(summary['output_dir'])}</code>.</p>",
             f"<p><small>Estimates: {html.escape(summary['calibration'])}</small></p>",
             '<h2>What ran</h2><div class="what-ran">'
             + html_table(["step", "method", "model", "data"], _what_ran(plan, summary)) + "</div>",
             "<h2>Estimated vs measured</h2>"]
    if rows:
        chart_rows = [(f"{r['step']}: {r['label']}", r["estimated"], r["measured"]) for r in rows]
        parts.append(f'<div class="chart">{bars_svg(chart_rows, "estimated vs measured, per step")}</div>')
        parts.append("<p><small>Each pair of bars is scaled to its larger value (units differ between "
                     "rows). Memory is the process's peak so far; the estimate is the plan's, for this "
                     "machine.</small></p>")
        parts.append('<div class="comparison">' + html_table(
            ["step", "quantity", "estimated", "measured", "measured / estimated"], table_rows,
            num_cols=(2, 3, 4), cell_attrs=attrs) + "</div>")
    parts += _step_sections(summary)
    parts.append(f"<p><small>Generated by <code>tunepath run</code> from "
                 f"<code>{html.escape(str(Path(summary['output_dir']) / 'run_summary.json'))}</code>."
                 "</small></p></body></html>")
    return "\n".join(parts) + "\n"


def write_run_html(path: Path, plan, summary: dict) -> Path:
    """Atomic write, mode 0644 (a summary is meant to be shared)."""
    try:
        return atomic_write_text(path, run_html(plan, summary))
    except OSError as e:
        raise UserError(f"--html {path}: cannot write ({e.strerror})") from None
