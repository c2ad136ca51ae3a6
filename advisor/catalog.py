"""The catalogs: model configs, GPUs and hosted-API prices - data files, each row with its source.

Packaged data lives in advisor/data/. Users add or override rows with their own YAML files named
in TUNEPATH_CATALOG (paths separated by os.pathsep), each with optional top-level keys
`gpus:` (same fields as advisor/data/gpus.yaml), `models:` (id -> path of a config.json) and
`api_prices:` (same layout as advisor/data/api_prices.yaml).
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
import json
import os
from functools import lru_cache
from pathlib import Path

import yaml

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from advisor.architecture import Architecture, from_config, optional_int
from advisor.errors import UserError

DATA = Path(__file__).parent / "data"
MODELS_DIR = DATA / "models"


PRICE_CLASSES = ("gpu_cloud", "hyperscaler", "marketplace")
PRICE_CLASS_LABELS = {"gpu_cloud": "GPU cloud on-demand", "hyperscaler": "hyperscaler on-demand",
                      "marketplace": "marketplace / interruptible"}
DEFAULT_PRICE_CLASS = "gpu_cloud"


# Upper bounds of a catalog row, far above any card (B200: 2,250 dense bf16 TFLOP/s, 8,000 GB/s HBM3e, 1,800 GB/s
# NVLink 5; NVIDIA's B200 datasheet): a row of 1e300s made the estimates NaN, an internal error.
_MAX_TFLOPS = 100_000
_MAX_GBS = 100_000
_MAX_USD_PER_HOUR = 10_000


class PriceQuote(BaseModel):
    """One dated quote: $/GPU-hour, the page it was read from and the date it was read."""

    model_config = ConfigDict(extra="forbid")
    usd_per_hour: float = Field(ge=0, le=_MAX_USD_PER_HOUR, allow_inf_nan=False)
    source: str
    date: str = Field(description="Date the source page was read (YYYY-MM-DD).")

    @field_validator("date", mode="before")
    @classmethod
    def _iso(cls, v):
        return v.isoformat() if hasattr(v, "isoformat") else v     # YAML reads 2026-12-01 as a date


class GPU(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    memory_gb: float = Field(ge=2, le=10_000, allow_inf_nan=False,
                             description="Device memory as the vendor states it (80 for an A100-80GB). Memory "
                                         "chips come in binary sizes, so the card holds this many GiB: "
                                         "see memory_bytes. At least 2: each GPU keeps ~1 GB for CUDA (estimate."
                                         "CUDA_OVERHEAD_GB); at most 10,000, 35x the largest card (B300, 288 GB).")
    ecc_memory_reserve: bool = Field(False, description="GDDR cards with ECC on (the data-center default: A10, "
                                                        "A40, L4, L40S, T4) set 1/16 of the memory aside for "
                                                        "the check bits; HBM keeps them beside the data.")
    bf16_tflops: float = Field(gt=0, le=_MAX_TFLOPS, allow_inf_nan=False,
                               description="Dense bf16 (or fp16 when bf16 is absent) tensor peak, TFLOP/s.")
    fp32_tflops: float | None = Field(None, gt=0, le=_MAX_TFLOPS, allow_inf_nan=False,
                                      description="fp32 peak on CUDA cores, TFLOP/s: fp32 matmuls run there (PyTorch "
                                                  "keeps TF32 off by default). None: bf16_tflops / 8 (assumed).")
    interconnect_gbs: float | None = Field(None, gt=0, le=_MAX_GBS, allow_inf_nan=False,
                                           description="GPU-to-GPU bandwidth each way, GB/s (NVLink or PCIe), which "
                                                       "multi-GPU collectives share. None: PCIe Gen4 x16's 32 "
                                                       "(assumed).")
    bf16: bool = Field(True, description="Whether the GPU computes in bf16 (T4 does not: fp16 mixed precision).")
    caveat: str = Field("", description="What a recommendation on this GPU must say besides its cost (e.g. a "
                                        "consumer card's licence terms).")
    bandwidth_gbs: float = Field(gt=0, le=_MAX_GBS, allow_inf_nan=False, description="Memory bandwidth, GB/s.")
    usd_per_hour: float | None = Field(None, ge=0, le=_MAX_USD_PER_HOUR, allow_inf_nan=False,
                                       description="Price per GPU-hour used for costs: the chosen price class's "
                                                   "quote unless set directly. None: no dated quote was found; "
                                                   "`tunepath estimate` gives no cost and the advisor's search "
                                                   "skips the GPU (GPU.priced).")
    aliases: list[str] = Field(default_factory=list,
                               description="Other names `gpu()` accepts, each naming this GPU alone (A6000 for "
                                           "RTX-A6000); an ambiguous name (H100: SXM or PCIe) is no alias.")
    generation: str = Field("ampere", description="ampere | hopper | ada | turing | volta | blackwell: picks the "
                                                  "MFU defaults (advisor/estimate.py MFU_ANCHORS, "
                                                  "MFU_GENERATION_FALLBACK).")
    decode_bandwidth_efficiency: float = Field(0.73, gt=0, le=1, allow_inf_nan=False,
                                               description="Fraction of peak bandwidth a 16-bit decode step "
                                                           "reaches.")
    efficiency_source: str = ("assumed equal to the A100 fit (vLLM batch-1 decode of Llama-3.1-8B on an "
                              "A100-40GB, 75 tok/s)")
    prices: dict[str, PriceQuote] = Field(default_factory=dict,
                                          description="Dated quotes by provider class: " + ", ".join(PRICE_CLASSES))
    price_class: str = DEFAULT_PRICE_CLASS
    spec_source: str = ""
    price_source: str = ""
    price_date: str = ""

    @property
    def memory_bytes(self) -> float:
        """What the card holds: an "80 GB" A100 or H100 has 80 GiB (5 x 16 GiB HBM stacks) = 85.9e9 bytes,
        which torch.cuda.get_device_properties reports (less ~1 % the driver keeps). Estimates count bytes
        (GB = 1e9), so a fit is checked against this, not memory_gb * 1e9 (7 % too strict). GDDR cards with
        ECC on keep 15/16 of it (nvidia-smi shows 15,360 MiB on a 16 GB T4)."""
        return self.memory_gb * 2**30 * (15 / 16 if self.ecc_memory_reserve else 1)

    @property
    def priced(self) -> bool:
        return self.usd_per_hour is not None

    def no_price_reason(self) -> str:
        """Why a GPU without a quote has no cost, and how to give it one (one line)."""
        return (f"{self.id} has no dated price quote in the catalog (`tunepath gpus --wide` says what was "
                f"searched): set gpus.{self.id}.usd_per_hour in a TUNEPATH_CATALOG file")


class PriceTier(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_params_b: float = Field(gt=0, allow_inf_nan=False)
    input_per_m: float = Field(ge=0, allow_inf_nan=False)
    output_per_m: float = Field(ge=0, allow_inf_nan=False)
    source: str = ""


class ApiPrices(BaseModel):
    model_config = ConfigDict(extra="forbid")
    price_date: str
    source: str
    cached_input_factor: float = Field(ge=0, le=1)
    tiers: list[PriceTier] = Field(min_length=1)
    moe_tiers: list[PriceTier] = Field(default_factory=list, description="Mixture-of-experts ladder, by total "
                                                                         "parameters (falls back to `tiers`).")

    @field_validator("price_date", mode="before")
    @classmethod
    def _iso(cls, v):
        return v.isoformat() if hasattr(v, "isoformat") else v     # YAML reads 2026-12-01 as a date

    def tier_for(self, total_params: int, moe: bool = False) -> PriceTier:
        ladder = self.moe_tiers if moe and self.moe_tiers else self.tiers
        for t in sorted(ladder, key=lambda t: t.max_params_b):
            if total_params <= t.max_params_b * 1e9:
                return t
        if moe and ladder is self.moe_tiers:           # past the MoE ladder: price as dense
            return self.tier_for(total_params)
        return max(ladder, key=lambda t: t.max_params_b)


@dataclass(frozen=True)
class CatalogModel:
    id: str
    path: Path
    note: str = ""


class CatalogError(UserError):
    """A mistake in a catalog file (TUNEPATH_CATALOG), not in the value that looked a row up: the spec's field
    validators let it through as it is, so that it names the catalog file, not the spec's field."""


_CATALOG_KEYS = ("gpus", "models", "api_prices", "price_class")


def _mapping(value, where: str, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CatalogError(f"{where}: expected {what}, got {type(value).__name__} {_short(value)}")
    return value


def _short(value, width: int = 60) -> str:
    """repr for an error line, cut to `width` characters (a pasted page stays one readable line)."""
    r = repr(value)
    return r if len(r) <= width else r[:width - 3] + "..."


def _read_yaml(path: Path, user: bool = True) -> dict:
    """A catalog file read with the spec's YAML rules (duplicate keys and non-finite numbers are errors naming
    the line); its top level is a mapping of known keys - a misspelt `gpu:` was ignored without a word - and
    `_name:` keys, which only hold anchors."""
    from advisor.spec import load_yaml, read_document_text

    try:     # a regular file of at most 1 MB: TUNEPATH_CATALOG=/dev/zero was a MemoryError, a FIFO hung
        text = read_document_text(Path(path))
    except UserError as e:
        raise CatalogError(f"TUNEPATH_CATALOG: {e}") from None
    try:
        data = load_yaml(text, str(path))
    except UserError as e:
        raise CatalogError(str(e)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise CatalogError(f"{where}: invalid YAML: {getattr(e, 'problem', None) or str(e).splitlines()[0]}") from None
    data = _mapping(data, str(path), f"a mapping with keys {', '.join(_CATALOG_KEYS)}")
    for key in data if user else ():     # `_name:` keys hold YAML anchors (&quote) to reuse, as advisor/data/gpus.yaml's _quotes
        if key not in _CATALOG_KEYS and not str(key).startswith("_"):
            close = difflib.get_close_matches(str(key), _CATALOG_KEYS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; expected {', '.join(_CATALOG_KEYS)}"
            raise CatalogError(f"{path}: unknown key {key!r}{hint}")
    return data


def _user_catalogs() -> list[Path]:
    raw = os.environ.get("TUNEPATH_CATALOG", "")
    return [Path(p) for p in raw.split(os.pathsep) if p]


def _packaged_models() -> dict[str, CatalogModel]:
    """File `owner__name[__note].json` -> id `owner/name`; a second file of the same model gets `:note`; a note
    `arch-equivalent-of-A+B` also answers to `owner/A` and `owner/B` (releases with the same architecture)."""
    models: dict[str, CatalogModel] = {}
    for f in sorted(MODELS_DIR.glob("*.json"), key=lambda p: (p.stem.count("__"), p.stem)):
        owner, name, *rest = f.stem.split("__")
        note = rest[0] if rest else ""
        mid = f"{owner}/{name}"
        if mid in models:
            mid = f"{mid}:{note.removeprefix('legacy-')}"
        models[mid] = CatalogModel(id=mid, path=f, note=note)
        if note.startswith("arch-equivalent-of-"):   # same architecture, so the same count (SOURCES.md)
            for name in note.removeprefix("arch-equivalent-of-").split("+"):   # several releases: A+B
                alias = f"{owner}/{name}"
                models.setdefault(alias, CatalogModel(id=alias, path=f, note=f"architecture of {mid}"))
    return models


@lru_cache(maxsize=1)
def models() -> dict[str, CatalogModel]:
    out = _packaged_models()
    for cat in _user_catalogs():
        for mid, p in _mapping(_read_yaml(cat).get("models"), f"{cat}: models",
                               "a mapping of model id -> config.json path").items():
            if not isinstance(p, str) or not p.strip():
                raise CatalogError(f"{cat}: models.{mid}: expected the path of a config.json or model folder, "
                                   f"got {_short(p)}")
            path = Path(p).expanduser()
            path = path if path.is_absolute() else cat.parent / path
            out[mid] = CatalogModel(id=mid, path=path, note=f"from {cat}")
    return out


@lru_cache(maxsize=1)
def gpus() -> dict[str, GPU]:
    """Packaged rows merged with TUNEPATH_CATALOG files: a user row overrides field by field, `prices` class by
    class; a top-level `price_class:` picks which class's quote becomes `usd_per_hour` (default gpu_cloud)."""
    rows: dict[str, dict] = {}
    origin: dict[str, Path] = {}
    price_class = DEFAULT_PRICE_CLASS
    direct: set[str] = set()                     # rows whose usd_per_hour a user file set explicitly
    for src in [DATA / "gpus.yaml", *_user_catalogs()]:
        data = _read_yaml(src, user=src != DATA / "gpus.yaml")
        if "price_class" in data:
            price_class = data["price_class"]
            if not isinstance(price_class, str) or price_class not in PRICE_CLASSES:
                raise CatalogError(f"{src}: price_class: expected one of {', '.join(PRICE_CLASSES)}, "
                                   f"got {price_class!r}")
        for gid, row in _mapping(data.get("gpus"), f"{src}: gpus", "a mapping of GPU id -> fields").items():
            row = dict(_mapping(row, f"{src}: gpus.{gid}", "a mapping of fields (memory_gb, bf16_tflops, ...)"))
            prev = rows.get(gid, {})
            mine = _mapping(row.pop("prices", None), f"{src}: gpus.{gid}.prices",
                            f"a mapping of price class ({', '.join(PRICE_CLASSES)}) -> quote")
            for cls, q in mine.items():
                if cls not in PRICE_CLASSES:
                    raise CatalogError(f"{src}: gpus.{gid}.prices.{cls}: unknown price class; expected one of "
                                       f"{', '.join(PRICE_CLASSES)}")
                _mapping(q, f"{src}: gpus.{gid}.prices.{cls}", "a quote {usd_per_hour, source, date}")
                try:      # the quote's own mistake, named as written (not as the usd_per_hour it becomes)
                    PriceQuote(**q)
                except ValidationError as e:
                    from advisor.fields import format_validation_error
                    from advisor.spec import read_document_text

                    raise CatalogError(format_validation_error(
                        e, str(src), PriceQuote, text=read_document_text(src),
                        prefix=("gpus", gid, "prices", cls))) from None
            prices = {**prev.get("prices", {}), **mine}
            if "usd_per_hour" in row and src != DATA / "gpus.yaml":
                direct.add(gid)
            merged = {**prev, **row, "id": gid, "prices": prices}
            rows[gid], origin[gid] = merged, src
    out = {}
    for gid, row in rows.items():
        row = dict(row)
        quote = row["prices"].get(price_class) or next((row["prices"][c] for c in PRICE_CLASSES
                                                        if c in row["prices"]), None)
        used = price_class if row["prices"].get(price_class) else next((c for c in PRICE_CLASSES
                                                                       if c in row["prices"]), None)
        if gid not in direct and quote is not None:
            q = quote if isinstance(quote, dict) else {}
            row["usd_per_hour"] = q.get("usd_per_hour", row.get("usd_per_hour"))
            row["price_source"] = f"{PRICE_CLASS_LABELS.get(used, used)}: {q.get('source', '')}"
            row["price_date"] = str(q.get("date", ""))
            row["price_class"] = used
        elif gid in direct:
            row["price_source"], row["price_date"], row["price_class"] = f"your catalog {origin[gid]}", "", "user"
        try:
            out[gid] = GPU(**row)
        except ValidationError as e:
            from advisor.fields import format_validation_error

            from advisor.spec import read_document_text

            text = read_document_text(origin[gid])    # read before: for the line number
            raise CatalogError(format_validation_error(e, str(origin[gid]), GPU, text=text,
                                                       prefix=("gpus", gid))) from None
    names: dict[str, str] = {}      # every id and alias, as gpu() compares them: one GPU each
    for g in out.values():
        for name in (g.id, *g.aliases):
            other = names.setdefault(_gpu_key(name), g.id)
            if other != g.id:
                raise CatalogError(f"{origin[g.id]}: gpus.{g.id}: the name {name!r} also names {other} (ids and "
                                   "aliases compare ignoring case, spaces, '-' and '_'); remove one")
    return out


def _gpu_key(name: str) -> str:
    """A GPU name as lookups compare it: case, spaces, hyphens and underscores ignored ('rtx 4090', 'RTX_4090'
    and 'RTX-4090' are one name)."""
    return re.sub(r"[\s_-]+", "", name.lower())


def priced_gpus() -> dict[str, GPU]:
    """The GPUs with a price: the ones the advisor's search can cost."""
    return {k: g for k, g in gpus().items() if g.priced}


@lru_cache(maxsize=1)
def api_prices() -> ApiPrices:
    data = _read_yaml(DATA / "api_prices.yaml", user=False)
    where = DATA / "api_prices.yaml"
    for cat in _user_catalogs():
        mine = _mapping(_read_yaml(cat).get("api_prices"), f"{cat}: api_prices",
                        "a mapping (price_date, source, cached_input_factor, tiers, moe_tiers)")
        if mine:
            data, where = {**data, **mine}, cat
    try:
        return ApiPrices(**data)
    except ValidationError as e:     # was an internal error, on the first hosted price
        from advisor.fields import format_validation_error

        raise CatalogError(format_validation_error(e, str(where), ApiPrices, prefix=("api_prices",))) from None


def _did_you_mean(name: str, choices) -> str:
    """The ids that share the name's first token ("H100-80GB" -> H100-SXM, H100-PCIe: the same chip), else
    the closest spelling."""
    lower = {c.lower(): c for c in choices}
    named = [c for k, c in lower.items() if "/" not in name and k.split("/")[-1] == name.lower()]
    if named:    # the hub id without its owner ('gpt2' is openai-community/gpt2, 'Llama-2-7b-hf' meta-llama's)
        return "; did you mean " + " or ".join(f"'{c}'" for c in named) + "?"
    head = re.split(r"[-_ ]", name.lower())[0]
    family = [c for k, c in lower.items() if re.split(r"[-_ ]", k)[0] == head] if head else []
    if 0 < len(family) <= 3:
        return "; did you mean " + " or ".join(f"'{c}'" for c in family) + "?"
    close = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.6)
    return f"; did you mean '{lower[close[0]]}'?" if close else ""


def gpu(gid: str) -> GPU:
    """A GPU by its id or an alias, ignoring case, spaces, hyphens and underscores ('a100 80gb', 'rtx4090',
    ' H100-SXM' from a quoted YAML value); a name of several GPUs ('H100', 'V100') gets a did-you-mean."""
    table = gpus()
    key = _gpu_key(gid)
    for g in table.values():
        if _gpu_key(g.id) == key:
            return g
    for g in table.values():
        if any(_gpu_key(a) == key for a in g.aliases):
            return g
    raise UserError(f"unknown GPU {_short(gid)}: expected one of {', '.join(table)}{_did_you_mean(gid, table)} "
                    "(add your own with TUNEPATH_CATALOG)")


# torch.cuda.get_device_name() -> catalog id, most specific first ("NVIDIA H100 80GB HBM3", "Tesla T4", ...)
_DEVICE_PATTERNS = [(("GH200",), "GH200"), (("H200",), "H200"), (("H100", "PCIE"), "H100-PCIe"),
                    (("H100",), "H100-SXM"), (("B200",), "B200"), (("A100", "40GB"), "A100-40GB"),
                    (("A100",), "A100-80GB"), (("V100", "32GB"), "V100-32GB"), (("V100",), "V100-16GB"),
                    (("L40S",), "L40S"), (("L40",), "L40"), (("L4",), "L4"), (("A10",), "A10"), (("A40",), "A40"),
                    (("A6000",), "RTX-A6000"), (("T4",), "T4"), (("3090",), "RTX-3090"), (("4090",), "RTX-4090"),
                    (("5090",), "RTX-5090")]


def gpu_for_device(name: str) -> GPU | None:
    """The catalog GPU a CUDA device name refers to, or None (e.g. for a CPU)."""
    words = name.upper().replace("-", " ").split()
    for needles, gid in _DEVICE_PATTERNS:
        if all(any(w == n or w.startswith(n) and not w[len(n):].isdigit() for w in words) for n in needles):
            return gpus().get(gid)
    return None


# Chat/instruct releases share their base model's architecture (same config.json dimensions):
# Llama-2-7b-chat-hf, Qwen2.5-7B-Instruct, Mistral-7B-Instruct-v0.1, gemma-2b-it.
_VARIANT_SUFFIXES = ("-chat-hf", "-Instruct", "-instruct", "-Chat", "-chat", "-it")


def _variant_bases(ref: str) -> list[str]:
    out = [ref]
    for suf in _VARIANT_SUFFIXES:
        if suf in ref:
            out.append(ref.replace(suf + "-", "-").replace(suf, "-hf" if suf == "-chat-hf" else ""))
    return out


def model_config(ref: str) -> tuple[str, dict]:
    """Resolve a catalog id, an HF id in the catalog, a config.json path or a model folder -> (name, config)."""
    if not ref.strip():   # Path('') is the current folder
        raise UserError("model: empty; expected a catalog id (`tunepath models`) or a config.json / model folder path")
    p = Path(ref).expanduser()
    try:
        is_dir, is_file = p.is_dir(), p.is_file()
    except OSError:      # a name longer than the system allows (ENAMETOOLONG) is no path: an id, or a mistake
        is_dir = is_file = False
    if is_dir:
        p = p / "config.json"
        if not p.is_file():
            raise UserError(f"{ref}: folder has no config.json")
    if is_dir or is_file:
        try:
            cfg = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"{ref}: cannot read ({e})") from None
        except json.JSONDecodeError as e:
            if p.suffix.lower() in (".yaml", ".yml"):
                raise UserError(f"{ref}: a YAML file; expected a model's config.json (model_type, hidden_size, ...)"
                                ) from None
            raise UserError(f"{ref}: invalid JSON at line {e.lineno}: {e.msg}") from None
        if isinstance(cfg, dict) and "task" in cfg and "model_type" not in cfg:
            raise UserError(f"{ref}: this is a project spec, not a model's config.json (model_type, hidden_size, ...)")
        if not isinstance(cfg, dict):  # from_config's dict() would raise TypeError on a list
            raise UserError(f"{ref}: holds a JSON {type(cfg).__name__}, expected a model config object "
                            "(model_type, hidden_size, ...)")
        return str(ref), cfg
    table = models()
    lower = {mid.lower(): mid for mid in table}
    for cand in _variant_bases(ref.strip()):     # no path by that name: an id, spaces around it dropped
        if cand.lower() in lower:
            mid = lower[cand.lower()]
            row = table[mid]
            if row.note.startswith("from "):      # a TUNEPATH_CATALOG row: its path is the user's
                try:
                    return mid, model_config(str(row.path))[1]
                except UserError as e:
                    raise CatalogError(f"{row.note.removeprefix('from ')}: models.{mid}: {e}") from None
            return mid, json.loads(row.path.read_text())
    raise UserError(f"unknown model {_short(ref)}: not in the catalog and not a path to a config.json or model "
                    f"folder{_did_you_mean(ref, table)} (`tunepath models` lists the catalog)")


@lru_cache(maxsize=64)
def architecture(ref: str) -> Architecture:
    name, cfg = model_config(ref)
    return from_config(cfg, where=name)


# Configs that leave the window out get their config class's default when transformers loads them
# (FalconConfig.max_position_embeddings = 2048; falcon-7b's config.json has no such key).
CONFIG_DEFAULT_WINDOW = {"falcon": 2048, "RefinedWeb": 2048, "RefinedWebModel": 2048}


@lru_cache(maxsize=64)
def context_window(ref: str) -> int | None:
    """Tokens the model attends over, from its config: max_position_embeddings, stretched by rope scaling
    when the config names a factor over an original window (YaRN / linear / dynamic NTK)."""
    name, cfg = model_config(ref)
    text = cfg.get("text_config")
    if text is not None and not isinstance(text, dict):
        raise UserError(f"{name}: 'text_config' must be an object of config fields, got {type(text).__name__}")
    cfg = {**cfg, **(text or {})}
    key = next((k for k in ("max_position_embeddings", "n_positions", "n_ctx") if cfg.get(k)), None)
    base = (optional_int(cfg, key, None, name) if key
            else CONFIG_DEFAULT_WINDOW.get(cfg.get("model_type", "")))
    if not base:
        return None
    rs = cfg.get("rope_scaling") or {}
    factor = rs.get("factor") if isinstance(rs, dict) else None
    if isinstance(factor, (int, float)) and not isinstance(factor, bool) and not math.isfinite(factor):
        raise UserError(f"{name}: rope_scaling.factor must be a finite number, got {factor!r}")
    if isinstance(factor, (int, float)) and factor > 1:
        original = optional_int(rs, "original_max_position_embeddings", None, f"{name}: rope_scaling")
        kind = rs.get("rope_type") or rs.get("type")
        if (original and base <= original) or (not original and kind in ("linear", "dynamic", "yarn")):
            return int(base * factor)
    return int(base)
