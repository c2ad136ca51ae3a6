"""Render a report dict (advisor/report.py) as self-contained HTML, Markdown + SVG, or JSON.

Every number printed comes from the dict through `fmt_usd` / `fmt_num`, so tests can check
that HTML and Markdown show exactly the JSON's numbers.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

from advisor.errors import UserError
from advisor.paths import color, label
from advisor.textio import atomic_write_text, usd



fmt_usd = usd   # the same money format as the terminal output


def fmt_num(x) -> str:
    if x is None:
        return "-"
    return f"{x:,}" if isinstance(x, int) else f"{x:,.1f}"


def fmt_measure(x) -> str:
    """A measured or estimated quantity: ints with separators, floats to 4 significant digits (one decimal
    from 1,000), FLOPs-sized numbers in e-notation."""
    if x is None:
        return "-"
    a = abs(x)
    if a >= 1e9:
        return f"{x:.4g}"
    if isinstance(x, int):
        return f"{x:,}"
    if a >= 1000:
        return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"
    return f"{x:.4g}"


def _esc(s) -> str:
    return html.escape(str(s))


def html_table(header, rows, num_cols=(), row_class=None, cell_attrs=None) -> str:
    """An escaped HTML table; cell_attrs[i][j] (already escaped attribute text) decorates cell (i, j)."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = []
    for i, r in enumerate(rows):
        cls = f' class="{row_class[i]}"' if row_class and row_class[i] else ""
        attrs = cell_attrs[i] if cell_attrs else {}
        body.append(f"<tr{cls}>" + "".join(
            f'<td{" class=num" if j in num_cols else ""}{attrs.get(j, "")}>{_esc(c)}</td>'
            for j, c in enumerate(r)) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


BAR_COLORS = {"estimated": "#9e9e9e", "measured": "#1f77b4"}


def bars_svg(rows: list[tuple[str, float | None, float | None]], title: str, width: int = 720) -> str:
    """Estimated vs measured as pairs of horizontal bars, one pair per quantity; inline SVG, no script.

    Quantities differ in unit and size (seconds, GB, tokens/s), so each pair is normalised to its own
    larger value: the bars compare estimate and measurement within a row, never across rows. A row with
    no estimate draws the measurement alone and says so; the right column labels measured / estimated.
    """
    left, right, top_pad, bar, gap = 210, 130, 44, 13, 12
    w = width - left - right
    height = top_pad + len(rows) * (2 * bar + gap) + 8
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
              f'height="{height}" role="img" aria-label="{_esc(title)}" font-family="sans-serif" font-size="11">'),
             f"<title>{_esc(title)}</title>",
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{_esc(title)}</text>']
    for i, kind in enumerate(("estimated", "measured")):
        x = left + i * 110
        parts.append(f'<rect x="{x}" y="24" width="12" height="10" fill="{BAR_COLORS[kind]}"/>'
                     f'<text x="{x + 16}" y="33">{kind}</text>')
    parts.append(f'<text x="{left + w + 8}" y="33">measured / estimated</text>')
    for i, (label, est, meas) in enumerate(rows):
        y0 = top_pad + i * (2 * bar + gap)
        top = max(v for v in (est, meas, 0.0) if v is not None) or 1.0
        parts.append(f'<text x="{left - 8}" y="{y0 + bar + 4}" text-anchor="end">{_esc(label)}</text>')
        for j, (kind, v) in enumerate((("estimated", est), ("measured", meas))):
            y = y0 + j * bar
            if v is None:
                parts.append(f'<text x="{left + 4}" y="{y + bar - 3}" fill="#888">'
                             f'{"no estimate" if kind == "estimated" else "not measured"}</text>')
                continue
            bw = max((w - 60) * v / top, 1.0)          # room for the value label before the ratio column
            parts.append(f'<rect class="{kind}" x="{left}" y="{y}" width="{bw:.1f}" height="{bar - 2}" '
                         f'fill="{BAR_COLORS[kind]}"><title>{kind} {_esc(label)}: {_esc(fmt_measure(v))}</title></rect>'
                         f'<text x="{left + bw + 4:.1f}" y="{y + bar - 3}">{_esc(fmt_measure(v))}</text>')
        ratio = ("measured only" if est is None else "not measured" if meas is None
                 else f"\u00d7{meas / est:.3g}" if est else "-")
        parts.append(f'<text class="ratio" x="{left + w + 8}" y="{y0 + bar + 4}">{_esc(ratio)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def chart_svg(report: dict, width: int = 720, height: int = 360) -> str:
    """Cumulative cost per path over months 0..24, break-even points marked; inline SVG, no script."""
    cum = report["cumulative_usd"]
    feasible = {p["path"]: p["feasible"] for p in report["paths"]}
    months = len(next(iter(cum.values()))) - 1
    shown = {p: v for p, v in cum.items() if feasible.get(p, True)} or cum
    top = max(max(v) for v in shown.values()) or 1.0
    left, right, top_pad, bottom = 70, 150, 20, 40
    w, h = width - left - right, height - top_pad - bottom

    def x(m):
        return left + w * m / months

    def y(v):
        return top_pad + h * (1 - min(v, top) / top)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="Cumulative cost per path over {months} months" font-family="sans-serif" font-size="12">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>']
    for i in range(5):
        v = top * i / 4
        parts.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{left + w}" y2="{y(v):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{_esc(fmt_usd(v))}</text>')
    for m in range(0, months + 1, 6):
        parts.append(f'<text x="{x(m):.1f}" y="{top_pad + h + 18}" text-anchor="middle">{m}</text>')
    parts.append(f'<text x="{left + w / 2:.1f}" y="{height - 4}" text-anchor="middle">months</text>')
    for i, (names, vals) in enumerate(merged_lines(shown)):
        p = names[0]
        pts = " ".join(f"{x(m):.1f},{y(v):.1f}" for m, v in enumerate(vals))
        dash = "" if feasible.get(p, True) else ' stroke-dasharray="4 3"'
        parts.append(f'<polyline fill="none" stroke="{color(p)}" stroke-width="2.5"{dash} points="{pts}"/>')
        parts.append(f'<text x="{left + w + 10}" y="{top_pad + 16 + 18 * i}" fill="{color(p)}">'
                     f'{_esc(" = ".join(names))}</text>')
    for e in report["break_even"]:
        if e["path"] in shown:
            parts.append(f'<circle cx="{x(e["month"]):.1f}" cy="{y(e["cost_usd"]):.1f}" r="5" fill="none" '
                         f'stroke="black" stroke-width="1.5"><title>{_esc(e["path"])} overtakes '
                         f'{_esc(e["overtakes"])} at month {e["month"]}</title></circle>')
    parts.append("</svg>")
    return "\n".join(parts)


def merged_lines(cum: dict[str, list[float]]) -> list[tuple[list[str], list[float]]]:
    """Lines that coincide (every month within $1 or 0.5 %) are drawn once, labelled `a = b`."""
    groups: list[tuple[list[str], list[float]]] = []
    for p, vals in cum.items():
        for names, ref in groups:
            if all(abs(a - b) <= max(1.0, 0.005 * max(abs(a), abs(b))) for a, b in zip(vals, ref)):
                names.append(p)
                break
        else:
            groups.append(([p], vals))
    return groups


def coincide_note(report: dict) -> str | None:
    cum = {p: v for p, v in report["cumulative_usd"].items()
           if next((q["feasible"] for q in report["paths"] if q["path"] == p), True)}
    same = [" = ".join(n) for n, _ in merged_lines(cum) if len(n) > 1]
    return ("Lines that coincide are drawn once: " + "; ".join(same) + ".") if same else None


def _breakdown_rows(report: dict) -> list[list[str]]:
    rows = []
    for p in report["paths"]:
        b, s = p["breakdown"], p["setup"]
        setup = s.get("model", "")
        if s.get("train_gpu"):
            setup += f"; train {s['train_gpus']} x {s['train_gpu']}"
        setup += f"; {p['serving']}"
        rows.append([p["label"], fmt_usd(b.get("compute", 0)), fmt_usd(b.get("people", 0)),
                     fmt_usd(b.get("labels", 0)), fmt_usd(b.get("evaluation", 0)), fmt_usd(p["one_off_usd"]),
                     fmt_usd(b.get("serving_per_month", 0)), fmt_usd(b.get("upkeep_per_month", 0)),
                     fmt_usd(p["monthly_usd"]), fmt_usd(p["total_horizon_usd"]), setup])
    return rows


def breakdown_header(report: dict) -> list[str]:
    return ["path", "compute (all runs)", "people", "labels", "evaluation", "one-off", "serving / month",
            "upkeep / month", "monthly", f"{report['horizon_months']} months", "setup (model; training; serving)"]


def _alternative_lines(report: dict) -> list[str]:
    """Per path: the next-best setups the search found, with what each misses."""
    out = []
    for p in report["paths"]:
        alts = p.get("alternatives") or []
        if not alts:
            continue
        # a setup cheaper than the chosen one lost only by rounding, to the spec's own model: say so
        shown = "; ".join(f"{a['model']}" + (f", train {a['train']}" if a["train"] else "") + f", {a['serving']}: "
                          f"{fmt_usd(a['total_usd'])}" + (f" (misses the {', '.join(a['misses'])})" if a["misses"]
                                                          else " (within rounding of the chosen setup, which keeps "
                                                               "the spec's model)"
                                                          if a["total_usd"] < p["total_horizon_usd"] - 0.005 else "")
                          for a in alts)
        out.append(f"{p['label']}: {shown}")
    return out


def _cost_lines(report: dict) -> list[str]:
    lines = [f"{e['path']} overtakes {e['overtakes']} at month {e['month']} ({fmt_usd(e['cost_usd'])})"
             for e in report["break_even"]]
    if not lines:
        lines.append(f"No break-even between feasible paths within {report.get('chart_months', 24)} months.")
    lines += report.get("cost_statements", [])
    note = coincide_note(report)
    if note:
        lines.append(note)
    return lines


def _paths_rows(report: dict) -> list[list[str]]:
    rows = []
    for p in report["paths"]:
        mem = "-" if p["memory_gb_per_gpu"] is None else \
            f'{fmt_num(p["memory_gb_per_gpu"] * 1e9 / 2**30)} / {fmt_num(float(p["gpu_memory_gb"]) * 1e9 / 2**30)} GiB'
        rows.append([p["label"], "yes" if p["feasible"] else "no: " + "; ".join(p["reasons"]), f'{p["fit"]:+g}',
                     fmt_usd(p["one_off_usd"]), fmt_usd(p["monthly_usd"]), fmt_usd(p["total_12m_usd"]),
                     f'{fmt_num(p["time_to_first_result_days"])} d', mem, p["serving"], "; ".join(p["risks"])])
    return rows


def _default_model(report: dict) -> str:
    return "; the default, model.base is not set" if "model.base" in report.get("defaults", ()) else ""


def headline(report: dict) -> str:
    """The recommendation's cost in one sentence; the one-off budget counts cash (compute, labels, evaluation),
    not the people's time the one-off total also prices - said here, so the two figures are not confused."""
    rec, c = report["recommendation"], report["spec"]["constraints"]
    out = f"One-off {fmt_usd(rec['one_off_usd'])}"
    cash = rec.get("cash_one_off_usd")
    if cash is not None and cash < rec["one_off_usd"]:
        budget = (f"default {fmt_usd(c['budget_usd'])} one-off budget (constraints.budget_usd is not set)"
                  if "constraints.budget_usd" in report.get("defaults", ()) else
                  f"{fmt_usd(c['budget_usd'])} one-off budget")
        out += (f", of which {fmt_usd(cash)} is cash (compute, labels, evaluation) counted against the "
                f"{budget}; the rest is people's time")
    return out + f"; then {fmt_usd(rec['monthly_usd'])} per month."


PATH_HEADER = ["path", "feasible", "fit", "one-off", "monthly", "12 months", "first result", "memory / GPU",
               "serving", "risks"]


def _what_if_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    if not report["what_if"]:
        return [], []
    paths = list(report["what_if"][0]["paths"])
    # the paths' names as the rest of the report writes them ("Full fine-tuning", not "full_finetuning")
    header = ["field", "value", "recommendation"] + [f"{label(p)}, 12 months" for p in paths]
    rows = [[w["field"], fmt_num(w["value"]), label(w["recommendation"]) if w["recommendation"] else "none feasible"]
            + [fmt_usd(w["paths"][p]["total_12m_usd"]) + ("" if w["paths"][p]["feasible"] else " (infeasible)")
               for p in paths] for w in report["what_if"]]
    return header, rows


def to_markdown(report: dict, chart_name: str) -> str:
    def table(header, rows):
        esc = lambda c: str(c).replace("|", "\\|").replace("\n", " ")  # noqa: E731
        return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                         + ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows])

    rec = report["recommendation"]
    lines = [f"# {report['spec']['name']}: should we fine-tune?", "",
             f"Base model `{report['model']['base']}` ({report['model']['total_params']:,} parameters"
             f"{_default_model(report)}).", "",
             f"## Recommendation: {rec['label'] or 'no feasible path'}", ""]
    if rec["path"]:
        lines += [headline(report), ""]
    lines += [f"- {r}" for r in rec["rationale"]] + ["", "## All paths", "", table(PATH_HEADER, _paths_rows(report)),
                                                       "", "## Cost breakdown", "",
                                                       table(breakdown_header(report), _breakdown_rows(report)),
                                                       "", "Next-best setups found by the search (total over the "
                                                       "horizon):", ""] + [f"- {x}" for x in _alternative_lines(report)] + [
                                                       "", "## Cumulative cost", "", f"![cumulative cost]({chart_name})", ""]
    lines += [f"- {x}" for x in _cost_lines(report)] + [""]
    lines += ["## Sensitivity: what would change the recommendation", ""]
    lines += [f"- {s['sentence']} (now {s['now']})" for s in report["sensitivity"]] or \
             ["- No single input within x1000 of its value changes the recommendation."]
    header, rows = _what_if_rows(report)
    if rows:
        lines += ["", "## What if", "", table(header, rows)]
    lines += ["", "## Rules that fired", ""]
    for p in report["paths"]:
        lines += [f"**{p['label']}**", ""] + [f"- `{r['id']}` {r['effect']}: {r['detail']} — {r['evidence']}"
                                               for r in p["rules"]] + [""]
    lines += ["## Assumptions and sources", "", table(["what", "value", "source"],
                                                      [[a["what"], a["value"], a["source"]] for a in report["assumptions"]])]
    return "\n".join(lines) + "\n"


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:16px;
color:#222;line-height:1.45}
h1{font-size:1.6em;margin:.3em 0}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd}
.rec{background:#eef7ee;border-left:6px solid #54a24b;padding:10px 16px;border-radius:4px}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{border:1px solid #ddd;padding:6px 8px;text-align:left;vertical-align:top}th{background:#f5f5f5}
td.num{text-align:right;white-space:nowrap}tr.no td{color:#888}svg{max-width:100%;height:auto}
small{color:#666}
@media print{body{max-width:none;padding:0}h2{break-after:avoid}table,svg{break-inside:avoid}}
"""


def to_html(report: dict) -> str:
    table = html_table

    rec = report["recommendation"]
    name = _esc(report["spec"]["name"])
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{name}: should we fine-tune?</title><style>{CSS}</style></head><body>",
             f"<h1>{name}: should we fine-tune?</h1>",
             f"<p>Base model <code>{_esc(report['model']['base'])}</code> "
             f"({report['model']['total_params']:,} parameters{_esc(_default_model(report))}).</p>",
             f'<div class="rec"><h2 style="border:0;margin-top:.2em">Recommendation: '
             f"{_esc(rec['label'] or 'no feasible path')}</h2>"]
    if rec["path"]:
        parts.append(f"<p>{_esc(headline(report))}</p>")
    parts.append("<ul>" + "".join(f"<li>{_esc(r)}</li>" for r in rec["rationale"]) + "</ul></div>")
    parts.append("<h2>All paths</h2>")
    parts.append(table(PATH_HEADER, _paths_rows(report), num_cols=(2, 3, 4, 5, 6),
                       row_class=["" if p["feasible"] else "no" for p in report["paths"]]))
    parts.append("<h2>Cost breakdown</h2>" + table(breakdown_header(report), _breakdown_rows(report),
                                                   num_cols=tuple(range(1, 10))))
    parts.append("<p>Next-best setups found by the search (total over the horizon):</p><ul>"
                 + "".join(f"<li>{_esc(x)}</li>" for x in _alternative_lines(report)) + "</ul>")
    parts.append("<h2>Cumulative cost</h2>" + chart_svg(report))
    parts.append("<ul>" + "".join(f"<li>{_esc(x)}</li>" for x in _cost_lines(report)) + "</ul>")
    parts.append("<h2>Sensitivity: what would change the recommendation</h2><ul>")
    parts += [f"<li>{_esc(s['sentence'])} (now {_esc(s['now'])})</li>" for s in report["sensitivity"]] or \
        ["<li>No single input within x1000 of its value changes the recommendation.</li>"]
    parts.append("</ul>")
    header, rows = _what_if_rows(report)
    if rows:
        parts.append("<h2>What if</h2>" + table(header, rows, num_cols=tuple(range(1, len(header)))))
    parts.append("<h2>Rules that fired</h2>")
    for p in report["paths"]:
        parts.append(f"<h3>{_esc(p['label'])}</h3>" + table(
            ["rule", "effect", "detail", "evidence"],
            [[r["id"], r["effect"], r["detail"], r["evidence"]] for r in p["rules"]]))
    parts.append("<h2>Assumptions and sources</h2>" + table(
        ["what", "value", "source"], [[a["what"], a["value"], a["source"]] for a in report["assumptions"]]))
    parts.append("<p><small>Generated by tunepath. Prices are dated catalog data; override them with "
                 "TUNEPATH_CATALOG.</small></p></body></html>")
    return "\n".join(parts)


def write_report(report: dict, out: Path) -> list[Path]:
    """Write by suffix: .html (self-contained), .md (+ .svg chart beside it), .json. Returns files written."""
    suffix = out.suffix.lower()
    try:
        if suffix in (".html", ".htm"):
            atomic_write_text(out, to_html(report))
            return [out]
        if suffix == ".md":
            chart = out.with_suffix(".svg")
            atomic_write_text(chart, chart_svg(report))
            atomic_write_text(out, to_markdown(report, chart.name))
            return [out, chart]
        if suffix == ".json":
            atomic_write_text(out, json.dumps(report, indent=2))
            return [out]
    except OSError as e:
        raise UserError(f"{out}: cannot write ({e.strerror})") from None
    raise UserError(f"-o {out}: expected a .html, .md or .json file name")
