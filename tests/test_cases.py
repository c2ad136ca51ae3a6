"""Documented real projects (tests/cases/*.yaml) get a path a senior architect would pick.

Each case cites its public source, lists the acceptable paths (`# expect: a b`) and says why.
The advisor is run end to end through the CLI on each.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers import REPO, cli

CASES = sorted((REPO / "tests" / "cases").glob("*.yaml"))
PATHS = {"prompting", "rag", "peft", "full_finetuning", "pretraining", "rag+peft"}


def _header(spec: Path) -> dict[str, str]:
    text = spec.read_text()
    out = {}
    for key in ("source", "expect", "why"):
        m = re.search(rf"^# {key}: (.+(?:\n#   .+)*)", text, re.M)
        out[key] = re.sub(r"\n#\s+", " ", m.group(1)) if m else ""
    return out


def test_at_least_25_documented_cases():
    assert len(CASES) >= 25
    for spec in CASES:
        h = _header(spec)
        assert re.search(r"https://|arXiv:\d{4}\.\d{4,5}", h["source"]), f"{spec.name}: no public source"
        assert h["why"], f"{spec.name}: no reason for the expected path"
        assert set(h["expect"].split()) <= PATHS and h["expect"], f"{spec.name}: bad expect line"


@pytest.mark.parametrize("spec", CASES, ids=lambda p: p.stem)
def test_real_project_gets_an_acceptable_path(spec):
    r = cli("recommend", spec, "--json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)["recommendation"]["path"]
    expected = _header(spec)["expect"].split()
    assert got in expected, f"{spec.stem}: got {got}, expected one of {expected} ({_header(spec)['why']})"
