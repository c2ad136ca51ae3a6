"""Chunks, documents, file hashes and BM25 postings in one SQLite file per index generation.

SQLite gives transactions and indexed lookups without pickle or a JSON blob rewritten per update
(pickled stores and slow JSON persistence are a common complaint about RAG frameworks)."""
from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

from advisor.errors import UserError
from rag import bm25

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files(path TEXT PRIMARY KEY, sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs(
    id INTEGER PRIMARY KEY, path TEXT NOT NULL, doc_id TEXT NOT NULL, sha256 TEXT NOT NULL,
    title TEXT NOT NULL, UNIQUE(path, doc_id));
CREATE INDEX IF NOT EXISTS docs_doc_id ON docs(doc_id);
-- AUTOINCREMENT: ids are never reused, since an HNSW graph may still hold a deleted id.
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY AUTOINCREMENT, doc INTEGER NOT NULL REFERENCES docs(id),
    ord INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL, n_tokens INTEGER NOT NULL,
    bm25_len INTEGER NOT NULL, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc);
CREATE TABLE IF NOT EXISTS terms(id INTEGER PRIMARY KEY, term TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS postings(term INTEGER NOT NULL, chunk INTEGER NOT NULL, tf INTEGER NOT NULL,
    PRIMARY KEY(term, chunk)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead(id INTEGER PRIMARY KEY);
"""


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        if not path.is_file():
            raise UserError(f"{path}: chunk database missing (rebuild the index with `tunepath rag index`)")
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    else:
        con = sqlite3.connect(path, isolation_level=None)
        con.execute("PRAGMA journal_mode=DELETE")
        con.execute("PRAGMA synchronous=FULL")
    try:
        con.execute("SELECT count(*) FROM chunks").fetchone()
    except sqlite3.DatabaseError as e:
        if readonly:
            con.close()
            raise UserError(f"{path}: corrupt chunk database ({e})") from None
        con.executescript(SCHEMA)
    return con


def copy_db(src: Path, dst: Path) -> None:
    """A consistent copy via SQLite's online backup API (the new generation starts from it)."""
    s = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    d = sqlite3.connect(dst)
    try:
        s.backup(d)
    finally:
        s.close()
        d.close()


class Writer:
    """Mutations of one build, inside one transaction (BEGIN ... COMMIT in the caller)."""

    def __init__(self, con: sqlite3.Connection):
        self.con = con
        self.term_ids: dict[str, int] = dict(con.execute("SELECT term, id FROM terms"))

    def file_hashes(self) -> dict[str, str]:
        return dict(self.con.execute("SELECT path, sha256 FROM files"))

    def docs_of(self, path: str) -> dict[str, tuple[int, str]]:
        rows = self.con.execute("SELECT doc_id, id, sha256 FROM docs WHERE path=?", (path,))
        return {doc_id: (rid, sha) for doc_id, rid, sha in rows}

    def set_file(self, path: str, sha256: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO files(path, sha256) VALUES(?, ?)", (path, sha256))

    def delete_file(self, path: str) -> list[int]:
        removed = []
        for (rid,) in self.con.execute("SELECT id FROM docs WHERE path=?", (path,)).fetchall():
            removed += self.delete_doc(rid)
        self.con.execute("DELETE FROM files WHERE path=?", (path,))
        return removed

    def delete_doc(self, rid: int) -> list[int]:
        """Drops a document's chunks and their postings; returns the chunk ids removed."""
        rows = self.con.execute("SELECT id, text FROM chunks WHERE doc=?", (rid,)).fetchall()
        for cid, text in rows:
            counts, _ = bm25.term_counts(text)
            self.con.executemany("DELETE FROM postings WHERE term=? AND chunk=?",
                                 [(self.term_ids[t], cid) for t in counts if t in self.term_ids])
        self.con.execute("DELETE FROM chunks WHERE doc=?", (rid,))
        self.con.execute("DELETE FROM docs WHERE id=?", (rid,))
        return [cid for cid, _ in rows]

    def add_doc(self, path: str, doc_id: str, sha256: str, title: str) -> int:
        cur = self.con.execute("INSERT INTO docs(path, doc_id, sha256, title) VALUES(?, ?, ?, ?)",
                               (path, doc_id, sha256, title))
        return int(cur.lastrowid)

    def add_chunk(self, doc: int, ord_: int, start: int, end: int, n_tokens: int, text: str) -> int:
        counts, length = bm25.term_counts(text)
        cur = self.con.execute(
            "INSERT INTO chunks(doc, ord, start, end, n_tokens, bm25_len, text) VALUES(?,?,?,?,?,?,?)",
            (doc, ord_, start, end, n_tokens, length, text))
        cid = int(cur.lastrowid)
        self.con.executemany("INSERT INTO postings(term, chunk, tf) VALUES(?, ?, ?)",
                             [(self._term_id(t), cid, tf) for t, tf in counts.items()])
        return cid

    def _term_id(self, term: str) -> int:
        tid = self.term_ids.get(term)
        if tid is None:
            tid = int(self.con.execute("INSERT INTO terms(term) VALUES(?)", (term,)).lastrowid)
            self.term_ids[term] = tid
        return tid

    def mark_dead(self, ids: list[int]) -> None:
        self.con.executemany("INSERT OR IGNORE INTO dead(id) VALUES(?)", [(i,) for i in ids])

    def clear_dead(self) -> None:
        self.con.execute("DELETE FROM dead")

    def chunk_texts(self, ids: list[int]) -> list[str]:
        out = []
        for s in range(0, len(ids), 500):
            part = ids[s:s + 500]
            rows = dict(self.con.execute(
                f"SELECT id, text FROM chunks WHERE id IN ({','.join('?' * len(part))})", part))
            out += [rows[i] for i in part]
        return out

    def set_meta(self, key: str, value) -> None:
        self.con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, json.dumps(value)))

    def refresh_stats(self) -> None:
        n, total = self.con.execute("SELECT count(*), coalesce(sum(bm25_len), 0) FROM chunks").fetchone()
        self.set_meta("bm25_n", n)
        self.set_meta("bm25_avg_len", (total / n) if n else 0.0)


def counts(con: sqlite3.Connection) -> dict[str, int]:
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    return {"files": q("SELECT count(*) FROM files"), "documents": q("SELECT count(*) FROM docs"),
            "chunks": q("SELECT count(*) FROM chunks"), "dead_vectors": q("SELECT count(*) FROM dead")}


def meta(con: sqlite3.Connection, key: str, default=None):
    row = con.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return json.loads(row[0]) if row else default


def bm25_rank(con: sqlite3.Connection, query: str, depth: int, k1: float = bm25.K1,
              b: float = bm25.B) -> list[tuple[int, float]]:
    """Top `depth` (chunk id, BM25 score), scoring only chunks that share a term with the query.

    A term the query repeats counts once per occurrence (its score times its query count), as in the
    references: Anserini's BagOfWordsQueryGenerator (castorini/anserini,
    src/main/java/io/anserini/search/query/BagOfWordsQueryGenerator.java) adds one Lucene TermQuery
    SHOULD clause per analysed token, duplicates included (later versions boost the term by its
    count, the same sum), and rank_bm25's BM25Okapi.get_scores (dorianbrown/rank_bm25) adds a
    term's weight once for each query token."""
    n = meta(con, "bm25_n", 0)
    avg = meta(con, "bm25_avg_len", 0.0) or 1.0
    scores: Counter = Counter()
    for term, qtf in Counter(bm25.analyze(query)).items():
        rows = con.execute(
            "SELECT p.chunk, p.tf, c.bm25_len FROM postings p JOIN terms t ON t.id = p.term "
            "JOIN chunks c ON c.id = p.chunk WHERE t.term = ?", (term,)).fetchall()
        if not rows:
            continue
        w = qtf * bm25.idf(n, len(rows))
        for cid, tf, length in rows:
            scores[cid] += w * bm25.term_score(tf, length, avg, k1, b)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:depth]


def chunk_rows(con: sqlite3.Connection, ids: list[int]) -> dict[int, tuple]:
    """chunk id -> (doc_id, path, start, end, text)."""
    if not ids:
        return {}
    rows = con.execute(
        "SELECT c.id, d.doc_id, d.path, c.start, c.end, c.text FROM chunks c JOIN docs d ON d.id = c.doc "
        f"WHERE c.id IN ({','.join('?' * len(ids))})", ids)
    return {r[0]: r[1:] for r in rows}


def known_doc_ids(con: sqlite3.Connection, doc_ids: list[str]) -> set[str]:
    """The given document ids that name a document in the index."""
    out: set[str] = set()
    for s in range(0, len(doc_ids), 900):
        part = doc_ids[s:s + 900]
        out.update(d for (d,) in con.execute(
            f"SELECT DISTINCT doc_id FROM docs WHERE doc_id IN ({','.join('?' * len(part))})", part))
    return out


def some_doc_id(con: sqlite3.Connection) -> str | None:
    row = con.execute("SELECT doc_id FROM docs ORDER BY id LIMIT 1").fetchone()
    return row[0] if row else None


def chunk_docs(con: sqlite3.Connection, ids: list[int]) -> dict[int, str]:
    """chunk id -> doc_id, for document-level evaluation."""
    out = {}
    for s in range(0, len(ids), 900):
        part = ids[s:s + 900]
        out.update(con.execute(
            "SELECT c.id, d.doc_id FROM chunks c JOIN docs d ON d.id = c.doc "
            f"WHERE c.id IN ({','.join('?' * len(part))})", part))
    return out
