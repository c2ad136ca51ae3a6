"""Dotted field paths, shared by every validated input (project specs, train configs, catalogs,
CLI options): `--set a.b=c` overrides, and pydantic errors rendered as one line naming the file,
line and field with what was expected - and a did-you-mean for a misspelt key.
"""
from __future__ import annotations

import difflib
import math
import re
from typing import Any, Iterable

import yaml
from pydantic import BaseModel, ValidationError

from advisor.errors import UserError

# YAML 1.1 (PyYAML) reads 1e6 and 2.5E-3 as strings: it wants a dot and a signed exponent. People and
# scripts write them everywhere, so a scalar that is a plain decimal number in scientific notation is a number.
_SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


_YAML11_SURPRISE = re.compile(r"[-+]?0[0-7_]+|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?")


def scalar(raw: str, where: str = "value") -> Any:
    """A command-line value as YAML reads it, with scientific notation read as a number (`where` names it in
    errors)."""
    text = raw.strip()
    if _YAML11_SURPRISE.fullmatch(text):   # YAML 1.1 reads 0300 as octal 192 and 1:30 as 90: keep the text, so
        return text                        # a number field refuses it (saying what to write) and a text field keeps it
    if _SCIENTIFIC.fullmatch(text):
        x = float(text)
        return int(x) if x.is_integer() and abs(x) < 2 ** 63 else x
    try:
        value = yaml.safe_load(text) if text else ""
    except (yaml.YAMLError, ValueError):   # ValueError: an integer of more than 4,300 digits
        return raw
    if isinstance(value, (dict, list)):    # '&a [*a]' or a billion laughs: the spec file's limits apply
        from advisor.spec import check_aliases

        check_aliases(value, where)
    return value


_UNIT = {"K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}


def number_hint(value: Any) -> str:
    """For text that a person means as a number ('20M', '1,000', '$5,000', '5k', a quoted '300'): the plain number
    to write instead, as a suffix for an error message; '' for anything else. Specs, --set and --vary take plain
    YAML numbers (1e6, 1_000_000) only: a field such as `name` may hold '20M' as text, so nothing is converted."""
    if not isinstance(value, str):
        return ""
    text = value.strip().lstrip("$").replace(",", "").replace("_", "").strip()
    scale = 1.0
    if text[-1:].upper() in _UNIT:
        text, scale = text[:-1].strip(), _UNIT[text[-1:].upper()]
    try:
        x = float(text) * scale
    except ValueError:
        return ""
    if not math.isfinite(x):
        return ""
    shown = f"{int(x)}" if x.is_integer() and abs(x) < 1e16 else f"{x:g}"
    return f" (write a plain number: {shown})" if shown != value.strip() else " (without quotes)"


def parse_override(item: str, flag: str = "--set") -> tuple[list[str], Any]:
    """`a.b=c` -> (['a', 'b'], c) with c read by `scalar`."""
    key, sep, raw = item.partition("=")
    parts = [p.strip() for p in key.strip().split(".")]
    if not sep or not all(parts):   # 'traffic.=5' set the whole section traffic to 5; '.a.b' and 'a..b' were read as a.b
        raise UserError(f"{flag} {item!r}: expected dotted.field=value, e.g. traffic.requests_per_month=1e6")
    return parts, scalar(raw, f"{flag} {key.strip()}")


def set_path(data: dict, parts: list[str], value: Any, flag: str = "--set") -> None:
    """Set data[a][b]... = value in place, creating sections on the way."""
    node = data
    for i, part in enumerate(parts[:-1]):
        nxt = node.setdefault(part, {})
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise UserError(f"{flag} {'.'.join(parts)}: '{'.'.join(parts[:i + 1])}' is not a section")
        node = nxt
    node[parts[-1]] = value


def apply_overrides(data: dict, overrides: Iterable[str], flag: str = "--set") -> set[tuple[str, ...]]:
    """Apply `dotted.field=value` items to `data` in place; returns the paths set (errors there name the flag)."""
    touched = set()
    for item in overrides:
        parts, value = parse_override(item, flag)
        set_path(data, parts, value, flag)
        touched.add(tuple(parts))
    return touched


def yaml_line(text: str, loc: tuple) -> int | None:
    """1-based line of the deepest YAML node on the path `loc` (a pydantic error location)."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            hit = next((v for k, v in node.value if k.value == str(part)), None)
            if hit is None:       # an unknown key or a union tag in the loc: point at the mapping itself
                continue
            line, node = hit.start_mark.line + 1, hit
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode) and line is None:
            line = node.start_mark.line + 1
    return line


def _fields_at(root: type[BaseModel], loc: tuple) -> list[str] | None:
    """Field names of the model that owns `loc` (for did-you-mean), following nested models."""
    cls: Any = root
    for part in loc:
        field = cls.model_fields.get(part) if isinstance(part, str) else None
        ann = field.annotation if field is not None else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        cls = ann
    return list(cls.model_fields)


def _clean_loc(loc: tuple) -> tuple:
    """Drop pydantic's validator and union-member tags: adapter.lora.r -> adapter.r."""
    out = []
    for p in loc:
        if isinstance(p, str) and (p.startswith("function-") or p.startswith("tagged-union")):
            continue
        out.append(p)
    return tuple(out)


def describe_error(err: dict, root: type[BaseModel] | None = None, union_tags: Iterable[str] = (),
                   prefix: tuple = ()) -> tuple[tuple, str]:
    """(cleaned location, what was expected) for one pydantic error; `prefix` is prepended to names."""
    raw = tuple(err["loc"])
    tags = set(union_tags)
    loc = tuple(p for i, p in enumerate(_clean_loc(raw)) if not (i and isinstance(p, str) and p in tags))
    kind = err["type"]
    if kind == "extra_forbidden":
        names = _fields_at(root, loc[:-1]) if root is not None else None
        close = difflib.get_close_matches(str(loc[-1]), names or [], n=1)
        hint = (f"; did you mean '{'.'.join([*map(str, prefix + loc[:-1]), close[0]])}'?" if close else
                f"; expected one of: {', '.join(names)}" if names else "")
        return loc, f"unknown field{hint}"
    if kind == "missing":
        return loc, "required field is missing"
    if kind == "enum":
        return loc, f"expected {err.get('ctx', {}).get('expected', '')}, got {err['input']!r}"
    if kind == "union_tag_invalid":
        ctx = err["ctx"]
        return loc, f"unknown {ctx['discriminator'].strip(chr(39))} {ctx['tag']!r}; expected one of {ctx['expected_tags']}"
    msg = err["msg"].removeprefix("Value error, ")
    if kind == "value_error":
        return loc, msg
    if kind in ("less_than_equal", "less_than") and root is not None:
        return loc, _above_bound(err, root, loc)
    if kind in ("model_type", "model_attributes_type", "dict_type"):   # "a valid dictionary or instance of Task"
        names = _fields_at(root, loc) if root is not None else None
        got = err.get("input")
        shown = f"{got!r}" if isinstance(got, (str, int, float, bool)) or got is None else type(got).__name__
        return loc, ((f"expected a mapping of fields ({', '.join(names)})" if names else "expected a mapping")
                     + f", got {shown}")
    shown = err.get("input")
    if isinstance(shown, str) and len(shown) > 60:
        shown = shown[:57] + "..."
    return loc, f"{msg[:1].lower() + msg[1:]}, got {shown!r}"


def _above_bound(err: dict, root: type[BaseModel], loc: tuple) -> str:
    """`x is above the upper bound N (why)`: a field's json_schema_extra may carry `bound_reason`."""
    owner: Any = root
    for part in loc[:-1]:
        f = owner.model_fields.get(part) if isinstance(part, str) else None
        ann = f.annotation if f is not None else None
        owner = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if owner is None:
            break
    finfo = owner.model_fields.get(str(loc[-1])) if owner is not None and loc else None
    extra = finfo.json_schema_extra if finfo is not None and isinstance(finfo.json_schema_extra, dict) else {}
    why = f" ({extra['bound_reason']})" if "bound_reason" in extra else ""
    ctx = err.get("ctx", {})
    limit = ctx.get("le", ctx.get("lt"))
    got = err.get("input")

    def num(x: Any) -> str:  # integers exactly: a seed of 2**32 is not "above the upper bound 4.295e+09" of itself
        # ...but not past 1e15, where 1e30 read from YAML shows as 1,000,000,000,000,000,019,884,624,838,656
        return f"{x:,}" if isinstance(x, int) and abs(x) <= 10 ** 15 else f"{float(x):,.4g}"

    got = num(got) if isinstance(got, (int, float)) and not isinstance(got, bool) else repr(got)
    return f"{got} is above the upper bound {num(limit)}{why}"


def format_validation_error(e: ValidationError, source: str, root: type[BaseModel] | None = None, *,
                            text: str = "", touched: set[tuple[str, ...]] = frozenset(), prefix: tuple = (),
                            flag: str = "--set",
                            union_tags: Iterable[str] = ()) -> str:
    """The first problem as one line - `file:line: dotted.field: what was expected` - plus a count of the rest.

    `text` (the YAML source) gives line numbers; a field set by an override is named as `--set field`;
    `prefix` is where the validated mapping sits in a larger document (run.train -> ('run', 'train')).
    """
    # an unknown field first: a misspelt name (tsk:) is why its real one (task) is missing
    errs = sorted(e.errors(), key=lambda err: err["type"] != "extra_forbidden")
    loc, msg = describe_error(errs[0], root, union_tags, tuple(prefix))
    full = tuple(prefix) + loc
    dotted = ".".join(str(p) for p in full) or "(top level)"
    str_loc = tuple(str(p) for p in full)
    if any(str_loc[:len(t)] == t or t[:len(str_loc)] == str_loc for t in touched):
        head = f"{flag} {dotted}"
    else:
        line = yaml_line(text, full) if text else None
        head = f"{source}:{line}: {dotted}" if line else f"{source}: {dotted}"
    more = f" (+{len(errs) - 1} more)" if len(errs) > 1 else ""
    return f"{head}: {msg}{more}"


def finite(value: float, name: str) -> float:
    """Reject inf and nan with one line naming the field (JSON has no such numbers, and no cost is infinite)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{name}: expected a finite number, got {value!r}")
    return value


def validate(model: type[BaseModel], data: Any, source: str, **kw: Any) -> Any:
    """model.model_validate(data), with errors as one UserError line (see format_validation_error)."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise UserError(format_validation_error(e, source, model, **kw)) from None

