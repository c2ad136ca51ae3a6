"""Build or update an index directory.

Layout of INDEX_DIR:
  manifest.json         the commit point; names the live generation's two files
  chunks-<g>.sqlite     documents, chunks (text + offsets), file hashes, BM25 postings
  vectors-<g>.faiss     vectors, FAISS id = chunk id

A build writes generation g+1 beside g (the SQLite file starts as a backup-API copy of g), then
replaces manifest.json atomically, then deletes g. A build killed at any point before that
rename leaves manifest.json naming the complete generation g; leftovers are removed by the next
build. A lock file keeps two builds from interleaving.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import re
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Sequence

from advisor.errors import UserError
from advisor.retrieval import CHUNK_OVERLAP, CHUNK_TOKENS, EMBED_BATCH
from advisor.textio import check_output_dir
from rag import ann, loaders, store
from rag.chunking import chunk_texts, effective_chunk_tokens
from rag.embed import dimension, encode, load_model, model_sha256, n_special_tokens, resolve_model
from rag.models import Chunking, Counts, IndexKind, IndexReport, IndexSpec, Manifest, SkippedFile

MANIFEST = "manifest.json"
# Chunks embedded per encode() call: large enough that sentence-transformers' length sorting
# inside a call removes most padding, small enough to bound memory (1024 x 384 x 4 B = 1.5 MB).
EMBED_BLOCK = 1024
ProgressFn = Callable[[int, int], None]  # (chunks embedded so far, total to embed)
# Embeds blocks of chunk ids, yielding one float32 (len(block), dim) array per block, in block
# order; the second argument reads a block's texts. Local by default; rag/distributed.py runs it on Ray.
BlockEmbedder = Callable[[list[list[int]], Callable[[list[int]], list[str]]], Iterator["np.ndarray"]]
EmbedderFactory = Callable[[str, int], BlockEmbedder]  # (model name, batch size) -> BlockEmbedder


def read_manifest(index_dir: Path) -> Manifest:
    path = index_dir / MANIFEST
    if not index_dir.is_dir():
        raise UserError(f"{index_dir}: no index here (build one with `tunepath rag index PATH --out {index_dir}`)")
    if not path.is_file():
        raise UserError(f"{path}: missing; {index_dir} is not a tunepath index (or its first build did not finish)")
    try:
        return Manifest.model_validate_json(path.read_text())
    except (ValueError, OSError) as e:
        first = str(e).splitlines()[0]
        raise UserError(f"{path}: corrupt or unsupported manifest ({first})") from None


def write_manifest(index_dir: Path, manifest: Manifest) -> None:
    path = index_dir / MANIFEST
    tmp = path.with_name(f"{MANIFEST}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        os.fchmod(f.fileno(), ann.SHARED_MODE)
        f.write(json.dumps(manifest.model_dump(), indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    ann.fsync_dir(index_dir)


@contextmanager
def _lock(index_dir: Path) -> Iterator[None]:
    with open(index_dir / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"{index_dir}: another `tunepath rag index` is writing this index") from None
        yield


# The names a build writes (generation files, their journals and temp files): only these are ever removed,
# so an --out folder that also holds the user's own files (vectors-notes.md) keeps them.
_OURS = re.compile(r"(chunks-\d+\.sqlite(-journal)?|vectors-\d+\.faiss(\.tmp-\d+)?|"
                   + re.escape(MANIFEST) + r"\.tmp-\d+|vectors-migrate\.npy\.tmp-\d+)")


def _cleanup(index_dir: Path, keep: set[str]) -> None:
    """Remove files of dead generations and temp files of killed builds."""
    for p in index_dir.iterdir():
        name = p.name
        if _OURS.fullmatch(name) and name not in keep and p.is_file():
            p.unlink(missing_ok=True)


def _in_roots(path: str, roots: list[Path]) -> bool:
    p = Path(path)
    return any(p == r or (r.is_dir() and p.is_relative_to(r)) for r in roots)


def build_index(
    paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    model: str | None = None,
    chunk_tokens: int = CHUNK_TOKENS,
    overlap: int = CHUNK_OVERLAP,
    index: IndexKind = "auto",
    rebuild: bool = False,
    progress: ProgressFn | None = None,
    batch_size: int = EMBED_BATCH,
    embedder: EmbedderFactory | None = None,
) -> IndexReport:
    """Index files and folders into out_dir, adding new/changed documents and dropping deleted ones.

    Unchanged documents keep their vectors (matched by content hash); deletion only applies to
    files under the given paths, so indexing a second folder into the same index keeps the first.
    `embedder` replaces the in-process embedding (e.g. rag.distributed.RayEmbedder); everything
    else - chunking, ids, the atomic generation swap - stays here."""
    t0 = time.perf_counter()
    if chunk_tokens < 8:
        raise UserError(f"--chunk-tokens {chunk_tokens}: expected at least 8")
    if not 0 <= overlap < chunk_tokens // 2 + 1:
        raise UserError(f"--overlap {overlap}: expected 0 <= overlap <= chunk_tokens/2 ({chunk_tokens // 2})")
    if index != "auto":
        ann.kind(index)  # refuses an unregistered kind in one line
    # str, not Path: Path("") is ".", and an empty --out (an unset shell variable) would index into the current folder
    index_dir = check_output_dir(out_dir, "--out").resolve()
    files, roots = loaders.discover(list(paths), exclude=index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)

    with _lock(index_dir):
        live = _live_manifest(index_dir, strict=not rebuild)  # its files stay until the new manifest lands
        old = None if rebuild else live
        model_name = resolve_model(model) if model or old is None else old.model
        if old is not None and model_name != old.model:
            raise UserError(f"--model {model}: this index was built with {old.model}; "
                            "use --rebuild or another --out")
        if old is not None and (old.chunking.chunk_tokens, old.chunking.overlap) != (chunk_tokens, overlap):
            raise UserError(f"--chunk-tokens/--overlap {chunk_tokens}/{overlap}: this index uses "
                            f"{old.chunking.chunk_tokens}/{old.chunking.overlap}; use --rebuild to change them")
        if Path(model_name).is_absolute() and not Path(model_name).exists():  # a manifest's local model, gone
            raise UserError(f"{index_dir}: built with the local model {model_name}, which no longer exists; restore "
                            "it, or pass --model MODEL --rebuild")
        model_hash = model_sha256(model_name)
        if old is not None and old.model_sha256 and model_hash != old.model_sha256:
            raise UserError(f"--model {model_name}: its files changed since this index was built (sha256 "
                            f"{old.model_sha256[:12]} -> {model_hash[:12]}); use --rebuild to re-embed")
        st = load_model(model_name)
        dim = dimension(st)
        if old is not None and old.dim != dim:
            raise UserError(f"{index_dir / MANIFEST}: dim {old.dim} but model {model_name} gives {dim}; use --rebuild")
        size = effective_chunk_tokens(chunk_tokens, int(st.max_seq_length or chunk_tokens), n_special_tokens(st))
        gen = max(live.generation if live else 0, _next_free_generation(index_dir) - 1) + 1
        db_path = index_dir / f"chunks-{gen}.sqlite"
        _cleanup(index_dir, keep={live.sqlite_file, live.faiss_file} if live else set())
        if old is not None:
            store.copy_db(index_dir / old.sqlite_file, db_path)
        con = store.connect(db_path)
        report = IndexReport(index_dir=str(index_dir), manifest=_placeholder())
        if chunk_tokens > int(st.max_seq_length or chunk_tokens):
            report.notes.append(f"chunks capped at {size} tokens: {model_name} reads at most "
                                f"{st.max_seq_length} including special tokens")
        try:
            con.execute("BEGIN")
            w = store.Writer(con)
            new_ids, removed = _sync_documents(w, files, roots, st.tokenizer, size, overlap, report)
            report.chunks_removed = len(removed)
            n_live = con.execute("SELECT count(*) FROM chunks").fetchone()[0]
            if n_live == 0:
                first = f" (first: {Path(report.skipped[0].path).name}: {report.skipped[0].reason})" if report.skipped else ""
                raise UserError(f"{', '.join(map(str, paths))}: no indexable text found; "
                                f"{len(report.skipped)} file(s) skipped{first}")
            if old is not None and not new_ids and not removed and index in ("auto", old.index.kind):
                con.execute("ROLLBACK")
                con.close()
                db_path.unlink(missing_ok=True)
                (index_dir / f"{db_path.name}-journal").unlink(missing_ok=True)
                report.manifest = old
                report.up_to_date = True
                report.chunks_reused = old.counts.chunks
                report.seconds = time.perf_counter() - t0
                return report
            faiss_index, spec = _vectors(old, index_dir, index, dim, n_live, w, new_ids, removed,
                                         embedder(model_name, batch_size) if embedder else _local_embedder(st, batch_size),
                                         progress, report)
            w.refresh_stats()
            w.set_meta("model", model_name)
            w.set_meta("dim", dim)
            con.execute("COMMIT")
            c = store.counts(con)
        except BaseException:
            con.close()
            db_path.unlink(missing_ok=True)  # a failed build leaves the live generation alone
            raise
        con.close()
        os.chmod(db_path, ann.SHARED_MODE)
        faiss_name = f"vectors-{gen}.faiss"
        ann.write_atomic(faiss_index, index_dir / faiss_name)
        manifest = Manifest(
            generation=gen, model=model_name, model_sha256=model_hash, dim=dim, max_seq_length=int(st.max_seq_length or 0),
            chunking=Chunking(chunk_tokens=chunk_tokens, overlap=overlap, effective_chunk_tokens=size,
                              tokenizer=type(st.tokenizer).__name__),
            index=spec, counts=Counts(vectors=int(faiss_index.ntotal), **c),
            sqlite_file=db_path.name, faiss_file=faiss_name,
            updated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        write_manifest(index_dir, manifest)  # commit point
        _cleanup(index_dir, keep={db_path.name, faiss_name})
    report.manifest = manifest
    report.chunks_reused = manifest.counts.chunks - report.chunks_embedded
    report.seconds = time.perf_counter() - t0
    report.chunks_per_s = report.chunks_embedded / report.embed_seconds if report.embed_seconds else 0.0
    return report


def _local_embedder(st, batch_size: int) -> BlockEmbedder:
    """In-process embedding, one encode() call per block."""
    def embed_blocks(blocks: list[list[int]], texts: Callable[[list[int]], list[str]]) -> Iterator["np.ndarray"]:
        for ids in blocks:
            yield encode(st, texts(ids), batch_size=batch_size)
    return embed_blocks


def _live_manifest(index_dir: Path, strict: bool) -> Manifest | None:
    if not (index_dir / MANIFEST).exists():
        return None
    try:
        return read_manifest(index_dir)
    except UserError:
        if strict:
            raise
        return None  # --rebuild over a corrupt index


def _placeholder() -> Manifest:
    return Manifest(generation=0, model="", dim=0, max_seq_length=0, chunking=Chunking(),
                    index=IndexSpec(kind="flat"), counts=Counts(), sqlite_file="", faiss_file="",
                    updated_at="")


def _next_free_generation(index_dir: Path) -> int:
    return 1 + max((int(p.stem.split("-")[1]) for p in index_dir.glob("chunks-*.sqlite")
                    if p.stem.split("-")[1].isdigit()), default=0)


def _sync_documents(w: store.Writer, files: list[Path], roots: list[Path], tokenizer, size: int,
                    overlap: int, report: IndexReport) -> tuple[list[int], list[int]]:
    """Bring the chunk table in line with the files; returns (chunk ids to embed, chunk ids removed)."""
    known = w.file_hashes()
    new_ids: list[int] = []
    removed: list[int] = []
    seen: set[str] = set()
    for path in files:
        key = str(path)
        report.files_seen += 1
        try:
            data = loaders.read_bytes(path)
            sha = hashlib.sha256(data).hexdigest()
            if known.get(key) == sha:
                seen.add(key)
                report.files_unchanged += 1
                report.docs_unchanged += len(w.docs_of(key))
                continue
            docs, problems = loaders.load_file(path, data, loaders.doc_id_for(path, roots))
        except loaders.SkipFile as e:
            report.skipped.append(SkippedFile(path=key, reason=str(e)))
            continue
        report.skipped += [SkippedFile(path=key, reason=p) for p in problems]
        seen.add(key)
        if key in known:
            report.files_changed += 1
        else:
            report.files_added += 1
        existing = w.docs_of(key)
        fresh = []
        for doc in docs:
            prev = existing.pop(doc.doc_id, None)
            if prev is not None and prev[1] == doc.sha256:
                report.docs_unchanged += 1
                continue
            if prev is not None:
                removed += w.delete_doc(prev[0])
                report.docs_changed += 1
            else:
                report.docs_added += 1
            fresh.append((doc, prev is not None))
        for rid, _ in existing.values():  # documents gone from a changed file
            removed += w.delete_doc(rid)
            report.docs_deleted += 1
        for s in range(0, len(fresh), 256):  # tokenise in batches: the fast tokenizer parallelises
            part = fresh[s:s + 256]
            for (doc, changed), spans in zip(part, chunk_texts([d.text for d, _ in part], tokenizer, size, overlap)):
                if not spans:  # only characters the tokenizer drops (zero-width spaces, controls): nothing to embed
                    report.skipped.append(SkippedFile(path=key, reason=f"document {doc.doc_id!r}: no text the "
                                                      "embedding model's tokenizer reads"))
                    report.docs_changed -= changed
                    report.docs_deleted += changed  # its previous version is gone
                    report.docs_added -= not changed
                    continue
                rid = w.add_doc(key, doc.doc_id, doc.sha256, doc.title)
                for i, sp in enumerate(spans):
                    new_ids.append(w.add_chunk(rid, i, sp.start, sp.end, sp.n_tokens, doc.text[sp.start:sp.end]))
        w.set_file(key, sha)
    for key in known:
        if key not in seen and _in_roots(key, roots):
            n_docs = len(w.docs_of(key))
            removed += w.delete_file(key)
            report.files_deleted += 1
            report.docs_deleted += n_docs
    return new_ids, removed


def _migrate(prev, old_kind: str, kind: str, dim: int, params: dict, dead: set[int], index_dir: Path):
    """Move the live vectors of an exact index into a new one. They go through a memory-mapped
    scratch file so that the old and new index never both hold the corpus in RAM."""
    import numpy as np

    ids = ann.stored_ids(prev, old_kind)
    live = np.array([int(x) not in dead for x in ids], dtype=bool)
    scratch = index_dir / f"vectors-migrate.npy.tmp-{os.getpid()}"
    mm = np.lib.format.open_memmap(scratch, mode="w+", dtype=np.float32, shape=(int(live.sum()), dim))
    try:
        pos = 0
        for bids, vecs in ann.iter_vectors(prev, old_kind):
            mask = np.array([int(x) not in dead for x in bids], dtype=bool)
            n = int(mask.sum())
            mm[pos:pos + n] = vecs[mask]
            pos += n
        live_ids = ids[live]
        prev.reset()  # frees the old vectors before the new index fills
        index = ann.new_index(kind, dim, params)
        if not index.is_trained:
            n_train = ann.ivf_train_size(len(live_ids))
            index.train(np.ascontiguousarray(mm[np.sort(np.random.default_rng(0).choice(len(live_ids), n_train, replace=False))]))
        for s in range(0, len(live_ids), EMBED_BLOCK * 10):
            ann.add(index, np.ascontiguousarray(mm[s:s + EMBED_BLOCK * 10]), live_ids[s:s + EMBED_BLOCK * 10])
    finally:
        del mm
        scratch.unlink(missing_ok=True)
    return index


def _vectors(old: Manifest | None, index_dir: Path, requested: str, dim: int, n_live: int,
             w: store.Writer, new_ids: list[int], removed: list[int], embed_blocks: BlockEmbedder,
             progress: ProgressFn | None, report: IndexReport):
    """The FAISS index of the new generation: old vectors kept, removed ones dropped, new ones
    embedded in blocks and added as they come (the corpus's vectors exist once, in the index)."""
    kind = requested if requested != "auto" else (old.index.kind if old else ann.choose_kind(n_live, dim))
    if requested == "auto" and old is not None and old.index.auto and old.index.kind == "flat":
        auto = ann.choose_kind(n_live, dim)
        if auto != old.index.kind and ann.kind(auto).exact:
            kind = auto  # the corpus crossed the Flat/HNSW threshold: migrate exact vectors, no re-embedding
            report.notes.append(f"index grew to {n_live} vectors: moved from {old.index.kind} to {auto}")
    params = dict(old.index.params) if old and old.index.kind == kind else ann.default_params(kind, dim, n_live)
    index = None
    if old is not None:
        prev = ann.read(index_dir / old.faiss_file)
        if prev.d != dim:
            raise UserError(f"{index_dir / old.faiss_file}: holds {prev.d}-d vectors, manifest says {dim}; use --rebuild")
        dead = set(removed) | {r for (r,) in w.con.execute("SELECT id FROM dead")}
        rebuild_graph = not ann.kind(kind).removes and len(dead) > ann.DEAD_REBUILD_FRACTION * max(prev.ntotal, 1)
        if kind == old.index.kind and not rebuild_graph:
            index = prev
            if not ann.remove(index, kind, removed):
                w.mark_dead(removed)
        else:
            if not ann.kind(old.index.kind).exact:
                raise UserError(f"--index {requested}: an {old.index.kind} index keeps only compressed vectors; "
                                "use --rebuild to re-embed into another index type")
            index = _migrate(prev, old.index.kind, kind, dim, params, dead, index_dir)
            del prev
            w.clear_dead()
            if rebuild_graph:
                report.notes.append(f"rebuilt the HNSW graph without {len(dead)} deleted vectors")

    todo = list(new_ids)
    blocks = [todo[s:s + EMBED_BLOCK] for s in range(0, len(todo), EMBED_BLOCK)]
    train_first = False
    if index is None:
        index = ann.new_index(kind, dim, params)
        if not index.is_trained:
            # IVF kinds: embed a random sample first, train on it, add it, then stream the rest.
            if len(todo) < ann.IVF_MIN_TRAIN:
                raise UserError(f"--index {kind}: needs at least {ann.IVF_MIN_TRAIN} chunks to train, "
                                f"this corpus has {len(todo)} (use --index flat)")
            sample = sorted(random.Random(0).sample(todo, ann.ivf_train_size(len(todo))))
            chosen = set(sample)
            rest = [i for i in todo if i not in chosen]
            blocks = [sample] + [rest[s:s + EMBED_BLOCK] for s in range(0, len(rest), EMBED_BLOCK)]
            train_first = True
            report.notes.append(f"{kind} trained on {len(sample)} sampled chunks")
    ann.set_search_params(index, kind, params)

    t = time.perf_counter()
    done = 0
    if progress:
        progress(0, len(todo))
    for bi, (ids, vecs) in enumerate(zip(blocks, embed_blocks(blocks, w.chunk_texts))):
        if vecs.shape != (len(ids), dim):
            if vecs.shape[0] != len(ids):
                raise RuntimeError(f"embedder returned {vecs.shape[0]} vectors for a block of {len(ids)} chunks")
            raise UserError(f"embedding model gives {vecs.shape[1]}-d vectors, index expects {dim}")
        if train_first and bi == 0:
            index.train(vecs)
        ann.add(index, vecs, ids)
        del vecs
        done += len(ids)
        if progress:
            progress(done, len(todo))
    if done != len(todo):
        raise RuntimeError(f"embedder returned {done} of {len(todo)} vectors")
    report.embed_seconds = time.perf_counter() - t
    report.chunks_embedded = len(todo)
    user_chosen = requested != "auto" or (old is not None and not old.index.auto and kind == old.index.kind)
    return index, IndexSpec(kind=kind, auto=not user_chosen, params=params)
