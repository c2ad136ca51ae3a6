"""The CLI a person meets: every listing and result table reads whole in an 80-column terminal, piped
output is plain text, and --version / completion work (issue: 'readable at 80 columns').

Rendered in a fresh interpreter with COLUMNS=80, as a shell would; a cell rich had to cut shows '…',
and a number split over two lines leaves its JSON twin missing from the text.
"""
from __future__ import annotations

import json
import os
import re
import sys

import pytest

from helpers import EXAMPLES, cli_subprocess

NARROW = {"COLUMNS": "80", "TERM": "xterm-256color"}
BOX = re.compile("[\u2500-\u257f]")      # box-drawing block
ANSI = re.compile(r"\x1b\[[0-9;]*m")
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|9[0-7])[;m]")


def _render(*args):
    """Piped (plain) and on an 80-column terminal (FORCE_COLOR): no cut cell, no line over 80."""
    r = cli_subprocess(*args, env=NARROW)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert "\x1b[" not in text and not BOX.search(text), "piped output carries colour codes or box drawing"
    tty = cli_subprocess(*args, env={**NARROW, "FORCE_COLOR": "1"})
    for out in (text, ANSI.sub("", tty.stdout)):
        assert "…" not in out, f"truncated cell in `tunepath {' '.join(map(str, args))}`:\n{out}"
        too_long = [line for line in out.splitlines() if len(line.rstrip()) > 80]
        assert not too_long, too_long
    return text


def _json(*args):
    r = cli_subprocess(*args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_models_ids_and_counts_whole():
    from advisor.textio import human

    text = _render("models")
    rows = _json("models")
    for r in rows:
        line = next((ln for ln in text.splitlines() if ln.startswith(r["id"] + " ")), None)
        assert line is not None, f"{r['id']} not shown whole"
        assert human(r["total_params"]) in line.split()


def test_gpus_and_rules_fit():
    text = _render("gpus")
    for g in _json("gpus"):
        assert re.search(rf"^{re.escape(g['id'])}\s+{g['memory_gb']:g}\s", text, re.M), g["id"]
    text = _render("rules")
    for r in _json("rules"):
        assert r["id"] in text.split(), r["id"]
        assert r["evidence_key"] and f"{r['evidence_key']}:" in text


@pytest.mark.parametrize("spec", ["support-assistant.yaml", "acme-support.yaml", "low-resource-language.yaml"])
def test_recommend_table_numbers_whole(spec):
    from advisor.paths import label
    from advisor.textio import usd

    text = _render("recommend", EXAMPLES / spec)
    advice = _json("recommend", EXAMPLES / spec)
    table = text.split("> recommended")[0]
    for p in advice["paths"]:
        row = next((ln for ln in table.splitlines() if label(p["path"]) in ln), None)
        assert row is not None, f"{label(p['path'])} cut in:\n{table}"
        assert usd(p["cost"]["monthly_usd"]) in row.split(), row


def test_estimate_and_dry_run_fit():
    _render("estimate", "--model", "meta-llama/Llama-2-7b-hf", "--method", "qlora", "--tokens", "20M")
    _render("estimate", "--model", "Qwen/Qwen2.5-7B", "--method", "inference")
    text = _render("run", EXAMPLES / "acme-support.yaml", "--dry-run")
    assert "index" in text and "evaluate" in text


def test_version_and_completion():
    from importlib.metadata import version

    r = cli_subprocess("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"tunepath {version('tunepath')}"
    # typer detects the shell from the parent processes: run under bash, so the test does not depend on
    # whether pytest itself was started from a shell
    import shlex
    import subprocess

    from helpers import REPO

    r = subprocess.run(["bash", "-c", f"{shlex.quote(sys.executable)} -m tunepath.cli --show-completion"],
                       capture_output=True, text=True, cwd=REPO, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0 and "_TUNEPATH_COMPLETE" in r.stdout, r.stderr


def test_no_color_is_honoured_on_a_terminal_too():
    """Even where rich is told it writes to a terminal, NO_COLOR drops the colour codes."""
    r = cli_subprocess("recommend", EXAMPLES / "support-assistant.yaml",
                       env={**NARROW, "FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert r.returncode == 0 and "\x1b[" in r.stdout and not COLOUR.search(r.stdout)
