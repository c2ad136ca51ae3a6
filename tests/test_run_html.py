"""`tunepath run --html`: the HTML summary shows the run's own estimate and measurement, read back from its files."""
from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from helpers import EXAMPLES, cli, one_line_error
from test_launcher import GARDEN_QA, _spec


@pytest.fixture(autouse=True)
def _calibration(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEPATH_CALIBRATION", str(tmp_path / "calibration.json"))


class _Page(HTMLParser):
    """Rows of the tables (cell text and data-value), the SVG elements by class, the headings."""

    def __init__(self):
        super().__init__()
        self.tables: list[dict] = []       # {"section": div class, "rows": [[(text, data_value)]]}
        self.svgs: list[list[tuple[str, dict]]] = []
        self.text: list[str] = []
        self._div: list[str | None] = []
        self._cell: list | None = None
        self._svg_depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg":
            if self._svg_depth == 0:
                self.svgs.append([])
            self._svg_depth += 1
        if self._svg_depth:
            self.svgs[-1].append((tag, a))
        elif tag == "div":
            self._div.append(a.get("class"))
        elif tag == "table":
            section = next((c for c in reversed(self._div) if c not in (None, "scroll")), None)
            self.tables.append({"section": section, "rows": []})
        elif tag == "tr":
            self.tables[-1]["rows"].append([])
        elif tag == "td":
            self._cell = ["", a.get("data-value")]

    def handle_endtag(self, tag):
        if tag == "svg":
            self._svg_depth -= 1
        elif self._svg_depth:
            return
        elif tag == "div" and self._div:
            self._div.pop()
        elif tag == "td" and self._cell is not None:
            self.tables[-1]["rows"][-1].append(tuple(self._cell))
            self._cell = None
        elif tag == "tr" and not self.tables[-1]["rows"][-1]:
            self.tables[-1]["rows"].pop()          # the header row (th cells only)

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell[0] += data


def _parse(p: Path) -> _Page:
    page = _Page()
    page.feed(p.read_text(encoding="utf-8"))
    return page


def _comparison(page: _Page) -> dict[tuple[str, str], tuple]:
    """(step, quantity) -> (estimated data-value, measured data-value, ratio text)."""
    (table,) = [t for t in page.tables if t["section"] == "comparison"]
    return {(r[0][0], r[1][0]): (r[2][1], r[3][1], r[4][0]) for r in table["rows"]}


def _as_number(v: str | None):
    return None if v is None else json.loads(v)


def test_training_run_writes_an_html_summary_of_its_own_figures(tmp_path, tiny_base_model, torch_one_thread):
    spec = _spec(tmp_path, {"labeled_data": str(GARDEN_QA), "base_model": str(tiny_base_model),
                            "train": {"max_steps": 3, "micro_batch_size": 4, "logging_steps": 1}},
                 name="voice <b>&amp; co</b>")
    out = tmp_path / "reports" / "run.html"          # a folder that does not exist yet is made
    r = cli("run", spec, "--yes", "--json", "--html", out)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["path"] == "peft" and f"html summary: {out}" in r.stderr
    assert out.stat().st_mode & 0o777 == 0o644
    page = _parse(out)
    run_summary = json.loads((tmp_path / "run" / "run_summary.json").read_text())
    (step,) = run_summary["steps"]
    rows = _comparison(page)
    labels = {"wall_s": "wall time (s)", "peak_memory_gb": "peak memory (GB)", "tokens_per_s": "tokens/s",
              "tokens": "tokens"}
    for key, label in labels.items():          # the plan's estimate and the measurement, both present
        est, meas, ratio = rows[("train", label)]
        assert _as_number(est) == step["estimate"][key] and _as_number(meas) == step["measured"][key], key
        assert ratio == f"\u00d7{step['measured'][key] / step['estimate'][key]:.3g}"
    # the training backend's own summary: its figures as written, its loss curve inlined
    train_dir = Path(step["detail"]["output_dir"])
    train = json.loads((train_dir / "run_summary.json").read_text())
    (figures,) = [t for t in page.tables if t["section"] == "figures"]
    values = {r[0][0]: _as_number(r[1][1]) for r in figures["rows"]}
    assert values["train loss"] == train["train_loss"] and values["tokens"] == train["tokens"]
    assert values["optimizer steps"] == train["steps"] == 3
    assert values["estimated FLOPs for the tokens run (advisor)"] == train["estimate"]["flops"]
    (what_ran,) = [t for t in page.tables if t["section"] == "what-ran"]
    assert [c[0] for c in what_ran["rows"][0]] == ["train", "lora", str(tiny_base_model), str(GARDEN_QA)]
    chart, loss = page.svgs
    bars = [a.get("class") for tag, a in chart if tag == "rect" and a.get("class")]
    assert bars.count("estimated") == bars.count("measured") == len(rows)   # a pair per quantity
    assert {a.get("id") for t, a in loss if t == "polyline"} >= {"train", "eval"}   # loss.svg, inlined
    html = out.read_text()
    assert "voice <b>" not in html and "voice &lt;b&gt;&amp;amp; co&lt;/b&gt;" in html   # the name, escaped


def test_rag_run_html_shows_measured_only_where_nothing_was_estimated(tmp_path):
    out = tmp_path / "acme.html"
    r = cli("run", EXAMPLES / "acme-support.yaml", "--yes", "--set", f"run.output_dir={tmp_path / 'acme'}",
            "--html", out)
    assert r.exit_code == 0, r.output
    page = _parse(out)
    run_summary = json.loads((tmp_path / "acme" / "run_summary.json").read_text())
    index, _, evaluate = run_summary["steps"]
    rows = _comparison(page)
    for key, label in (("wall_s", "wall time (s)"), ("chunks_per_s", "chunks/s"), ("peak_memory_gb",
                                                                                  "peak memory (GB)")):
        est, meas, _ = rows[("index", label)]
        assert _as_number(est) == index["estimate"][key] and _as_number(meas) == index["measured"][key]
    assert all(est is None for (s, _), (est, _, _) in rows.items() if s in ("answer", "evaluate"))  # none invented
    est, meas, ratio = rows[("evaluate", "wall time (s)")]
    assert est is None and _as_number(meas) == evaluate["measured"]["wall_s"] and ratio == "measured only"
    (metrics,) = [t for t in page.tables if t["section"] == "metrics"]
    shown = {r[0][0].replace(" ", "_"): _as_number(r[1][1]) for r in metrics["rows"] if r[1][1] is not None}
    assert shown == {k: v for k, v in evaluate["detail"]["metrics"].items() if isinstance(v, (int, float))}
    assert any("Family plan" in t for t in page.text)           # the sample answers
    assert len(page.svgs) == 1                                  # the comparison chart; no loss curve here


@pytest.mark.parametrize("name,needle", [("summary.txt", "expected a .html or .htm file name"),
                                         ("blocker.txt/summary.html", "is a file, not a folder")])
def test_bad_html_path_is_one_line_before_anything_runs(tmp_path, name, needle):
    (tmp_path / "blocker.txt").write_text("a file where a folder would have to be")
    res = cli("run", EXAMPLES / "acme-support.yaml", "--yes", "--set", f"run.output_dir={tmp_path / 'acme'}",
              "--html", tmp_path / name)
    one_line_error(res, "--html", needle)
    assert not (tmp_path / "acme").exists()


def test_html_with_dry_run_is_refused():
    res = cli("run", EXAMPLES / "acme-support.yaml", "--dry-run", "--html", "x.html")
    one_line_error(res, "--html", "--dry-run")


def test_help_says_what_html_writes():
    r = cli("run", "--help")
    assert r.exit_code == 0 and "--html" in r.stdout and "HTML summary" in " ".join(r.stdout.split())
