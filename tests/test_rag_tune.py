"""`tunepath rag tune` end to end through the CLI on the committed SciFact slice: the tuned
embedder raises held-out nDCG@10, loads with plain SentenceTransformer(DIR), re-indexes, and an
index refuses a model other than the one it was built with. Bad pairs files: one line, exit 2.

Texts are cut to 64 tokens while tuning (--max-seq-length) to keep the suite fast on 2 cores."""
import json
from pathlib import Path

import pytest
from helpers import EXAMPLES, TEST_DATA, cli, one_line_error

SCIFACT = TEST_DATA / "scifact"   # a 200-document slice (tests/data/SOURCES.md)
FAST = ("--max-seq-length", "64", "--batch-size", "16")


_one_line_error = one_line_error


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """Full tuning with BM25 hard negatives on the slice's train qrels, one epoch."""
    import torch

    out = tmp_path_factory.mktemp("tune") / "model"
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # see conftest.torch_one_thread: two threads stall on a busy machine
    try:
        res = cli("rag", "tune", "--pairs", SCIFACT, "--out", out, "--epochs", "1", "--learning-rate", "5e-5",
                  *FAST, "--json")
    finally:
        torch.set_num_threads(n)
    assert res.exit_code == 0, res.output
    return out, json.loads(res.stdout)


def test_tune_raises_heldout_ndcg_and_loads_plainly(tuned):
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from rag.embed import load_model, resolve_model
    from rag.tune import heldout_metrics, heldout_split, load_pairs

    out, rep = tuned
    assert rep["method"] == "full" and rep["hard_negatives"] == "bm25"
    # train claims 85 and 86 are one text under two ids: 85 falls in the held-out fifth, 86 trains, so 85 is
    # not evaluated (it would score a training pair)
    assert rep["heldout_queries"] >= 10 and rep["train_queries"] + rep["heldout_queries"] + 1 == rep["queries"]
    assert any("1 held-out query has the text of a training query (e.g. '85')" in n for n in rep["notes"]), rep["notes"]
    assert rep["hard_negative_rows"] == rep["train_queries"]  # every train query got a BM25 negative
    assert rep["steps"] > 0 and rep["trainable_params"] == rep["total_params"]
    assert rep["ndcg_at_10_after"] > rep["ndcg_at_10_before"], rep

    # the folder is a plain sentence-transformers model (no adapter files), and it is the model measured
    assert not (out / "adapter_config.json").exists() and (out / "model.safetensors").is_file()
    st = SentenceTransformer(str(out), device="cpu")
    assert st.max_seq_length == 256  # the cut to 64 tokens applied to training only
    p = load_pairs(SCIFACT)
    train, heldout, dropped = heldout_split(p, 0.2, 0)
    assert dropped == ["85"] and "86" in train and len(heldout) == rep["heldout_queries"]
    # the reported figure is the saved model's at the length it reads (not at the 64-token training cut)
    again = heldout_metrics(st, p, heldout, list(p.docs))
    assert again["ndcg_at_10"] == pytest.approx(rep["ndcg_at_10_after"], abs=1e-4)
    base = load_model(resolve_model(None))
    text = ["Vitamin D deficiency is associated with multiple sclerosis."]
    assert not np.allclose(st.encode(text), base.encode(text), atol=1e-3)


def test_tune_lora_goes_through_the_adapter_registry(tmp_path):
    from sentence_transformers import SentenceTransformer

    pairs = tmp_path / "pairs.jsonl"
    corpus = [json.loads(line) for line in (SCIFACT / "corpus.jsonl").read_text().splitlines()]
    queries = {json.loads(line)["_id"]: json.loads(line)["text"] for line in (SCIFACT / "queries.jsonl").read_text().splitlines()}
    docs = {d["_id"]: d["title"] + "\n\n" + d["text"] for d in corpus}
    rows = []
    for line in (SCIFACT / "qrels" / "train.tsv").read_text().splitlines()[1:40]:
        q, d, _ = line.split("\t")
        rows.append({"query": queries[q], "positive": docs[d]})
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "lora"
    res = cli("rag", "tune", "--pairs", pairs, "--out", out, "--method", "lora", "--holdout", "0",
              "--hard-negatives", "none", *FAST, "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["method"] == "lora" and rep["heldout_queries"] == 0 and rep["ndcg_at_10_after"] is None
    # LoRA r=8 on BERT's query and value (peft's default for bert): A is 8x384 and B 384x8 per module,
    # 2 modules per layer, 6 layers (Hu et al. 2021: r * (d_in + d_out) per adapted matrix)
    assert rep["trainable_params"] == 6 * 2 * 8 * (384 + 384)
    assert rep["learning_rate"] == 2e-4
    assert not (out / "adapter_config.json").exists()  # merged: loads without peft
    st = SentenceTransformer(str(out), device="cpu")
    assert st.encode(["a query"]).shape == (1, 384)


def test_index_with_tuned_model_records_it_and_refuses_others(tuned, tmp_path):
    out, _ = tuned
    docs = tmp_path / "docs"
    docs.mkdir()
    rows = [json.loads(line) for line in (SCIFACT / "corpus.jsonl").read_text().splitlines()[:12]]
    (docs / "part.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = tmp_path / "model"
    import shutil

    shutil.copytree(out, model)
    res = cli("rag", "index", docs, "--out", tmp_path / "idx", "--model", model, "--json")
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)["manifest"]
    assert m["model"] == str(model.resolve()) and len(m["model_sha256"]) == 64
    from rag.embed import model_sha256

    assert m["model_sha256"] == model_sha256(str(model))
    ok = cli("rag", "query", tmp_path / "idx", "vitamin D", "--mode", "dense", "--model", model, "--json")
    assert ok.exit_code == 0, ok.output
    # querying with another model than the index's
    _one_line_error(cli("rag", "query", tmp_path / "idx", "vitamin D", "--model", "all-MiniLM-L6-v2"),
                    "was built with", str(model.resolve()))
    # the model folder re-tuned in place: same path, other weights
    (model / "tune.json").write_text("{}\n")
    _one_line_error(cli("rag", "query", tmp_path / "idx", "vitamin D", "--mode", "dense"), "have changed since")
    _one_line_error(cli("rag", "index", docs, "--out", tmp_path / "idx", "--model", model), "use --rebuild")


def _beir(tmp_path: Path, qrels: str, queries: str | None = None) -> Path:
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text('{"_id": "d1", "title": "T", "text": "alpha beta"}\n'
                                       '{"_id": "d2", "text": "gamma delta"}\n')
    (root / "queries.jsonl").write_text(queries if queries is not None else
                                        '{"_id": "q1", "text": "alpha?"}\n{"_id": "q2", "text": "gamma?"}\n')
    (root / "qrels" / "train.tsv").write_text(qrels)
    return root


@pytest.mark.parametrize("qrels, needle", [
    ("query-id\tcorpus-id\tscore\nq1\td1\t1\nq9\td2\t1\n", "train.tsv:3: query id 'q9' is not in the queries"),
    ("q1\td1\t1\nq2\td7\t1\n", "train.tsv:2: corpus id 'd7' is not in the documents"),
    ("q1\td1\n", "train.tsv:1: expected 'query-id<TAB>corpus-id<TAB>score', got 2 columns"),
    ("q1\td1\tyes\n", "train.tsv:1: score 'yes' is not a number"),
    ("q1\td1\tnan\n", "train.tsv:1: score 'nan': expected an integer relevance grade"),
    # rag eval's reader: a fractional grade was rounded here (0.4 -> a positive pair of grade 0)
    ("q1\td1\t0.4\n", "train.tsv:1: score '0.4': expected an integer relevance grade"),
    ("q1\td1\t0\n", "no positive judgement"),
    ("", "train.tsv: no judgements found"),
])
def test_bad_beir_pairs_one_line_exit_2(tmp_path, qrels, needle):
    root = _beir(tmp_path, qrels)
    _one_line_error(cli("rag", "tune", "--pairs", root, "--out", tmp_path / "m"), needle)


def test_bad_queries_file_names_its_line(tmp_path):
    root = _beir(tmp_path, "q1\td1\t1\n", queries='{"_id": "q1", "text": "alpha?"}\n{"id": "q2"}\n')
    _one_line_error(cli("rag", "tune", "--pairs", root, "--out", tmp_path / "m"), "queries.jsonl:2: expected '_id'")


@pytest.mark.parametrize("content, needle", [
    ("", "pairs.jsonl:1: empty file"),
    ('{"query": "a", "positive": "b"}\n{"question": "a", "positive": "b"}\n', "pairs.jsonl:2: unknown key(s) question"),
    ('{"query": "a"}\n', "pairs.jsonl:1: missing positive"),
    ('{"query": "a", "positive": "b"}\nnot json\n', "pairs.jsonl:2: not valid JSON"),
    ('{"query": "a", "positive": 3}\n', "pairs.jsonl:1: 'positive' must be a non-empty string"),
    ('{"query": "a", "positive": "b"}\n', "need at least 2"),
])
def test_bad_jsonl_pairs_one_line_exit_2(tmp_path, content, needle):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(content)
    _one_line_error(cli("rag", "tune", "--pairs", pairs, "--out", tmp_path / "m"), needle)


def test_beir_files_with_a_byte_order_mark_read_as_without(tmp_path):
    """Line 1 of a BOM-prefixed queries.jsonl was 'not valid JSON', its qrels header a bad row."""
    from rag.tune import load_pairs

    root = _beir(tmp_path, "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    plain = load_pairs(root)
    for f in (root / "queries.jsonl", root / "corpus.jsonl", root / "qrels" / "train.tsv"):
        f.write_bytes(b"\xef\xbb\xbf" + f.read_bytes())
    bom = load_pairs(root)
    assert (bom.queries, bom.docs, bom.qrels) == (plain.queries, plain.docs, plain.qrels)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_bytes(b'\xef\xbb\xbf{"query": "a?", "positive": "b"}\n')
    assert list(load_pairs(pairs).queries.values()) == ["a?"]


def test_bad_out_seed_and_length_fail_first_in_one_line(tmp_path):
    """--out under a file and a negative --seed were internal errors after the model had loaded;
    --max-seq-length 3 was refused after the progress bar had started (a blank line before the error)."""
    from helpers import cli_subprocess

    root = _beir(tmp_path, "q1\td1\t1\nq2\td2\t1\n")
    (tmp_path / "file").write_text("x")
    for args, needle in (([ "--out", tmp_path / "file" / "m"], f"--out {tmp_path / 'file' / 'm'}: {tmp_path / 'file'} "
                                                               "is a file, not a folder"),
                         (["--out", tmp_path / "file"], "exists and is not a folder"),
                         (["--out", tmp_path / "m", "--seed", "-1"], "--seed -1: expected 0 to 2**32-1"),
                         (["--out", tmp_path / "m", "--max-seq-length", "3"], "--max-seq-length 3: expected at least 8")):
        r = cli_subprocess("rag", "tune", "--pairs", root, *args)
        assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
        assert needle in r.stderr, r.stderr


def test_duplicate_ids_in_beir_files_are_refused(tmp_path):
    """A second row with an _id silently replaced the first's text (rag index keeps the first row)."""
    root = _beir(tmp_path, "q1\td1\t1\nq2\td2\t1\n",
                 queries='{"_id": "q1", "text": "alpha?"}\n{"_id": "q2", "text": "gamma?"}\n{"_id": "q1", "text": "x"}\n')
    _one_line_error(cli("rag", "tune", "--pairs", root, "--out", tmp_path / "m"),
                    "queries.jsonl:3: duplicate _id 'q1' (first on line 1)")
    root = _beir(tmp_path / "b", "q1\td1\t1\nq2\td2\t1\n")
    with open(root / "corpus.jsonl", "a") as f:
        f.write('{"_id": "d1", "text": "other"}\n')
    _one_line_error(cli("rag", "tune", "--pairs", root, "--out", tmp_path / "m"),
                    "corpus.jsonl:3: duplicate _id 'd1' (first on line 1)")


def test_overwrite_replaces_only_a_tuned_model_folder(tmp_path):
    """--overwrite deleted whatever --out named once training ended: `--out "$DIR" --overwrite` with DIR unset
    was the current folder, and any folder of the user's went the same way."""
    from helpers import cli_subprocess

    root = _beir(tmp_path, "q1\td1\t1\nq2\td2\t1\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "code.py").write_text("precious")
    _one_line_error(cli("rag", "tune", "--pairs", root, "--out", project, "--overwrite"),
                    f"--out {project}: --overwrite replaces only a folder written by rag tune (it holds tune.json)")
    r = cli_subprocess("rag", "tune", "--pairs", root, "--out", "", "--overwrite", cwd=project)
    assert r.returncode == 2 and r.stderr == "error: --out: empty; expected a folder path\n", r.stderr
    assert sorted(p.name for p in project.iterdir()) == ["code.py"] and (project / "code.py").read_text() == "precious"


def test_tsv_pairs_need_queries_and_documents(tmp_path):
    root = _beir(tmp_path, "q1\td1\t1\n")
    _one_line_error(cli("rag", "tune", "--pairs", root / "qrels" / "train.tsv", "--out", tmp_path / "m"),
                    "needs --queries")


# ---- the advisor and `tunepath run` ----------------------------------------------------------------
def _rag_cost(*sets):
    res = cli("recommend", EXAMPLES / "acme-support.yaml", "--json", *sets)
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    return d, next(p for p in d["paths"] if p["path"] == "rag")["cost"]


def test_advisor_prices_embedder_tuning_and_says_what_it_buys():
    d0, c0 = _rag_cost()
    d1, c1 = _rag_cost("--set", "data.retrieval_pairs=900")
    d2, c2 = _rag_cost("--set", "data.retrieval_pairs=1800")
    assert d1["recommendation"]["path"] == "rag"
    assert c0["details"]["embedder_tuning_hours"] == 0
    assert not any("embedder" in r for r in d0["recommendation"]["rationale"])
    line = next(r for r in d1["recommendation"]["rationale"] if "Tune the embedder" in r)
    assert "900 retrieval pairs" in line and "nDCG@10" in line and "GPL" in line
    extra1, extra2 = c1["gpu_hours"] - c0["gpu_hours"], c2["gpu_hours"] - c0["gpu_hours"]
    assert extra1 > 0 and extra2 == pytest.approx(2 * extra1)  # one epoch: linear in the pairs
    assert c1["one_off_usd"] > c0["one_off_usd"]


def test_run_tunes_the_embedder_when_the_spec_names_pairs(tmp_path):
    import yaml

    corpus = [json.loads(line) for line in (SCIFACT / "corpus.jsonl").read_text().splitlines()]
    queries = {json.loads(ln)["_id"]: json.loads(ln)["text"] for ln in (SCIFACT / "queries.jsonl").read_text().splitlines()}
    by_id = {d["_id"]: d for d in corpus}
    rows, used = [], {}
    for line in (SCIFACT / "qrels" / "train.tsv").read_text().splitlines()[1:21]:
        q, d, _ = line.split("\t")
        rows.append({"query": queries[q], "positive": by_id[d]["title"] + "\n\n" + by_id[d]["text"]})
        used[d] = by_id[d]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in used.values()))
    spec = yaml.safe_load((EXAMPLES / "acme-support.yaml").read_text())
    spec["data"] = {**spec.get("data", {}), "retrieval_pairs": len(rows)}
    spec["run"] = {"output_dir": str(tmp_path / "run"), "documents": ["docs.jsonl"],
                   "retrieval_pairs": "pairs.jsonl"}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    res = cli("run", tmp_path / "spec.yaml", "--path", "rag", "--yes", "--json")
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    assert [st["kind"] for st in s["steps"]] == ["tune", "index"]
    tune, index = s["steps"]
    assert tune["estimate"]["wall_s"] > 0 and tune["detail"]["train_rows"] > 0
    assert tune["detail"]["ndcg_at_10_before"] is not None and tune["detail"]["ndcg_at_10_after"] is not None
    manifest = json.loads((tmp_path / "run" / "index" / "manifest.json").read_text())
    assert manifest["model"] == tune["detail"]["out"] == str(tmp_path / "run" / "embedder")


def test_a_causal_lm_base_is_named_in_the_notes(tmp_path):
    """sentence-transformers mean-pools any transformers folder without modules.json; a causal LM given as --base
    was tuned that way without a word."""
    from rag.tune import causal_lm_base_note

    lm = tmp_path / "lm"
    lm.mkdir()
    (lm / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}))
    assert "causal language model (LlamaForCausalLM)" in causal_lm_base_note(str(lm))
    (lm / "modules.json").write_text("[]")                 # a sentence-transformers folder: its own pooling
    assert causal_lm_base_note(str(lm)) is None
    enc = tmp_path / "enc"
    enc.mkdir()
    (enc / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    assert causal_lm_base_note(str(enc)) is None
    assert causal_lm_base_note("sentence-transformers/all-MiniLM-L6-v2") is None


def test_tuning_a_causal_lm_base_says_so(tmp_path, tiny_base_model):
    """End to end: the project's own tiny pretrained Llama as --base tunes, and the report names what it is."""
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"query": f"when to sow {v}", "positive": f"Sow {v} in spring."}) + "\n"
                             for v in ("leeks", "beans", "peas", "kale", "chard", "onions")))
    res = cli("rag", "tune", "--pairs", pairs, "--out", tmp_path / "m", "--base", tiny_base_model, "--holdout", "0",
              "--hard-negatives", "none", "--epochs", "1", *FAST, "--json")
    assert res.exit_code == 0, res.output
    assert any("causal language model (LlamaForCausalLM)" in n for n in json.loads(res.stdout)["notes"])
