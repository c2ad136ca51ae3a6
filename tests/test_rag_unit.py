"""rag/ pure parts on hand-made inputs: metrics, fusion, BM25 maths, chunk windows, loaders."""
import gzip
import json
import math
from pathlib import Path

import pytest

from advisor.errors import UserError
from rag import ann, bm25, loaders, metrics
from rag.chunking import effective_chunk_tokens, windows
from rag.generate import build_prompt, cited
from rag.models import Hit


# --- metrics, against values worked out by hand -------------------------------------------
def test_ndcg_hand_computed():
    qrels = {"a": 1, "b": 1}
    # relevant at ranks 2 and 3: DCG = 1/log2(3) + 1/log2(4); ideal = 1 + 1/log2(3)
    expected = (1 / math.log2(3) + 0.5) / (1 + 1 / math.log2(3))
    assert metrics.ndcg_at_k(["x", "a", "b"], qrels, 10) == pytest.approx(expected)
    assert metrics.ndcg_at_k(["a", "b"], qrels, 10) == pytest.approx(1.0)
    assert metrics.ndcg_at_k(["x", "y"], qrels, 10) == 0.0
    # cut at k: the relevant doc at rank 11 does not count
    assert metrics.ndcg_at_k([str(i) for i in range(10)] + ["a"], qrels, 10) == 0.0


def test_ndcg_graded_linear_gain():
    # trec_eval gain = grade: ranking [b(1), a(2)] -> (1 + 2/log2 3) / (2 + 1/log2 3)
    got = metrics.ndcg_at_k(["b", "a"], {"a": 2, "b": 1}, 10)
    assert got == pytest.approx((1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))


def test_ndcg_negative_grades_gain_nothing():
    # trec_eval's ndcg_cut adds gain only for grade > 0: a -1 (junk) document at rank 1 pushes the
    # relevant one to rank 2 -> 1/log2(3), not (-1 + 1/log2 3) / 1 < 0
    assert metrics.ndcg_at_k(["junk", "a"], {"junk": -1, "a": 1}, 10) == pytest.approx(1 / math.log2(3))
    assert metrics.ndcg_at_k(["junk", "a", "b"], {"junk": -2, "a": 2, "b": 1}, 10) == pytest.approx(
        (2 / math.log2(3) + 1 / 2) / (2 + 1 / math.log2(3)))


def test_recall_and_mrr_hand_computed():
    qrels = {"a": 1, "b": 1, "c": 0}
    ranking = ["c", "x", "a", "y", "z", "b"]
    assert metrics.recall_at_k(ranking, qrels, 1) == 0.0
    assert metrics.recall_at_k(ranking, qrels, 5) == 0.5
    assert metrics.recall_at_k(ranking, qrels, 10) == 1.0
    assert metrics.mrr_at_k(ranking, qrels, 10) == pytest.approx(1 / 3)  # grade 0 is not relevant
    assert metrics.mrr_at_k(ranking, {"b": 1}, 5) == 0.0


def test_doc_ranking_is_max_over_chunks():
    chunks = [("d2", 0.9), ("d1", 0.8), ("d2", 0.7), ("d3", 0.6), ("d1", 0.5)]
    assert metrics.doc_ranking(chunks) == ["d2", "d1", "d3"]


def test_doc_ranking_breaks_score_ties_as_trec_eval():
    """trec_eval's comp_sim_docno: score descending, then docno descending (strcmp), whatever order
    the chunks came in; a document's lower-scoring chunk never moves it."""
    chunks = [("b", 0.5), ("a", 0.5), ("c", 0.5), ("a", 0.1), ("z", 0.25), ("10", 0.75), ("9", 0.75)]
    assert metrics.doc_ranking(chunks) == ["9", "10", "c", "b", "a", "z"]
    assert metrics.doc_ranking(list(reversed(chunks))) == ["9", "10", "c", "b", "a", "z"]


def test_rrf_hand_computed():
    fused = dict(metrics.rrf([[1, 2, 3], [3, 1]], k=60))
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[2] == pytest.approx(1 / 62)
    assert [c for c, _ in metrics.rrf([[1, 2, 3], [3, 1]], k=60)] == [1, 3, 2]


def test_aggregate_means_over_queries():
    agg = metrics.aggregate([metrics.score_query(["a"], {"a": 1}), metrics.score_query([], {"a": 1})])
    assert agg["ndcg_at_10"] == 0.5 and agg["recall_at_1"] == 0.5 and agg["mrr_at_10"] == 0.5


# --- BM25 --------------------------------------------------------------------------------
def test_bm25_formulas():
    assert bm25.idf(10, 1) == pytest.approx(math.log(1 + 9.5 / 1.5))
    assert bm25.idf(10, 10) > 0  # Lucene's idf never goes negative
    # tf=1 in an average-length document: (k1+1)/(1+k1) = 1
    assert bm25.term_score(1, 100, 100) == pytest.approx(1.0)
    assert bm25.term_score(2, 50, 100) > bm25.term_score(2, 200, 100)  # shorter documents score higher


def test_analyze_folds_plurals_and_stopwords():
    assert bm25.analyze("The Cells of the bodies, and glasses!") == ["cell", "body", "glasse"]
    assert bm25.stem("virus") == "virus" and bm25.stem("gas") == "gas"


# --- chunk windows ---------------------------------------------------------------------------
def _offsets(words):
    out, pos = [], 0
    for w in words:
        out.append((pos, pos + len(w)))
        pos += len(w) + 1
    return out


def test_windows_cover_with_overlap():
    offs = _offsets([f"w{i}" for i in range(25)])
    wins = windows(offs, size=10, overlap=3)
    assert wins[0] == (0, 10) and wins[-1][1] == 25
    for (s1, e1), (s2, e2) in zip(wins, wins[1:]):
        assert e1 - s2 == 3 and e2 - s2 <= 10


def test_windows_do_not_split_words():
    # tokens 0-2 form one word ("abc" split into pieces), as do 3-5: a 4-token window backs off to 3
    offs = [(0, 1), (1, 2), (2, 3), (4, 5), (5, 6), (6, 7)]
    assert windows(offs, size=4, overlap=0) == [(0, 3), (3, 6)]


def test_windows_empty_and_effective_size():
    assert windows([], 10, 2) == []
    assert effective_chunk_tokens(256, 256, 2) == 254
    assert effective_chunk_tokens(128, 256, 2) == 128


# --- loaders -------------------------------------------------------------------------------
def test_html_text_drops_scripts_and_keeps_title():
    title, text = loaders.html_to_text("<html><head><title>T &amp; C</title><style>x{}</style></head>"
                                       "<body><p>one</p><script>bad()</script><p>two&nbsp;three</p></body></html>")
    assert title == "T & C"
    assert text.split("\n") == ["one", "two three"]  # nbsp folds to a space


def test_load_skips_bad_files(tmp_path: Path):
    cases = {"empty.txt": b"", "bin.md": b"abc\x00def", "latin1.txt": "caf\xe9".encode("latin-1"),
             "image.png": b"\x89PNG....", "bad.jsonl.gz": b"not gzip"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(loaders.SkipFile):
            loaders.load(tmp_path / name, [tmp_path])


def test_load_beir_jsonl_gz(tmp_path: Path):
    rows = [{"_id": "7", "title": "T", "text": "body"}, {"nope": 1}, {"_id": 8, "text": "x"}]
    p = tmp_path / "c.jsonl.gz"
    p.write_bytes(gzip.compress("\n".join(map(json.dumps, rows)).encode() + b"\n{broken"))
    lf = loaders.load(p, [tmp_path])
    assert [(d.doc_id, d.text) for d in lf.docs] == [("7", "T\n\nbody"), ("8", "x")]
    assert len(lf.problems) == 2  # one line without _id/text, one line of broken JSON


def test_discover_missing_path_is_user_error(tmp_path: Path):
    with pytest.raises(UserError, match="no such file"):
        loaders.discover([tmp_path / "nope"])


def test_doc_ids_relative_to_root(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.md").write_text("x")
    (tmp_path / ".hidden.md").write_text("x")
    files, roots = loaders.discover([tmp_path])
    assert [loaders.doc_id_for(f, roots) for f in files] == ["sub/a.md"]


# --- index choice and answers ------------------------------------------------------------------
def test_choose_kind_thresholds():
    big = 1 << 40
    assert ann.choose_kind(49_999, 384, big) == "flat"
    assert ann.choose_kind(50_000, 384, big) == "hnsw"
    # 1M 384-d vectors: HNSW ~1.8 GB, IVF-SQ8 (384 + 8) B each = 392 MB, IVF-PQ ~104 MB
    assert ann.choose_kind(1_000_000, 384, memory=2 << 30) == "ivfsq8"  # 1 GB usable: HNSW no, SQ8 codes yes
    assert ann.choose_kind(1_000_000, 384, memory=512 << 20) == "ivfpq"  # 256 MB usable: only PQ codes fit
    assert ann.ivf_nlist(1_000_000) == 4000 and ann.ivf_nlist(1000) == 25


def test_citations_parsed_in_order_and_in_range():
    assert cited("A [2] and [1], again [2]; not [7] or [0].", 3) == [2, 1]
    hit = Hit(rank=1, chunk_id=1, doc_id="d", source="/x/a.md", start=0, end=3, text="abc", score=1.0)
    assert "[1] (a.md) abc" in build_prompt("q?", [hit])


def test_pdf_without_pypdf_is_skipped_with_reason(tmp_path: Path):
    try:
        import pypdf  # noqa: F401
    except ImportError:
        (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4 minimal")
        with pytest.raises(loaders.SkipFile, match="pypdf"):
            loaders.load(tmp_path / "a.pdf", [tmp_path])
    else:
        (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4 broken")
        with pytest.raises(loaders.SkipFile, match="PDF"):
            loaders.load(tmp_path / "a.pdf", [tmp_path])


@pytest.mark.parametrize("kind", list(ann.KINDS))
def test_ann_roundtrip_remove_and_atomic_write(kind, tmp_path: Path):
    """Each registered index kind behaves as its registry entry says: it needs training or not,
    its search parameters reach the FAISS object, ids come back as given, deletes work (or are
    refused), exact kinds give their vectors back, and a written index reads back identically."""
    import faiss
    import numpy as np

    entry = ann.KINDS[kind]
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((20, 32)).astype(np.float32)
    x = centres[rng.integers(0, 20, 2000)] + 0.3 * rng.standard_normal((2000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.arange(1000, 3000)
    params = ann.default_params(kind, 32, len(x))
    assert set(entry.search_params) <= set(params)
    index = ann.new_index(kind, 32, params)
    assert ann.needs_training(index) == entry.needs_training
    if entry.needs_training:
        index.train(x)
    ann.add(index, x, ids)
    for name in entry.search_params:  # a changed search parameter lands on the index
        ann.set_search_params(index, kind, {**params, name: int(params[name]) + 3})
        inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else index
        holder = inner.hnsw if hasattr(inner, "hnsw") else inner
        assert getattr(holder, name) == int(params[name]) + 3
    ann.set_search_params(index, kind, params)
    _, got = index.search(x[:50], 1)
    assert (got[:, 0] == ids[:50]).mean() >= (0.98 if entry.exact else 0.6)
    if entry.exact:
        back_ids, back = next(ann.iter_vectors(index, kind))
        assert (back_ids[:5] == ids[:5]).all() and np.allclose(back[:5], x[:5], atol=1e-6)
    else:
        with pytest.raises(UserError, match="exactly"):
            ann.stored_ids(index, kind)
    removed = ann.remove(index, kind, [1000, 1001])
    assert removed == entry.removes
    assert index.ntotal == (1998 if entry.removes else 2000)
    ann.write_atomic(index, tmp_path / "v.faiss")
    assert [p.name for p in tmp_path.iterdir()] == ["v.faiss"]  # no temp file left behind
    again = ann.read(tmp_path / "v.faiss")
    ann.set_search_params(again, kind, params)
    assert (again.search(x[:20], 5)[1] == index.search(x[:20], 5)[1]).all()


def test_unknown_index_kind_is_one_line_user_error():
    with pytest.raises(UserError, match=r"--index annoy: expected auto, .*hnsw"):
        ann.new_index("annoy", 32, {})
