"""Numeric command-line options, checked at the edge: one line naming the option, exit 2.

Shells read options as text and hand them here, so that `inf`, `nan` and `1e400` (which Python's float()
turns into inf) never reach a formula and a range error is one line instead of a usage box. Pure
Python: any command group of the shell (tunepath/commands/) calls `check_options`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from advisor.errors import UserError

_SUFFIX = {"K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}


@dataclass(frozen=True)
class Limit:
    """What an option accepts: an integer or a real, bounds, and whether 20M-style suffixes are allowed."""

    integer: bool = False
    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    suffixes: bool = False
    choices: tuple[float, ...] | None = None
    why: str = ""               # why the upper bound is where it is (said when a value exceeds it)
    hint: bool = True           # say the plain number for '2k' / '1,000'; off where k is ambiguous (4k context: 4096?)

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        parts = [f"> {self.gt:g}" if self.gt is not None else "", f">= {self.ge:g}" if self.ge is not None else "",
                 f"<= {self.le:g}" if self.le is not None else ""]
        bounds = " and ".join(p for p in parts if p)
        if self.choices:
            return "one of " + ", ".join(f"{c:g}" for c in self.choices)
        return kind + (f" {bounds}" if bounds else "") + (" (e.g. 20M, 1.5B, 2e9)" if self.suffixes else "")


def parse_number(option: str, raw, limit: Limit = Limit()) -> float | int:
    """`raw` (text or number) -> a finite number within `limit`, or UserError naming `option`."""
    text = str(raw).strip().replace("_", "")
    scale = 1.0
    if limit.suffixes and text[-1:].upper() in _SUFFIX:
        text, scale = text[:-1], _SUFFIX[text[-1:].upper()]
    try:
        value = float(text) * scale
    except ValueError:     # '1,000', '$5', or 2k where no unit is taken: say the plain number, as a spec does
        from advisor.fields import number_hint

        hint = number_hint(str(raw)) if limit.hint else ""
        raise UserError(f"{option}: expected {limit.describe()}, got {raw!r}{hint}") from None
    if not math.isfinite(value):
        raise UserError(f"{option}: expected {limit.describe()}, got {raw!r} (not finite)")
    if limit.integer:
        if value != int(value):
            raise UserError(f"{option}: expected {limit.describe()}, got {raw!r}")
        value = int(value)
    ok = ((limit.gt is None or value > limit.gt) and (limit.ge is None or value >= limit.ge)
          and (limit.le is None or value <= limit.le) and (limit.choices is None or value in limit.choices))
    if not ok:
        why = f" ({limit.why})" if limit.why and limit.le is not None and value > limit.le else ""
        raise UserError(f"{option}: expected {limit.describe()}, got {raw!r}{why}")
    return value


def check_options(values: dict[str, object], limits: dict[str, Limit]) -> dict[str, float | int | None]:
    """Parse every option in `limits` that was given (None stays None). Keys are option names (`--rank`)."""
    return {opt: None if values.get(opt) is None else parse_number(opt, values[opt], lim)
            for opt, lim in limits.items()}


def _bounded(kind: str, **kw) -> Limit:
    """A Limit with the spec's upper bound for this kind of quantity (advisor/spec.py BOUNDS), so that the
    command line and a spec accept the same range; without one, --tokens 1e300 priced an infinite run."""
    from advisor.spec import BOUNDS

    le, why = BOUNDS[kind]
    return Limit(le=le, why=why, **kw)


# `tunepath estimate`'s numeric options. --tokens is a count (20M); --mfu a fraction of peak.
ESTIMATE_LIMITS: dict[str, Limit] = {
    "--tokens": _bounded("corpus_tokens", gt=0, suffixes=True),
    "--gpus": _bounded("gpus", integer=True, ge=1),
    "--rank": Limit(integer=True, ge=1, le=1e6, why="wider than any model's layers"),
    "--virtual-tokens": _bounded("tokens", integer=True, ge=1, hint=False),
    "--seq-len": _bounded("tokens", integer=True, ge=1, hint=False),
    "--micro-batch": Limit(integer=True, ge=1, le=1e6, why="far more sequences than any GPU's memory holds"),
    "--grad-accum": Limit(integer=True, ge=1, le=1e6, why="a million micro-batches per optimizer step"),
    "--zero": Limit(integer=True, ge=0, le=3),
    "--mfu": Limit(gt=0, le=1),
    "--prompt-tokens": _bounded("tokens", integer=True, ge=0, hint=False),
    "--output-tokens": _bounded("tokens", integer=True, ge=0, hint=False),
    "--requests-per-month": _bounded("requests_per_month", ge=0, suffixes=True),
    "--weight-bits": Limit(integer=True, choices=(4, 8, 16)),
    "--concurrency": Limit(integer=True, ge=1, le=1e6, why="vLLM batches at most max_num_seqs, 256 by default"),
}
