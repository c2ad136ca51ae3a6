"""loss.svg: train and eval loss against tokens seen, learning rate on a second axis.

Plain SVG text (no plotting dependency): it opens in any browser, in GitHub's file view and in
the HTML reports, and diffs as text. The data come from the Trainer's `state.log_history`, whose
entries carry `num_input_tokens_seen` (include_num_input_tokens_seen) next to `loss` and
`learning_rate` (training logs) or `eval_loss` (evaluations).
"""
from __future__ import annotations

import math
from html import escape
from typing import Any

W, H = 640, 340
LEFT, RIGHT, TOP, BOTTOM = 64, 72, 34, 48  # plot margins: y labels left (loss) and right (lr), x labels below
COLORS = {"train": "#1f77b4", "eval": "#ff7f0e", "lr": "#7f7f7f"}


def series(log_history: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """(tokens, value) points of train loss, eval loss and learning rate, in logging order."""
    out: dict[str, list[tuple[float, float]]] = {"train": [], "eval": [], "lr": []}
    for h in log_history:
        tokens = h.get("num_input_tokens_seen")
        if tokens is None:
            continue
        for key, name in (("loss", "train"), ("eval_loss", "eval"), ("learning_rate", "lr")):
            v = h.get(key)
            if isinstance(v, (int, float)) and math.isfinite(v):
                out[name].append((float(tokens), float(v)))
    return out


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round tick values covering [lo, hi] (1, 2, 5 x 10^k steps)."""
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e3:
        return f"{v / 1e3:g}K"
    if a < 1e-2:
        return f"{v:.0e}"
    return f"{v:.3g}"


def loss_svg(log_history: list[dict[str, Any]], title: str = "loss") -> str | None:
    """The chart as SVG text, or None when no loss was logged."""
    s = series(log_history)
    losses = s["train"] + s["eval"]
    if not losses:
        return None
    x_hi = max(t for t, _ in losses + s["lr"]) or 1.0
    y_lo, y_hi = min(v for _, v in losses), max(v for _, v in losses)
    pad = (y_hi - y_lo) * 0.05 or max(abs(y_hi) * 0.05, 0.05)
    y_lo, y_hi = y_lo - pad, y_hi + pad
    lr_hi = max((v for _, v in s["lr"]), default=0.0) or 1.0
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(t: float) -> float:
        return LEFT + pw * t / x_hi

    def py(v: float) -> float:
        return TOP + ph * (y_hi - v) / (y_hi - y_lo)

    def plr(v: float) -> float:
        return TOP + ph * (1 - v / lr_hi)

    p = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
         'font-family="sans-serif" font-size="11">',
         f"<title>{escape(title)}</title>",
         f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>',
         f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="13">{escape(title)}</text>']
    for t in _ticks(0, x_hi):
        p.append(f'<line x1="{px(t):.1f}" y1="{TOP + ph}" x2="{px(t):.1f}" y2="{TOP + ph + 4}" stroke="#888"/>'
                 f'<text x="{px(t):.1f}" y="{TOP + ph + 16}" text-anchor="middle">{_fmt(t)}</text>')
    p.append(f'<text x="{LEFT + pw / 2}" y="{H - 8}" text-anchor="middle">tokens seen</text>')
    for v in _ticks(y_lo, y_hi):
        p.append(f'<line x1="{LEFT - 4}" y1="{py(v):.1f}" x2="{LEFT + pw}" y2="{py(v):.1f}" stroke="#eee"/>'
                 f'<text x="{LEFT - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
    p.append(f'<text transform="translate(14 {TOP + ph / 2}) rotate(-90)" text-anchor="middle">loss</text>')
    if s["lr"]:
        for v in _ticks(0, lr_hi):
            p.append(f'<text x="{LEFT + pw + 6}" y="{plr(v) + 4:.1f}" fill="{COLORS["lr"]}">{_fmt(v)}</text>')
        p.append(f'<text transform="translate({W - 10} {TOP + ph / 2}) rotate(90)" text-anchor="middle" '
                 f'fill="{COLORS["lr"]}">learning rate</text>')
    for name, label, scale, dash in (("lr", "learning rate", plr, ' stroke-dasharray="4 3"'),
                                     ("train", "train loss", py, ""), ("eval", "eval loss", py, "")):
        pts = s[name]
        if not pts:
            continue
        coords = " ".join(f"{px(t):.2f},{scale(v):.2f}" for t, v in pts)
        p.append(f'<polyline id="{name}" points="{coords}" fill="none" stroke="{COLORS[name]}" stroke-width="1.5"'
                 f"{dash}><title>{label}</title></polyline>")
        if len(pts) <= 20 and name != "lr":  # few points (eval): mark them
            p += [f'<circle cx="{px(t):.2f}" cy="{scale(v):.2f}" r="2.5" fill="{COLORS[name]}"/>' for t, v in pts]
    legend = [(n, lab) for n, lab in (("train", "train loss"), ("eval", "eval loss"), ("lr", "learning rate"))
              if s[n]]
    for i, (name, label) in enumerate(legend):
        x = LEFT + 8 + i * 110
        p.append(f'<line x1="{x}" y1="{TOP + 12}" x2="{x + 18}" y2="{TOP + 12}" stroke="{COLORS[name]}" '
                 f'stroke-width="2"/><text x="{x + 22}" y="{TOP + 16}">{label}</text>')
    p.append("</svg>")
    return "\n".join(p) + "\n"
