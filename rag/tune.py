"""Fine-tune the embedding model on the user's own (query, relevant passage) pairs.

Domain adaptation of a dense retriever is cheap next to tuning the LLM: a 22M-parameter encoder
tunes in minutes on a CPU, and BEIR (Thakur et al. 2021) and GPL (Wang et al. 2022) show how
much an off-domain retriever leaves on the table. Training is sentence-transformers' own
(SentenceTransformerTrainer + MultipleNegativesRankingLoss: the other positives of a batch are
the negatives, Henderson et al. 2017), optionally with one BM25-mined hard negative per pair
(Karpukhin et al. 2020, DPR: the top BM25 passage that is not a positive). LoRA goes through
the adapters/ registry and is merged before saving, so the output always loads with plain
`SentenceTransformer(DIR)`.

Pairs come as
  * a BEIR folder: queries.jsonl, qrels/<split>.tsv, corpus.jsonl[.gz] (or --documents);
  * a qrels .tsv with --queries and --documents (a BEIR corpus.jsonl[.gz] or an index folder);
  * a .jsonl of {"query", "positive", "negative"?} rows (texts, not ids).
A seeded share of the queries is held out; nDCG@10 on them is measured before and after.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

from advisor.errors import UserError
from advisor.retrieval import TUNE_EPOCHS, TUNE_LR
from advisor.textio import check_output_dir
from rag import bm25, metrics

Method = Literal["full", "lora"]
HardNegatives = Literal["bm25", "none"]
PAIR_KEYS = {"query", "positive", "negative"}
# Held-out ranking pool: every judged document plus a seeded sample of the rest, up to this many
# documents (encoding a 5k-document corpus twice would cost more than the tuning itself on a CPU).
EVAL_POOL = 2000
REPORT_FILE = "tune.json"
ProgressFn = Callable[[str, int, int, dict], None]  # (phase, done, total, info)


class TuneReport(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)   # inf/nan: one-line error, never Infinity in JSON

    out: str
    base: str
    method: Method
    pairs_source: str
    pairs_sha256: str = Field(description="hash of the pair files read (queries, qrels, corpus or jsonl)")
    queries: int = Field(description="distinct queries with at least one positive")
    train_queries: int
    heldout_queries: int = Field(description="held-out queries evaluated (one whose text is a training query's is not)")
    train_rows: int = Field(description="(query, positive[, negative]) rows the loss saw per epoch")
    hard_negatives: HardNegatives
    hard_negative_rows: int = 0
    epochs: float
    batch_size: int
    learning_rate: float
    bf16: bool = False
    max_seq_length: int | None = Field(None, description="token cut applied while tuning (the saved model keeps its own)")
    steps: int = 0
    trainable_params: int = 0
    total_params: int = 0
    eval_documents: int = Field(0, description="documents the held-out queries were ranked against")
    ndcg_at_10_before: float | None = None
    ndcg_at_10_after: float | None = None
    recall_at_10_before: float | None = None
    recall_at_10_after: float | None = None
    train_seconds: float = 0.0
    seconds: float = 0.0
    notes: list[str] = Field(default_factory=list)


@dataclass
class Pairs:
    """Queries, documents and judgements by id; negatives named explicitly by the user."""

    source: str
    queries: dict[str, str] = field(default_factory=dict)
    docs: dict[str, str] = field(default_factory=dict)
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    negatives: dict[str, list[str]] = field(default_factory=dict)
    sha256: str = ""


# ---- reading and validating pairs ---------------------------------------------------------------

def _lines(path: Path) -> list[str]:
    import gzip

    try:
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        return data.decode("utf-8-sig").splitlines()  # -sig: a leading byte-order mark is dropped
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read ({e})") from None


def _json_rows(path: Path, what: str) -> list[tuple[int, dict]]:
    rows = []
    for n, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise UserError(f"{path}:{n}: not valid JSON (expected {what})") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}:{n}: expected a JSON object ({what})")
        rows.append((n, row))
    if not rows:
        raise UserError(f"{path}:1: empty file (expected {what}, one per line)")
    return rows


def _unique_id(row: dict, n: int, path: Path, first: dict[str, int]) -> str:
    """The row's _id as a string; a second row with it is refused (which text would it mean?)."""
    rid = str(row["_id"])
    if rid in first:
        raise UserError(f"{path}:{n}: duplicate _id {rid!r} (first on line {first[rid]})")
    first[rid] = n
    return rid


def _read_queries(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    first: dict[str, int] = {}
    for n, row in _json_rows(path, '{"_id", "text"}'):
        if "_id" not in row or not isinstance(row.get("text"), str):
            raise UserError(f"{path}:{n}: expected '_id' and 'text' (got {', '.join(sorted(row)) or 'no keys'})")
        out[_unique_id(row, n, path, first)] = row["text"]
    return out


def _read_corpus(path: Path) -> dict[str, str]:
    """BEIR corpus rows, title leading the text exactly as `rag index` embeds them (rag.loaders)."""
    out: dict[str, str] = {}
    first: dict[str, int] = {}
    for n, row in _json_rows(path, '{"_id", "title"?, "text"}'):
        if "_id" not in row or not isinstance(row.get("text"), str):
            raise UserError(f"{path}:{n}: expected '_id' and 'text' (got {', '.join(sorted(row)) or 'no keys'})")
        rid = _unique_id(row, n, path, first)
        title = row.get("title") or ""
        title = title if isinstance(title, str) else str(title)
        out[rid] = f"{title}\n\n{row['text']}" if title else row["text"]
    return out


def _read_index_docs(index_dir: Path) -> dict[str, str]:
    """Documents of an index, rebuilt from their chunks (offsets into the loaded text overlap)."""
    from rag import store
    from rag.indexer import read_manifest

    m = read_manifest(index_dir)
    con = store.connect(index_dir / m.sqlite_file, readonly=True)
    try:
        rows = con.execute("SELECT d.doc_id, c.start, c.end, c.text FROM chunks c JOIN docs d ON d.id = c.doc "
                           "ORDER BY d.id, c.ord").fetchall()
    finally:
        con.close()
    parts: dict[str, list[tuple[int, int, str]]] = {}
    for doc_id, start, end, text in rows:
        parts.setdefault(doc_id, []).append((start, end, text))
    out = {}
    for doc_id, spans in parts.items():
        text, reached = "", 0
        for start, end, chunk in spans:
            if end > reached:
                text += chunk[max(0, reached - start):]
                reached = end
        out[doc_id] = text
    return out


def _read_qrels(path: Path, queries: dict[str, str], docs: dict[str, str]) -> dict[str, dict[str, int]]:
    """BEIR qrels, read as rag eval reads them (integer grades: rag.retrieve.qrels_rows); every id must resolve,
    and the positive judgements are the training pairs."""
    from rag.retrieve import qrels_rows

    out: dict[str, dict[str, int]] = {}
    for n, qid, did, grade in qrels_rows(path, "--pairs"):
        if qid not in queries:
            raise UserError(f"{path}:{n}: query id {qid!r} is not in the queries file")
        if did not in docs:
            raise UserError(f"{path}:{n}: corpus id {did!r} is not in the documents")
        if grade > 0:
            out.setdefault(qid, {})[did] = grade
    return out


def _read_pair_rows(path: Path) -> Pairs:
    """{"query", "positive", "negative"?} rows; ids are given to texts so that a query on several
    lines (several positives) is one query, and one passage is one document."""
    p = Pairs(source=str(path))
    q_ids: dict[str, str] = {}
    d_ids: dict[str, str] = {}

    def doc(text: str) -> str:
        return d_ids.setdefault(text, f"d{len(d_ids)}")

    for n, row in _json_rows(path, '{"query", "positive", "negative"?}'):
        unknown = set(row) - PAIR_KEYS
        missing = {"query", "positive"} - set(row)
        if unknown or missing:
            what = (f"unknown key(s) {', '.join(sorted(unknown))}" if unknown else
                    f"missing {', '.join(sorted(missing))}")
            raise UserError(f"{path}:{n}: {what}; expected keys query, positive and optionally negative")
        for key in row:
            if not isinstance(row[key], str) or not row[key].strip():
                raise UserError(f"{path}:{n}: '{key}' must be a non-empty string")
        qid = q_ids.setdefault(row["query"], f"q{len(q_ids)}")
        p.queries[qid] = row["query"]
        pos = doc(row["positive"])
        p.qrels.setdefault(qid, {})[pos] = 1
        if "negative" in row:
            p.negatives.setdefault(qid, []).append(doc(row["negative"]))
    p.docs = {i: t for t, i in d_ids.items()}
    for qid, negs in p.negatives.items():  # a passage that is positive for the query is no negative
        p.negatives[qid] = [d for d in negs if d not in p.qrels[qid]]
    return p


def _hash_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        if path.is_file():
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def _corpus_file(folder: Path) -> Path | None:
    for name in ("corpus.jsonl", "corpus.jsonl.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def load_pairs(pairs: str | os.PathLike, queries: str | os.PathLike | None = None,
               documents: str | os.PathLike | None = None, split: str = "train") -> Pairs:
    """Read and validate pairs in any of the three layouts (module docstring)."""
    path = Path(pairs).expanduser()
    if not path.exists():
        raise UserError(f"--pairs {pairs}: no such file or folder")
    if path.is_file() and path.name.endswith(".jsonl"):
        p = _read_pair_rows(path)
        p.sha256 = _hash_files([path])
        return p
    if path.is_dir():
        qrels_path = path / "qrels" / f"{split}.tsv"
        if not qrels_path.is_file():
            raise UserError(f"--pairs {pairs}: a BEIR folder needs qrels/{split}.tsv")
        queries_path = Path(queries) if queries else path / "queries.jsonl"
        docs_path = Path(documents) if documents else _corpus_file(path)
        if docs_path is None:
            raise UserError(f"--pairs {pairs}: no corpus.jsonl[.gz] in the folder; pass --documents")
    elif path.suffix == ".tsv":
        if not queries or not documents:
            raise UserError(f"--pairs {pairs}: a qrels .tsv needs --queries (BEIR queries.jsonl) and "
                            "--documents (BEIR corpus.jsonl or an index folder)")
        qrels_path, queries_path, docs_path = path, Path(queries), Path(documents)
    else:
        raise UserError(f"--pairs {pairs}: expected a .jsonl of {{query, positive, negative?}} rows, "
                        "a BEIR qrels .tsv, or a BEIR folder")
    if not queries_path.is_file():
        raise UserError(f"--queries {queries_path}: no such file (expected BEIR queries.jsonl)")
    if docs_path.is_dir():
        docs = _read_index_docs(docs_path.resolve())
        hashed = [docs_path / "manifest.json"]
    elif docs_path.is_file():
        docs = _read_corpus(docs_path)
        hashed = [docs_path]
    else:
        raise UserError(f"--documents {docs_path}: no such file or index folder")
    q = _read_queries(queries_path)
    p = Pairs(source=str(qrels_path), queries=q, docs=docs, qrels=_read_qrels(qrels_path, q, docs))
    p.sha256 = _hash_files([queries_path, qrels_path, *hashed])
    return p


# ---- split, negatives, evaluation ---------------------------------------------------------------

def split_queries(qids: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, held out): a seeded hash order, so the split is stable when pairs are appended."""
    if not 0 <= fraction < 1:
        raise UserError(f"--holdout {fraction}: expected 0 <= fraction < 1")
    order = sorted(qids, key=lambda q: hashlib.sha256(f"{seed}:{q}".encode()).hexdigest())
    n_out = 0 if fraction == 0 else max(1, round(fraction * len(order)))
    if len(order) - n_out < 1:
        raise UserError(f"pairs: {len(order)} quer{'y' if len(order) == 1 else 'ies'}; need at least 2 to hold "
                        "one out (or --holdout 0)")
    return sorted(order[n_out:]), sorted(order[:n_out])


def _same_text(text: str) -> str:
    return " ".join(text.split()).casefold()


def heldout_split(p: Pairs, fraction: float, seed: int) -> tuple[list[str], list[str], list[str]]:
    """(train, held out, dropped): split_queries over the judged queries, less the held-out queries whose
    text (case and spacing aside) is also a training query's. BEIR files can name one claim under two ids
    (SciFact train 85 and 86: same text, same positives); scoring such a query measures recall of a training
    pair, not generalisation, so it is not evaluated. Training is unchanged."""
    train, heldout = split_queries(sorted(p.qrels), fraction, seed)
    seen = {_same_text(p.queries[q]) for q in train}
    kept = [q for q in heldout if _same_text(p.queries[q]) not in seen]
    return train, kept, [q for q in heldout if _same_text(p.queries[q]) in seen]


class _Bm25:
    """In-memory Okapi BM25 over the pair documents, scored with rag.bm25 (the index's own maths)."""

    def __init__(self, docs: dict[str, str]):
        self.ids = list(docs)
        self.postings: dict[str, list[tuple[int, int]]] = {}
        self.lens = []
        for i, d in enumerate(self.ids):
            counts, n = bm25.term_counts(docs[d])
            self.lens.append(n)
            for t, tf in counts.items():
                self.postings.setdefault(t, []).append((i, tf))
        self.avg = (sum(self.lens) / len(self.lens)) or 1.0

    def top(self, query: str, k: int) -> list[str]:
        scores: Counter = Counter()
        for t in set(bm25.analyze(query)):
            post = self.postings.get(t)
            if not post:
                continue
            w = bm25.idf(len(self.ids), len(post))
            for i, tf in post:
                scores[i] += w * bm25.term_score(tf, self.lens[i], self.avg)
        return [self.ids[i] for i, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def mine_bm25_negatives(p: Pairs, qids: list[str], depth: int = 10) -> dict[str, str]:
    """Per query, the best-ranked BM25 document that is not judged relevant (DPR's BM25 negative)."""
    index = _Bm25(p.docs)
    out = {}
    for q in qids:
        for d in index.top(p.queries[q], depth + len(p.qrels[q])):
            if d not in p.qrels[q]:
                out[q] = d
                break
    return out


def _eval_pool(p: Pairs, heldout: list[str], limit: int, seed: int) -> list[str]:
    judged = dict.fromkeys(d for q in p.qrels for d in p.qrels[q])
    if len(p.docs) <= limit:
        return list(p.docs)
    rest = sorted(d for d in p.docs if d not in judged)
    random.Random(seed).shuffle(rest)
    return list(judged) + rest[:max(0, limit - len(judged))]


def heldout_metrics(st, p: Pairs, heldout: list[str], pool: list[str], batch_size: int = 32) -> dict[str, float]:
    """Exact dense ranking of the pool for each held-out query; trec_eval-style nDCG@10 (rag.metrics)."""
    import numpy as np

    from rag.embed import encode

    d = encode(st, [p.docs[i] for i in pool], batch_size=batch_size)
    q = encode(st, [p.queries[i] for i in heldout], batch_size=batch_size)
    sims = q @ d.T
    per_query = []
    for row, qid in zip(sims, heldout):
        top = np.argsort(-row, kind="stable")[:100]
        ranking = metrics.doc_ranking([(pool[j], float(row[j])) for j in top])  # trec_eval's tie order
        per_query.append(metrics.score_query(ranking, p.qrels[qid]))
    return metrics.aggregate(per_query)


# ---- training ------------------------------------------------------------------------------------

def _progress_callback(progress: ProgressFn | None):
    from transformers import TrainerCallback

    class _Cb(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if progress and logs and "loss" in logs:
                progress("train", state.global_step, state.max_steps, {"loss": float(logs["loss"])})

        def on_step_end(self, args, state, control, **kw):
            if progress:
                progress("train", state.global_step, state.max_steps, {})

    return _Cb()


def tune(pairs: str | os.PathLike, out: str | os.PathLike, base: str | None = None, method: Method = "full",
         epochs: float = TUNE_EPOCHS, hard_negatives: HardNegatives = "bm25", batch_size: int = 32,
         learning_rate: float | None = None, holdout: float = 0.2, seed: int = 0, queries=None, documents=None,
         split: str = "train", lora_r: int = 8, max_seq_length: int | None = None, bf16: bool = False,
         eval_pool: int = EVAL_POOL, overwrite: bool = False, progress: ProgressFn | None = None) -> TuneReport:
    """Tune `base` (default all-MiniLM-L6-v2) on the pairs and save a SentenceTransformer folder to `out`."""
    t0 = time.perf_counter()
    if method not in ("full", "lora"):
        raise UserError(f"--method {method}: expected full or lora")
    if hard_negatives not in ("bm25", "none"):
        raise UserError(f"--hard-negatives {hard_negatives}: expected bm25 or none")
    for name, v in (("--epochs", epochs), ("--learning-rate", learning_rate)):
        if v is not None and (not math.isfinite(v) or v <= 0):
            raise UserError(f"{name} {v}: expected a finite number > 0")
    if batch_size < 2:
        raise UserError(f"--batch-size {batch_size}: expected at least 2 (in-batch negatives need a batch)")
    if max_seq_length is not None and max_seq_length < 8:  # before any progress bar starts
        raise UserError(f"--max-seq-length {max_seq_length}: expected at least 8")
    if not 0 <= seed < 2**32:
        raise UserError(f"--seed {seed}: expected 0 to 2**32-1 (the range numpy's seed takes)")
    out_dir = check_output_dir(out, "--out").resolve()
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise UserError(f"--out {out}: exists and is not empty (pass --overwrite to replace it)")
        if not (out_dir / REPORT_FILE).is_file():  # --overwrite deletes the folder: only ever a model tune wrote
            raise UserError(f"--out {out}: --overwrite replaces only a folder written by rag tune (it holds "
                            f"{REPORT_FILE}); {out_dir} does not, so it is left alone - choose another --out")
    lr = learning_rate or TUNE_LR[method]  # advisor/retrieval.py says how they were chosen

    p = load_pairs(pairs, queries, documents, split)
    train_q, heldout_q, dropped = heldout_split(p, holdout, seed)
    report = TuneReport(out=str(out_dir), base="", method=method, pairs_source=p.source, pairs_sha256=p.sha256,
                        queries=len(p.qrels), train_queries=len(train_q), heldout_queries=len(heldout_q),
                        train_rows=0, hard_negatives=hard_negatives, epochs=epochs, batch_size=batch_size,
                        learning_rate=lr, bf16=bf16, max_seq_length=max_seq_length)
    if dropped:
        report.notes.append(f"{len(dropped)} held-out quer{'y has' if len(dropped) == 1 else 'ies have'} the text of a "
                            f"training query (e.g. {dropped[0]!r}): not evaluated, as it would score a training pair")

    negs: dict[str, str] = {q: p.negatives[q][0] for q in train_q if p.negatives.get(q)}
    if hard_negatives == "bm25":
        if progress:
            progress("mine", 0, len(train_q), {})
        mined = mine_bm25_negatives(p, [q for q in train_q if q not in negs])
        report.hard_negative_rows = len(mined)
        negs.update(mined)
    rows = [(q, d) for q in train_q for d in sorted(p.qrels[q])]
    use_negs = bool(negs) and all(q in negs for q, _ in rows)
    if negs and not use_negs:
        report.notes.append(f"{sum(q not in negs for q, _ in rows)} row(s) have no negative: trained on "
                            "in-batch negatives only (pass --hard-negatives bm25 to mine the missing ones)")
    report.train_rows = len(rows)

    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from rag.embed import load_model, resolve_model

    base_name = resolve_model(base)
    report.base = base_name
    if note := causal_lm_base_note(base_name):
        report.notes.append(note)
    st = _fresh_copy(load_model(base_name))
    model_max = st.max_seq_length
    pool = _eval_pool(p, heldout_q, eval_pool, seed) if heldout_q else []
    report.eval_documents = len(pool)
    if len(pool) < len(p.docs):
        report.notes.append(f"held-out queries ranked against {len(pool)} of {len(p.docs)} documents "
                            "(every judged one plus a seeded sample)")
    if heldout_q:
        if progress:
            progress("eval", 0, 2, {"when": "before"})
        before = heldout_metrics(st, p, heldout_q, pool)
        report.ndcg_at_10_before, report.recall_at_10_before = before["ndcg_at_10"], before["recall_at_10"]

    data = {"anchor": [p.queries[q] for q, _ in rows], "positive": [p.docs[d] for _, d in rows]}
    if use_negs:
        data["negative"] = [p.docs[negs[q]] for q, _ in rows]
    dataset = Dataset.from_dict(data)
    # --max-seq-length cuts texts while training only: held-out nDCG before and after is measured at the length
    # the saved model reads, so it is the figure `rag eval` gives for the model, not for a truncated one
    if max_seq_length is not None:
        st.max_seq_length = min(max_seq_length, int(st.max_seq_length or max_seq_length))

    peft_model = None
    if method == "lora":
        from adapters import REGISTRY, build_peft_model

        spec = REGISTRY["lora"](r=lora_r, alpha=2 * lora_r, dropout=0.1)
        peft_model = build_peft_model(st[0].auto_model, spec, task_type="FEATURE_EXTRACTION")
        st[0].model = peft_model
    trainable = sum(x.numel() for x in st.parameters() if x.requires_grad)
    report.trainable_params, report.total_params = trainable, sum(x.numel() for x in st.parameters())

    import torch

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        args = SentenceTransformerTrainingArguments(
            output_dir=str(tmp / "trainer"), num_train_epochs=epochs, per_device_train_batch_size=batch_size,
            learning_rate=lr, warmup_steps=0.1, seed=seed, data_seed=seed,
            # two copies of one passage (or query) in a batch would be scored as each other's negative
            batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", report_to="none",
            logging_steps=max(1, math.ceil(len(rows) / batch_size) // 5), disable_tqdm=True,
            use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0,
            # bf16 autocast, fp32 master weights (transformers' mixed precision); AMX makes it ~6x
            # faster per matmul on recent Xeons
            bf16=bf16)
        trainer = SentenceTransformerTrainer(model=st, args=args, train_dataset=dataset,
                                             loss=MultipleNegativesRankingLoss(st),
                                             callbacks=[_progress_callback(progress)])
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # it prints raw log dicts to stdout (breaks --json)
        t_train = time.perf_counter()
        result = trainer.train()
        report.train_seconds = time.perf_counter() - t_train
        report.steps = int(result.global_step)
        if peft_model is not None:
            st[0].model = peft_model.merge_and_unload()  # plain weights: loads without peft
        st.eval()
        st.max_seq_length = model_max
        if heldout_q:
            if progress:
                progress("eval", 1, 2, {"when": "after"})
            after = heldout_metrics(st, p, heldout_q, pool)
            report.ndcg_at_10_after, report.recall_at_10_after = after["ndcg_at_10"], after["recall_at_10"]
        model_dir = tmp / "model"
        st.save(str(model_dir), safe_serialization=True)
        report.seconds = time.perf_counter() - t0
        (model_dir / REPORT_FILE).write_text(json.dumps(report.model_dump(), indent=2) + "\n")
        for f in model_dir.rglob("*"):
            if f.is_file():
                os.chmod(f, 0o644)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(model_dir, out_dir)  # the folder appears complete or not at all
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def causal_lm_base_note(base: str) -> str | None:
    """A local folder holding a causal LM and no sentence-transformers modules.json: sentence-transformers wraps it
    with mean pooling, which a decoder's token states were never trained for (Muennighoff 2022, SGPT; Wang et al.
    2024, E5-Mistral: decoders embed after contrastive training, with last-token pooling). Said, not refused."""
    folder = Path(base)
    if not folder.is_dir() or (folder / "modules.json").exists():
        return None
    try:
        archs = json.loads((folder / "config.json").read_text()).get("architectures") or []
    except (OSError, ValueError, AttributeError):
        return None
    if any(str(a).endswith("ForCausalLM") for a in archs):
        return (f"--base {base} is a causal language model ({archs[0]}), not a sentence-embedding model: it is "
                "mean-pooled, which its token states were not trained for; an embedding model (the default "
                "all-MiniLM-L6-v2, bge, e5) is the usual base")
    return None


def _fresh_copy(st):
    """load_model caches per process; training must not mutate the cached base model."""
    import copy

    return copy.deepcopy(st)
