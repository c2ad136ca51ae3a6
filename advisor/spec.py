"""The project spec: what the advisor needs to know, validated at the edge (design.md §3).

Field names are fixed so that specs stay portable. Unknown keys are errors (pydantic's default
silently drops typos), each error names the dotted field path and what was expected.
"""
from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster parsing
from pydantic import BaseModel, ConfigDict, Field, field_validator

from advisor import fields
from advisor.errors import UserError

DATA_DIR = Path(__file__).parent / "data"


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
    needs_citations: bool = Field(False, description="Answers must point to their sources.")
    style_consistency: Level = Field(Level.medium, description="How strict the output format / tone / brand voice is.")


class Knowledge(_Strict):
    source_documents: int = Field(0, ge=0, description="Documents the model must know (0 = none).")
    corpus_tokens: int = Field(0, ge=0, description="Domain text available (unlabeled), in tokens.")
    update_frequency: Frequency = Field(Frequency.never, description="How often that knowledge changes.")
    in_base_model: Coverage = Field(Coverage.partial, description="How much of it the base model already knows.")
    domain_shift: Shift = Field(Shift.none, description="large = new language/script/modality-like jargon.")


class Data(_Strict):
    labeled_examples: int = Field(0, ge=0, description="Good-quality input -> output pairs available.")
    avg_example_tokens: int = Field(400, gt=0, description="Average tokens of one labeled example (input + output).")


class ModelRef(_Strict):
    base: str = Field("meta-llama/Llama-3.1-8B", min_length=1,
                      description="Catalog id (`tunepath models`), HF id in the catalog, or path to a config.json "
                                  "or model folder.")

    @field_validator("base")
    @classmethod
    def _known_model(cls, v: str) -> str:
        from advisor import catalog
        try:
            catalog.architecture(v)
        except UserError as e:
            raise ValueError(str(e)) from None
        return v


class Traffic(_Strict):
    requests_per_month: int = Field(0, ge=0, description="Expected requests per month in production.")
    prompt_tokens: int = Field(500, ge=0, description="Prompt tokens per request, without retrieved context or "
                                                      "few-shot examples.")
    output_tokens: int = Field(200, ge=0, description="Generated tokens per request.")


class Constraints(_Strict):
    budget_usd: float = Field(10_000, ge=0, description="One-off budget (training, indexing, setup compute), USD.")
    monthly_budget_usd: float | None = Field(None, ge=0, description="Monthly serving budget, USD (none = no limit).")
    gpu: str = Field("A100-80GB", description="GPU catalog id (`tunepath gpus`).")
    gpu_count: int = Field(1, ge=1, description="GPUs available for training.")
    deadline_days: float | None = Field(None, gt=0, description="Days until a first result is needed (none = no limit).")
    data_may_leave: bool = Field(True, description="Whether hosted APIs may see the data.")

    @field_validator("gpu")
    @classmethod
    def _known_gpu(cls, v: str) -> str:
        from advisor import catalog
        try:
            return catalog.gpu(v).id
        except UserError as e:
            raise ValueError(str(e)) from None


class RunSection(_Strict):
    """Where `tunepath run` finds local data and models. Relative paths are relative to the spec file."""

    output_dir: str | None = Field(None, description="Run folder (default runs/<name>).")
    documents: list[str] = Field(default_factory=list, description="Files/folders to index for RAG.")
    questions: list[str] | str | None = Field(None, description="Sample questions: a list, or a .txt/.jsonl file.")
    queries: str | None = Field(None, description="BEIR queries.jsonl to evaluate retrieval (with qrels).")
    qrels: str | None = Field(None, description="BEIR qrels .tsv for those queries.")
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
    max_seq_len: int = Field(256, gt=0, description="Tokens per training row.")
    eval_examples: int = Field(8, ge=0, description="Held-out labeled examples used to evaluate prompting.")


class ProjectSpec(_Strict):
    """A project the advisor reasons about. Only `name` and `task.kind` are required."""

    name: str = Field(min_length=1, description="A short name for the project.")
    task: Task
    knowledge: Knowledge = Knowledge()
    data: Data = Data()
    model: ModelRef = ModelRef()
    traffic: Traffic = Traffic()
    constraints: Constraints = Constraints()
    run: RunSection | None = Field(None, description="Local data and models for `tunepath run`.")


# --- loading -----------------------------------------------------------------------------

def parse_document(path: Path) -> dict:
    """Read a YAML or JSON mapping; errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, expected a YAML or JSON file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = yaml.load(text, Loader=_YamlLoader)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UserError(f"{where}: invalid YAML: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of fields (name, task, ...), got {type(data).__name__}")
    return data


def set_dotted(data: dict, dotted: str, value: Any) -> dict:
    """Return a copy of `data` with `a.b.c` set to value (for --vary what-ifs)."""
    out = json.loads(json.dumps(data))
    fields.set_path(out, dotted.split("."), value)
    return out


def spec_from_dict(data: dict, source: str = "spec", text: str = "",
                   touched: set[tuple[str, ...]] = frozenset()) -> ProjectSpec:
    return fields.validate(ProjectSpec, data, source, text=text, touched=touched)


def _resolve_against(data: dict, folder: Path) -> None:
    """A relative model.base that names a file or folder beside the spec means that one, wherever the
    command runs from - as every path of the run: section does (tunepath/launcher.py)."""
    model = data.get("model")
    base = model.get("base") if isinstance(model, dict) else None
    if isinstance(base, str) and base and not Path(base).expanduser().is_absolute() and (folder / base).exists():
        model["base"] = str((folder / base).resolve())


def load_spec(path: str | Path, overrides: list[str] | None = None) -> ProjectSpec:
    """Load and validate a spec file; `overrides` are `dotted.field=value` strings (YAML-parsed values)."""
    path = Path(path)
    data = parse_document(path)
    touched = fields.apply_overrides(data, overrides or [])
    _resolve_against(data, path.parent)
    text = path.read_text(encoding="utf-8") if path.suffix.lower() != ".json" else ""
    return spec_from_dict(data, str(path), text, touched)
