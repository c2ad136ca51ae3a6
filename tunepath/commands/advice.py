"""`tunepath recommend / report / schema / init / rules`: the advisor's commands (no backend imports)."""
from __future__ import annotations

from pathlib import Path

import typer

from advisor.console import out
from advisor.errors import UserError
from tunepath.commands.options import JsonOpt, SetOpt, SpecArg, WideOpt, print_json

app = typer.Typer()


@app.command(rich_help_panel="Advisor")
def recommend(spec: Path = SpecArg, set_: list[str] = SetOpt, as_json: bool = JsonOpt) -> None:
    """Recommend a path - prompting, RAG, PEFT, full fine-tuning or pretraining - with cost and evidence.

    Every rule that moved a path is listed with its weight and source; `tunepath rules` shows the table.
    """
    from advisor.recommend import advice_json, recommend as _recommend
    from advisor.spec import load_spec

    s = load_spec(spec, set_)
    if s.run is not None:   # `tunepath run` would use it: report its mistakes now
        from tunepath.launcher import check_run_section

        check_run_section(s, spec, set_)
    advice = _recommend(s)
    if as_json:
        print_json(advice_json(advice))
        return
    from advisor.paths import label
    from tunepath.render import advice_table, rules_lines

    out.print(advice_table(advice))
    out.print("[dim]Rules that moved each path (`tunepath rules` explains them; red = made infeasible):[/]")
    for line in rules_lines(advice):
        out.print(f"  {line}")
    path = advice.recommendation.path
    out.print(f"\n[bold]Recommendation:[/] {label(path) if path else '[red]none feasible[/]'}")
    for line in advice.recommendation.rationale:
        out.print(f"  - {line}", markup=False)     # names the user's model and GPUs: their text, not markup


def _check_report_output(spec: Path, output: Path) -> None:
    """Before any work: the report (or the .svg a .md report writes beside it) must not replace the spec it is
    built from - `report s.json -o s.json` overwrote the spec with the report - and its folder must be writable."""
    from advisor.textio import check_output_dir

    if output.suffix.lower() in (".html", ".htm", ".md", ".json"):
        check_output_dir(output.parent, "-o")
    written = [output, output.with_suffix(".svg")] if output.suffix.lower() == ".md" else [output]
    for f in written:
        if f.exists() and spec.exists() and f.resolve() == spec.resolve():
            raise UserError(f"-o {output}: would overwrite the spec {spec}; choose another file name")


@app.command(rich_help_panel="Advisor")
def report(spec: Path = SpecArg,
           output: Path = typer.Option(..., "-o", "--output", help="report.html (self-contained), report.md "
                                                                   "(+ report.svg chart) or report.json."),
           vary: list[str] = typer.Option(None, "--vary", help="What-if table over a numeric field: "
                                                               "--vary traffic.requests_per_month=1e4,1e5,1e6"),
           set_: list[str] = SetOpt,
           no_sensitivity: bool = typer.Option(False, "--no-sensitivity", help="Skip the flip-point scan.")) -> None:
    """Write a cost-comparison report to forward (HTML, Markdown or JSON).

    All paths side by side, cumulative cost and break-even over 24 months, what would flip the
    recommendation and at what value, an optional what-if table, assumptions and sources.
    """
    from advisor.report import build_report
    from advisor.report_render import write_report
    from advisor.spec import load_spec

    _check_report_output(spec, output)
    data = build_report(load_spec(spec, set_), vary=vary, with_sensitivity=not no_sensitivity)
    for f in write_report(data, output):
        out.print(f"wrote {f}")


@app.command(rich_help_panel="Advisor")
def schema(as_json: bool = typer.Option(False, "--json", hidden=True,
                                        help="Accepted as every listing takes it: the schema is JSON anyway.")) -> None:
    """Print the JSON Schema of the project spec (field names, types, defaults, descriptions)."""
    from advisor.spec import ProjectSpec

    print_json(ProjectSpec.model_json_schema())


@app.command(rich_help_panel="Advisor")
def init(path: Path = typer.Argument(Path("tunepath.yaml"), help="Where to write the starter spec."),
         force: bool = typer.Option(False, "--force", help="Overwrite an existing file.")) -> None:
    """Write a commented starter spec to edit (PATH.json: the same spec as JSON, which has no comments)."""
    from advisor.spec import DATA_DIR
    from advisor.textio import atomic_write_text, check_output_dir

    if not str(path).strip() or path.is_dir():   # '' is the current folder
        raise UserError(f"{str(path) or repr('')}: is a folder; give a file name, e.g. {path / 'tunepath.yaml'}")
    if path.exists() and not force:
        raise UserError(f"{path} exists; use --force to overwrite")
    check_output_dir(path.parent, "init")
    text = (DATA_DIR / "starter-spec.yaml").read_text()
    if path.suffix.lower() == ".json":   # a spec is read as JSON by its suffix: YAML there was 'invalid JSON'
        import json

        from advisor.spec import load_yaml

        text = json.dumps(load_yaml(text, str(DATA_DIR / "starter-spec.yaml")), indent=2) + "\n"
    try:
        atomic_write_text(path, text)
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror})") from None
    out.print(f"wrote {path} - edit it, then: tunepath recommend {path}")


def _title(evidence: str) -> str:
    """The citation part of an evidence text: up to its quoted title, or up to the first ': '."""
    if "'" in evidence:
        start = evidence.index("'")
        end = evidence.find("'", start + 1)
        if end > 0:
            return evidence[:end + 1]
    return evidence.split(": ")[0]


@app.command(rich_help_panel="Advisor")
def rules(as_json: bool = JsonOpt, wide: bool = WideOpt) -> None:
    """List the decision rules: id, statement, effect on each path, evidence."""
    from advisor.rules import EVIDENCE, RULES

    key_of = {text: key for key, text in EVIDENCE.items()}
    rows = [{"id": r.id, "statement": r.statement, "hard": r.hard,
             "effects": {p: (e if isinstance(e, str) else float(e)) for p, e in r.effects.items()},
             "evidence_key": key_of.get(r.evidence), "evidence": r.evidence} for r in RULES]
    if as_json:
        print_json(rows)
        return
    from tunepath.render import new_table

    t = new_table("Decision rules", show_lines=True)
    t.add_column("rule: when it fires", ratio=3)
    t.add_column("effect", no_wrap=True)
    t.add_column("source", no_wrap=True)
    for r in rows:
        eff = "\n".join(f"{p} {e if isinstance(e, str) else f'{e:+g}'}" for p, e in r["effects"].items())
        t.add_row(f"[bold]{r['id']}[/]\n{r['statement']}", eff, r["evidence_key"] or "-")
    out.print(t)
    out.print("[bold]Sources[/]" + ("" if wide else " (full text: --wide or --json)"))
    for key, text in EVIDENCE.items():
        if any(r["evidence_key"] == key for r in rows):
            out.print(f"  [bold]{key}[/]: {text if wide else _title(text)}")
