"""`tunepath report`: HTML, Markdown and JSON carry the same numbers; the HTML renders in Chromium."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from advisor.paths import label
from advisor.report_render import fmt_num, fmt_usd
from helpers import EXAMPLES, cli, cli_subprocess


class _Tables(HTMLParser):
    """Collects every table's rows of cell texts."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(self._cell.strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def _expected_rows(report):
    return [[p["label"], fmt_usd(p["one_off_usd"]), fmt_usd(p["monthly_usd"]), fmt_usd(p["total_12m_usd"]),
             f'{fmt_num(p["time_to_first_result_days"])} d'] for p in report["paths"]]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    spec = EXAMPLES / "contracts-assistant.yaml"
    vary = "traffic.requests_per_month=1e4,1e6"
    for suffix in ("json", "html", "md"):
        r = cli("report", spec, "-o", d / f"r.{suffix}", "--vary", vary)
        assert r.exit_code == 0, r.output
    return d, json.loads((d / "r.json").read_text())


def test_json_carries_every_number(reports):
    _, rep = reports
    assert rep["recommendation"]["path"] == "rag+peft"
    combined = rep["cumulative_usd"]["rag+peft"]                 # the recommended plan has its own line
    assert combined[0] == pytest.approx(rep["recommendation"]["one_off_usd"], abs=0.01)
    assert {p["path"] for p in rep["paths"]} == {"prompting", "rag", "peft", "full_finetuning", "pretraining"}
    for p in rep["paths"]:
        cum = rep["cumulative_usd"][p["path"]]
        assert len(cum) == 25 and cum[0] == pytest.approx(p["one_off_usd"], abs=0.01)
        assert cum[12] == pytest.approx(p["total_12m_usd"], abs=0.05)
        assert p["risks"]
    assert [w["value"] for w in rep["what_if"]] == [10_000, 1_000_000]
    assert rep["assumptions"] and all(a["source"] for a in rep["assumptions"])
    for s in rep["sensitivity"]:
        assert s["from"] != s["to"]


def test_every_gpu_a_setup_uses_has_its_source(reports):
    """The search may replace the spec's GPU: every GPU a priced setup trains or serves on gets its data-sheet and
    price source in the assumptions, and data that may not leave gets a line on where self-hosted GPUs run."""
    _, rep = reports
    used = {g for p in rep["paths"] for g in (p["setup"].get("train_gpu"), p["setup"].get("serving_gpu")) if g}
    rows = {a["what"]: a for a in rep["assumptions"]}
    assert used and all(f"GPU {g}" in rows and "price:" in rows[f"GPU {g}"]["source"] for g in used)
    assert ("Where self-hosted GPUs run" in rows) == (not rep["spec"]["constraints"]["data_may_leave"])


def test_headline_separates_cash_from_people(reports):
    """The one-off budget counts cash (compute, labels, evaluation); the one-off total also prices people's time:
    the headline says which figure the budget is compared with."""
    d, rep = reports
    rec = rep["recommendation"]
    assert rec["cash_one_off_usd"] < rec["one_off_usd"]
    md = (d / "r.md").read_text()
    assert f"of which {fmt_usd(rec['cash_one_off_usd'])} is cash" in md
    assert f"{fmt_usd(rep['spec']['constraints']['budget_usd'])} one-off budget" in md


def test_html_numbers_equal_json(reports):
    d, rep = reports
    html = (d / "r.html").read_text()
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    parser = _Tables()
    parser.feed(html)
    paths_table = parser.tables[0]
    got = [[row[0], row[3], row[4], row[5], row[6]] for row in paths_table[1:]]
    assert got == _expected_rows(rep)
    whatif = parser.tables[2]                      # after the paths and the cost-breakdown tables
    # the paths' names as the rest of the report writes them, not their ids ("full_finetuning 12 months")
    assert [row[2] for row in whatif[1:]] == [label(w["recommendation"]) for w in rep["what_if"]]
    assert not any("_" in h for h in whatif[0]), whatif[0]
    assert "<svg" in html and "polyline" in html
    for s in rep["sensitivity"]:
        assert s["sentence"] in html


def test_markdown_numbers_equal_json(reports):
    d, rep = reports
    md = (d / "r.md").read_text()
    assert (d / "r.svg").read_text().startswith("<svg") and "](r.svg)" in md
    section = md.split("## All paths")[1].split("##")[0]
    rows = [line.strip("|").split(" | ") for line in section.strip().splitlines()[2:]]
    got = [[c.strip() for c in (r[0], r[3], r[4], r[5], r[6])] for r in rows]
    assert got == _expected_rows(rep)


@pytest.mark.skipif(shutil.which("chromium") is None and not os.environ.get("CI"),
                    reason="Debian's chromium is not installed (.ci/run installs it)")
def test_html_renders_in_headless_chromium(reports, tmp_path):
    d, _ = reports
    shot = tmp_path / "shot.png"
    r = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
                        "--window-size=412,2000", f"--screenshot={shot}", (d / "r.html").as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000, r.stderr[-2000:]
    assert "CONSOLE" not in r.stderr and "Uncaught" not in r.stderr


@pytest.mark.parametrize("args,needle", [
    (["-o", "report.pdf"], "expected a .html, .md or .json"),
    (["-o", "r.json", "--vary", "traffic.requests_per_month"], "expected field=v1,v2"),
    (["-o", "r.json", "--vary", "traffic.requests_per_month=a,b"], "'a' is not a number"),
    (["-o", "r.json", "--vary", "traffic.requests_per_month=1.5,2.5"], "takes whole numbers"),
    (["-o", "r.json", "--vary", "traffic.requests=1,2"], "unknown field"),
    # not pydantic's "input should be a valid string, got 1.0"
    (["-o", "r.json", "--vary", "constraints.gpu=1,2"], "--vary constraints.gpu: takes numeric fields only"),
])
def test_report_bad_input(tmp_path, args, needle):
    r = cli_subprocess("report", EXAMPLES / "faq-bot.yaml", "--no-sensitivity", *args, cwd=tmp_path)
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr


def test_report_files_are_shared_0644(reports):
    """Reports are meant to be forwarded: 0644, not the 0600 of the temporary file they are written through."""
    d, _ = reports
    for name in ("r.json", "r.html", "r.md"):
        assert (d / name).stat().st_mode & 0o777 == 0o644, name


def test_atomic_write_text_mode(tmp_path):
    from advisor.textio import atomic_write_text

    old = os.umask(0o022)
    try:
        assert atomic_write_text(tmp_path / "a.txt", "x").stat().st_mode & 0o777 == 0o644
        assert atomic_write_text(tmp_path / "b.txt", "x", mode=0o600).stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]  # no temp file left
