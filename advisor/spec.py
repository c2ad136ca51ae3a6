"""The project spec: what the advisor needs to know, validated at the edge.

Field names are fixed so that specs stay portable. Unknown keys are errors (pydantic's default
silently drops typos), each error names the dotted field path and what was expected.
"""
from __future__ import annotations

import json
import math
import os
import re
import stat
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, field_validator, model_validator

from advisor import fields, paths
from advisor.errors import UserError

DATA_DIR = Path(__file__).parent / "data"
MAX_SPEC_BYTES = 1_000_000      # a spec is a page of YAML; anything bigger is the wrong file
MAX_NUMBER_DIGITS = 30          # no field's bound needs more digits; longer literals are rejected unparsed

_SCIENTIFIC = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


class _SpecLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml: ~10x faster parsing
    """YAML 1.1 safe loading, stricter: duplicate keys are errors (naming both lines), `1e6` is a
    number (YAML 1.1 needs `1.0e+6`), and numbers must be finite and of sane length."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":   # `<<: *defaults`: keys given beside it override
                continue                                     # the merged ones (YAML 1.1 merge keys), not dups
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise UserError(f"{self.spec_source}:{line}: duplicate key {key!r} (first at line {seen[key]})")
            if isinstance(key, (str, int, float, bool)):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)

    def _where(self, node) -> str:
        return f"{self.spec_source}:{node.start_mark.line + 1}"

    def construct_yaml_int(self, node):
        raw = str(node.value)
        digits = raw.lstrip("+-").replace("_", "")
        if ":" in digits or re.fullmatch(r"0[0-7]+", digits):   # YAML 1.1 base 60 and octal: 1:30 is 90, 0300 is 192
            meant = raw[:1].replace("+", "") * (raw[:1] in "+-") + (digits.lstrip("0") or "0")
            raise UserError(f"{self._where(node)}: {raw} is read by YAML 1.1 as "
                            f"{'a base-60' if ':' in digits else 'an octal'} number "
                            f"({super().construct_yaml_int(node)}); write "
                            f"{'it in decimal' if ':' in digits else meant} (or quote it for text)")
        if len(digits) > MAX_NUMBER_DIGITS:
            raise UserError(f"{self._where(node)}: number with {len(raw)} digits is out of range "
                            f"(at most {MAX_NUMBER_DIGITS} digits)")
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node):
        raw = str(node.value)
        if len(raw) > MAX_NUMBER_DIGITS + 10:
            raise UserError(f"{self._where(node)}: number {raw[:20]}... is too long")
        value = float(raw.replace("_", "")) if _SCIENTIFIC.match(raw) else super().construct_yaml_float(node)
        if self.finite_numbers and not math.isfinite(value):
            raise UserError(f"{self._where(node)}: {raw} is not a finite number")
        return value

    spec_source = "spec"
    finite_numbers = True


_SpecLoader.add_constructor("tag:yaml.org,2002:int", _SpecLoader.construct_yaml_int)
_SpecLoader.add_constructor("tag:yaml.org,2002:float", _SpecLoader.construct_yaml_float)
_SpecLoader.add_implicit_resolver("tag:yaml.org,2002:float", _SCIENTIFIC, list("-+0123456789"))


MAX_EXPANDED_VALUES = 1_000_000   # a 1 MB spec without aliases holds ~200,000 values


def _expanded_values(data: Any, source: str) -> int:
    """How many values `data` holds once every alias is expanded, counted without expanding them (each shared
    node once, memoised): ten levels of ten aliases are 1e10 values from 1 kB of YAML ('billion laughs'), which
    hung the first JSON dump of the spec; a node holding itself cannot be dumped at all."""
    sizes: dict[int, int] = {}
    busy: set[int] = set()

    def walk(node: Any) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in busy:
            raise UserError(f"{source}: an alias refers to the node that holds it (&x ... *x inside it): "
                            "a structure that never ends")
        busy.add(key)
        children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        total = 1 + sum(walk(c) for c in children)
        busy.discard(key)
        sizes[key] = total
        return total

    return walk(data)


def load_yaml(text: str, source: str = "spec", finite_numbers: bool = True) -> Any:
    """Parse YAML text with the spec rules (duplicate keys, scientific notation, finite numbers, aliases that
    expand to at most MAX_EXPANDED_VALUES values and never into themselves).
    finite_numbers=False leaves inf/nan to a model that refuses them by field name (allow_inf_nan=False)."""
    loader = _SpecLoader(text)
    loader.spec_source = source
    loader.finite_numbers = finite_numbers
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    check_aliases(data, source)
    return data


def check_aliases(data: Any, source: str) -> None:
    """UserError unless `data`'s aliases expand to at most MAX_EXPANDED_VALUES values and never into themselves."""
    try:
        n = _expanded_values(data, source)
    except RecursionError:
        raise UserError(f"{source}: nested too deeply") from None
    if n > MAX_EXPANDED_VALUES:
        raise UserError(f"{source}: its aliases (*name) expand to {n:,} values, more than {MAX_EXPANDED_VALUES:,}; "
                        "write the repeated parts out or use fewer aliases")


# --- strict field types -------------------------------------------------------------------
# pydantic's lax mode turns `true` into 1 and "12" into 12; a spec is an engineering document,
# so a count must be a number (an integral float such as 1e6 is fine) and every number finite.

def _shown(v: Any) -> str:
    """repr of a value for an error line, at most ~60 characters (a 5,000-digit number or a pasted page)."""
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def _count(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"expected a whole number, got {_shown(v)}{fields.number_hint(v)}")
    if isinstance(v, float):
        if not math.isfinite(v) or not v.is_integer():
            raise ValueError(f"expected a whole number, got {v!r}")
        return int(v)
    return v


def _number(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"expected a number, got {_shown(v)}{fields.number_hint(v)}")
    if isinstance(v, int) and abs(v) > 10 ** MAX_NUMBER_DIGITS:
        raise ValueError("number out of range")
    if not math.isfinite(float(v)):
        raise ValueError(f"expected a finite number, got {v!r}")
    return float(v)


Count = Annotated[int, BeforeValidator(_count)]
Number = Annotated[float, BeforeValidator(_number)]

# Upper bounds: far beyond any real project, low enough that the arithmetic stays meaningful.
BOUNDS = {
    "corpus_tokens": (1e15, "more than 3x the estimated stock of public human text, ~3e14 tokens "
                            "(Villalobos et al. 2024, 'Will we run out of data?')"),
    "requests_per_month": (1e12, "more than 3x Google Search's volume (~8.5 billion searches a day)"),
    "source_documents": (1e11, "more than 20x the pages of one Common Crawl snapshot (~3 billion)"),
    "labeled_examples": (1e10, "more than 1,000x the largest public instruction sets (~10M examples)"),
    "tokens": (1e7, "longer than any model's context window (10M tokens, Llama 4 Scout)"),
    "usd": (1e12, "a trillion dollars"),
    "gpus": (1e6, "more than 5x the largest announced training clusters (~200,000 GPUs)"),
    "days": (36_500, "a hundred years"),
}


def _bound(kind: str) -> dict:
    le, why = BOUNDS[kind]
    return {"le": le, "json_schema_extra": {"bound_reason": why}}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False)


class TaskKind(str, Enum):
    qa = "qa"
    chat = "chat"
    classification = "classification"
    extraction = "extraction"
    summarization = "summarization"
    generation = "generation"
    code = "code"


class Level(str, Enum):
    low = "low"
    medium = "medium"
    high = "high"


class Frequency(str, Enum):
    never = "never"
    yearly = "yearly"
    monthly = "monthly"
    weekly = "weekly"
    daily = "daily"


class Coverage(str, Enum):
    none = "none"
    partial = "partial"
    most = "most"


class Shift(str, Enum):
    none = "none"
    moderate = "moderate"
    large = "large"


FREQUENCY_PER_YEAR = {Frequency.never: 0, Frequency.yearly: 1, Frequency.monthly: 12, Frequency.weekly: 52,
                      Frequency.daily: 365}


class Task(_Strict):
    kind: TaskKind = Field(description="What the model does: qa, chat, classification, extraction, summarization, "
                                       "generation or code.")
    complexity: Level = Field(Level.medium, description="How hard the task is for a capable base model.")
    needs_citations: StrictBool = Field(False, description="Answers must point to their sources.")
    style_consistency: Level = Field(Level.medium, description="How strict the output format / tone / brand voice is.")


class Knowledge(_Strict):
    source_documents: Count = Field(0, ge=0, **_bound("source_documents"), description="Documents the model must know (0 = none).")
    corpus_tokens: Count = Field(0, ge=0, **_bound("corpus_tokens"), description="Domain text available (unlabeled), in tokens.")
    update_frequency: Frequency = Field(Frequency.never, description="How often that knowledge changes.")
    in_base_model: Coverage = Field(Coverage.partial, description="How much of it the base model already knows.")
    domain_shift: Shift = Field(Shift.none, description="large = new language/script/modality-like jargon.")


class Data(_Strict):
    labeled_examples: Count = Field(0, ge=0, **_bound("labeled_examples"), description="Good-quality input -> output pairs available.")
    avg_example_tokens: Count = Field(400, gt=0, **_bound("tokens"), description="Average tokens of one labeled example (input + output).")
    retrieval_pairs: Count = Field(0, ge=0, **_bound("labeled_examples"),
                                   description="(query, relevant passage) pairs, e.g. from search logs or qrels: the "
                                               "RAG path then tunes its embedder on them (`tunepath rag tune`).")


class ModelRef(_Strict):
    base: str = Field("meta-llama/Llama-3.1-8B", min_length=1,
                      description="Catalog id (`tunepath models`), HF id in the catalog, or path to a config.json "
                                  "or model folder.")
    fixed: StrictBool = Field(False, description="true: use exactly this base model; false: the advisor also "
                                                 "searches smaller/larger models of the catalog's ladder.")

    @field_validator("base")
    @classmethod
    def _known_model(cls, v: str) -> str:
        from advisor import catalog
        try:
            catalog.architecture(v)
            catalog.context_window(v)     # its window fields too: their mistakes are the spec's, named here
        except catalog.CatalogError:
            raise                         # the catalog file's mistake: named there, not as this field's
        except UserError as e:
            raise ValueError(str(e)) from None
        return v


class Traffic(_Strict):
    requests_per_month: Count = Field(0, ge=0, **_bound("requests_per_month"), description="Expected requests per month in production.")
    prompt_tokens: Count = Field(500, ge=0, **_bound("tokens"), description="Prompt tokens per request, without retrieved context or "
                                                      "few-shot examples.")
    output_tokens: Count = Field(200, ge=0, **_bound("tokens"), description="Generated tokens per request.")


class Constraints(_Strict):
    budget_usd: Number = Field(10_000, ge=0, **_bound("usd"), description="One-off budget (training, indexing, setup compute), USD.")
    monthly_budget_usd: Number | None = Field(None, ge=0, **_bound("usd"), description="Monthly cash budget, USD: serving, re-indexing and retraining compute, evaluation; not salaries, like budget_usd (none = no limit).")
    gpu: str = Field("A100-80GB", description="GPU catalog id (`tunepath gpus`).")
    gpu_count: Count = Field(1, ge=1, **_bound("gpus"), description="GPUs available for training.")
    deadline_days: Number | None = Field(None, gt=0, **_bound("days"), description="Days until a first result is needed (none = no limit).")
    data_may_leave: StrictBool = Field(True, description="Whether hosted APIs may see the data.")
    gpu_fixed: StrictBool = Field(False, description="true: train and serve on exactly `gpu` x `gpu_count`; "
                                                     "false: the advisor searches the catalog's GPU types and counts.")

    @field_validator("gpu", mode="before")
    @classmethod
    def _number_is_a_name(cls, v):
        """`gpu: 4090` (an alias of RTX-4090) reads as a YAML integer: it is the name typed."""
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("gpu")
    @classmethod
    def _known_gpu(cls, v: str) -> str:
        from advisor import catalog
        try:
            return catalog.gpu(v).id
        except catalog.CatalogError:
            raise
        except UserError as e:
            raise ValueError(str(e)) from None


PATH_NAMES = paths.NAMES
PerPath = dict[str, Number]


class Economics(_Strict):
    """Whole costs: people, experiments, labels, evaluation and upkeep. Every default is printed in
    reports with its source (advisor/costs.py ECONOMICS_SOURCES); every one is overridable."""

    engineer_day_usd: Number | None = Field(None, ge=0, **_bound("usd"),
                                            description="Loaded cost of one engineer-day, USD.")
    setup_days: PerPath = Field(default_factory=dict, description="Engineer-days to a first result, per path.")
    experiments: PerPath = Field(default_factory=dict,
                                 description="Training/indexing runs per path before the one that ships "
                                             "(sweeps and failed runs); compute is paid 1 + experiments times.")
    label_usd_per_example: Number | None = Field(None, ge=0, **_bound("usd"),
                                                 description="Cost of one new labeled example, USD.")
    labeled_examples_needed: Count | None = Field(None, ge=0, **_bound("labeled_examples"),
                                                  description="Labels the tuned paths will have after labeling "
                                                              "(the shortfall is bought at label_usd_per_example).")
    eval_usd: Number | None = Field(None, ge=0, **_bound("usd"),
                                    description="Evaluation spend per path besides engineer time (raters, judge "
                                                "API calls), USD.")
    retrain_per_year: Number | None = Field(None, ge=0, le=365,
                                            description="Retrains per year of a tuned model (base-model upgrades, "
                                                        "data drift).")
    horizon_months: Count = Field(12, ge=1, le=120, description="Months over which paths are compared.")

    @field_validator("setup_days", "experiments")
    @classmethod
    def _paths(cls, v: dict) -> dict:
        for k, x in v.items():
            if k not in PATH_NAMES:
                raise ValueError(f"unknown path {k!r}: expected one of {', '.join(PATH_NAMES)}")
            if x < 0 or x > BOUNDS["days"][0]:
                raise ValueError(f"{k}: expected 0..{BOUNDS['days'][0]:,.0f}, got {x:g}")
        return v


class ClusterSection(_Strict):
    """Run `tunepath run`'s embedding and training on a Ray cluster (needs tunepath[cluster])."""

    ray: str = Field("local", min_length=1, description="'local' (start Ray here), 'auto' (the cluster "
                     "`ray start` joined on this machine) or an address (host:port, ray://host:10001).")
    workers: Count | None = Field(None, ge=1, le=100_000,
                                  description="Ray Train workers, also the embedding actors (default: constraints."
                                              "gpu_count / gpus_per_worker, the GPUs the estimate assumes).")
    gpus_per_worker: Number = Field(1, ge=0, le=64, description="GPUs per training worker (0: CPU workers over gloo).")


class RunSection(_Strict):
    """Where `tunepath run` finds local data and models. Relative paths are relative to the spec file."""

    output_dir: str | None = Field(None, description="Run folder (default runs/<name>).")
    documents: list[str] = Field(default_factory=list, description="Files/folders to index for RAG.")
    questions: list[str] | str | None = Field(None, description="Sample questions: a list, or a .txt/.jsonl file.")
    queries: str | None = Field(None, description="BEIR queries.jsonl to evaluate retrieval (with qrels).")
    qrels: str | None = Field(None, description="BEIR qrels .tsv for those queries.")
    retrieval_pairs: str | None = Field(None, description="Pairs to tune the embedder on before indexing: a BEIR "
                                        "folder (queries.jsonl, qrels/train.tsv, corpus.jsonl) or a .jsonl of "
                                        "{query, positive, negative?}.")
    labeled_data: str | None = Field(None, description="Labeled examples (alpaca or chat jsonl/json) for PEFT, "
                                                       "full fine-tuning and few-shot prompting.")
    corpus: list[str] = Field(default_factory=list, description="Raw text (.txt/.jsonl) for pretraining.")
    base_model: str | None = Field(None, description="Local model folder (or hub id) to tune and evaluate on this "
                                                     "machine; the spec's model.base is what production would use.")
    architecture: dict[str, Any] | str | None = Field(
        None, description="Pretraining: HF config fields or a config.json path (default: a tiny Llama).")
    generator: str | None = Field(None, description="Local causal LM that writes RAG answers and is evaluated "
                                                    "with the few-shot prompt (default: base_model).")
    train: dict[str, Any] = Field(default_factory=dict, description="Overrides of the training section of the "
                                                                    "generated TrainConfig (e.g. max_steps).")
    adapter: dict[str, Any] = Field(default_factory=lambda: {"method": "lora", "r": 8, "alpha": 16,
                                                             "target_modules": "all-linear"},
                                    description="PEFT method and settings (adapters/).")
    max_seq_len: Count = Field(256, gt=0, **_bound("tokens"), description="Tokens per training row.")
    eval_examples: Count = Field(8, ge=0, **_bound("labeled_examples"),
                                 description="Held-out labeled examples used to evaluate prompting.")
    cluster: ClusterSection | None = Field(None, description="Run on a Ray cluster instead of this process.")

    @field_validator("output_dir", "documents", "queries", "qrels", "retrieval_pairs", "labeled_data", "corpus",
                     "base_model", "generator", "architecture")
    @classmethod
    def _no_empty_path(cls, v):
        """'' is the spec's own folder once resolved: `documents: [""]` indexed the folder holding the spec."""
        for item in (v if isinstance(v, list) else [v]):
            if isinstance(item, str) and not item.strip():
                raise ValueError("an empty path; expected a file or folder (or leave the field out)")
        return v

    @model_validator(mode="after")
    def _queries_with_qrels(self):
        """Retrieval is evaluated on both: one without the other skipped the evaluation without a word (queries
        alone also name the query texts of retrieval_pairs given as a qrels .tsv)."""
        pairs_tsv = str(self.retrieval_pairs or "").lower().endswith(".tsv")
        if self.qrels is not None and self.queries is None or self.queries is not None and self.qrels is None \
                and not pairs_tsv:
            have, missing = ("qrels", "queries") if self.qrels is not None else ("queries", "qrels")
            raise ValueError(f"run.{have} is given without run.{missing}: evaluating retrieval needs both "
                             "(BEIR queries.jsonl and qrels .tsv)")
        return self


class ProjectSpec(_Strict):
    """A project the advisor reasons about. Only `name` and `task.kind` are required."""

    name: str = Field(min_length=1, description="A short name for the project.")
    task: Task
    knowledge: Knowledge = Knowledge()
    data: Data = Data()
    model: ModelRef = ModelRef()
    traffic: Traffic = Traffic()
    constraints: Constraints = Constraints()
    economics: Economics = Economics()
    run: RunSection | None = Field(None, description="Local data and models for `tunepath run`.")


# --- loading -----------------------------------------------------------------------------

def read_document_text(path: Path) -> str:
    """A spec, train config or catalog file's text: regular files only (a FIFO or /dev/zero would hang), at most
    MAX_SPEC_BYTES, UTF-8 (a byte-order mark skipped)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{path}: is a folder, expected a YAML or JSON file")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{path}: not a regular file (a pipe or device?); expected a YAML or JSON file")
    if st.st_size > MAX_SPEC_BYTES:
        raise UserError(f"{path}: {st.st_size:,} bytes; a spec is at most {MAX_SPEC_BYTES:,} bytes")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_SPEC_BYTES + 1)
        if len(raw) > MAX_SPEC_BYTES:
            raise UserError(f"{path}: more than {MAX_SPEC_BYTES:,} bytes; a spec is at most that")
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or type(e).__name__})") from None
    try:   # utf-8-sig: the byte-order mark Windows editors write (YAML skipped it; json.loads refused it)
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save the file as UTF-8") from None


def _json_pairs(path: Path):
    def hook(pairs):
        out = {}
        for k, v in pairs:
            if k in out:
                raise UserError(f"{path}: duplicate key {k!r} in one JSON object")
            out[k] = v
        return out
    return hook


def _json_constant(name: str):
    raise ValueError(f"{name} is not a finite number")


def _json_int(path: Path):
    def parse(raw: str) -> int:
        if len(raw.lstrip("-")) > MAX_NUMBER_DIGITS:
            raise UserError(f"{path}: number with {len(raw)} digits is out of range (at most {MAX_NUMBER_DIGITS})")
        return int(raw)
    return parse


def _json_float(path: Path):
    def parse(raw: str) -> float:
        v = float(raw)
        if not math.isfinite(v):
            raise UserError(f"{path}: {raw} is not a finite number")
        return v
    return parse


def parse_document(path: Path) -> dict:
    """Read a YAML or JSON mapping; errors name the file and line."""
    return _parse(path)[0]


def _parse(path: Path) -> tuple[dict, str]:
    text = read_document_text(path)
    if not text.strip():
        raise UserError(f"{path}: the file is empty (expected a project spec: `tunepath init` writes one)")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text, object_pairs_hook=_json_pairs(path), parse_constant=_json_constant,
                              parse_int=_json_int(path), parse_float=_json_float(path))
        else:
            data = load_yaml(text, str(path))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    except ValueError as e:     # NaN / Infinity in JSON
        raise UserError(f"{path}: invalid JSON: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UserError(f"{where}: invalid YAML: {getattr(e, 'problem', None) or e}") from None
    except RecursionError:
        raise UserError(f"{path}: nested too deeply") from None
    if data is None:
        raise UserError(f"{path}: the file is empty (expected a project spec: `tunepath init` writes one)")
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of fields (name, task, ...), got {type(data).__name__}")
    if "stage" in data and "task" not in data:
        raise UserError(f"{path}: this is a training config (stage: {data['stage']}), not a project spec: "
                        f"`tunepath train {path}` runs it")
    if "model_type" in data and "task" not in data:   # the file for model.base, given as the spec
        raise UserError(f"{path}: this is a model config (model_type: {str(data['model_type'])[:40]}), not a project "
                        f"spec: name it in the spec's model.base (or estimate --model {path})")
    if "task" not in data and ({"gpus", "models", "api_prices", "price_class"} & set(data)):
        raise UserError(f"{path}: this is a catalog file (gpus:, models:, ...), not a project spec: name it in "
                        "TUNEPATH_CATALOG")
    return data, text


def set_dotted(data: dict, dotted: str, value: Any, flag: str = "--vary") -> dict:
    """Return a copy of `data` with `a.b.c` set to value (for --vary what-ifs); errors name `flag`."""
    out = json.loads(json.dumps(data))
    fields.set_path(out, dotted.split("."), value, flag)
    return out


# Defaults the advice leans on that a reader could take for the project's own figures ("exceeds the budget of
# $10,000" when no budget was given): where they are printed, they are called defaults.
SHOWN_DEFAULTS = ("model.base", "constraints.budget_usd")


def defaulted(spec: ProjectSpec) -> list[str]:
    """The SHOWN_DEFAULTS fields this spec leaves at their defaults."""
    out = []
    for dotted in SHOWN_DEFAULTS:
        section, name = dotted.split(".")
        if section not in spec.model_fields_set or name not in getattr(spec, section).model_fields_set:
            out.append(dotted)
    return out


def spec_from_dict(data: dict, source: str = "spec", text: str = "",
                   touched: set[tuple[str, ...]] = frozenset(), flag: str = "--set") -> ProjectSpec:
    """`touched`: paths set on the command line by `flag`, whose errors are named `FLAG path` (not source:line)."""
    return fields.validate(ProjectSpec, data, source, text=text, touched=touched, flag=flag)


def _resolve_against(data: dict, folder: Path) -> None:
    """A relative model.base that names a file or folder beside the spec means that one, wherever the
    command runs from - as every path of the run: section does (tunepath/launcher.py)."""
    model = data.get("model")
    base = model.get("base") if isinstance(model, dict) else None
    if isinstance(base, str) and base and not Path(base).expanduser().is_absolute() and _exists(folder / base):
        model["base"] = str((folder / base).resolve())


def _exists(p: Path) -> bool:
    try:
        return p.exists()
    except OSError:       # ENAMETOOLONG: not a path (catalog.model_config then names it an unknown model)
        return False


def load_spec(path: str | Path, overrides: list[str] | None = None) -> ProjectSpec:
    """Load and validate a spec file; `overrides` are `dotted.field=value` strings (values read as YAML, with
    scientific notation as numbers)."""
    path = Path(path)
    data, text = _parse(path)
    touched = fields.apply_overrides(data, overrides or [])
    _resolve_against(data, path.parent)
    return spec_from_dict(data, str(path), text, touched)   # JSON is YAML enough for yaml_line (it gives up quietly)
