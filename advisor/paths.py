"""The one table of paths a project can take: what each is called, what runs it, what it assumes.

Costs, rules, the recommendation, reports, the launcher and the CLI read path names, labels and
set-up assumptions from here; nothing else spells them. A combined plan (`rag+peft`) is its
parts joined by '+'.
"""
from __future__ import annotations

from dataclasses import dataclass

from advisor.errors import UserError


@dataclass(frozen=True)
class PathDef:
    name: str                 # the id in specs, `--path`, JSON and reports
    label: str                # how people read it
    runs: str                 # what `tunepath run` does for it
    training_stage: str | None  # the training backend's stage (training/config.py), None when it trains nothing
    setup_days: float         # engineer-days before a first result (assumed; overridable per spec)
    color: str                # its line in report charts (Tableau 10 palette)


PATHS: tuple[PathDef, ...] = (
    PathDef("prompting", "Prompting", "builds a few-shot prompt and evaluates a local model on held-out examples",
            None, 2, "#4c78a8"),
    PathDef("rag", "RAG", "indexes the documents, answers the sample questions, evaluates retrieval on qrels",
            None, 5, "#f58518"),
    PathDef("peft", "PEFT", "trains an adapter on the labeled examples (training stage peft)", "peft", 7, "#54a24b"),
    PathDef("full_finetuning", "Full fine-tuning", "trains all weights on the labeled examples (training stage full)",
            "full", 10, "#b279a2"),
    PathDef("pretraining", "Pretraining", "trains a model from random init on the corpus (training stage pretrain)",
            "pretrain", 30, "#e45756"),
)
BY_NAME: dict[str, PathDef] = {p.name: p for p in PATHS}
NAMES: tuple[str, ...] = tuple(BY_NAME)
COMBINED: tuple[str, ...] = ("rag+peft",)   # retrieval for knowledge + tuning for behaviour
RUNNABLE: tuple[str, ...] = NAMES + COMBINED
COMBINED_COLOR = "#222222"


def parts(name: str) -> list[PathDef]:
    """The single paths a (possibly combined) path name is made of."""
    return [BY_NAME[p] for p in name.split("+")]


def label(name: str | None) -> str:
    """'RAG + PEFT' for 'rag+peft'; 'no feasible path' for None."""
    if not name:
        return "no feasible path"
    return " + ".join(BY_NAME[p].label for p in name.split("+"))


def color(name: str) -> str:
    return BY_NAME[name].color if name in BY_NAME else COMBINED_COLOR


def check(name: str, where: str = "--path") -> str:
    """A runnable path name (PEFT, RAG+PEFT and the labels - 'Full fine-tuning' - as well), or a one-line error
    listing the choices; an empty name is refused (it ran the recommended path as if none had been given)."""
    known = {**{n: n for n in RUNNABLE}, **{label(n).lower(): n for n in RUNNABLE}}
    name = known.get(name.strip().lower().replace(" + ", "+"), name)
    if name not in RUNNABLE:
        import difflib

        close = difflib.get_close_matches(name, RUNNABLE, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UserError(f"{where} {name!r}: expected one of {', '.join(RUNNABLE)}{hint}")
    return name
